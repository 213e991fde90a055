// The message shapes `triaged generate` writes (DESIGN §1): spans as native JSON, one message
// per span, or as one OTLP/JSON ExportTraceServiceRequest per trace; feedback as thumbs, native
// annotations, OTel GenAI evaluation results, Langfuse scores, LangSmith feedback and Phoenix
// annotations. Formatting only: what goes into them is the traffic model's (generate_traffic.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace triaged::gen {

using AttrValue = std::variant<std::string, int64_t, double, bool>;

struct GenSpan {
  std::string span_id, parent_id, name;
  int64_t start = 0, end = 0;
  bool error = false;
  std::string status_message;
  std::vector<std::pair<std::string, AttrValue>> attributes;
  std::string input, output;  // native fields; OTLP carries them as input.value / output.value
  // An OTel GenAI evaluation carried as a span event (OTLP only): name, score, label, why.
  struct Evaluation {
    std::string name, label, explanation;
    double score = 0;
    int64_t time = 0;
  };
  std::vector<Evaluation> evaluations;
};

// A native span message: ids, times, status, attributes, input and output.
std::string NativeSpan(const std::string& trace_id, const GenSpan& s);

// One ExportTraceServiceRequest holding every span of a trace, as the OpenTelemetry
// Collector's Kafka exporter writes it; some SDKs write ids in upper case (`upper_ids`).
std::string OtlpRequest(const std::string& trace_id, const std::vector<GenSpan>& spans,
                        const std::string& service, bool upper_ids);

// {"trace_id": ..., "thumbs": "up" | "down"}
std::string Thumbs(const std::string& trace_id, bool down);

// A native annotation; a NaN `score` is written as null, an empty `explanation` or `ticket` is
// left out. `at` is the annotation's timestamp.
std::string NativeAnnotation(const std::string& trace_id, const std::string& name, double score,
                             const std::string& label, const std::string& source,
                             const std::string& explanation, int64_t at, const std::string& ticket);

// An OTel GenAI evaluation result sent as its own message, on one span.
std::string GenAiEvaluation(const std::string& trace_id, const std::string& span_id,
                            const std::string& name, double score, const std::string& label,
                            const std::string& why);

// A Langfuse score; `type` CATEGORICAL writes the value as helpful/unhelpful, else as a number.
std::string LangfuseScore(const std::string& id, const std::string& trace_id,
                          const std::string& name, double value, const std::string& type,
                          const std::string& source, const std::string& comment, int64_t at);

// LangSmith correctness feedback by a model evaluator on run `run_id`.
std::string LangSmithFeedback(const std::string& id, const std::string& trace_id,
                              const std::string& run_id, bool correct, int64_t at);

// A Phoenix hallucination annotation by `annotator` (HUMAN or LLM).
std::string PhoenixAnnotation(const std::string& trace_id, bool hallucinated,
                              const std::string& annotator);

}  // namespace triaged::gen
