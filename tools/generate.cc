#include "tools/generate.h"

#include <librdkafka/rdkafka.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <ostream>
#include <thread>
#include <variant>

#include "config/config.h"
#include "daemon/command_util.h"
#include "daemon/kafka_errors.h"
#include "daemon/log.h"
#include "rules/decode.h"
#include "tools/commands.h"

namespace triaged {

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

// SplitMix64: small, fast, and the same sequence on every platform and standard library
// (std::*_distribution are not), so a seed names one traffic everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)
  bool Chance(double p) { return Unit() < p; }
  int64_t Between(int64_t lo, int64_t hi) {  // [lo, hi]
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Next() % N];
  }
  std::string Hex(int bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    while (static_cast<int>(out.size()) < bytes * 2) {
      uint64_t v = Next();
      for (int i = 0; i < 16 && static_cast<int>(out.size()) < bytes * 2; ++i, v >>= 4) {
        out.push_back(kDigits[v & 0xF]);
      }
    }
    return out;
  }

 private:
  uint64_t state_;
};

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

constexpr const char* kQuestions[] = {
    "How do I rotate my API key?",
    "Why was I charged twice this month?",
    "Can I export my workspace to CSV?",
    "What is the refund policy for annual plans?",
    "How do I add a teammate to my organization?",
    "The dashboard shows no data since yesterday.",
    "Is there an SLA for the enterprise tier?",
    "How do I change the email on my account?",
    "Cancel my order #4411",
    "Where is my package? Order #7302",
};
constexpr const char* kAnswers[] = {
    "Go to Settings > API keys and click Rotate.",
    "The second charge is a pending authorization; it drops off within 3 days.",
    "Yes: Workspace > Export lets you download every table as CSV.",
    "Annual plans can be refunded pro rata within 30 days.",
    "Open Organization > Members and click Invite.",
    "Ingestion was paused by a billing hold; it resumes once the invoice is paid.",
    "Enterprise includes a 99.9% monthly uptime SLA.",
    "I could not reach the orders service.",
    "Your order was cancelled and refunded.",
    "Your package left the warehouse on Tuesday.",
};
constexpr const char* kModels[] = {"gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3.1-70b"};
constexpr const char* kTools[] = {"orders_api", "search_kb", "refund", "shipping_status"};
constexpr const char* kToolErrors[] = {"timeout calling orders-api", "HTTP 503 from refund",
                                       "tool returned malformed JSON"};

}  // namespace

// Builds the events of one trace. Probabilities are per trace; most traces get no feedback.
class TrafficGenerator::Builder {
 public:
  explicit Builder(uint64_t seed) : rng_(seed) {}

