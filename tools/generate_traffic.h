// The traffic model of `triaged generate`: traces of three kinds of LLM application (a RAG
// support bot, a tool-calling agent, a summarizer) and the sparse, late feedback real users and
// evaluators give them. Errors, retries, tool failures and slow traces occur at realistic
// rates, so every kind of rule has something to match; about `invalid_ratio` of the messages
// are malformed the way real producers' are. The shapes are written by generate_shapes.h.
//
// The traffic is a pure function of the seed and the start time; the event times follow the
// rate.
#pragma once

#include <cstdint>
#include <memory>
#include <queue>
#include <string>
#include <utility>
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

}  // namespace triaged
