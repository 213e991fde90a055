#include "rules/event.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace triaged {
namespace {

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

namespace {

// The attribute names the canonical fields come from (DESIGN §1.1), each field's in the order it
// prefers them.
enum Name : uint8_t {
  kRequestModel,
  kResponseModel,
  kModelName,
  kUsageInputTokens,
  kTokenCountPrompt,
  kUsageOutputTokens,
  kTokenCountCompletion,
  kInputValue,
  kGenAiPrompt,
  kOutputValue,
  kGenAiCompletion,
  kSessionId,
  kConversationId,
  kUserId,
  kEnduserId,
  kPromptVersion,
  kPromptTemplateVersion,
  kRetryCount,
  kResendCount,
  kSpanKind,
  kOperationName,
  kNames
};
constexpr std::string_view kNameText[kNames] = {"gen_ai.request.model",
                                                "gen_ai.response.model",
                                                "llm.model_name",
                                                "gen_ai.usage.input_tokens",
                                                "llm.token_count.prompt",
                                                "gen_ai.usage.output_tokens",
                                                "llm.token_count.completion",
                                                "input.value",
                                                "gen_ai.prompt",
                                                "output.value",
                                                "gen_ai.completion",
                                                "session.id",
                                                "gen_ai.conversation.id",
                                                "user.id",
                                                "enduser.id",
                                                "prompt.version",
                                                "llm.prompt_template.version",
                                                "retry.count",
                                                "http.request.resend_count",
                                                "openinference.span.kind",
                                                "gen_ai.operation.name"};

// Which of the names `key` is, or kNames: the names of its length compared, not all of them.
Name NameOf(std::string_view key) {
  constexpr size_t kMaxLength =
      std::max_element(std::begin(kNameText), std::end(kNameText), [](auto x, auto y) {
        return x.size() < y.size();
      })->size();
  static const auto by_length = [] {
    std::array<std::vector<Name>, kMaxLength + 1> t;
    for (uint8_t n = 0; n < kNames; ++n) t[kNameText[n].size()].push_back(static_cast<Name>(n));
    return t;
  }();
  if (key.size() > kMaxLength) return kNames;
  for (Name n : by_length[key.size()]) {
    if (kNameText[n] == key) return n;
  }
  return kNames;
}

}  // namespace

void ApplyCanonicalMapping(Span& span) {
  const Attributes& a = span.attributes;
  // The first attribute of each name, found in one pass (FindAttr finds the first one too).
  const AttrValue* first[kNames] = {};
  for (const auto& [key, value] : a) {
    if (const Name n = NameOf(key); n != kNames && first[n] == nullptr) first[n] = &value;
  }
  // The first of `names` present and not null.
  auto first_of = [&first](std::initializer_list<Name> names) -> const AttrValue* {
    for (Name n : names) {
      if (first[n] != nullptr && first[n]->kind != AttrValue::Kind::kNull) return first[n];
    }
    return nullptr;
  };
  span.model = AsText(first_of({kRequestModel, kResponseModel, kModelName}));
  span.input_tokens = AsNumber(first_of({kUsageInputTokens, kTokenCountPrompt}));
  span.output_tokens = AsNumber(first_of({kUsageOutputTokens, kTokenCountCompletion}));
  if (!span.input) span.input = AsText(first_of({kInputValue, kGenAiPrompt}));
  if (!span.output) span.output = AsText(first_of({kOutputValue, kGenAiCompletion}));
  span.session_id = AsText(first_of({kSessionId, kConversationId}));
  span.user_id = AsText(first_of({kUserId, kEnduserId}));
  span.prompt_version = AsText(first_of({kPromptVersion, kPromptTemplateVersion}));
  span.retry_count = AsNumber(first_of({kRetryCount, kResendCount}));

  // Span kind: OpenInference first, then the GenAI operation name, else the native kind.
  if (auto k = AsText(first_of({kSpanKind}))) {
    span.kind = *k;
  } else if (auto op = AsText(first_of({kOperationName}))) {
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