  std::vector<GeneratedEvent> Trace(int64_t start, TrafficCounts& counts) {
    std::vector<GeneratedEvent> events;
    trace_id_ = rng_.Hex(16);
    spans_.clear();
    spans_.reserve(8);  // at most 6 spans: references into spans_ stay valid while adding
    const double app = rng_.Unit();
    const std::string model = rng_.Pick(kModels);
    const size_t q = rng_.Next() % std::size(kQuestions);
    const std::string session = Session();
    const std::string user = "u-" + std::to_string(rng_.Between(1, 400));
    bool slow = rng_.Chance(0.08);
    bool llm_error = rng_.Chance(0.03);
    const int64_t retries = rng_.Chance(0.05) ? rng_.Between(1, 2) : 0;
    bool tool_failed = false;
    std::string service;
    std::string rag_llm_id;

    if (app < 0.5) {  // RAG support bot: CHAIN -> RETRIEVER, LLM
      service = "support-bot";
      GenSpan& root = Add("", "chat", start, "CHAIN");
      RootAttributes(root, session, user, q);
      int64_t t = start + rng_.Between(2, 20) * kMs;
      GenSpan& retr = Add(root.span_id, "retrieve docs", t, "RETRIEVER");
      retr.end = t + rng_.Between(80, 400) * kMs;
      retr.attributes.emplace_back("retrieval.documents.count", rng_.Between(1, 8));
      t = retr.end + rng_.Between(1, 10) * kMs;
      GenSpan& llm = Llm(root.span_id, "llm", t, model, slow, llm_error, retries);
      rag_llm_id = llm.span_id;
      root.end = llm.end + rng_.Between(2, 30) * kMs;
    } else if (app < 0.8) {  // agent: AGENT -> LLM plan, TOOL calls, LLM answer
      service = "orders-agent";
      GenSpan& root = Add("", "agent run", start, "AGENT");
      RootAttributes(root, session, user, 8 + rng_.Next() % 2);
      std::string root_id = root.span_id;
      int64_t t = start + rng_.Between(2, 20) * kMs;
      t = Llm(root_id, "plan", t, model, false, false, 0).end;
      const int64_t calls = rng_.Between(1, 3);
      for (int64_t i = 0; i < calls; ++i) {
        const std::string tool = rng_.Pick(kTools);
        // Half the tools are instrumented by the OTel GenAI conventions, half by OpenInference.
        const bool genai = rng_.Chance(0.5);
        GenSpan& call =
            Add(root_id, "tool " + tool, t + rng_.Between(1, 5) * kMs, genai ? "" : "TOOL");
        if (genai)
          call.attributes.emplace_back("gen_ai.operation.name", std::string("execute_tool"));
        call.attributes.emplace_back("tool.name", tool);
        call.end = call.start + rng_.Between(30, slow ? 6000 : 900) * kMs;
        if (rng_.Chance(0.10)) {
          call.error = true;
          call.status_message = rng_.Pick(kToolErrors);
          tool_failed = true;
        }
        t = call.end;
      }
      const int64_t answer_end =
          Llm(root_id, "answer", t + kMs, model, false, llm_error, retries).end;
      spans_[0].end = answer_end + rng_.Between(2, 30) * kMs;
      if (tool_failed) {
        spans_[0].error = true;
        spans_[0].status_message = "tool failed";
      }
    } else {  // summarizer: a single LLM span, GenAI semantic conventions only
      service = "summarizer";
      GenSpan& root = Llm("", "summarize", start, model, slow, llm_error, retries);
      root.attributes.emplace_back("gen_ai.prompt", std::string("Summarize: ") + kQuestions[q]);
      root.attributes.emplace_back("gen_ai.completion", std::string(kAnswers[q]));
      if (!session.empty()) root.attributes.emplace_back("gen_ai.conversation.id", session);
      root.attributes.emplace_back("enduser.id", user);
      root.attributes.emplace_back("llm.prompt_template.version", std::string("sum-3"));
    }
    const int64_t end = spans_[0].end;
    const bool bad = llm_error || tool_failed;
    const bool otlp = rng_.Chance(0.4);

    // Feedback, decided now, sent later.
    auto feedback = [&](int64_t at, std::string payload) {
      events.push_back(GeneratedEvent{at, true, trace_id_, std::move(payload)});
      ++counts.feedback_messages;
    };
    if (service != "summarizer" && rng_.Chance(0.2)) {  // thumbs from the end user
      const bool down = rng_.Chance(bad ? 0.7 : 0.25);
      const int64_t at = end + rng_.Between(2, 20) * kSec;
      feedback(at, rng_.Chance(0.5) ? Thumbs(down)
                                    : Native("thumbs", down ? 0 : 1, down ? "down" : "up",
                                             "end_user", "", at, ""));
      if (down && rng_.Chance(0.15)) {  // ... who then asks for a human
        const int64_t later = at + rng_.Between(20, 120) * kSec;
        feedback(later, Native("escalation", std::nan(""), "escalated", "support",
                               "Customer asked for a human.", later,
                               "ZD-" + std::to_string(rng_.Between(1000, 99999))));
      }
    }
    if (!rag_llm_id.empty() && rng_.Chance(0.4)) {  // faithfulness, by an LLM judge
      const double score = rng_.Chance(0.15) ? rng_.Unit() * 0.5 : 0.5 + rng_.Unit() * 0.5;
      const double rounded = std::round(score * 100) / 100;
      const std::string label = rounded < 0.5 ? "unfaithful" : "faithful";
      const std::string why = rounded < 0.5
                                  ? "The answer is not supported by the retrieved documents."
                                  : "Every claim is supported by a retrieved document.";
      const int64_t at = end + rng_.Between(500, 4000) * kMs;
      const double shape = rng_.Unit();
      if (otlp && shape < 0.3) {
        for (GenSpan& s : spans_) {
          if (s.span_id == rag_llm_id)
            s.evaluations.push_back({"faithfulness", label, why, rounded, at});
        }
      } else if (shape < 0.65) {
        feedback(at, GenAiEvaluation(rag_llm_id, "faithfulness", rounded, label, why));
      } else {
        feedback(at, Langfuse("faithfulness", rounded, "NUMERIC", "EVAL", why, at));
      }
    }
    if (rng_.Chance(0.06)) {  // correctness, by a LangSmith evaluator on the answering run
      const bool correct = !rng_.Chance(bad ? 0.6 : 0.3);
      const int64_t at = end + rng_.Between(1, 10) * kSec;
      feedback(at, LangSmith(correct, at));
    }
    if (rng_.Chance(0.04)) {  // hallucination, by a Phoenix reviewer or judge, often late
      const bool hallucinated = rng_.Chance(0.4);
      const int64_t at = end + rng_.Between(5, 90) * kSec;
      feedback(at, Phoenix(hallucinated, rng_.Chance(0.5) ? "HUMAN" : "LLM"));
    }
    if (rng_.Chance(0.03)) {  // helpfulness, by a Langfuse annotator
      const int64_t at = end + rng_.Between(10, 60) * kSec;
      feedback(at, Langfuse("helpfulness", rng_.Chance(0.3) ? 0 : 1, "CATEGORICAL", "ANNOTATION",
                            "", at));
    }

    // Spans are exported when the trace ends: one message per span (children first, as they
    // end first), or one OTLP request.
    if (otlp) {
      events.push_back(GeneratedEvent{end, false, trace_id_,
                                      OtlpRequest(trace_id_, spans_, service, rng_.Chance(0.5))});
      ++counts.span_messages;
    } else {
      for (size_t i = spans_.size(); i-- > 0;) {
        events.push_back(
            GeneratedEvent{spans_[i].end, false, trace_id_, NativeSpan(trace_id_, spans_[i])});
        ++counts.span_messages;
      }
    }
    counts.spans += spans_.size();
    ++counts.traces;
    return events;
  }

