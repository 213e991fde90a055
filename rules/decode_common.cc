#include "rules/decode_common.h"

#include <rapidjson/encodings.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "rules/json_onepass.h"

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

bool StatusFromName(std::string_view name, SpanStatus& out) {
  std::string s = Lower(name);
  if (s.starts_with("status_code_")) s.erase(0, 12);
  if (s == "unset") {
    out = SpanStatus::kUnset;
  } else if (s == "ok") {
    out = SpanStatus::kOk;
  } else if (s == "error") {
    out = SpanStatus::kError;
  } else {
    return false;
  }
  return true;
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

void FinishOtlpSpan(Span& span, const Attributes& resource) {
  span.resource = resource;
  ApplyCanonicalMapping(span);
}

void AddOtlpSpan(Span&& span, const Attributes& resource, DecodedMessage& msg) {
  FinishOtlpSpan(span, resource);
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

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

int FirstSignificantByte(std::string_view bytes) {
  size_t i = bytes.starts_with("\xef\xbb\xbf") ? 3 : 0;
  while (i < bytes.size() &&
         (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\n' || bytes[i] == '\r')) {
    ++i;
  }
  return i < bytes.size() ? static_cast<uint8_t>(bytes[i]) : -1;
}

bool ParseTimeLenient(std::string_view text, int64_t& ns) {
  if (ParseRfc3339(text, ns)) return true;
  if (text.size() < 19 || text.size() > 64) return false;
  const std::string_view clock = text.substr(10);
  if (clock.find_first_of("Zz+") != std::string_view::npos) return false;
  if (clock.find('-') != std::string_view::npos) return false;
  std::string with_zone(text);
  with_zone.push_back('Z');
  return ParseRfc3339(with_zone, ns);
}

const char* MapName(std::string_view text, std::initializer_list<Mapping> table) {
  const std::string lowered = Lower(text);
  for (const Mapping& m : table) {
    if (lowered == m.from) return m.to;
  }
  return nullptr;
}

bool IsTraceIdKey(std::string_view key) {
  if (key.size() < 16 || key.size() > 64) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

std::string UpstreamIdsJson(const std::vector<std::pair<const char*, std::string>>& ids) {
  if (ids.empty()) return {};
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const auto& [name, id] : ids) {
    w.Key(name);
    w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

bool ValidUtf8(std::string_view s) {
  if (onepass::IsAscii(s)) return true;
  rapidjson::MemoryStream in(s.data(), s.size());
  struct Sink {
    void Put(char) {}
  } sink;
  while (in.Tell() < s.size()) {
    if (!rapidjson::UTF8<char>::Validate(in, sink)) return false;
  }
  return true;
}

}  // namespace triaged::decode
