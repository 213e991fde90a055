#include "tools/generate_traffic.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <deque>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "tools/generate_shapes.h"

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
      gen::GenSpan& root = Add("", "chat", start, "CHAIN");
      RootAttributes(root, session, user, q);
      int64_t t = start + rng_.Between(2, 20) * kMs;
      gen::GenSpan& retr = Add(root.span_id, "retrieve docs", t, "RETRIEVER");
      retr.end = t + rng_.Between(80, 400) * kMs;
      retr.attributes.emplace_back("retrieval.documents.count", rng_.Between(1, 8));
      t = retr.end + rng_.Between(1, 10) * kMs;
      gen::GenSpan& llm = Llm(root.span_id, "llm", t, model, slow, llm_error, retries);
      rag_llm_id = llm.span_id;
      root.end = llm.end + rng_.Between(2, 30) * kMs;
    } else if (app < 0.8) {  // agent: AGENT -> LLM plan, TOOL calls, LLM answer
      service = "orders-agent";
      gen::GenSpan& root = Add("", "agent run", start, "AGENT");
      RootAttributes(root, session, user, 8 + rng_.Next() % 2);
      std::string root_id = root.span_id;
      int64_t t = start + rng_.Between(2, 20) * kMs;
      t = Llm(root_id, "plan", t, model, false, false, 0).end;
      const int64_t calls = rng_.Between(1, 3);
      for (int64_t i = 0; i < calls; ++i) {
        const std::string tool = rng_.Pick(kTools);
        // Half the tools are instrumented by the OTel GenAI conventions, half by OpenInference.
        const bool genai = rng_.Chance(0.5);
        gen::GenSpan& call =
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
      gen::GenSpan& root = Llm("", "summarize", start, model, slow, llm_error, retries);
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
      feedback(at, rng_.Chance(0.5)
                       ? gen::Thumbs(trace_id_, down)
                       : gen::NativeAnnotation(trace_id_, "thumbs", down ? 0 : 1,
                                               down ? "down" : "up", "end_user", "", at, ""));
      if (down && rng_.Chance(0.15)) {  // ... who then asks for a human
        const int64_t later = at + rng_.Between(20, 120) * kSec;
        feedback(later, gen::NativeAnnotation(trace_id_, "escalation", std::nan(""), "escalated",
                                              "support", "Customer asked for a human.", later,
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
        for (gen::GenSpan& s : spans_) {
          if (s.span_id == rag_llm_id)
            s.evaluations.push_back({"faithfulness", label, why, rounded, at});
        }
      } else if (shape < 0.65) {
        feedback(at,
                 gen::GenAiEvaluation(trace_id_, rag_llm_id, "faithfulness", rounded, label, why));
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
      feedback(at,
               gen::PhoenixAnnotation(trace_id_, hallucinated, rng_.Chance(0.5) ? "HUMAN" : "LLM"));
    }
    if (rng_.Chance(0.03)) {  // helpfulness, by a Langfuse annotator
      const int64_t at = end + rng_.Between(10, 60) * kSec;
      feedback(at, Langfuse("helpfulness", rng_.Chance(0.3) ? 0 : 1, "CATEGORICAL", "ANNOTATION",
                            "", at));
    }

    // Spans are exported when the trace ends: one message per span (children first, as they
    // end first), or one OTLP request.
    if (otlp) {
      events.push_back(GeneratedEvent{
          end, false, trace_id_, gen::OtlpRequest(trace_id_, spans_, service, rng_.Chance(0.5))});
      ++counts.span_messages;
    } else {
      for (size_t i = spans_.size(); i-- > 0;) {
        events.push_back(
            GeneratedEvent{spans_[i].end, false, trace_id_, gen::NativeSpan(trace_id_, spans_[i])});
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
    if (kind == "no trace id") {
      // Keyed by something that is not a trace id either (a key that is one would join it).
      e.payload = R"({"thumbs":"down"})";
      e.key = "user-" + id.substr(0, 8);
    }
    if (kind == "bad thumbs") e.payload = R"({"trace_id":")" + id + R"(","thumbs":"sideways"})";
    if (kind == "truncated") e.payload = R"({"trace_id":")" + id + R"(","span_id":"0a1b2c3d","na)";
    if (kind == "wrong type")
      e.payload = R"({"trace_id":")" + id + R"(","name":"thumbs","score":"zero"})";
    return e;
  }

 private:
  gen::GenSpan& Add(const std::string& parent, const std::string& name, int64_t start,
                    const std::string& kind) {
    gen::GenSpan& s = spans_.emplace_back();
    s.span_id = rng_.Hex(8);
    s.parent_id = parent;
    s.name = name;
    s.start = start;
    s.end = start;
    if (!kind.empty()) s.attributes.emplace_back("openinference.span.kind", kind);
    return s;
  }

  gen::GenSpan& Llm(const std::string& parent, const std::string& name, int64_t start,
                    const std::string& model, bool slow, bool error, int64_t retries) {
    // OpenInference and the GenAI conventions name the same things differently.
    const bool openinference = rng_.Chance(0.5) && !parent.empty();
    gen::GenSpan& s = Add(parent, name, start, openinference ? "LLM" : "");
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

  void RootAttributes(gen::GenSpan& root, const std::string& session, const std::string& user,
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

  // Langfuse and LangSmith give each feedback an id of their own, drawn here.
  std::string Langfuse(const std::string& name, double value, const std::string& type,
                       const std::string& source, const std::string& comment, int64_t at) {
    return gen::LangfuseScore("lf-" + rng_.Hex(6), trace_id_, name, value, type, source, comment,
                              at);
  }

  // On the answering LLM call, which ended last.
  std::string LangSmith(bool correct, int64_t at) {
    return gen::LangSmithFeedback("ls-" + rng_.Hex(6), trace_id_, spans_.back().span_id, correct,
                                  at);
  }

  Rng rng_;
  std::string trace_id_;
  std::vector<gen::GenSpan> spans_;
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

}  // namespace triaged
