// OTLP protobuf -> spans and annotations, mapped as decode.cc maps OTLP/JSON (DESIGN §1.1).
//
// Two passes. A scan of the wire format, without recursion, refuses malformed bytes with where
// they break and nesting past the depth limit, before protobuf's (recursive) parser runs; then
// the parsed request is walked like the JSON one, into the post-processing both encodings share
// (rules/decode_common.h). Field names in error messages are the .proto's (snake_case).
#include "rules/decode_otlp_proto.h"

#include <google/protobuf/io/coded_stream.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "rules/decode_common.h"
#include "rules/proto/otlp_trace_service.pb.h"

namespace triaged::decode {
namespace {

namespace common = opentelemetry::proto::common::v1;
namespace trace = opentelemetry::proto::trace::v1;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// The deepest nesting protobuf's (recursive) parser is let to follow, whatever max_depth says.
constexpr int kParserDepth = 512;

Error Invalid(std::string what) {
  return Err(reason::kInvalidProtobuf, "not a valid OTLP protobuf request: " + std::move(what));
}

// ---------------------------------------------------------------------------------------------
// The wire scan

// The messages of rules/proto/*.proto that hold other messages, and which fields hold which:
// all the scan needs to know of the schema to follow the nesting.
enum class Msg : uint8_t {
  kOther,  // a scalar, text, an unknown field's contents
  kRequest,
  kResourceSpans,
  kResource,
  kScopeSpans,
  kScope,
  kSpan,
  kEvent,
  kKeyValue,
  kAnyValue,
  kArrayValue,
  kKeyValueList,
};

struct Nested {
  Msg parent;
  uint32_t field;
  Msg child;
  bool repeated;
};

constexpr Nested kNested[] = {
    {Msg::kRequest, 1, Msg::kResourceSpans, true},        // resource_spans
    {Msg::kResourceSpans, 1, Msg::kResource, false},      // resource
    {Msg::kResourceSpans, 2, Msg::kScopeSpans, true},     // scope_spans
    {Msg::kResourceSpans, 1000, Msg::kScopeSpans, true},  // instrumentation_library_spans
    {Msg::kResource, 1, Msg::kKeyValue, true},            // attributes
    {Msg::kScopeSpans, 1, Msg::kScope, false},            // scope
    {Msg::kScopeSpans, 2, Msg::kSpan, true},              // spans
    {Msg::kScope, 3, Msg::kKeyValue, true},               // attributes
    {Msg::kSpan, 9, Msg::kKeyValue, true},                // attributes
    {Msg::kSpan, 11, Msg::kEvent, true},                  // events
    {Msg::kSpan, 15, Msg::kOther, false},                 // status: no messages inside
    {Msg::kEvent, 3, Msg::kKeyValue, true},               // attributes
    {Msg::kKeyValue, 2, Msg::kAnyValue, false},           // value
    {Msg::kAnyValue, 5, Msg::kArrayValue, false},         // array_value
    {Msg::kAnyValue, 6, Msg::kKeyValueList, false},       // kvlist_value
    {Msg::kArrayValue, 1, Msg::kAnyValue, true},          // values
    {Msg::kKeyValueList, 1, Msg::kKeyValue, true},        // values
};

const Nested* FindNested(Msg parent, uint32_t field) {
  for (const Nested& n : kNested) {
    if (n.parent == parent && n.field == field) return &n;
  }
  return nullptr;
}

bool ReadVarint(std::string_view bytes, size_t end, size_t& pos, uint64_t& out) {
  out = 0;
  for (int shift = 0; shift < 64 && pos < end; shift += 7) {
    const auto b = static_cast<uint8_t>(bytes[pos++]);
    out |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// What protobuf's parser would refuse, said with its byte offset, and nesting deeper than
// `max_depth` (too_deep) counted as in the request's OTLP/JSON form: every message and every
// repeated field is a level, so that one limit means the same in both encodings. Groups (wire
// types 3 and 4, which OTLP never uses) are skipped as protobuf skips them, counted as a level.
Result<void> ScanWire(std::string_view bytes, int max_depth) {
  struct Frame {
    size_t end;
    Msg type;
    int depth;
    uint32_t group;  // the field number of an open group, else 0
  };
  const auto too_deep = [max_depth] {
    return Err(reason::kTooDeep, "nesting deeper than " + std::to_string(max_depth) + " levels");
  };
  if (max_depth < 1) return too_deep();
  std::vector<Frame> stack{{bytes.size(), Msg::kRequest, 1, 0}};
  size_t pos = 0;
  while (true) {
    const Frame top = stack.back();
    if (pos == top.end) {
      if (top.group != 0) {
        return Invalid("the group of field " + std::to_string(top.group) + " is never closed");
      }
      if (stack.size() == 1) return {};
      stack.pop_back();
      continue;
    }
    const size_t at = pos;
    const auto where = [at] { return " at byte " + std::to_string(at); };  // for errors only
    uint64_t tag = 0;
    if (!ReadVarint(bytes, top.end, pos, tag) || tag > std::numeric_limits<uint32_t>::max()) {
      return Invalid("a field tag is not a valid varint" + where());
    }
    const auto field = static_cast<uint32_t>(tag >> 3);
    if (field == 0) return Invalid("field number 0" + where());
    const auto name = [&] { return "field " + std::to_string(field) + where(); };
    switch (tag & 7) {
      case 0: {  // varint
        uint64_t ignored = 0;
        if (!ReadVarint(bytes, top.end, pos, ignored))
          return Invalid(name() + ": its value is not a valid varint");
        break;
      }
      case 1:  // fixed64
      case 5:  // fixed32
      {
        const size_t n = (tag & 7) == 1 ? 8 : 4;
        if (top.end - pos < n) return Invalid(name() + ": its value is cut short");
        pos += n;
        break;
      }
      case 2: {  // length-delimited: a nested message, text, bytes or an unknown field
        uint64_t length = 0;
        if (!ReadVarint(bytes, top.end, pos, length))
          return Invalid(name() + ": its length is not a valid varint");
        if (length > top.end - pos) {
          return Invalid(name() + ": its length of " + std::to_string(length) +
                         " bytes runs past " +
                         (stack.size() == 1 ? "the message" : "its enclosing message") + " (" +
                         std::to_string(top.end - pos) + " bytes left)");
        }
        const Nested* nested = top.group == 0 ? FindNested(top.type, field) : nullptr;
        if (nested == nullptr) {
          pos += length;
          break;
        }
        const int depth = top.depth + (nested->repeated ? 2 : 1);
        if (depth > max_depth) return too_deep();
        stack.push_back({pos + length, nested->child, depth, 0});
        break;
      }
      case 3: {  // start of a group
        if (top.depth + 1 > max_depth) return too_deep();
        stack.push_back({top.end, Msg::kOther, top.depth + 1, field});
        break;
      }
      case 4:  // end of a group
        if (top.group != field)
          return Invalid("an end-group tag of " + name() + " without its start");
        stack.pop_back();
        break;
      default:
        return Invalid(name() + ": wire type " + std::to_string(tag & 7) + " does not exist");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Values

Result<void> Text(const std::string& value, const std::string& field) {
  if (!ValidUtf8(value)) return Invalid(field + " is not valid UTF-8");
  return {};
}

// Standard, padded base64: bytes_value as proto3's JSON mapping (and so OTLP/JSON) spells it.
std::string Base64(const std::string& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    const size_t n = std::min<size_t>(3, in.size() - i);
    uint32_t chunk = 0;
    for (size_t k = 0; k < 3; ++k) {
      chunk = chunk << 8 | (k < n ? static_cast<uint8_t>(in[i + k]) : 0u);
    }
    for (size_t k = 0; k < 4; ++k) {
      out.push_back(k <= n ? kAlphabet[(chunk >> (18 - 6 * k)) & 0x3f] : '=');
    }
  }
  return out;
}

// A double as an attribute value; the non-finite ones as proto3 JSON spells them, so the rule
// language never sees a NaN (the OTLP/JSON decoder keeps those spellings as text too).
AttrValue DoubleAttr(double d) {
  if (std::isfinite(d)) return AttrValue::Number(d);
  if (std::isnan(d)) return AttrValue::String("NaN");
  return AttrValue::String(d > 0 ? "Infinity" : "-Infinity");
}

// A double as the OTLP/JSON decoder re-serializes the proto3 JSON of it: an integral value is
// written without a fraction by proto3 JSON, and RapidJSON reads that back as an integer.
void WriteDouble(double d, JsonWriter& w) {
  if (!std::isfinite(d)) {
    const AttrValue spelled = DoubleAttr(d);
    w.String(spelled.s.c_str());
  } else if (d == std::floor(d) && d >= -0x1p63 && d < 0x1p63) {  // -0 too: proto3 JSON's "-0"
    w.Int64(static_cast<int64_t>(d));
  } else if (d == std::floor(d) && d >= 0x1p63 && d < 0x1p64) {
    w.Uint64(static_cast<uint64_t>(d));
  } else {
    w.Double(d);
  }
}

Result<void> WriteKeyValueList(const common::KeyValueList& list, const std::string& field,
                               JsonWriter& w);

// proto3 JSON of an AnyValue (lowerCamelCase names, int64 as a decimal string, bytes as base64).
Result<void> WriteAnyValue(const common::AnyValue& v, const std::string& field, JsonWriter& w) {
  w.StartObject();
  switch (v.value_case()) {
    case common::AnyValue::kStringValue:
      TRIAGED_TRY(Text(v.string_value(), field + ".string_value"));
      w.Key("stringValue");
      w.String(v.string_value().data(), static_cast<rapidjson::SizeType>(v.string_value().size()));
      break;
    case common::AnyValue::kBoolValue:
      w.Key("boolValue");
      w.Bool(v.bool_value());
      break;
    case common::AnyValue::kIntValue:
      w.Key("intValue");
      w.String(std::to_string(v.int_value()).c_str());
      break;
    case common::AnyValue::kDoubleValue:
      w.Key("doubleValue");
      WriteDouble(v.double_value(), w);
      break;
    case common::AnyValue::kArrayValue: {
      w.Key("arrayValue");
      w.StartObject();
      const auto& values = v.array_value().values();
      if (!values.empty()) {
        w.Key("values");
        w.StartArray();
        for (int i = 0; i < values.size(); ++i) {
          TRIAGED_TRY(WriteAnyValue(values[i],
                                    field + ".array_value.values[" + std::to_string(i) + "]", w));
        }
        w.EndArray();
      }
      w.EndObject();
      break;
    }
    case common::AnyValue::kKvlistValue:
      w.Key("kvlistValue");
      TRIAGED_TRY(WriteKeyValueList(v.kvlist_value(), field + ".kvlist_value", w));
      break;
    case common::AnyValue::kBytesValue:
      w.Key("bytesValue");
      w.String(Base64(v.bytes_value()).c_str());
      break;
    case common::AnyValue::VALUE_NOT_SET: break;
  }
  w.EndObject();
  return {};
}

Result<void> WriteKeyValueList(const common::KeyValueList& list, const std::string& field,
                               JsonWriter& w) {
  w.StartObject();
  if (!list.values().empty()) {
    w.Key("values");
    w.StartArray();
    for (int i = 0; i < list.values().size(); ++i) {
      const common::KeyValue& kv = list.values()[i];
      const std::string kv_field = field + ".values[" + std::to_string(i) + "]";
      TRIAGED_TRY(Text(kv.key(), kv_field + ".key"));
      w.StartObject();
      w.Key("key");
      w.String(kv.key().data(), static_cast<rapidjson::SizeType>(kv.key().size()));
      if (kv.has_value()) {
        w.Key("value");
        TRIAGED_TRY(WriteAnyValue(kv.value(), kv_field + ".value", w));
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return {};
}

// A kvlist inside an array cannot flatten into keys: it is kept as the compact JSON text of its
// proto3 JSON form, the text the OTLP/JSON decoder keeps of the same kvlist.
Result<AttrValue> KeyValueListText(const common::KeyValueList& list, const std::string& field) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  TRIAGED_TRY(WriteKeyValueList(list, field, w));
  return AttrValue::String(std::string(buf.GetString(), buf.GetSize()));
}

// One AnyValue, as OtlpAnyValue reads its JSON form. kvlist_value is flattened by the caller.
Result<void> AnyValueAttr(const common::AnyValue& any, const std::string& field, AttrValue& out) {
  switch (any.value_case()) {
    case common::AnyValue::kStringValue:
      TRIAGED_TRY(Text(any.string_value(), field + ".string_value"));
      out = AttrValue::String(any.string_value());
      return {};
    case common::AnyValue::kBoolValue: out = AttrValue::Bool(any.bool_value()); return {};
    case common::AnyValue::kIntValue:
      out = AttrValue::Number(static_cast<double>(any.int_value()));
      return {};
    case common::AnyValue::kDoubleValue: out = DoubleAttr(any.double_value()); return {};
    case common::AnyValue::kArrayValue: {
      const auto& values = any.array_value().values();
      std::vector<AttrValue> items;
      items.reserve(static_cast<size_t>(values.size()));
      for (int i = 0; i < values.size(); ++i) {
        const std::string item_field = field + ".array_value.values[" + std::to_string(i) + "]";
        if (values[i].has_kvlist_value()) {
          TRIAGED_ASSIGN_OR_RETURN(AttrValue text, KeyValueListText(values[i].kvlist_value(),
                                                                    item_field + ".kvlist_value"));
          items.push_back(std::move(text));
          continue;
        }
        AttrValue item;
        TRIAGED_TRY(AnyValueAttr(values[i], item_field, item));
        items.push_back(std::move(item));
      }
      out = AttrValue::Array(std::move(items));
      return {};
    }
    case common::AnyValue::kKvlistValue:
      return Err(reason::kWrongType, field + " kvlist_value is not allowed here");
    case common::AnyValue::kBytesValue:
      out = AttrValue::String(Base64(any.bytes_value()));
      return {};
    case common::AnyValue::VALUE_NOT_SET: out = AttrValue::Null(); return {};
  }
  out = AttrValue::Null();
  return {};
}

// A list of KeyValue, as OtlpKeyValues reads its JSON form: kvlist_value flattens into
// `key.subkey`, and the attribute limit applies as entries are added.
Result<void> KeyValues(const google::protobuf::RepeatedPtrField<common::KeyValue>& list,
                       const std::string& prefix, const DecodeLimits& limits,
                       const std::string& field, Attributes& out) {
  for (int i = 0; i < list.size(); ++i) {
    const common::KeyValue& kv = list[i];
    const std::string kv_field = field + "[" + std::to_string(i) + "]";
    TRIAGED_TRY(Text(kv.key(), kv_field + ".key"));
    std::string key = prefix.empty() ? kv.key() : prefix + "." + kv.key();
    if (kv.has_value() && kv.value().has_kvlist_value()) {
      TRIAGED_TRY(KeyValues(kv.value().kvlist_value().values(), key, limits,
                            kv_field + ".value.kvlist_value.values", out));
      continue;
    }
    AttrValue attr;
    if (kv.has_value()) TRIAGED_TRY(AnyValueAttr(kv.value(), kv_field + ".value", attr));
    out.emplace_back(std::move(key), std::move(attr));
    TRIAGED_TRY(CheckAttributeCount(out, limits, field));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Spans

// An id of `size` bytes as lowercase hex. Empty is absent (`missing_reason` when required);
// another length, or all zeros (OTLP's invalid id), is invalid_value.
Result<void> Id(const std::string& bytes, size_t size, const std::string& field, bool required,
                const char* missing_reason, std::string& out) {
  out.clear();
  if (bytes.empty()) {
    if (required) return Err(missing_reason, field + " is missing");
    return {};
  }
  if (bytes.size() != size) {
    return Err(reason::kInvalidValue, field + " must be " + std::to_string(size) + " bytes, not " +
                                          std::to_string(bytes.size()));
  }
  if (std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; })) {
    return Err(reason::kInvalidValue, field + " is all zeros, which OTLP reserves for no id");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(2 * size);
  for (char c : bytes) {
    out.push_back(kHex[static_cast<uint8_t>(c) >> 4]);
    out.push_back(kHex[static_cast<uint8_t>(c) & 0xf]);
  }
  return {};
}

// Unix nanoseconds; 0 is proto3's "not set".
Result<void> Nanos(uint64_t n, const std::string& field, std::optional<int64_t>& out) {
  out.reset();
  if (n == 0) return {};
  const int64_t ns = n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                         ? std::numeric_limits<int64_t>::max()
                         : static_cast<int64_t>(n);
  TRIAGED_TRY(CheckTimeRange(ns, field));
  out = ns;
  return {};
}

Result<void> EvaluationEvent(const trace::Span::Event& event, const Span& span,
                             const std::string& where, const DecodeLimits& limits, Annotation& a) {
  std::optional<int64_t> time;
  TRIAGED_TRY(Nanos(event.time_unix_nano(), where + ".time_unix_nano", time));
  Attributes attrs;
  TRIAGED_TRY(KeyValues(event.attributes(), "", limits, where + ".attributes", attrs));
  return EvaluationAnnotation(span, time, attrs, where, a);
}

Result<void> DecodeSpan(const trace::Span& sp, const std::string& where, const Attributes& resource,
                        const DecodeLimits& limits, DecodedMessage& msg) {
  Span span;
  TRIAGED_TRY(
      Id(sp.trace_id(), 16, where + ".trace_id", true, reason::kMissingTraceId, span.trace_id));
  TRIAGED_TRY(Id(sp.span_id(), 8, where + ".span_id", true, reason::kMissingField, span.span_id));
  // An all-zero parent is how a root is written by producers that hold ids as fixed arrays.
  const std::string& parent = sp.parent_span_id();
  if (!std::all_of(parent.begin(), parent.end(), [](char c) { return c == 0; })) {
    TRIAGED_TRY(Id(parent, 8, where + ".parent_span_id", false, reason::kMissingField,
                   span.parent_span_id));
  }
  TRIAGED_TRY(Text(sp.name(), where + ".name"));
  span.name = sp.name();
  const std::string start_field = where + ".start_time_unix_nano";
  const std::string end_field = where + ".end_time_unix_nano";
  TRIAGED_TRY(Nanos(sp.start_time_unix_nano(), start_field, span.start_ns));
  TRIAGED_TRY(Nanos(sp.end_time_unix_nano(), end_field, span.end_ns));
  TRIAGED_TRY(CheckSpanTimes(span, start_field, end_field));
  if (sp.has_status()) {
    if (!StatusFromCode(sp.status().code(), span.status)) {
      return Err(reason::kInvalidValue, where + ".status.code must be 0, 1 or 2");
    }
    TRIAGED_TRY(Text(sp.status().message(), where + ".status.message"));
    span.status_message = sp.status().message();
  }
  TRIAGED_TRY(KeyValues(sp.attributes(), "", limits, where + ".attributes", span.attributes));
  for (int i = 0; i < sp.events().size(); ++i) {
    const trace::Span::Event& event = sp.events()[i];
    if (event.name() != kEvaluationEvent) continue;
    Annotation a;
    TRIAGED_TRY(
        EvaluationEvent(event, span, where + ".events[" + std::to_string(i) + "]", limits, a));
    msg.annotations.push_back(std::move(a));
  }
  AddOtlpSpan(std::move(span), resource, msg);
  return {};
}

Result<void> DecodeRequest(const ExportTraceServiceRequest& request, const DecodeLimits& limits,
                           DecodedMessage& msg) {
  for (int r = 0; r < request.resource_spans().size(); ++r) {
    const trace::ResourceSpans& rs = request.resource_spans()[r];
    const std::string rs_where = "resource_spans[" + std::to_string(r) + "]";
    Attributes resource;
    TRIAGED_TRY(KeyValues(rs.resource().attributes(), "", limits, rs_where + ".resource.attributes",
                          resource));
    // instrumentation_library_spans is the pre-1.0 field of scope_spans.
    for (const auto* scopes : {&rs.scope_spans(), &rs.instrumentation_library_spans()}) {
      const std::string scope_key =
          scopes == &rs.scope_spans() ? ".scope_spans[" : ".instrumentation_library_spans[";
      for (int s = 0; s < scopes->size(); ++s) {
        const std::string ss_where = rs_where + scope_key + std::to_string(s) + "]";
        const auto& spans = (*scopes)[s].spans();
        for (int i = 0; i < spans.size(); ++i) {
          TRIAGED_TRY(DecodeSpan(spans[i], ss_where + ".spans[" + std::to_string(i) + "]", resource,
                                 limits, msg));
        }
      }
    }
  }
  return {};
}

}  // namespace

Result<void> CheckOtlpProtoWire(std::string_view bytes, const DecodeLimits& limits) {
  TRIAGED_TRY(CheckSize(bytes, limits));
  return ScanWire(bytes, limits.max_depth);
}

Result<DecodedMessage> DecodeOtlpProto(std::string_view bytes, const DecodeLimits& limits) {
  TRIAGED_TRY(CheckOtlpProtoWire(bytes, limits));
  // The scan bounds the nesting by max_depth, so the parser's own limit (100 by default) is
  // raised to it if need be, never met; but the parser recurses, so not past kParserDepth.
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetRecursionLimit(std::clamp(limits.max_depth, in.GetDefaultRecursionLimit(), kParserDepth));
  ExportTraceServiceRequest request;
  if (!request.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    return Invalid("protobuf's parser refuses it (nested more than " +
                   std::to_string(kParserDepth) + " messages deep?)");
  }
  DecodedMessage msg;
  TRIAGED_TRY(DecodeRequest(request, limits, msg));
  TRIAGED_TRY(RequireEvents(msg));
  FinishMessage(bytes, msg);
  return msg;
}

}  // namespace triaged::decode
