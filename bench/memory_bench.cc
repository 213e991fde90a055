// Bytes of resident memory per open trace: generated traffic (triaged generate's) is decoded
// and added to one engine whose traces never close, until N traces are open; the RSS growth is
// divided by N and compared with the raw bytes of the span messages held (and of every
// message, feedback included).
//
//   memory_bench N [SEED]   -> one JSON object on stdout
#include <malloc.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "config/config.h"
#include "rules/decode.h"
#include "rules/engine.h"
#include "tools/generate_traffic.h"

namespace triaged {
namespace {

// Resident set size from /proc/self/statm, in bytes.
uint64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * 4096;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: memory_bench OPEN_TRACES [SEED]\n");
    return 2;
  }
  const uint64_t target = std::strtoull(argv[1], nullptr, 10);
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  // Nothing closes and nothing is evicted while the traces are loaded.
  const std::string yaml =
      "trace:\n  decision_wait: 24h\n  max_wait: 48h\n  root_grace: 24h\n"
      "  max_open_traces: " +
      std::to_string(target * 2 + 1000) +
      "\n"
      "destinations:\n  q: {kind: queue, topic: q}\n"
      "rules:\n  - name: down\n    when: feedback.thumbs.label == \"down\"\n    route_to: [q]\n";
  auto loaded = LoadConfigString(yaml, "memory_bench.yaml");
  if (!loaded.ok()) {
    for (const auto& e : loaded.error()) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return 1;
  }
  TrafficOptions options;
  options.seed = seed;
  options.rate = 1000;
  options.start_ns = 1'793'527'200'000'000'000;
  TrafficGenerator generator(options);

  Engine engine((*loaded)->rules);
  Outbox outbox(/*with_documents=*/false);
  uint64_t routed = 0;
  malloc_trim(0);
  const uint64_t rss_before = RssBytes();
  uint64_t span_bytes = 0, feedback_bytes = 0, spans = 0, messages = 0;
  GeneratedEvent event;
  while (generator.Next(event)) {
    if (!generator.finished() && generator.counts().traces >= target) generator.Finish();
    DecodedMessage decoded;
    if (event.feedback) {
      auto r = DecodeFeedback(event.payload);
      if (!r.ok()) continue;
      decoded = std::move(r.value());
      feedback_bytes += event.payload.size();
    } else {
      auto r = DecodeSpans(event.payload);
      if (!r.ok()) continue;
      decoded = std::move(r.value());
      span_bytes += event.payload.size();
      spans += decoded.spans.size();
    }
    ++messages;
    engine.Add(std::move(decoded), options.start_ns, outbox);
    routed += outbox.routes.size();
    outbox.clear();
  }
  const EngineCounters& counters = engine.counters();
  const uint64_t open = counters.traces_opened;
  malloc_trim(0);
  const uint64_t rss_after = RssBytes();
  const double grown = static_cast<double>(rss_after - rss_before);
  std::printf(
      "{\"open_traces\":%" PRIu64 ",\"spans\":%" PRIu64 ",\"messages\":%" PRIu64
      ",\"span_bytes\":%" PRIu64 ",\"feedback_bytes\":%" PRIu64
      ",\"rss_growth_bytes\":%.0f"
      ",\"bytes_per_trace\":%.1f,\"raw_span_bytes_per_trace\":%.1f"
      ",\"ratio_to_raw_spans\":%.3f,\"ratio_to_raw_messages\":%.3f,\"routed\":%" PRIu64 "}\n",
      open, spans, messages, span_bytes, feedback_bytes, grown, grown / static_cast<double>(open),
      static_cast<double>(span_bytes) / static_cast<double>(open),
      grown / static_cast<double>(span_bytes),
      grown / static_cast<double>(span_bytes + feedback_bytes), routed);
  return 0;
}

}  // namespace
}  // namespace triaged

int main(int argc, char** argv) { return triaged::Main(argc, argv); }
