// Hot paths of the decision: decoding an input message, sampling, and evaluating every rule
// of a rule set on a closed trace, swept over sizes so cost growth is visible.
#include <benchmark/benchmark.h>

#include <string>

#include "config/config.h"
#include "rules/decode.h"
#include "rules/engine.h"
#include "rules/sampling.h"

namespace triaged {
namespace {

std::string NativeSpan(int i) {
  return R"({"trace_id":"7f3a9c2e41b04d5a8e6f1c2b3d4e)" + std::to_string(10000 + i) +
         R"(","span_id":"a1b2c3d4e5f60001","parent_span_id":null,"name":"chat",)"
         R"("start_time_unix_nano":1793527200000000000,"end_time_unix_nano":1793527201250000000,)"
         R"("status":"ok","attributes":{"gen_ai.request.model":"gpt-4o","session.id":"s-1",)"
         R"("gen_ai.usage.input_tokens":812,"gen_ai.usage.output_tokens":64},)"
         R"("input":"How do I rotate my API key?","output":"Settings > API keys > Rotate."})";
}

void BM_DecodeNativeSpan(benchmark::State& state) {
  const std::string msg = NativeSpan(1);
  for (auto _ : state) {
    auto decoded = DecodeSpans(msg);
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}
BENCHMARK(BM_DecodeNativeSpan);

void BM_SampleUnit(benchmark::State& state) {
  const std::string key = "7f3a9c2e41b04d5a8e6f1c2b3d4e5f01";
  const std::optional<std::string> salt;
  for (auto _ : state) benchmark::DoNotOptimize(SampleUnit(SampleHash(key, salt)));
}
BENCHMARK(BM_SampleUnit);

// A rule set of N rules (a mix of feedback, latency, error and content conditions).
std::shared_ptr<const Config> RuleSetOf(int n) {
  std::string yaml =
      "destinations:\n  q: {kind: queue, topic: q}\n  d: {kind: dataset, topic: d}\nrules:\n";
  const char* conditions[] = {
      R"(feedback.thumbs.label == \"down\")",
      R"(feedback.faithfulness.score < 0.5 and feedback.faithfulness.source == \"llm_judge\")",
      "trace.duration_ms > 5000",
      "trace.error or trace.retry_count > 0",
      R"(trace.model in [\"gpt-4o\", \"gpt-4o-mini\"] and trace.total_tokens > 4000)",
      R"(trace.output matches \"(?i)i cannot|as an ai\")",
  };
  for (int i = 0; i < n; ++i) {
    yaml += "  - name: r" + std::to_string(i) + "\n    when: \"" + conditions[i % 6] +
            "\"\n    sample: 50%\n    route_to: [" + (i % 2 ? "q" : "d") + "]\n";
  }
  ConfigLoadResult loaded = LoadConfigString(yaml, "bench.yaml");
  if (!loaded.config) {
    for (const auto& e : loaded.errors) fprintf(stderr, "%s\n", e.ToString().c_str());
    abort();
  }
  return loaded.config;
}

class NullSink : public RouteSink {
 public:
  void OnRoute(const RoutedItem& item) override { benchmark::DoNotOptimize(item.trace); }
};

// One trace (one span + one thumbs-down) through open, close and evaluation of N rules.
void BM_DecideTrace(benchmark::State& state) {
  auto config = RuleSetOf(static_cast<int>(state.range(0)));
  Engine engine(config->rules);
  NullSink sink;
  int64_t now = 1'793'527'200'000'000'000;
  int i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto span = DecodeSpans(NativeSpan(i++));
    state.ResumeTiming();
    if (!span.ok()) state.SkipWithError("decode failed");
    engine.Add(std::move(span.value()), now, sink);
    now += 20 * kNanosPerSecond;  // past decision_wait: the trace closes and is evaluated
    engine.Advance(now, sink);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideTrace)->RangeMultiplier(4)->Range(1, 256);

}  // namespace
}  // namespace triaged

BENCHMARK_MAIN();
