#include "tools/generate_shapes.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <cmath>
#include <string_view>
#include <type_traits>

#include "rules/decode.h"

namespace triaged::gen {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void Field(Writer& w, const char* key, std::string_view value) {
  w.Key(key);
  Str(w, value);
}

// "key": "value", left out when the value is empty.
void OptionalField(Writer& w, const char* key, std::string_view value) {
  if (value.empty()) return;
  w.Key(key);
  Str(w, value);
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

void OtlpValue(Writer& w, const AttrValue& value) {
  w.StartObject();
  std::visit(
      [&w](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          Field(w, "stringValue", v);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          w.Key("intValue");  // 64-bit integers are strings in OTLP/JSON
          w.String(std::to_string(v).c_str());
        } else if constexpr (std::is_same_v<T, double>) {
          w.Key("doubleValue");
          w.Double(v);
        } else {
          w.Key("boolValue");
          w.Bool(v);
        }
      },
      value);
  w.EndObject();
}

void OtlpAttribute(Writer& w, std::string_view key, const AttrValue& value) {
  w.StartObject();
  Field(w, "key", key);
  w.Key("value");
  OtlpValue(w, value);
  w.EndObject();
}

}  // namespace

std::string NativeSpan(const std::string& trace_id, const GenSpan& s) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Field(w, "trace_id", trace_id);
  Field(w, "span_id", s.span_id);
  w.Key("parent_span_id");
  if (s.parent_id.empty()) {
    w.Null();
  } else {
    Str(w, s.parent_id);
  }
  Field(w, "name", s.name);
  w.Key("start_time_unix_nano");
  w.Int64(s.start);
  w.Key("end_time_unix_nano");
  w.Int64(s.end);
  w.Key("status");
  w.String(s.error ? "error" : "ok");
  OptionalField(w, "status_message", s.status_message);
  w.Key("attributes");
  w.StartObject();
  for (const auto& [key, value] : s.attributes) {
    w.Key(key.c_str());
    std::visit(
        [&w](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>) {
            Str(w, v);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            w.Int64(v);
          } else if constexpr (std::is_same_v<T, double>) {
            w.Double(v);
          } else {
            w.Bool(v);
          }
        },
        value);
  }
  w.EndObject();
  OptionalField(w, "input", s.input);
  OptionalField(w, "output", s.output);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// One ExportTraceServiceRequest holding every span of a trace, as the OpenTelemetry
