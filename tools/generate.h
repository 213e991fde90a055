// `triaged generate`: realistic synthetic traffic for demos, tests and benchmarks. Traces of
// three kinds of LLM application (a RAG support bot, a tool-calling agent, a summarizer) as
// native spans or OTLP/JSON requests, and the sparse, late feedback real users and evaluators
// give them, in every accepted shape (DESIGN §1): thumbs, LLM-judge scores, Phoenix, Langfuse
// and LangSmith annotations, support escalations. Errors, retries, tool failures and slow
// traces occur at realistic rates, so every kind of rule has something to match.
//
// The traffic is a pure function of the seed and the start time; the event times follow the
// rate. `RunGenerate` sends it to Kafka paced in real time, or writes it as JSONL for replay.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <queue>
#include <string>
#include <vector>

namespace triaged {

struct GeneratedEvent {
  int64_t time_ns = 0;    // event time: when a real application would send it
  bool feedback = false;  // the feedback topic (else the spans topic)
  std::string key;        // the lowercase trace id, as producers partition by it
  std::string payload;
};

struct TrafficOptions {
  uint64_t seed = 1;
  double rate = 100;         // messages per second of event time (both topics together), > 0
  int64_t start_ns = 0;      // event time of the first trace
  double invalid_ratio = 0;  // share of malformed messages (for the dead-letter path)
};

struct TrafficCounts {
  uint64_t traces = 0, span_messages = 0, spans = 0, feedback_messages = 0, invalid = 0;
};

class TrafficGenerator {
 public:
  explicit TrafficGenerator(const TrafficOptions& options);
  ~TrafficGenerator();

  // The next event in event-time order; false once finished and nothing is pending.
  bool Next(GeneratedEvent& out);
  // Event time of the next event (if any is pending or another trace would start).
  int64_t PeekTime();
  // No new traces from now on; the feedback of traces already started still comes.
  void Finish() { finished_ = true; }
  bool finished() const { return finished_; }

  const TrafficCounts& counts() const { return counts_; }

 private:
  struct Later {
    bool operator()(const std::pair<GeneratedEvent, uint64_t>& a,
                    const std::pair<GeneratedEvent, uint64_t>& b) const {
      return a.first.time_ns != b.first.time_ns ? a.first.time_ns > b.first.time_ns
                                                : a.second > b.second;
    }
  };
  class Builder;

  void StartTrace();
  void Push(GeneratedEvent event);

  TrafficOptions options_;
  std::unique_ptr<Builder> builder_;
  int64_t next_trace_ns_;
  bool finished_ = false;
  uint64_t sequence_ = 0;
  TrafficCounts counts_;
  std::priority_queue<std::pair<GeneratedEvent, uint64_t>,
                      std::vector<std::pair<GeneratedEvent, uint64_t>>, Later>
      pending_;
};

struct GenerateOptions {
  std::string bootstrap;    // -b; "" = the config's, else $KAFKA_BOOTSTRAP
  std::string config_path;  // optional: topics (and bootstrap) from this config
  std::string spans_topic = "llm.spans";
  std::string feedback_topic = "llm.feedback";
  double rate = 100;        // messages per second of event time; paced unless `burst`
  bool burst = false;       // send as fast as the broker takes it (the same traffic, not paced)
  int64_t duration_ns = 0;  // stop starting traces after this much event time (0 = no limit)
  uint64_t max_events = 0;  // ... or after this many messages (0 = no limit)
  uint64_t seed = 1;
  int64_t start_ns = 0;  // event time of the first trace (0 = now)
  double invalid_ratio = 0;
  std::string out_path;  // write JSONL (one kcat -J envelope per line) instead; "-" = stdout
};

// Exit codes: 0 ok, 1 delivery failures, 64 usage, 69 broker unreachable (EX_UNAVAILABLE).
int RunGenerate(const GenerateOptions& options, std::ostream& out, std::ostream& err);

}  // namespace triaged