  // A malformed message of a kind real producers send.
  GeneratedEvent Invalid(int64_t at) {
    const std::string id = rng_.Hex(16);
    static constexpr const char* kKinds[] = {"not json",   "array",     "no trace id",
                                             "bad thumbs", "truncated", "wrong type"};
    const std::string kind = rng_.Pick(kKinds);
    GeneratedEvent e{at, rng_.Chance(0.5), id, ""};
    if (kind == "not json") e.payload = "this is not json";
    if (kind == "array") e.payload = "[1, 2, 3]";
    if (kind == "no trace id") e.payload = R"({"thumbs":"down"})";
    if (kind == "bad thumbs") e.payload = R"({"trace_id":")" + id + R"(","thumbs":"sideways"})";
    if (kind == "truncated") e.payload = R"({"trace_id":")" + id + R"(","span_id":"0a1b2c3d","na)";
    if (kind == "wrong type")
      e.payload = R"({"trace_id":")" + id + R"(","name":"thumbs","score":"zero"})";
    return e;
  }

 private:
  GenSpan& Add(const std::string& parent, const std::string& name, int64_t start,
               const std::string& kind) {
    GenSpan& s = spans_.emplace_back();
    s.span_id = rng_.Hex(8);
    s.parent_id = parent;
    s.name = name;
    s.start = start;
    s.end = start;
    if (!kind.empty()) s.attributes.emplace_back("openinference.span.kind", kind);
    return s;
  }

  GenSpan& Llm(const std::string& parent, const std::string& name, int64_t start,
               const std::string& model, bool slow, bool error, int64_t retries) {
    // OpenInference and the GenAI conventions name the same things differently.
    const bool openinference = rng_.Chance(0.5) && !parent.empty();
    GenSpan& s = Add(parent, name, start, openinference ? "LLM" : "");
    const int64_t in = rng_.Between(200, 4000), out = rng_.Between(20, 600);
    if (openinference) {
      s.attributes.emplace_back("llm.model_name", model);
      s.attributes.emplace_back("llm.token_count.prompt", in);
      s.attributes.emplace_back("llm.token_count.completion", out);
    } else {
      s.attributes.emplace_back("gen_ai.operation.name", std::string("chat"));
      s.attributes.emplace_back("gen_ai.request.model", model);
      s.attributes.emplace_back("gen_ai.usage.input_tokens", in);
      s.attributes.emplace_back("gen_ai.usage.output_tokens", out);
      s.attributes.emplace_back("gen_ai.request.temperature", 0.2);
    }
    s.end = start + (slow ? rng_.Between(5500, 20000) : rng_.Between(300, 2800)) * kMs;
    if (retries > 0) s.attributes.emplace_back("retry.count", retries);
    if (error) {
      s.error = true;
      s.status_message = "429 Too Many Requests: rate limit exceeded";
    }
    return s;
  }

  void RootAttributes(GenSpan& root, const std::string& session, const std::string& user,
                      size_t q) {
    if (!session.empty()) root.attributes.emplace_back("session.id", session);
    root.attributes.emplace_back("user.id", user);
    root.attributes.emplace_back("prompt.version", std::string(rng_.Chance(0.8) ? "v12" : "v13"));
    root.attributes.emplace_back("streaming", rng_.Chance(0.5));
    root.input = kQuestions[q];
    root.output = kAnswers[q];
  }

  // Most traces continue a recent conversation; some have no session at all.
  std::string Session() {
    if (rng_.Chance(0.1)) return "";
    if (sessions_.empty() || rng_.Chance(0.3)) {
      sessions_.push_back("sess-" + rng_.Hex(6));
      if (sessions_.size() > 64) sessions_.pop_front();
      return sessions_.back();
    }
    return sessions_[rng_.Next() % sessions_.size()];
  }

  std::string Thumbs(bool down) {
    return R"({"trace_id":")" + trace_id_ + R"(","thumbs":")" + (down ? "down" : "up") + "\"}";
  }

  std::string Native(const std::string& name, double score, const std::string& label,
                     const std::string& source, const std::string& explanation, int64_t at,
                     const std::string& ticket) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    Field(w, "trace_id", trace_id_);
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

  std::string GenAiEvaluation(const std::string& span_id, const std::string& name, double score,
                              const std::string& label, const std::string& why) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    Field(w, "trace_id", trace_id_);
    Field(w, "span_id", span_id);
    Field(w, "gen_ai.evaluation.name", name);
    w.Key("gen_ai.evaluation.score.value");
    w.Double(score);
    Field(w, "gen_ai.evaluation.score.label", label);
    Field(w, "gen_ai.evaluation.explanation", why);
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }

  std::string Langfuse(const std::string& name, double value, const std::string& type,
                       const std::string& source, const std::string& comment, int64_t at) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    Field(w, "id", "lf-" + rng_.Hex(6));
    Field(w, "traceId", trace_id_);
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

  std::string LangSmith(bool correct, int64_t at) {
    const GenSpan& run = spans_.back();  // the answering LLM call ended last
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    Field(w, "id", "ls-" + rng_.Hex(6));
    Field(w, "trace_id", trace_id_);
    Field(w, "run_id", run.span_id);
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

  std::string Phoenix(bool hallucinated, const std::string& annotator) {
    rapidjson::StringBuffer buf;
    Writer w(buf);
    w.StartObject();
    Field(w, "trace_id", trace_id_);
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

  Rng rng_;
  std::string trace_id_;
  std::vector<GenSpan> spans_;
  std::deque<std::string> sessions_;
};

TrafficGenerator::TrafficGenerator(const TrafficOptions& options)
    : options_(options),
      builder_(std::make_unique<Builder>(options.seed)),
      next_trace_ns_(options.start_ns) {}

TrafficGenerator::~TrafficGenerator() = default;

void TrafficGenerator::Push(GeneratedEvent event) {
  pending_.emplace(std::move(event), sequence_++);
}

void TrafficGenerator::StartTrace() {
  const int64_t start = next_trace_ns_;
  const uint64_t before = counts_.span_messages + counts_.feedback_messages;
  for (GeneratedEvent& e : builder_->Trace(start, counts_)) Push(std::move(e));
  uint64_t messages = counts_.span_messages + counts_.feedback_messages - before;
  if (options_.invalid_ratio > 0) {
    // About invalid_ratio of all messages: one per trace with the matching probability.
    Rng coin(options_.seed ^ (counts_.traces * 0x9E3779B97F4A7C15ULL));
    const double p = std::min(1.0, options_.invalid_ratio * static_cast<double>(messages));
    if (coin.Chance(p)) {
      Push(builder_->Invalid(start + 1));
      ++counts_.invalid;
      ++messages;
    }
  }
  // Each trace takes its share of the rate, so the message rate is the one asked for.
  next_trace_ns_ =
      start + static_cast<int64_t>(static_cast<double>(messages) / options_.rate * 1e9);
}

int64_t TrafficGenerator::PeekTime() {
  if (!finished_ && (pending_.empty() || next_trace_ns_ <= pending_.top().first.time_ns)) {
    return next_trace_ns_;
  }
  return pending_.empty() ? next_trace_ns_ : pending_.top().first.time_ns;
}

bool TrafficGenerator::Next(GeneratedEvent& out) {
  while (!finished_ && (pending_.empty() || next_trace_ns_ <= pending_.top().first.time_ns)) {
    StartTrace();
  }
  if (pending_.empty()) return false;
  out = pending_.top().first;
  pending_.pop();
  return true;
}

// ---- the command ----

namespace {

std::string Envelope(const std::string& topic, const GeneratedEvent& e) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Field(w, "topic", topic);
  w.Key("ts");
  w.Int64(e.time_ns / kMs);
  Field(w, "key", e.key);
  Field(w, "payload", e.payload);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

struct ProducerStats {
  uint64_t delivered = 0, failed = 0;
  std::string last_error;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* stats = static_cast<ProducerStats*>(opaque);
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++stats->delivered;
  } else {
    ++stats->failed;
    stats->last_error = rd_kafka_err2str(msg->err);
  }
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int RunGenerate(const GenerateOptions& options, std::ostream& out, std::ostream& err) {
  if (!(options.rate > 0) || options.invalid_ratio < 0 || options.invalid_ratio > 1) {
    err << "generate: --rate must be > 0 and --invalid between 0 and 1\n";
    return kExitUsage;
  }
  if (options.duration_ns <= 0 && options.max_events == 0) {
    err << "generate: give --duration or --events (or both)\n";
    return kExitUsage;
  }
  GenerateOptions o = options;
  std::map<std::string, std::string> properties;
  if (!o.config_path.empty()) {
    std::shared_ptr<const Config> config = LoadConfigOrReport(o.config_path, err);
    if (!config) return kExitConfig;
    o.spans_topic = config->inputs.spans_topic;
    o.feedback_topic = config->inputs.feedback_topic;
    if (o.bootstrap.empty()) o.bootstrap = config->kafka.bootstrap_servers;
    properties = config->kafka.properties;
  }
  if (o.bootstrap.empty()) {
    if (const char* env = std::getenv("KAFKA_BOOTSTRAP")) o.bootstrap = env;
  }
  const bool to_file = !o.out_path.empty();
  if (!to_file && (o.bootstrap.empty() || o.bootstrap == "embedded")) {
    err << "generate: no broker: give -b HOST:PORT (a daemon on the embedded broker logs its "
           "address as \"embedded broker listening\"), or --out FILE\n";
    return kExitUsage;
  }

  TrafficOptions traffic;
  traffic.seed = o.seed;
  traffic.rate = o.rate;
  traffic.start_ns = o.start_ns != 0 ? o.start_ns : NowNs();
  traffic.invalid_ratio = o.invalid_ratio;
  TrafficGenerator gen(traffic);
  const int64_t stop_at = o.duration_ns > 0 ? traffic.start_ns + o.duration_ns : INT64_MAX;
  uint64_t emitted = 0;
  // Stops starting traces at the duration or the event budget; in-flight traces complete.
  auto next = [&](GeneratedEvent& e) {
    if (gen.PeekTime() >= stop_at || (o.max_events > 0 && emitted >= o.max_events)) gen.Finish();
    if (!gen.Next(e)) return false;
    ++emitted;
    return true;
  };

  const auto began = std::chrono::steady_clock::now();
  if (to_file) {
    std::ofstream file;
    std::ostream* sink = &out;
    if (o.out_path != "-") {
      file.open(o.out_path, std::ios::binary | std::ios::trunc);
      if (!file) {
        err << "generate: cannot write " << o.out_path << "\n";
        return kExitNoInput;
      }
      sink = &file;
    }
    GeneratedEvent e;
    while (next(e)) {
      *sink << Envelope(e.feedback ? o.feedback_topic : o.spans_topic, e) << '\n';
    }
    sink->flush();
  } else {
    // Stop on SIGTERM/SIGINT: flush what was produced, report, exit 0.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    ProducerStats stats;
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char errstr[512];
    std::vector<std::pair<std::string, std::string>> settings = {
        {"bootstrap.servers", o.bootstrap},
        {"client.id", "triaged-generate"},
        {"enable.idempotence", "true"},
        {"linger.ms", "10"},
        // Java clients' partitioner, so co-partitioning matches what JVM producers would do.
        {"partitioner", "murmur2_random"}};
    for (const auto& kv : properties) settings.push_back(kv);
    for (const auto& [key, value] : settings) {
      if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        err << "generate: " << key << ": " << errstr << "\n";
        rd_kafka_conf_destroy(conf);
        return kExitUsage;
      }
    }
    RememberSecrets(properties);
    LogKafkaClientAsJson(conf);
    rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
    rd_kafka_conf_set_opaque(conf, &stats);
    rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (producer == nullptr) {
      err << "generate: " << errstr << "\n";
      return kExitUsage;
    }
    // Fail fast when nothing answers, rather than queueing forever.
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(producer, 0, nullptr, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      err << "generate: cannot reach the broker at " << o.bootstrap << "\n";
      rd_kafka_destroy(producer);
      return 69;  // EX_UNAVAILABLE
    }
    rd_kafka_metadata_destroy(md);
    log::Info("generating", {{"bootstrap", o.bootstrap},
                             {"spans_topic", o.spans_topic},
                             {"feedback_topic", o.feedback_topic},
                             {"rate", o.burst ? "burst" : std::to_string(o.rate)}});
    const timespec no_wait{0, 0};
    const int64_t wall0 = NowNs();
    GeneratedEvent e;
    bool stopped = false;
    while (!stopped && next(e)) {
      if (!o.burst && !gen.finished()) {
        // Paced in real time: an event goes out when its event time comes. Once no new traces
        // start, the feedback still pending goes out at once.
        const int64_t due = wall0 + (e.time_ns - traffic.start_ns);
        for (int64_t left = due - NowNs(); left > 0 && !stopped; left = due - NowNs()) {
          stopped = sigtimedwait(&signals, nullptr, &no_wait) > 0;
          rd_kafka_poll(producer, static_cast<int>(std::min<int64_t>(left / kMs + 1, 100)));
        }
        if (stopped) break;
      } else if ((emitted & 1023) == 0 && sigtimedwait(&signals, nullptr, &no_wait) > 0) {
        break;
      }
      const std::string& topic = e.feedback ? o.feedback_topic : o.spans_topic;
      while (true) {
        const rd_kafka_resp_err_t r = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(e.key.data(), e.key.size()),
            RD_KAFKA_V_VALUE(e.payload.data(), e.payload.size()),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (r == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (r != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          ++stats.failed;
          stats.last_error = rd_kafka_err2str(r);
          break;
        }
        rd_kafka_poll(producer, 50);  // backpressure: wait for deliveries
      }
      rd_kafka_poll(producer, 0);
    }
    rd_kafka_flush(producer, 30000);
    const int unsent = rd_kafka_outq_len(producer);
    rd_kafka_destroy(producer);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    const TrafficCounts& c = gen.counts();
    log::Info("generated",
              {{"traces", std::to_string(c.traces)},
               {"span_messages", std::to_string(c.span_messages)},
               {"spans", std::to_string(c.spans)},
               {"feedback_messages", std::to_string(c.feedback_messages)},
               {"invalid_messages", std::to_string(c.invalid)},
               {"delivered", std::to_string(stats.delivered)},
               {"failed", std::to_string(stats.failed + static_cast<uint64_t>(unsent))},
               {"seconds", std::to_string(secs)},
               {"messages_per_second",
                std::to_string(static_cast<double>(stats.delivered) / std::max(secs, 1e-9))}});
    if (stats.failed > 0 || unsent > 0) {
      log::Error("delivery failed",
                 {{"error", stats.last_error.empty() ? "timed out" : stats.last_error}});
      return kExitFailure;
    }
    return kExitOk;
  }
  const TrafficCounts& c = gen.counts();
  log::Info("generated", {{"traces", std::to_string(c.traces)},
                          {"span_messages", std::to_string(c.span_messages)},
                          {"spans", std::to_string(c.spans)},
                          {"feedback_messages", std::to_string(c.feedback_messages)},
                          {"invalid_messages", std::to_string(c.invalid)},
                          {"file", o.out_path}});
  return kExitOk;
}

}  // namespace triaged
