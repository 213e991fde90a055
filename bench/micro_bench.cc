// Micro-benchmarks of the hot paths, swept over sizes so that cost growth is visible:
//   decoding each input shape (MB/s; spans swept 256 B -> 64 KiB),
//   evaluating a rule set on a closed trace (ns per rule per trace; rules 1 -> 1024),
//   trace assembly into an engine already holding N open traces (N 1k -> 1M),
//   sampling, routed-item serialization (spans per trace 1 -> 256), and a whole decision.
// bench/run.sh runs them and copies the table into bench/RESULTS.md.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "rules/decode.h"
#include "rules/engine.h"
#include "rules/routed_item.h"
#include "rules/sampling.h"

namespace triaged {
namespace {

constexpr int64_t kStartNs = 1'793'527'200'000'000'000;

std::string TraceId(uint64_t i) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", 0x7f3a9c2e41b04d5aULL,
                static_cast<unsigned long long>(i));
  return buf;
}

// A native LLM span of about `size` bytes (its output is padded), in trace `trace`.
std::string NativeSpan(uint64_t trace, size_t size, int span = 0, bool root = true) {
  std::string head = R"({"trace_id":")" + TraceId(trace) + R"(","span_id":"a1b2c3d4e5f6)" +
                     std::to_string(1000 + span) + R"(","parent_span_id":)" +
                     (root ? std::string("null") : std::string(R"("a1b2c3d4e5f61000")")) +
                     R"(,"name":"chat","start_time_unix_nano":1793527200000000000,)"
                     R"("end_time_unix_nano":1793527201250000000,"status":"ok","attributes":)"
                     R"({"gen_ai.request.model":"gpt-4o","session.id":"s-1",)"
                     R"("gen_ai.usage.input_tokens":812,"gen_ai.usage.output_tokens":64},)"
                     R"("input":"How do I rotate my API key?","output":")";
  const std::string tail = R"("})";
  const size_t fixed = head.size() + tail.size();
  head.append(size > fixed ? size - fixed : 1, 'x');
  return head + tail;
}

// An OTLP/JSON request with one span of about `size` bytes (a padded completion attribute).
std::string OtlpSpan(size_t size) {
  std::string head =
      R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":)"
      R"({"stringValue":"chatbot"}}]},"scopeSpans":[{"scope":{"name":"openinference"},"spans":[)"
      R"({"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","name":"llm",)"
      R"("kind":3,"startTimeUnixNano":"1793527200000000000","endTimeUnixNano":)"
      R"("1793527201250000000","status":{"code":1},"attributes":[{"key":"openinference.span.kind",)"
      R"("value":{"stringValue":"LLM"}},{"key":"llm.model_name","value":{"stringValue":"gpt-4o"}},)"
      R"({"key":"llm.token_count.prompt","value":{"intValue":"812"}},{"key":"output.value",)"
      R"("value":{"stringValue":")";
  const std::string tail = R"("}}]}]}]}]})";
  const size_t fixed = head.size() + tail.size();
  head.append(size > fixed ? size - fixed : 1, 'x');
  return head + tail;
}

