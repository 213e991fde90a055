// `triaged generate`: realistic synthetic spans and feedback (generate_traffic.h) for demos,
// tests and benchmarks, sent to Kafka paced in real time (or as fast as the broker takes them),
// or written as kcat -J style JSONL for replay.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

namespace triaged {

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
