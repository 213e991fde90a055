#include "rules/decode_common.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <utility>

namespace triaged::decode {
namespace {

constexpr int64_t kMinTimeNs = 946'684'800LL * 1'000'000'000;    // 2000-01-01T00:00:00Z
constexpr int64_t kMaxTimeNs = 7'258'118'400LL * 1'000'000'000;  // 2200-01-01T00:00:00Z

}  // namespace

Error Err(const char* reason, std::string message) { return Error{reason, std::move(message)}; }

Result<void> CheckSize(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_message_bytes) {
    return Err(reason::kTooLarge, "message of " + std::to_string(bytes.size()) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(limits.max_message_bytes));
  }
  return {};
}

Result<void> CheckTimeRange(int64_t ns, const std::string& field) {
  if (ns < kMinTimeNs || ns >= kMaxTimeNs) {
    return Err(reason::kInvalidValue, field + " is not between 2000-01-01 and 2200-01-01");
  }
  return {};
}

Result<void> CheckSpanTimes(const Span& span, const std::string& start_field,
                            const std::string& end_field) {
  if (span.start_ns && span.end_ns && *span.end_ns < *span.start_ns) {
    return Err(reason::kInvalidValue, end_field + " is before " + start_field);
  }
  return {};
}

Result<void> CheckAttributeCount(const Attributes& attrs, const DecodeLimits& limits,
                                 const std::string& field) {
  if (attrs.size() > limits.max_attributes) {
    return Err(reason::kTooLarge,
               field + " has more than " + std::to_string(limits.max_attributes) + " attributes");
  }
  return {};
}

bool StatusFromCode(int64_t code, SpanStatus& out) {
  switch (code) {
    case 0: out = SpanStatus::kUnset; return true;
    case 1: out = SpanStatus::kOk; return true;
    case 2: out = SpanStatus::kError; return true;
    default: return false;
  }
}

Result<void> EvaluationAnnotation(const Span& span, std::optional<int64_t> time,
                                  const Attributes& attrs, const std::string& where,
                                  Annotation& a) {
  a.trace_id = span.trace_id;
  a.span_id = span.span_id;
  a.source = "llm_judge";
  a.timestamp_ns = time;
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> meta(buf);
  meta.StartObject();
  bool have_name = false;
  for (const auto& [key, value] : attrs) {
    const std::string field = where + ".attributes[" + key + "]";
    if (key == "gen_ai.evaluation.name") {
      if (value.kind != AttrValue::Kind::kString) {
        return Err(reason::kWrongType, field + " must be a string");
      }
      a.name = value.s;
      have_name = true;
    } else if (key == "gen_ai.evaluation.score.value") {
      if (value.kind == AttrValue::Kind::kNumber && std::isfinite(value.n)) {
        a.score = value.n;
      } else if (value.kind != AttrValue::Kind::kNull) {
        return Err(reason::kWrongType, field + " must be a finite number");
      }
    } else if (key == "gen_ai.evaluation.score.label" || key == "gen_ai.evaluation.explanation") {
      std::optional<std::string>& dst =
          key == "gen_ai.evaluation.score.label" ? a.label : a.explanation;
      if (value.kind == AttrValue::Kind::kString) {
        dst = value.s;
      } else if (value.kind != AttrValue::Kind::kNull) {
        return Err(reason::kWrongType, field + " must be a string");
      }
    } else if (value.kind == AttrValue::Kind::kString) {
      // Everything else (gen_ai.response.id, ...) is kept as metadata; scalars only.
      meta.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      meta.String(value.s.data(), static_cast<rapidjson::SizeType>(value.s.size()));
    } else if (value.kind == AttrValue::Kind::kNumber && std::isfinite(value.n)) {
      meta.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      meta.Double(value.n);
    } else if (value.kind == AttrValue::Kind::kBool) {
      meta.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
      meta.Bool(value.b);
    }
  }
  meta.EndObject();
  a.metadata_json.assign(buf.GetString(), buf.GetSize());
  if (!have_name) {
    return Err(reason::kMissingField, where + " has no gen_ai.evaluation.name attribute");
  }
  return {};
}

void AddOtlpSpan(Span span, const Attributes& resource, DecodedMessage& msg) {
  span.resource = resource;
  ApplyCanonicalMapping(span);
  msg.spans.push_back(std::move(span));
}

Result<void> RequireEvents(const DecodedMessage& msg) {
  if (msg.spans.empty() && msg.annotations.empty()) {
    return Err(reason::kMissingField, "no spans");
  }
  return {};
}

void FinishMessage(std::string_view bytes, DecodedMessage& msg) {
  const size_t n = msg.spans.size() + msg.annotations.size();
  if (n == 0) return;
  // Each event carries its share of the message size, so a trace's total is the bytes read.
  const size_t share = bytes.size() / n;
  size_t rest = bytes.size() - share * n;
  for (Span& s : msg.spans) {
    s.bytes = share + rest;
    rest = 0;
    AddEventTime(msg, s);
  }
  for (Annotation& a : msg.annotations) {
    a.bytes = share + rest;
    rest = 0;
    AddEventTime(msg, a);
  }
}

}  // namespace triaged::decode