std::string Shape(const char* name) {
  std::ifstream in(std::string(TRIAGED_SOURCE_DIR) + "/tests/data/shapes/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void DecodeSpansOf(benchmark::State& state, const std::string& msg) {
  for (auto _ : state) {
    auto decoded = DecodeSpans(msg);
    if (!decoded.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}

void BM_DecodeNativeSpan(benchmark::State& state) {
  DecodeSpansOf(state, NativeSpan(1, static_cast<size_t>(state.range(0))));
}
BENCHMARK(BM_DecodeNativeSpan)->RangeMultiplier(4)->Range(256, 64 << 10);

void BM_DecodeOtlpSpan(benchmark::State& state) {
  DecodeSpansOf(state, OtlpSpan(static_cast<size_t>(state.range(0))));
}
BENCHMARK(BM_DecodeOtlpSpan)->RangeMultiplier(4)->Range(256, 64 << 10);

void BM_DecodeFeedback(benchmark::State& state, const char* file) {
  const std::string msg = Shape(file);
  for (auto _ : state) {
    auto decoded = DecodeFeedback(msg);
    if (!decoded.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}
BENCHMARK_CAPTURE(BM_DecodeFeedback, native, "native_feedback.json");
BENCHMARK_CAPTURE(BM_DecodeFeedback, thumbs, "thumbs.json");
BENCHMARK_CAPTURE(BM_DecodeFeedback, phoenix, "phoenix.json");
BENCHMARK_CAPTURE(BM_DecodeFeedback, langfuse, "langfuse.json");
BENCHMARK_CAPTURE(BM_DecodeFeedback, langsmith, "langsmith.json");
BENCHMARK_CAPTURE(BM_DecodeFeedback, otel_genai, "otel_eval.json");

void BM_SampleUnit(benchmark::State& state) {
  const std::string key = TraceId(1);
  const std::optional<std::string> salt;
  for (auto _ : state) benchmark::DoNotOptimize(SampleUnit(SampleHash(key, salt)));
}
BENCHMARK(BM_SampleUnit);

// A rule set of N rules (a mix of feedback, latency, error, model and content conditions).
std::shared_ptr<const Config> RuleSetOf(int n, const std::string& trace_yaml = "") {
  std::string yaml =
      trace_yaml +
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
  auto loaded = LoadConfigString(yaml, "bench.yaml");
  if (!loaded.ok()) {
    for (const auto& e : loaded.error()) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    std::abort();
  }
  return *std::move(loaded);
}

// A closed trace: a root span, four children, a thumbs-down and a judge score.
Trace SampleTrace() {
  Trace trace(TraceId(1));
  for (int s = 0; s < 5; ++s) {
    auto decoded = DecodeSpans(NativeSpan(1, 600, s, s == 0));
    for (Span& span : decoded.value().spans) trace.AddSpan(std::move(span));
  }
  for (const char* file : {"thumbs.json", "otel_eval.json"}) {
    auto decoded = DecodeFeedback(Shape(file));
    for (Annotation& a : decoded.value().annotations) trace.AddAnnotation(std::move(a));
  }
  return trace;
}

// Every rule's `when` on one trace; the counter is ns per rule per trace.
void BM_EvaluateRules(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  auto config = RuleSetOf(n);
  const Trace trace = SampleTrace();
  (void)trace.summary();
  int matched = 0;
  for (auto _ : state) {
    for (const RuleSpec& rule : config->rules->rules) matched += rule.when->Matches(trace);
  }
  benchmark::DoNotOptimize(matched);
  // Inverted rate of (rule evaluations / 1e9): nanoseconds per rule evaluation.
  state.counters["ns_per_rule"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * n / 1e9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_EvaluateRules)->RangeMultiplier(4)->Range(1, 1024);

// Adding one span to an engine that already holds N open traces (a new trace each time, then
// its second span): what trace assembly costs as the table grows.
void BM_TraceAssembly(benchmark::State& state) {
  const int64_t open = state.range(0);
  auto config = RuleSetOf(6,
                          "trace:\n  decision_wait: 24h\n  max_wait: 48h\n  root_grace: 24h\n"
                          "  max_open_traces: 4000000\n");
  Engine engine(config->rules);
  Outbox sink;
  const std::string first = NativeSpan(0, 600, 0, true);
  const std::string second = NativeSpan(0, 600, 1, false);
  auto message_for = [](const std::string& base, uint64_t trace) {
    std::string msg = base;
    msg.replace(msg.find(TraceId(0)), 32, TraceId(trace));
    return DecodeSpans(msg).value();
  };
  for (int64_t i = 0; i < open; ++i) {
    engine.Add(message_for(first, 1 + i), kStartNs, sink);
    sink.clear();
  }
  uint64_t next = static_cast<uint64_t>(open) + 1;
  for (auto _ : state) {
    state.PauseTiming();
    DecodedMessage a = message_for(first, next);
    DecodedMessage b = message_for(second, next);
    ++next;
    state.ResumeTiming();
    engine.Add(std::move(a), kStartNs, sink);
    engine.Add(std::move(b), kStartNs, sink);
    benchmark::DoNotOptimize(sink.routes.data());
    sink.clear();
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_TraceAssembly)->RangeMultiplier(10)->Range(1000, 1000000)->Iterations(20000);

// The routed item of a trace of N spans.
void BM_SerializeRoutedItem(benchmark::State& state) {
  auto config = RuleSetOf(1);
  Trace trace(TraceId(1));
  for (int s = 0; s < state.range(0); ++s) {
    DecodedMessage spans = DecodeSpans(NativeSpan(1, 600, static_cast<int>(s), s == 0)).value();
    for (Span& span : spans.spans) trace.AddSpan(std::move(span));
  }
  DecodedMessage thumbs = DecodeFeedback(Shape("thumbs.json")).value();
  for (Annotation& a : thumbs.annotations) trace.AddAnnotation(std::move(a));
  RoutedItem item;
  item.trace = &trace;
  item.rule = &config->rules->rules[0];
  item.destination = &config->rules->destinations[0];
  item.routed_at_ns = kStartNs;
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string json = SerializeRoutedItem(item);
    bytes += json.size();
    benchmark::DoNotOptimize(json);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_SerializeRoutedItem)->RangeMultiplier(4)->Range(1, 256);

// One trace (one span + one thumbs-down) through open, close and evaluation of N rules.
void BM_DecideTrace(benchmark::State& state) {
  auto config = RuleSetOf(static_cast<int>(state.range(0)));
  Engine engine(config->rules);
  Outbox sink(/*with_documents=*/false);  // the decision alone; serialization is measured above
  int64_t now = kStartNs;
  uint64_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    DecodedMessage span = DecodeSpans(NativeSpan(++i, 600)).value();
    state.ResumeTiming();
    engine.Add(std::move(span), now, sink);
    now += 20 * kNanosPerSecond;  // past decision_wait: the trace closes and is evaluated
    engine.Advance(now, sink);
    sink.clear();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideTrace)->RangeMultiplier(4)->Range(1, 1024);

}  // namespace
}  // namespace triaged

BENCHMARK_MAIN();
