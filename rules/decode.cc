// Input decoders (DESIGN §1): JSON bytes -> spans and annotations, or an Error with a reason.
// The spans topic's OTLP protobuf is told from JSON here (JsonOrProtobuf) and decoded in
// decode_otlp_proto.cc, through the same post-processing (decode_common.h).
//
// A JSON message is first decoded in one SAX walk (rules/json_onepass.h): no document. The walk
// accepts only what it reads exactly as the document path here does; anything else (an error
// to report, a rare construct) is decoded again here, so errors come from this file alone.
//
// On the document path every access to the parsed document is type-checked; nothing throws.
// Depth is bounded before parsing (a cheap bracket scan) and the parser runs iteratively, so
// hostile nesting can neither overflow the stack here nor in the recursive helpers below.
#include "rules/decode.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rules/decode_common.h"
#include "rules/decode_otlp_proto.h"
#include "rules/json_onepass.h"

namespace triaged {
namespace {

using decode::CheckAttributeCount;
using decode::CheckSpanTimes;
using decode::CheckTimeRange;
using decode::Err;
using decode::FinishMessage;
using decode::FirstSignificantByte;
using decode::IsTraceIdKey;
using decode::kFeedbackMarkers;
using decode::Lower;
using decode::MapName;
using decode::ParseTimeLenient;
using rapidjson::Value;

// `where.key`, or `key` at the top level: names the offending field in error messages.
std::string Path(std::string_view where, std::string_view key) {
  std::string out;
  out.reserve(where.size() + key.size() + 1);
  out.append(where);
  if (!where.empty()) out.push_back('.');
  out.append(key);
  return out;
}

std::string Indexed(std::string_view where, std::string_view key, size_t i) {
  return Path(where, key) + "[" + std::to_string(i) + "]";
}

std::string_view Str(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

// The member `key` of object `obj`, or nullptr if absent. A JSON null counts as absent for
// every optional field, so producers that write `"parent_span_id": null` are accepted.
const Value* Member(const Value& obj, std::string_view key) {
  const Value name(rapidjson::StringRef(key.data(), key.size()));
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

bool Has(const Value& obj, std::string_view key) {
  const Value name(rapidjson::StringRef(key.data(), key.size()));
  return obj.FindMember(name) != obj.MemberEnd();
}

std::string CompactJson(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

// ---------------------------------------------------------------------------------------------
// Parsing

// Deepest bracket nesting outside strings, stopping early once past `max_depth`. Runs before
// the parser so that a message of 100k `[` is rejected as too_deep in linear time.
bool DepthWithin(std::string_view bytes, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;  // unbalanced input is the parser's to report
    }
  }
  return true;
}

// A byte a JSON text can start with (RFC 8259: the first byte of a value).
bool StartsJson(int c) {
  return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' ||
         c == 'f' || c == 'n';
}

std::string HexByte(int c) {
  static constexpr char kHex[] = "0123456789abcdef";
  return {'0', 'x', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
}

// An OTLP protobuf request starts with the tag of its field 1, resource_spans (length-delimited).
constexpr char kProtobufStart = 0x0a;

Result<void> Parse(std::string_view bytes, const DecodeLimits& limits, rapidjson::Document& doc) {
  TRIAGED_TRY(decode::CheckSize(bytes, limits));
  if (const int c = FirstSignificantByte(bytes); c >= 0 && !StartsJson(c)) {
    return Err(
        reason::kInvalidJson,
        bytes[0] == kProtobufStart
            ? "not JSON: it starts as OTLP protobuf does (byte 0x0a, then " + HexByte(c) + ")"
            : "not JSON: it starts with byte " + HexByte(c));
  }
  if (!DepthWithin(bytes, limits.max_depth)) {
    return Err(reason::kTooDeep,
               "nesting deeper than " + std::to_string(limits.max_depth) + " levels");
  }
  constexpr unsigned kFlags =
      rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag;
  doc.Parse<kFlags>(bytes.data(), bytes.size());
  if (doc.HasParseError()) {
    return Err(reason::kInvalidJson, std::string(rapidjson::GetParseError_En(doc.GetParseError())) +
                                         " at offset " + std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) {
    return Err(reason::kNotAnObject, "the message must be a JSON object");
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Field readers. Each returns an Error naming the field, or success.

// An id: required ones report `missing_reason` when absent, null or empty.
Result<void> ReadId(const Value& obj, std::string_view where, std::string_view key, bool required,
                    const char* missing_reason, std::string& out) {
  out.clear();
  const Value* v = Member(obj, key);
  if (v != nullptr && !v->IsString()) {
    return Err(reason::kWrongType, Path(where, key) + " must be a string");
  }
  if (v == nullptr || v->GetStringLength() == 0) {
    if (required) return Err(missing_reason, Path(where, key) + " is missing");
    return {};
  }
  if (!NormalizeId(Str(*v), out)) {
    return Err(reason::kInvalidValue,
               Path(where, key) + " must be printable ASCII of at most 128 bytes");
  }
  return {};
}

Result<void> ReadString(const Value& obj, std::string_view where, std::string_view key,
                        std::optional<std::string>& out) {
  out.reset();
  const Value* v = Member(obj, key);
  if (v == nullptr) return {};
  if (!v->IsString()) return Err(reason::kWrongType, Path(where, key) + " must be a string");
  out.emplace(Str(*v));
  return {};
}

Result<void> ReadRequiredString(const Value& obj, std::string_view where, std::string_view key,
                                std::string& out) {
  std::optional<std::string> s;
  TRIAGED_TRY(ReadString(obj, where, key, s));
  if (!s) return Err(reason::kMissingField, Path(where, key) + " is missing");
  out = std::move(*s);
  return {};
}

// Unix nanoseconds: a non-negative integer, or the same as a decimal string (OTLP writes
// 64-bit integers as strings). Anything beyond int64 is garbage, not a time.
Result<void> ReadNanos(const Value* v, const std::string& field, std::optional<int64_t>& out) {
  out.reset();
  if (v == nullptr) return {};
  if (v->IsNumber()) {
    if (v->IsInt64() && v->GetInt64() >= 0) {
      TRIAGED_TRY(CheckTimeRange(v->GetInt64(), field));
      out = v->GetInt64();
      return {};
    }
    return Err(reason::kInvalidValue,
               field + " must be a non-negative integer of unix nanoseconds within int64");
  }
  if (!v->IsString()) {
    return Err(reason::kWrongType, field + " must be an integer or a decimal string");
  }
  const std::string_view s = Str(*v);
  uint64_t n = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, n);
  if (s.empty() || s[0] < '0' || s[0] > '9' || ec != std::errc() || ptr != end ||
      n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Err(reason::kInvalidValue,
               field + " must be a decimal string of unix nanoseconds within int64");
  }
  TRIAGED_TRY(CheckTimeRange(static_cast<int64_t>(n), field));
  out = static_cast<int64_t>(n);
  return {};
}

Result<void> ReadRfc3339(const Value* v, const std::string& field, std::optional<int64_t>& out) {
  out.reset();
  if (v == nullptr) return {};
  if (!v->IsString()) return Err(reason::kWrongType, field + " must be an RFC 3339 string");
  int64_t ns = 0;
  if (!ParseTimeLenient(Str(*v), ns)) {
    return Err(reason::kInvalidValue, field + " is not a valid RFC 3339 timestamp");
  }
  TRIAGED_TRY(CheckTimeRange(ns, field));
  out = ns;
  return {};
}

// A score: a finite number or null/absent.
Result<void> ReadScore(const Value* v, const std::string& field, std::optional<double>& out) {
  out.reset();
  if (v == nullptr) return {};
  if (!v->IsNumber()) return Err(reason::kWrongType, field + " must be a number or null");
  const double d = v->GetDouble();
  if (!std::isfinite(d)) return Err(reason::kInvalidValue, field + " must be finite");
  out = d;
  return {};
}

Result<void> ReadMetadata(const Value& obj, std::string_view key, std::string& out) {
  out = "{}";
  const Value* v = Member(obj, key);
  if (v == nullptr) return {};
  if (!v->IsObject()) return Err(reason::kWrongType, Path("", key) + " must be an object");
  out = CompactJson(*v);
  return {};
}

// The upstream id of a feedback record (DESIGN §1.2): a string kept as given, since these are
// the source's own ids (UUIDs, Phoenix's base64 global ids), not trace ids. Empty is none.
Result<void> ReadUpstreamId(const Value& obj, std::string_view where, std::string_view key,
                            std::optional<std::string>& out) {
  std::optional<std::string> s;
  TRIAGED_TRY(ReadString(obj, where, key, s));
  if (s && !s->empty()) out = std::move(s);
  return {};
}

// The session a session-scoped record names: a string kept as given (session ids are compared
// with the spans' `session.id` as they are). Empty is none.
Result<void> ReadSessionId(const Value& obj, std::string_view key, std::string& out) {
  std::optional<std::string> s;
  TRIAGED_TRY(ReadString(obj, "", key, s));
  if (s) out = std::move(*s);
  return {};
}

// Who gave a piece of feedback, from which queue, under which config: the source's string ids
// under common names (user_id, user_name, queue_id, config_id), as the compact JSON object
// Annotation::annotator_json holds ("" when there are none).
class AnnotatorIds {
 public:
  // `obj[key]`, a string (or null/absent), as `name`.
  Result<void> Read(const Value& obj, std::string_view where, std::string_view key,
                    const char* name) {
    std::optional<std::string> s;
    TRIAGED_TRY(ReadString(obj, where, key, s));
    if (s && !s->empty()) ids_.emplace_back(name, std::move(*s));
    return {};
  }
  std::string Json() const { return decode::UpstreamIdsJson(ids_); }

 private:
  std::vector<std::pair<const char*, std::string>> ids_;
};

// Status as OTLP writes it (0/1/2, STATUS_CODE_*) or as people write it (ok/error/unset).
bool ParseStatusCode(const Value& v, SpanStatus& out) {
  if (v.IsInt()) return decode::StatusFromCode(v.GetInt(), out);
  if (!v.IsString()) return false;
  return decode::StatusFromName(Str(v), out);
}

// ---------------------------------------------------------------------------------------------
// Attributes

// A plain JSON value as an attribute value. Objects inside arrays cannot be flattened into
// keys, so they are kept as their compact JSON text.
AttrValue FromJson(const Value& v) {
  if (v.IsNull()) return AttrValue::Null();
  if (v.IsBool()) return AttrValue::Bool(v.GetBool());
  if (v.IsNumber()) return AttrValue::Number(v.GetDouble());
  if (v.IsString()) return AttrValue::String(std::string(Str(v)));
  if (v.IsArray()) {
    std::vector<AttrValue> items;
    items.reserve(v.Size());
    for (const Value& item : v.GetArray()) items.push_back(FromJson(item));
    return AttrValue::Array(std::move(items));
  }
  return AttrValue::String(CompactJson(v));
}

// A native attribute object; nested objects flatten into dotted keys.
Result<void> FlattenObject(const Value& obj, const std::string& prefix, const DecodeLimits& limits,
                           const std::string& field, Attributes& out) {
  for (const auto& m : obj.GetObject()) {
    std::string key =
        prefix.empty() ? std::string(Str(m.name)) : prefix + "." + std::string(Str(m.name));
    if (m.value.IsObject()) {
      TRIAGED_TRY(FlattenObject(m.value, key, limits, field, out));
      continue;
    }
    out.emplace_back(std::move(key), FromJson(m.value));
    TRIAGED_TRY(CheckAttributeCount(out, limits, field));
  }
  return {};
}

Result<void> ReadNativeAttributes(const Value& obj, std::string_view key,
                                  const DecodeLimits& limits, Attributes& out) {
  const Value* v = Member(obj, key);
  if (v == nullptr) return {};
  const std::string field = Path("", key);
  if (!v->IsObject()) return Err(reason::kWrongType, field + " must be an object");
  return FlattenObject(*v, "", limits, field, out);
}

Result<void> OtlpKeyValues(const Value& list, const std::string& prefix, const DecodeLimits& limits,
                           const std::string& field, Attributes& out);

// One OTLP AnyValue. kvlistValue is handled by the caller (it flattens into several keys);
// inside an array it is kept as compact JSON text.
Result<void> OtlpAnyValue(const Value& any, const std::string& field, AttrValue& out) {
  if (!any.IsObject()) return Err(reason::kWrongType, field + " must be an AnyValue object");
  if (const Value* v = Member(any, "stringValue")) {
    if (!v->IsString()) return Err(reason::kWrongType, field + ".stringValue must be a string");
    out = AttrValue::String(std::string(Str(*v)));
  } else if (const Value* b = Member(any, "boolValue")) {
    if (!b->IsBool()) return Err(reason::kWrongType, field + ".boolValue must be a bool");
    out = AttrValue::Bool(b->GetBool());
  } else if (const Value* i = Member(any, "intValue")) {
    if (i->IsInt64() || i->IsUint64()) {
      out = AttrValue::Number(i->GetDouble());
    } else if (i->IsString()) {
      const std::string_view s = Str(*i);
      int64_t n = 0;
      const char* end = s.data() + s.size();
      auto [ptr, ec] = std::from_chars(s.data(), end, n);
      if (s.empty() || ec != std::errc() || ptr != end) {
        return Err(reason::kInvalidValue, field + ".intValue is not an int64");
      }
      out = AttrValue::Number(static_cast<double>(n));
    } else {
      return Err(reason::kWrongType, field + ".intValue must be an integer or a decimal string");
    }
  } else if (const Value* d = Member(any, "doubleValue")) {
    if (d->IsNumber()) {
      out = AttrValue::Number(d->GetDouble());
    } else if (d->IsString()) {
      // Proto3 JSON spells non-finite doubles "NaN"/"Infinity"; keep those as text so the
      // rule language never sees a NaN.
      const std::string_view s = Str(*d);
      double n = 0;
      const char* end = s.data() + s.size();
      auto [ptr, ec] = std::from_chars(s.data(), end, n);
      if (!s.empty() && ec == std::errc() && ptr == end && std::isfinite(n)) {
        out = AttrValue::Number(n);
      } else if (s == "NaN" || s == "Infinity" || s == "-Infinity") {
        out = AttrValue::String(std::string(s));
      } else {
        return Err(reason::kInvalidValue, field + ".doubleValue is not a number");
      }
    } else {
      return Err(reason::kWrongType, field + ".doubleValue must be a number");
    }
  } else if (const Value* a = Member(any, "arrayValue")) {
    if (!a->IsObject()) return Err(reason::kWrongType, field + ".arrayValue must be an object");
    std::vector<AttrValue> items;
    if (const Value* values = Member(*a, "values")) {
      if (!values->IsArray()) {
        return Err(reason::kWrongType, field + ".arrayValue.values must be an array");
      }
      items.reserve(values->Size());
      size_t idx = 0;
      for (const Value& item : values->GetArray()) {
        const std::string item_field = field + ".arrayValue.values[" + std::to_string(idx++) + "]";
        if (const Value* kvlist = item.IsObject() ? Member(item, "kvlistValue") : nullptr) {
          items.push_back(AttrValue::String(CompactJson(*kvlist)));
          continue;
        }
        AttrValue value;
        TRIAGED_TRY(OtlpAnyValue(item, item_field, value));
        items.push_back(std::move(value));
      }
    }
    out = AttrValue::Array(std::move(items));
  } else if (const Value* bytes = Member(any, "bytesValue")) {
    if (!bytes->IsString()) return Err(reason::kWrongType, field + ".bytesValue must be a string");
    out = AttrValue::String(std::string(Str(*bytes)));  // base64, kept as sent
  } else if (Member(any, "kvlistValue") != nullptr) {
    return Err(reason::kWrongType, field + " kvlistValue is not allowed here");
  } else {
    out = AttrValue::Null();  // an empty AnyValue
  }
  return {};
}

// An OTLP list of KeyValue {key, value: AnyValue}; kvlistValue flattens into `key.subkey`.
Result<void> OtlpKeyValues(const Value& list, const std::string& prefix, const DecodeLimits& limits,
                           const std::string& field, Attributes& out) {
  if (!list.IsArray()) return Err(reason::kWrongType, field + " must be an array");
  size_t idx = 0;
  for (const Value& kv : list.GetArray()) {
    const std::string kv_field = field + "[" + std::to_string(idx++) + "]";
    if (!kv.IsObject()) return Err(reason::kWrongType, kv_field + " must be an object");
    std::string key;
    TRIAGED_TRY(ReadRequiredString(kv, kv_field, "key", key));
    if (!prefix.empty()) key = prefix + "." + key;
    const Value* value = Member(kv, "value");
    if (value != nullptr && value->IsObject()) {
      if (const Value* kvlist = Member(*value, "kvlistValue")) {
        if (!kvlist->IsObject()) {
          return Err(reason::kWrongType, kv_field + ".value.kvlistValue must be an object");
        }
        if (const Value* values = Member(*kvlist, "values")) {
          TRIAGED_TRY(
              OtlpKeyValues(*values, key, limits, kv_field + ".value.kvlistValue.values", out));
        }
        continue;
      }
    }
    AttrValue attr;
    if (value != nullptr) TRIAGED_TRY(OtlpAnyValue(*value, kv_field + ".value", attr));
    out.emplace_back(std::move(key), std::move(attr));
    TRIAGED_TRY(CheckAttributeCount(out, limits, field));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Spans

// A time given as unix nanos (`<base>_unix_nano`) or RFC 3339 (`<base>`); nanos win. `key` is
// set to the key read.
Result<void> ReadNativeTime(const Value& obj, std::string_view base, std::optional<int64_t>& out,
                            std::string& key) {
  key = std::string(base) + "_unix_nano";
  if (const Value* v = Member(obj, key)) return ReadNanos(v, key, out);
  key = std::string(base);
  return ReadRfc3339(Member(obj, base), key, out);
}

// Native `input`/`output`: strings as they are, any other JSON as its compact text.
std::optional<std::string> ReadText(const Value& obj, std::string_view key) {
  const Value* v = Member(obj, key);
  if (v == nullptr) return std::nullopt;
  if (v->IsString()) return std::string(Str(*v));
  return CompactJson(*v);
}

Result<void> DecodeNativeSpan(const Value& obj, const DecodeLimits& limits, Span& span) {
  TRIAGED_TRY(ReadId(obj, "", "trace_id", true, reason::kMissingTraceId, span.trace_id));
  TRIAGED_TRY(ReadId(obj, "", "span_id", true, reason::kMissingField, span.span_id));
  TRIAGED_TRY(ReadId(obj, "", "parent_span_id", false, reason::kMissingField, span.parent_span_id));
  std::optional<std::string> s;
  TRIAGED_TRY(ReadString(obj, "", "name", s));
  span.name = s.value_or("");
  std::string start_key, end_key;
  TRIAGED_TRY(ReadNativeTime(obj, "start_time", span.start_ns, start_key));
  TRIAGED_TRY(ReadNativeTime(obj, "end_time", span.end_ns, end_key));
  TRIAGED_TRY(CheckSpanTimes(span, start_key, end_key));
  TRIAGED_TRY(ReadString(obj, "", "status_message", s));
  span.status_message = s.value_or("");
  if (const Value* status = Member(obj, "status")) {
    const Value* code = status;
    if (status->IsObject()) {  // {"code": ..., "message": ...}, as OTLP nests it
      code = Member(*status, "code");
      if (span.status_message.empty()) {
        TRIAGED_TRY(ReadString(*status, "status", "message", s));
        span.status_message = s.value_or("");
      }
    } else if (!status->IsString()) {
      return Err(reason::kWrongType, "status must be a string");
    }
    if (code != nullptr && !ParseStatusCode(*code, span.status)) {
      return Err(reason::kInvalidValue, "status must be one of ok, error, unset");
    }
  }
  TRIAGED_TRY(ReadNativeAttributes(obj, "attributes", limits, span.attributes));
  TRIAGED_TRY(ReadNativeAttributes(obj, "resource", limits, span.resource));
  span.input = ReadText(obj, "input");
  span.output = ReadText(obj, "output");
  TRIAGED_TRY(ReadString(obj, "", "kind", s));
  span.kind = s.value_or("");
  ApplyCanonicalMapping(span);
  return {};
}

// A span event named gen_ai.evaluation.result: the OTel GenAI evaluation, attached to the span.
Result<void> OtlpEvaluationEvent(const Value& event, const Span& span, const std::string& where,
                                 const DecodeLimits& limits, Annotation& a) {
  std::optional<int64_t> time;
  TRIAGED_TRY(ReadNanos(Member(event, "timeUnixNano"), where + ".timeUnixNano", time));
  Attributes attrs;
  if (const Value* list = Member(event, "attributes")) {
    TRIAGED_TRY(OtlpKeyValues(*list, "", limits, where + ".attributes", attrs));
  }
  return decode::EvaluationAnnotation(span, time, attrs, where, a);
}

Result<void> DecodeOtlpSpan(const Value& obj, const std::string& where, const Attributes& resource,
                            const DecodeLimits& limits, DecodedMessage& msg) {
  if (!obj.IsObject()) return Err(reason::kWrongType, where + " must be an object");
  Span span;
  TRIAGED_TRY(ReadId(obj, where, "traceId", true, reason::kMissingTraceId, span.trace_id));
  TRIAGED_TRY(ReadId(obj, where, "spanId", true, reason::kMissingField, span.span_id));
  TRIAGED_TRY(
      ReadId(obj, where, "parentSpanId", false, reason::kMissingField, span.parent_span_id));
  std::optional<std::string> s;
  TRIAGED_TRY(ReadString(obj, where, "name", s));
  span.name = s.value_or("");
  TRIAGED_TRY(
      ReadNanos(Member(obj, "startTimeUnixNano"), Path(where, "startTimeUnixNano"), span.start_ns));
  TRIAGED_TRY(
      ReadNanos(Member(obj, "endTimeUnixNano"), Path(where, "endTimeUnixNano"), span.end_ns));
  TRIAGED_TRY(
      CheckSpanTimes(span, Path(where, "startTimeUnixNano"), Path(where, "endTimeUnixNano")));
  if (const Value* status = Member(obj, "status")) {
    if (!status->IsObject())
      return Err(reason::kWrongType, Path(where, "status") + " must be an object");
    if (const Value* code = Member(*status, "code")) {
      if (!ParseStatusCode(*code, span.status)) {
        return Err(reason::kInvalidValue, Path(where, "status.code") + " must be 0, 1 or 2");
      }
    }
    TRIAGED_TRY(ReadString(*status, Path(where, "status"), "message", s));
    span.status_message = s.value_or("");
  }
  if (const Value* attrs = Member(obj, "attributes")) {
    TRIAGED_TRY(OtlpKeyValues(*attrs, "", limits, Path(where, "attributes"), span.attributes));
  }
  if (const Value* events = Member(obj, "events")) {
    if (!events->IsArray())
      return Err(reason::kWrongType, Path(where, "events") + " must be an array");
    size_t idx = 0;
    for (const Value& event : events->GetArray()) {
      const std::string event_where = Indexed(where, "events", idx++);
      if (!event.IsObject()) return Err(reason::kWrongType, event_where + " must be an object");
      const Value* name = Member(event, "name");
      if (name == nullptr || !name->IsString() || Str(*name) != decode::kEvaluationEvent) continue;
      Annotation a;
      TRIAGED_TRY(OtlpEvaluationEvent(event, span, event_where, limits, a));
      msg.annotations.push_back(std::move(a));
    }
  }
  decode::AddOtlpSpan(std::move(span), resource, msg);
  return {};
}

Result<void> DecodeOtlp(const Value& root, const DecodeLimits& limits, DecodedMessage& msg) {
  const Value* rs_list = Member(root, "resourceSpans");
  if (rs_list == nullptr) return Err(reason::kMissingField, "resourceSpans is missing");
  if (!rs_list->IsArray()) return Err(reason::kWrongType, "resourceSpans must be an array");
  size_t rs_idx = 0;
  for (const Value& rs : rs_list->GetArray()) {
    const std::string rs_where = Indexed("", "resourceSpans", rs_idx++);
    if (!rs.IsObject()) return Err(reason::kWrongType, rs_where + " must be an object");
    Attributes resource;
    if (const Value* res = Member(rs, "resource")) {
      if (!res->IsObject())
        return Err(reason::kWrongType, rs_where + ".resource must be an object");
      if (const Value* attrs = Member(*res, "attributes")) {
        TRIAGED_TRY(OtlpKeyValues(*attrs, "", limits, rs_where + ".resource.attributes", resource));
      }
    }
    // instrumentationLibrarySpans is the pre-1.0 name of scopeSpans.
    for (const char* scope_key : {"scopeSpans", "instrumentationLibrarySpans"}) {
      const Value* scopes = Member(rs, scope_key);
      if (scopes == nullptr) continue;
      if (!scopes->IsArray()) {
        return Err(reason::kWrongType, Path(rs_where, scope_key) + " must be an array");
      }
      size_t ss_idx = 0;
      for (const Value& ss : scopes->GetArray()) {
        const std::string ss_where = Indexed(rs_where, scope_key, ss_idx++);
        if (!ss.IsObject()) return Err(reason::kWrongType, ss_where + " must be an object");
        const Value* spans = Member(ss, "spans");
        if (spans == nullptr) continue;
        if (!spans->IsArray()) return Err(reason::kWrongType, ss_where + ".spans must be an array");
        size_t sp_idx = 0;
        for (const Value& sp : spans->GetArray()) {
          TRIAGED_TRY(
              DecodeOtlpSpan(sp, Indexed(ss_where, "spans", sp_idx++), resource, limits, msg));
        }
      }
    }
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Feedback

// The feedback timestamp: `timestamp_unix_nano` (nanos) wins over `timestamp` (RFC 3339), then
// `created_at` (LangSmith, Phoenix API responses).
Result<void> ReadFeedbackTime(const Value& obj, Annotation& a) {
  if (const Value* v = Member(obj, "timestamp_unix_nano")) {
    return ReadNanos(v, "timestamp_unix_nano", a.timestamp_ns);
  }
  if (const Value* v = Member(obj, "timestamp")) return ReadRfc3339(v, "timestamp", a.timestamp_ns);
  return ReadRfc3339(Member(obj, "created_at"), "created_at", a.timestamp_ns);
}

Result<void> DecodeNativeFeedback(const Value& obj, Annotation& a) {
  TRIAGED_TRY(ReadId(obj, "", "trace_id", false, reason::kMissingTraceId, a.trace_id));
  TRIAGED_TRY(ReadId(obj, "", "span_id", false, reason::kMissingField, a.span_id));
  TRIAGED_TRY(ReadRequiredString(obj, "", "name", a.name));
  TRIAGED_TRY(ReadScore(Member(obj, "score"), "score", a.score));
  TRIAGED_TRY(ReadString(obj, "", "label", a.label));
  TRIAGED_TRY(ReadString(obj, "", "explanation", a.explanation));
  TRIAGED_TRY(ReadString(obj, "", "source", a.source));
  if (a.source) {
    *a.source = Lower(*a.source);
    if (*a.source != "end_user" && *a.source != "llm_judge" && *a.source != "human" &&
        *a.source != "code" && *a.source != "support") {
      return Err(reason::kInvalidValue,
                 "source must be one of end_user, llm_judge, human, code, support");
    }
  }
  TRIAGED_TRY(ReadMetadata(obj, "metadata", a.metadata_json));
  TRIAGED_TRY(ReadUpstreamId(obj, "", "id", a.id));
  if (const Value* annotator = Member(obj, "annotator")) {
    if (!annotator->IsObject()) return Err(reason::kWrongType, "annotator must be an object");
    if (annotator->MemberCount() > 0) a.annotator_json = CompactJson(*annotator);
  }
  TRIAGED_TRY(ReadString(obj, "", "expected_output", a.expected_output));
  TRIAGED_TRY(ReadSessionId(obj, "session_id", a.session_id));
  return ReadFeedbackTime(obj, a);
}

// Phoenix span, trace and session annotations (the REST API's write and read shapes). The id is
// the `identifier` (the upsert key the producer chose), else the annotation's own `id`; the
// annotator is the Phoenix `user_id`.
Result<void> DecodePhoenix(const Value& obj, Annotation& a) {
  TRIAGED_TRY(ReadId(obj, "", "trace_id", false, reason::kMissingTraceId, a.trace_id));
  TRIAGED_TRY(ReadId(obj, "", "span_id", false, reason::kMissingField, a.span_id));
  TRIAGED_TRY(ReadRequiredString(obj, "", "name", a.name));
  std::optional<std::string> kind;
  TRIAGED_TRY(ReadString(obj, "", "annotator_kind", kind));
  if (kind) {
    const char* source =
        MapName(*kind, {{"human", "human"}, {"llm", "llm_judge"}, {"code", "code"}});
    if (source == nullptr) {
      return Err(reason::kInvalidValue, "annotator_kind must be one of HUMAN, LLM, CODE");
    }
    a.source = source;
  }
  if (const Value* result = Member(obj, "result")) {
    if (!result->IsObject()) return Err(reason::kWrongType, "result must be an object");
    TRIAGED_TRY(ReadString(*result, "result", "label", a.label));
    TRIAGED_TRY(ReadScore(Member(*result, "score"), "result.score", a.score));
    TRIAGED_TRY(ReadString(*result, "result", "explanation", a.explanation));
  }
  TRIAGED_TRY(ReadMetadata(obj, "metadata", a.metadata_json));
  TRIAGED_TRY(ReadUpstreamId(obj, "", "identifier", a.id));
  if (!a.id) TRIAGED_TRY(ReadUpstreamId(obj, "", "id", a.id));
  AnnotatorIds annotator;
  TRIAGED_TRY(annotator.Read(obj, "", "user_id", "user_id"));
  a.annotator_json = annotator.Json();
  TRIAGED_TRY(ReadSessionId(obj, "session_id", a.session_id));
  return ReadFeedbackTime(obj, a);
}

// `metadata` with `"comment": comment` first, unless it has a comment of its own.
std::string MetadataWithComment(const Value& obj, const std::string& comment) {
  const Value* meta = Member(obj, "metadata");
  if (meta != nullptr && Has(*meta, "comment")) return CompactJson(*meta);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("comment");
  w.String(comment.data(), static_cast<rapidjson::SizeType>(comment.size()));
  if (meta != nullptr) {
    for (const auto& m : meta->GetObject()) {
      w.Key(m.name.GetString(), m.name.GetStringLength());
      m.value.Accept(w);
    }
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// A Langfuse score (the public API's Score object and its create body). CORRECTION's string
// value is the expected output and TEXT's the explanation (its `comment` then goes to metadata);
// `sessionId` without `traceId` scopes the score to the session; `authorUserId`, `queueId`,
// `configId` are the annotator.
Result<void> DecodeLangfuse(const Value& obj, Annotation& a) {
  TRIAGED_TRY(ReadId(obj, "", "traceId", false, reason::kMissingTraceId, a.trace_id));
  TRIAGED_TRY(ReadSessionId(obj, "sessionId", a.session_id));
  TRIAGED_TRY(ReadId(obj, "", "observationId", false, reason::kMissingField, a.span_id));
  TRIAGED_TRY(ReadRequiredString(obj, "", "name", a.name));
  const Value* value = Member(obj, "value");
  std::optional<std::string> type;
  TRIAGED_TRY(ReadString(obj, "", "dataType", type));
  std::string t;
  if (type) {
    t = Lower(*type);
  } else if (value != nullptr) {  // Langfuse infers the type from the value when absent
    t = value->IsString() ? "categorical" : value->IsBool() ? "boolean" : "numeric";
  }
  std::optional<std::string> string_value;
  TRIAGED_TRY(ReadString(obj, "", "stringValue", string_value));
  std::optional<std::string> text;  // a TEXT score's value
  if (t == "numeric") {
    TRIAGED_TRY(ReadScore(value, "value", a.score));
  } else if (t == "boolean") {
    if (value != nullptr && value->IsBool()) {
      a.score = value->GetBool() ? 1.0 : 0.0;
    } else if (value != nullptr && value->IsNumber()) {
      const double d = value->GetDouble();
      if (d != 0.0 && d != 1.0) return Err(reason::kInvalidValue, "BOOLEAN value must be 0 or 1");
      a.score = d;
    } else if (value != nullptr) {
      return Err(reason::kWrongType, "BOOLEAN value must be a bool or 0/1");
    }
    a.label = string_value;
  } else if (t == "categorical") {
    if (value != nullptr && value->IsString()) {
      a.label = std::string(Str(*value));
    } else if (string_value) {
      a.label = string_value;
    } else if (value != nullptr) {
      return Err(reason::kWrongType, "CATEGORICAL value must be a string");
    }
  } else if (t == "correction" || t == "text") {
    std::optional<std::string>& dst = t == "correction" ? a.expected_output : text;
    if (value != nullptr && value->IsString()) {
      dst = std::string(Str(*value));
    } else if (value != nullptr) {
      return Err(reason::kWrongType, std::string(t == "correction" ? "CORRECTION" : "TEXT") +
                                         " value must be a string");
    } else {
      dst = string_value;
    }
  } else if (type) {
    return Err(reason::kInvalidValue,
               "dataType must be one of NUMERIC, CATEGORICAL, BOOLEAN, TEXT, CORRECTION");
  }
  std::optional<std::string> comment;
  TRIAGED_TRY(ReadString(obj, "", "comment", comment));
  a.explanation = text ? text : comment;
  std::optional<std::string> source;
  TRIAGED_TRY(ReadString(obj, "", "source", source));
  if (source) {
    const char* mapped =
        MapName(*source, {{"api", "end_user"}, {"annotation", "human"}, {"eval", "llm_judge"}});
    if (mapped == nullptr) {
      return Err(reason::kInvalidValue, "source must be one of API, ANNOTATION, EVAL");
    }
    a.source = mapped;
  }
  TRIAGED_TRY(ReadMetadata(obj, "metadata", a.metadata_json));
  if (text && comment) a.metadata_json = MetadataWithComment(obj, *comment);
  TRIAGED_TRY(ReadUpstreamId(obj, "", "id", a.id));
  AnnotatorIds annotator;
  TRIAGED_TRY(annotator.Read(obj, "", "authorUserId", "user_id"));
  TRIAGED_TRY(annotator.Read(obj, "", "queueId", "queue_id"));
  TRIAGED_TRY(annotator.Read(obj, "", "configId", "config_id"));
  a.annotator_json = annotator.Json();
  return ReadFeedbackTime(obj, a);
}

// LangSmith feedback_source.type (the SDK's SourceType: api, model, app, auto_eval) -> source:
//   "api"       -> end_user   (logged by the application through the SDK: in-product feedback)
//   "app"       -> human      (given in the LangSmith UI, e.g. annotation queues)
//   "model"     -> llm_judge  (model-assisted feedback, evaluators)
//   "auto_eval" -> llm_judge  (LangSmith's online evaluators)
//   anything else, or no feedback_source -> no source; the raw object stays in metadata.
// feedback_source.user_id and .user_name are the annotator. `correction` (a string, or an
// object) is the expected output: a string as is; an object whose only member is a string
// `output` or `outputs` (the corrected output of a run with one output) as that string; any
// other object as its compact JSON. LangSmith's `session_id` is the tracing project, not a
// conversation, so it never scopes feedback to a session.
Result<void> DecodeLangSmith(const Value& obj, Annotation& a) {
  TRIAGED_TRY(ReadId(obj, "", "trace_id", false, reason::kMissingTraceId, a.trace_id));
  TRIAGED_TRY(ReadId(obj, "", "run_id", false, reason::kMissingField, a.span_id));
  TRIAGED_TRY(ReadRequiredString(obj, "", "key", a.name));
  if (const Value* score = Member(obj, "score")) {
    if (score->IsBool()) {
      a.score = score->GetBool() ? 1.0 : 0.0;
    } else {
      TRIAGED_TRY(ReadScore(score, "score", a.score));
    }
  }
  if (const Value* value = Member(obj, "value")) {
    if (value->IsString()) {
      a.label = std::string(Str(*value));
    } else if (value->IsNumber() && !a.score) {
      a.score = value->GetDouble();
    } else if (value->IsBool() && !a.score) {
      a.score = value->GetBool() ? 1.0 : 0.0;
    } else {
      a.label = CompactJson(*value);
    }
  }
  TRIAGED_TRY(ReadString(obj, "", "comment", a.explanation));
  if (const Value* fs = Member(obj, "feedback_source")) {
    if (!fs->IsObject()) return Err(reason::kWrongType, "feedback_source must be an object");
    std::optional<std::string> type;
    TRIAGED_TRY(ReadString(*fs, "feedback_source", "type", type));
    if (type) {
      const char* mapped = MapName(*type, {{"api", "end_user"},
                                           {"app", "human"},
                                           {"model", "llm_judge"},
                                           {"auto_eval", "llm_judge"}});
      if (mapped != nullptr) a.source = mapped;
    }
    a.metadata_json = "{\"feedback_source\":" + CompactJson(*fs) + "}";
    AnnotatorIds annotator;
    TRIAGED_TRY(annotator.Read(*fs, "feedback_source", "user_id", "user_id"));
    TRIAGED_TRY(annotator.Read(*fs, "feedback_source", "user_name", "user_name"));
    a.annotator_json = annotator.Json();
  }
  if (const Value* correction = Member(obj, "correction")) {
    if (correction->IsString()) {
      a.expected_output = std::string(Str(*correction));
    } else if (correction->IsObject()) {
      const auto only = correction->MemberBegin();
      if (correction->MemberCount() == 1 && only->value.IsString() &&
          (Str(only->name) == "output" || Str(only->name) == "outputs")) {
        a.expected_output = std::string(Str(only->value));
      } else {
        a.expected_output = CompactJson(*correction);
      }
    } else {
      return Err(reason::kWrongType, "correction must be a string or an object");
    }
  }
  TRIAGED_TRY(ReadUpstreamId(obj, "", "id", a.id));
  return ReadFeedbackTime(obj, a);
}

Result<void> DecodeOtelEval(const Value& obj, Annotation& a) {
  TRIAGED_TRY(ReadId(obj, "", "trace_id", false, reason::kMissingTraceId, a.trace_id));
  TRIAGED_TRY(ReadId(obj, "", "span_id", false, reason::kMissingField, a.span_id));
  TRIAGED_TRY(ReadRequiredString(obj, "", "gen_ai.evaluation.name", a.name));
  TRIAGED_TRY(ReadScore(Member(obj, "gen_ai.evaluation.score.value"),
                        "gen_ai.evaluation.score.value", a.score));
  TRIAGED_TRY(ReadString(obj, "", "gen_ai.evaluation.score.label", a.label));
  TRIAGED_TRY(ReadString(obj, "", "gen_ai.evaluation.explanation", a.explanation));
  a.source = "llm_judge";
  TRIAGED_TRY(ReadMetadata(obj, "metadata", a.metadata_json));
  return ReadFeedbackTime(obj, a);
}

Result<void> DecodeThumbs(const Value& obj, Annotation& a) {
  TRIAGED_TRY(ReadId(obj, "", "trace_id", false, reason::kMissingTraceId, a.trace_id));
  TRIAGED_TRY(ReadId(obj, "", "span_id", false, reason::kMissingField, a.span_id));
  std::string thumbs;
  TRIAGED_TRY(ReadRequiredString(obj, "", "thumbs", thumbs));
  thumbs = Lower(thumbs);
  if (thumbs != "up" && thumbs != "down") {
    return Err(reason::kInvalidValue, "thumbs must be \"up\" or \"down\"");
  }
  a.name = "thumbs";
  a.score = thumbs == "up" ? 1.0 : 0.0;
  a.label = thumbs;
  a.source = "end_user";
  TRIAGED_TRY(ReadString(obj, "", "explanation", a.explanation));
  if (!a.explanation) TRIAGED_TRY(ReadString(obj, "", "comment", a.explanation));
  TRIAGED_TRY(ReadMetadata(obj, "metadata", a.metadata_json));
  TRIAGED_TRY(ReadUpstreamId(obj, "", "id", a.id));
  TRIAGED_TRY(ReadSessionId(obj, "session_id", a.session_id));
  return ReadFeedbackTime(obj, a);
}

// Feedback shape detection, first match wins (each marker is unique to its shape):
//   1. `thumbs`                                       -> thumbs
//   2. `gen_ai.evaluation.name`                       -> OTel GenAI evaluation
//   3. `annotator_kind` or `result`                   -> Phoenix
//   4. `traceId` or `sessionId`, and (`dataType`|`value`|`observationId`) -> Langfuse
//   5. `key` and (`run_id`|`feedback_source`)         -> LangSmith
//   6. `trace_id` or `name`                           -> native (its checks name what is missing)
//   otherwise unknown_shape.
FeedbackShape DetectFeedback(const Value& obj) {
  if (Has(obj, "thumbs")) return FeedbackShape::kThumbs;
  if (Has(obj, "gen_ai.evaluation.name")) return FeedbackShape::kOtelGenAi;
  if (Has(obj, "annotator_kind") || Has(obj, "result")) return FeedbackShape::kPhoenix;
  if ((Has(obj, "traceId") || Has(obj, "sessionId")) &&
      (Has(obj, "dataType") || Has(obj, "value") || Has(obj, "observationId"))) {
    return FeedbackShape::kLangfuse;
  }
  if (Has(obj, "key") && (Has(obj, "run_id") || Has(obj, "feedback_source"))) {
    return FeedbackShape::kLangSmith;
  }
  if (Has(obj, "trace_id") || Has(obj, "name")) return FeedbackShape::kNative;
  return FeedbackShape::kAuto;
}

Result<DecodedMessage> FeedbackFromDoc(std::string_view bytes, const Value& obj,
                                       FeedbackShape shape, std::string_view key = {}) {
  if (shape == FeedbackShape::kAuto) shape = DetectFeedback(obj);
  Annotation a;
  Result<void> decoded;
  switch (shape) {
    case FeedbackShape::kNative: decoded = DecodeNativeFeedback(obj, a); break;
    case FeedbackShape::kPhoenix: decoded = DecodePhoenix(obj, a); break;
    case FeedbackShape::kLangfuse: decoded = DecodeLangfuse(obj, a); break;
    case FeedbackShape::kLangSmith: decoded = DecodeLangSmith(obj, a); break;
    case FeedbackShape::kOtelGenAi: decoded = DecodeOtelEval(obj, a); break;
    case FeedbackShape::kThumbs: decoded = DecodeThumbs(obj, a); break;
    case FeedbackShape::kAuto: return Err(reason::kUnknownShape, "not a known feedback shape");
  }
  TRIAGED_TRY(std::move(decoded));
  // A session id scopes feedback to the session only when it names no trace and no span;
  // otherwise the feedback is about that trace (or span) and the session id is not kept.
  if (!a.trace_id.empty() || !a.span_id.empty()) a.session_id.clear();
  // No trace id (DESIGN §1.2): session feedback applies to the session's traces (the engine
  // finds them; the Kafka key is not consulted: it is often the session id, which may well be
  // hex); else the Kafka key when it is a trace id, else the trace that holds the span the
  // feedback names (the engine finds it); with none of these, nothing to join to.
  const bool session_scoped = a.trace_id.empty() && !a.session_id.empty();
  if (!session_scoped && a.trace_id.empty() && IsTraceIdKey(key)) {
    NormalizeId(key, a.trace_id);
  } else if (!session_scoped && a.trace_id.empty() && a.span_id.empty()) {
    return Err(
        reason::kMissingTraceId,
        std::string(shape == FeedbackShape::kLangfuse ? "traceId" : "trace_id") + " is missing");
  }
  DecodedMessage msg;
  msg.annotations.push_back(std::move(a));
  FinishMessage(bytes, msg);
  return msg;
}

Result<DecodedMessage> SpansFromDoc(std::string_view bytes, const Value& obj, SpanShape shape,
                                    const DecodeLimits& limits) {
  if (shape == SpanShape::kAuto) {
    shape = Has(obj, "resourceSpans") ? SpanShape::kOtlpJson : SpanShape::kNative;
  }
  DecodedMessage msg;
  if (shape == SpanShape::kOtlpJson) {
    TRIAGED_TRY(DecodeOtlp(obj, limits, msg));
    TRIAGED_TRY(decode::RequireEvents(msg));
  } else {
    Span span;
    TRIAGED_TRY(DecodeNativeSpan(obj, limits, span));
    msg.spans.push_back(std::move(span));
  }
  FinishMessage(bytes, msg);
  return msg;
}

// A native span, as opposed to feedback that also names a span: it has `span_id` and a
// span-only field, and none of the feedback markers.
bool LooksLikeNativeSpan(const Value& obj) {
  if (!Has(obj, "span_id")) return false;
  bool span_field = false;
  for (const char* key : {"start_time_unix_nano", "start_time", "end_time_unix_nano", "end_time",
                          "parent_span_id", "name", "attributes", "status"}) {
    span_field = span_field || Has(obj, key);
  }
  if (!span_field) return false;
  for (const char* key : kFeedbackMarkers) {
    if (Has(obj, key)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// JSON or protobuf

enum class Encoding { kJson, kProtobuf, kEither, kNeither };

// How a spans message is encoded, from its first bytes (after a byte-order mark and whitespace):
//   what a JSON value starts with (`{`, `[`, ...) -> JSON
//   0x0a, the tag of an ExportTraceServiceRequest's field 1 -> protobuf
//   0x0a, then what a JSON value starts with -> either: JSON after a newline, or a request whose
//     first resource_spans is 123 bytes long (`{`); it is JSON if it parses as JSON
//   anything else, or nothing but whitespace -> neither
Encoding DetectEncoding(std::string_view bytes) {
  const int c = FirstSignificantByte(bytes);
  if (!bytes.empty() && bytes[0] == kProtobufStart) {
    return StartsJson(c) ? Encoding::kEither : Encoding::kProtobuf;
  }
  return StartsJson(c) ? Encoding::kJson : Encoding::kNeither;
}

Error Neither(std::string_view bytes) {
  const int c = FirstSignificantByte(bytes);
  return Err(reason::kInvalidJson, c < 0 ? "neither JSON nor OTLP protobuf: the message is empty"
                                         : "neither JSON nor OTLP protobuf: it starts with byte " +
                                               HexByte(c) +
                                               " (JSON starts with '{', OTLP protobuf with 0x0a)");
}

// A spans message of either encoding: `from_json` decodes the parsed JSON document.
template <typename FromJson>
Result<DecodedMessage> JsonOrProtobuf(std::string_view bytes, const DecodeLimits& limits,
                                      FromJson from_json) {
  TRIAGED_TRY(decode::CheckSize(bytes, limits));
  const Encoding encoding = DetectEncoding(bytes);
  if (encoding == Encoding::kNeither) return Neither(bytes);
  if (encoding == Encoding::kProtobuf) return decode::DecodeOtlpProto(bytes, limits);
  rapidjson::Document doc;
  Result<void> parsed = Parse(bytes, limits, doc);
  if (parsed.ok()) return from_json(doc);
  if (encoding == Encoding::kJson || parsed.error().reason == reason::kNotAnObject ||
      parsed.error().reason == reason::kTooLarge) {
    return std::move(parsed).error();
  }
  if (Result<void> wire = decode::CheckOtlpProtoWire(bytes, limits); !wire.ok()) {
    if (wire.error().reason != reason::kInvalidProtobuf) return wire.error();  // too_deep
    return Err(reason::kInvalidJson, "neither JSON (" + parsed.error().message +
                                         ") nor OTLP protobuf (" + wire.error().message + ")");
  }
  return decode::DecodeOtlpProto(bytes, limits);
}

}  // namespace

bool NormalizeId(std::string_view in, std::string& out) {
  if (in.empty() || in.size() > 128) return false;
  // Eight bytes at a time, without a branch per byte (ids are 16 to 32 bytes, three a span):
  // whether any byte is outside printable ASCII (0x20-0x7e), and each upper-case byte lowered.
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  char id[128];
  uint64_t bad = 0;
  size_t i = 0;
  for (; i + 8 <= in.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, in.data() + i, 8);
    bad |= ((w - 0x20 * kOnes) & ~w) | (w + kOnes) | w;  // a byte below 0x20, or above 0x7e
    // Once every byte is below 0x80 no sum carries into the next byte: the high bit of b + 0x3f
    // is set from 'A' on, that of b + 0x25 from '[' on.
    const uint64_t upper = ((w + 0x3f * kOnes) ^ (w + 0x25 * kOnes)) & kHigh;
    w |= upper >> 2;  // 0x20, the case bit
    std::memcpy(id + i, &w, 8);
  }
  if ((bad & kHigh) != 0) return false;
  for (; i < in.size(); ++i) {
    const char c = in[i];
    if (c < 0x20 || c > 0x7e) return false;
    id[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  out.assign(id, in.size());  // into the storage `out` already has
  return true;
}

Result<DecodedMessage> DecodeSpans(std::string_view bytes, SpanShape shape,
                                   const DecodeLimits& limits) {
  if (shape == SpanShape::kOtlpProto) {
    // A JSON object is never mistaken for a request (whose first tag would be group 15): say so.
    if (const int c = FirstSignificantByte(bytes);
        !bytes.empty() && bytes[0] != kProtobufStart && (c == '{' || c == '[')) {
      return Err(reason::kInvalidProtobuf,
                 "not OTLP protobuf but JSON (it starts with '" +
                     std::string(1, static_cast<char>(c)) +
                     "'), and the input's format is otlp_proto: use otlp_json or auto for JSON");
    }
    return decode::DecodeOtlpProto(bytes, limits);
  }
  const decode::onepass::Want want = shape == SpanShape::kAuto ? decode::onepass::Want::kSpans
                                     : shape == SpanShape::kNative
                                         ? decode::onepass::Want::kNativeSpan
                                         : decode::onepass::Want::kOtlpSpans;
  if (std::optional<DecodedMessage> msg =
          decode::onepass::Decode(bytes, want, FeedbackShape::kAuto, {}, limits)) {
    return std::move(*msg);
  }
  if (shape == SpanShape::kAuto) {
    return JsonOrProtobuf(bytes, limits, [&](const rapidjson::Document& doc) {
      return SpansFromDoc(bytes, doc, SpanShape::kAuto, limits);
    });
  }
  rapidjson::Document doc;
  TRIAGED_TRY(Parse(bytes, limits, doc));
  return SpansFromDoc(bytes, doc, shape, limits);
}

Result<DecodedMessage> DecodeFeedback(std::string_view bytes, FeedbackShape shape,
                                      const DecodeLimits& limits) {
  return DecodeFeedbackKeyed(bytes, {}, shape, limits);
}

Result<DecodedMessage> DecodeFeedbackKeyed(std::string_view bytes, std::string_view key,
                                           FeedbackShape shape, const DecodeLimits& limits) {
  if (std::optional<DecodedMessage> msg =
          decode::onepass::Decode(bytes, decode::onepass::Want::kFeedback, shape, key, limits)) {
    return std::move(*msg);
  }
  rapidjson::Document doc;
  TRIAGED_TRY(Parse(bytes, limits, doc));
  return FeedbackFromDoc(bytes, doc, shape, key);
}

// Auto-detection for messages of unknown origin:
//   0. OTLP protobuf, told from JSON as DecodeSpans tells it (DetectEncoding)
//   1. `resourceSpans`                       -> OTLP/JSON spans
//   2. LooksLikeNativeSpan (span_id + a span field, no feedback marker) -> native span
//   3. otherwise the feedback detection (DetectFeedback), else unknown_shape.
Result<DecodedMessage> DecodeAny(std::string_view bytes, const DecodeLimits& limits) {
  if (std::optional<DecodedMessage> msg = decode::onepass::Decode(
          bytes, decode::onepass::Want::kAny, FeedbackShape::kAuto, {}, limits)) {
    return std::move(*msg);
  }
  return JsonOrProtobuf(bytes, limits, [&](const rapidjson::Document& doc) {
    if (Has(doc, "resourceSpans")) return SpansFromDoc(bytes, doc, SpanShape::kOtlpJson, limits);
    if (LooksLikeNativeSpan(doc)) return SpansFromDoc(bytes, doc, SpanShape::kNative, limits);
    return FeedbackFromDoc(bytes, doc, FeedbackShape::kAuto);
  });
}

}  // namespace triaged
