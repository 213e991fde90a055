#include "rules/event.h"

#include <cmath>
#include <initializer_list>
#include <string_view>

namespace triaged {
namespace {

const AttrValue* FirstOf(const Attributes& attrs, std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) {
    if (const AttrValue* v = FindAttr(attrs, key);
        v != nullptr && v->kind != AttrValue::Kind::kNull) {
      return v;
    }
  }
  return nullptr;
}

// Attribute as text: strings as they are, numbers and bools rendered, arrays skipped.
std::optional<std::string> AsText(const AttrValue* v) {
  if (v == nullptr) return std::nullopt;
  switch (v->kind) {
    case AttrValue::Kind::kString: return v->s;
    case AttrValue::Kind::kNumber: {
      std::string s = std::to_string(v->n);
      // Integral values within long long print without a fraction (a cast from outside that
      // range, e.g. an int64 attribute near its maximum read as a double, is undefined).
      if (v->n == std::trunc(v->n) && v->n >= -0x1p63 && v->n < 0x1p63) {
        s = std::to_string(static_cast<long long>(v->n));
      }
      return s;
    }
    case AttrValue::Kind::kBool: return std::string(v->b ? "true" : "false");
    default: return std::nullopt;
  }
}

// Attribute as a number: numbers, and strings holding a number (OTLP int64 may be a string).
std::optional<double> AsNumber(const AttrValue* v) {
  if (v == nullptr) return std::nullopt;
  if (v->kind == AttrValue::Kind::kNumber) return v->n;
  if (v->kind == AttrValue::Kind::kString && !v->s.empty()) {
    char* end = nullptr;
    double d = std::strtod(v->s.c_str(), &end);
    if (end == v->s.c_str() + v->s.size()) return d;
  }
  return std::nullopt;
}

std::string KindFromOperation(std::string_view op) {
  if (op == "chat" || op == "text_completion" || op == "generate_content") return "LLM";
  if (op == "execute_tool") return "TOOL";
  if (op == "embeddings") return "EMBEDDING";
  if (op == "invoke_agent") return "AGENT";
  return "";
}

}  // namespace

const AttrValue* FindAttr(const Attributes& attrs, std::string_view key) {
  for (const auto& [k, v] : attrs) {
    if (k == key) return &v;
  }
  return nullptr;
}

void ApplyCanonicalMapping(Span& span) {
  const Attributes& a = span.attributes;
  span.model =
      AsText(FirstOf(a, {"gen_ai.request.model", "gen_ai.response.model", "llm.model_name"}));
  span.input_tokens = AsNumber(FirstOf(a, {"gen_ai.usage.input_tokens", "llm.token_count.prompt"}));
  span.output_tokens =
      AsNumber(FirstOf(a, {"gen_ai.usage.output_tokens", "llm.token_count.completion"}));
  if (!span.input) span.input = AsText(FirstOf(a, {"input.value", "gen_ai.prompt"}));
  if (!span.output) span.output = AsText(FirstOf(a, {"output.value", "gen_ai.completion"}));
  span.session_id = AsText(FirstOf(a, {"session.id", "gen_ai.conversation.id"}));
  span.user_id = AsText(FirstOf(a, {"user.id", "enduser.id"}));
  span.prompt_version = AsText(FirstOf(a, {"prompt.version", "llm.prompt_template.version"}));
  span.retry_count = AsNumber(FirstOf(a, {"retry.count", "http.request.resend_count"}));

  // Span kind: OpenInference first, then the GenAI operation name, else the native kind.
  if (auto k = AsText(FirstOf(a, {"openinference.span.kind"}))) {
    span.kind = *k;
  } else if (auto op = AsText(FirstOf(a, {"gen_ai.operation.name"}))) {
    std::string mapped = KindFromOperation(*op);
    if (!mapped.empty()) span.kind = mapped;
  }
}

namespace {

void LaterEventTime(DecodedMessage& msg, std::optional<int64_t> t) {
  if (t && (!msg.event_time_ns || *t > *msg.event_time_ns)) msg.event_time_ns = t;
}

}  // namespace

void AddEventTime(DecodedMessage& msg, const Span& span) {
  LaterEventTime(msg, span.end_ns ? span.end_ns : span.start_ns);
}

void AddEventTime(DecodedMessage& msg, const Annotation& annotation) {
  LaterEventTime(msg, annotation.timestamp_ns);
}

}  // namespace triaged