// Collector's Kafka exporter writes it; some SDKs write ids in upper case.
std::string OtlpRequest(const std::string& trace_id, const std::vector<GenSpan>& spans,
                        const std::string& service, bool upper_ids) {
  auto id = [upper_ids](const std::string& s) { return upper_ids ? Upper(s) : s; };
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("resourceSpans");
  w.StartArray();
  w.StartObject();
  w.Key("resource");
  w.StartObject();
  w.Key("attributes");
  w.StartArray();
  OtlpAttribute(w, "service.name", service);
  OtlpAttribute(w, "deployment.environment", std::string("prod"));
  w.EndArray();
  w.EndObject();
  w.Key("scopeSpans");
  w.StartArray();
  w.StartObject();
  w.Key("scope");
  w.StartObject();
  w.Key("name");
  w.String("openinference.instrumentation.langchain");
  w.EndObject();
  w.Key("spans");
  w.StartArray();
  for (const GenSpan& s : spans) {
    w.StartObject();
    Field(w, "traceId", id(trace_id));
    Field(w, "spanId", id(s.span_id));
    Field(w, "parentSpanId", id(s.parent_id));
    Field(w, "name", s.name);
    w.Key("kind");
    w.Int(s.parent_id.empty() ? 2 : 1);
    w.Key("startTimeUnixNano");
    w.String(std::to_string(s.start).c_str());
    w.Key("endTimeUnixNano");
    w.String(std::to_string(s.end).c_str());
    w.Key("attributes");
    w.StartArray();
    for (const auto& [key, value] : s.attributes) OtlpAttribute(w, key, value);
    if (!s.input.empty()) OtlpAttribute(w, "input.value", s.input);
    if (!s.output.empty()) OtlpAttribute(w, "output.value", s.output);
    w.EndArray();
    w.Key("status");
    w.StartObject();
    w.Key("code");
    w.Int(s.error ? 2 : 1);
    OptionalField(w, "message", s.status_message);
    w.EndObject();
    if (!s.evaluations.empty()) {
      w.Key("events");
      w.StartArray();
      for (const GenSpan::Evaluation& e : s.evaluations) {
        w.StartObject();
        w.Key("name");
        w.String("gen_ai.evaluation.result");
        w.Key("timeUnixNano");
        w.String(std::to_string(e.time).c_str());
        w.Key("attributes");
        w.StartArray();
        OtlpAttribute(w, "gen_ai.evaluation.name", e.name);
        OtlpAttribute(w, "gen_ai.evaluation.score.value", e.score);
        OtlpAttribute(w, "gen_ai.evaluation.score.label", e.label);
        OtlpAttribute(w, "gen_ai.evaluation.explanation", e.explanation);
        w.EndArray();
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string Thumbs(const std::string& trace_id, bool down) {
  return R"({"trace_id":")" + trace_id + R"(","thumbs":")" + (down ? "down" : "up") + "\"}";
}

std::string NativeAnnotation(const std::string& trace_id, const std::string& name, double score,
                             const std::string& label, const std::string& source,
                             const std::string& explanation, int64_t at,
                             const std::string& ticket) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Field(w, "trace_id", trace_id);
  Field(w, "name", name);
  w.Key("score");
  if (std::isnan(score)) {
    w.Null();
  } else {
    w.Double(score);
  }
  Field(w, "label", label);
  OptionalField(w, "explanation", explanation);
  Field(w, "source", source);
  w.Key("metadata");
  w.StartObject();
  OptionalField(w, "ticket", ticket);
  w.EndObject();
  Field(w, "timestamp", FormatRfc3339(at));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string GenAiEvaluation(const std::string& trace_id, const std::string& span_id,
                            const std::string& name, double score, const std::string& label,
                            const std::string& why) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Field(w, "trace_id", trace_id);
  Field(w, "span_id", span_id);
  Field(w, "gen_ai.evaluation.name", name);
  w.Key("gen_ai.evaluation.score.value");
  w.Double(score);
  Field(w, "gen_ai.evaluation.score.label", label);
  Field(w, "gen_ai.evaluation.explanation", why);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string LangfuseScore(const std::string& id, const std::string& trace_id,
                          const std::string& name, double value, const std::string& type,
                          const std::string& source, const std::string& comment, int64_t at) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Field(w, "id", id);
  Field(w, "traceId", trace_id);
  w.Key("observationId");
  w.Null();
  Field(w, "name", name);
  w.Key("value");
  if (type == "CATEGORICAL") {
    w.String(value > 0 ? "helpful" : "unhelpful");
  } else {
    w.Double(value);
  }
  Field(w, "dataType", type);
  OptionalField(w, "comment", comment);
  Field(w, "source", source);
  Field(w, "timestamp", FormatRfc3339(at));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string LangSmithFeedback(const std::string& id, const std::string& trace_id,
                              const std::string& run_id, bool correct, int64_t at) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Field(w, "id", id);
  Field(w, "trace_id", trace_id);
  Field(w, "run_id", run_id);
  w.Key("key");
  w.String("correctness");
  w.Key("score");
  w.Int(correct ? 1 : 0);
  w.Key("value");
  w.String(correct ? "correct" : "incorrect");
  if (!correct) {
    w.Key("comment");
    w.String("The answer contradicts the reference.");
  }
  w.Key("feedback_source");
  w.StartObject();
  w.Key("type");
  w.String("model");
  w.EndObject();
  w.Key("created_at");
  // LangSmith writes UTC timestamps without an offset.
  std::string ts = FormatRfc3339(at);
  if (!ts.empty() && ts.back() == 'Z') ts.pop_back();
  Str(w, ts);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string PhoenixAnnotation(const std::string& trace_id, bool hallucinated,
                              const std::string& annotator) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Field(w, "trace_id", trace_id);
  w.Key("name");
  w.String("hallucination");
  Field(w, "annotator_kind", annotator);
  w.Key("result");
  w.StartObject();
  w.Key("label");
  w.String(hallucinated ? "hallucinated" : "factual");
  w.Key("score");
  w.Int(hallucinated ? 1 : 0);
  w.Key("explanation");
  w.String(hallucinated ? "States a policy that is not in the documents." : "Grounded.");
  w.EndObject();
  w.Key("metadata");
  w.StartObject();
  w.Key("queue");
  w.String("weekly-audit");
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace triaged::gen
