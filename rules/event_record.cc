#include "rules/event_record.h"

#include <rapidjson/document.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <utility>

#include "rules/decode_common.h"
#include "rules/wire.h"

namespace triaged {
namespace {

using rapidjson::Value;

constexpr std::string_view kSchemaV1 = "triaged.events/v1";

Error Invalid(std::string what) {
  return MakeError("invalid_event_record", "not a triaged.events record: " + std::move(what));
}

// A JSON object and nothing else (metadata, annotator): the routed item writes them as they are.
bool IsJsonObject(std::string_view json) {
  if (json.empty() || json.front() != '{') return false;  // compact, as the decoders write it
  rapidjson::MemoryStream ms(json.data(), json.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  rapidjson::BaseReaderHandler<> ignore;
  rapidjson::Reader reader;
  return !reader
              .Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(in,
                                                                                             ignore)
              .IsError();
}

// ---------------------------------------------------------------------------------------------
// v2, binary. After the magic:
//   message    := varint flags (1: event time), [i64 event time], varint span_lookups,
//                 varint n, span*n, varint n, annotation*n
//   span       := varint flags (SpanField), byte status, string trace_id, span_id,
//                 parent_span_id, name, status_message, kind, [i64 start], [i64 end],
//                 attrs attributes, attrs resource, [string model, input, output, session_id,
//                 user_id, prompt_version], [f64 input_tokens, output_tokens, retry_count],
//                 varint bytes
//   annotation := varint flags (AnnotationField), string trace_id, span_id, name, session_id,
//                 metadata, annotator, [f64 score], [string label, explanation, source],
//                 [i64 timestamp], [string id, expected_output], [i64 schema_version],
//                 varint bytes
//   attrs      := varint n, (string key, value)*n
//   value      := byte kind (0 null, 1 false, 2 true, 3 f64, 4 string, 5 array: varint n, value*n)
//   string     := varint length, UTF-8 bytes; i64, f64 := 8 bytes, little-endian
// [x] is present when its flag is set. A record must end where its last annotation does.

constexpr char kMagicBytes[] = {'\0', 'T', 'E', '\2'};
constexpr std::string_view kMagic(kMagicBytes, sizeof kMagicBytes);

enum SpanField : uint32_t {
  kStart = 1u << 0,
  kEnd = 1u << 1,
  kModel = 1u << 2,
  kInput = 1u << 3,
  kOutput = 1u << 4,
  kSessionId = 1u << 5,
  kUserId = 1u << 6,
  kPromptVersion = 1u << 7,
  kInputTokens = 1u << 8,
  kOutputTokens = 1u << 9,
  kRetryCount = 1u << 10,
};

enum AnnotationField : uint32_t {
  kScore = 1u << 0,
  kLabel = 1u << 1,
  kExplanation = 1u << 2,
  kSource = 1u << 3,
  kTimestamp = 1u << 4,
  kId = 1u << 5,
  kExpectedOutput = 1u << 6,
  kSchemaVersion = 1u << 7,
};

enum ValueKind : uint8_t { kNull, kFalse, kTrue, kNumber, kString, kArray };

constexpr int kMaxValueDepth = 64;

// The record's numbers are the 8 bytes of an int64 or an IEEE 754 double, little-endian.
static_assert(std::endian::native == std::endian::little);

class Out : public WireWriter {
 public:
  using WireWriter::WireWriter;

  template <typename T>
  void Opt(const std::optional<T>& v) {
    if (!v) return;
    if constexpr (std::is_same_v<T, std::string>) {
      Str(*v);
    } else {
      Raw(*v);
    }
  }
};

// Numbers that are not finite are not written: no decoder makes one, and JSON (the routed item)
// has no spelling for them.
bool Finite(const std::optional<double>& v) { return v && std::isfinite(*v); }

void WriteValue(Out& out, const AttrValue& v) {
  switch (v.kind) {
    case AttrValue::Kind::kNull: out.Byte(kNull); break;
    case AttrValue::Kind::kBool: out.Byte(v.b ? kTrue : kFalse); break;
    case AttrValue::Kind::kNumber:
      if (std::isfinite(v.n)) {
        out.Byte(kNumber);
        out.Raw(v.n);
      } else {
        out.Byte(kNull);
      }
      break;
    case AttrValue::Kind::kString:
      out.Byte(kString);
      out.Str(v.s);
      break;
    case AttrValue::Kind::kArray:
      out.Byte(kArray);
      out.Varint(v.items.size());
      for (const AttrValue& item : v.items) WriteValue(out, item);
      break;
  }
}

void WriteAttributes(Out& out, const Attributes& attrs) {
  out.Varint(attrs.size());
  for (const auto& [k, v] : attrs) {
    out.Str(k);
    WriteValue(out, v);
  }
}

void WriteSpan(Out& out, const Span& s) {
  uint32_t flags = 0;
  const auto set = [&](bool present, uint32_t bit) { flags |= present ? bit : 0; };
  set(s.start_ns.has_value(), kStart);
  set(s.end_ns.has_value(), kEnd);
  set(s.model.has_value(), kModel);
  set(s.input.has_value(), kInput);
  set(s.output.has_value(), kOutput);
  set(s.session_id.has_value(), kSessionId);
  set(s.user_id.has_value(), kUserId);
  set(s.prompt_version.has_value(), kPromptVersion);
  set(Finite(s.input_tokens), kInputTokens);
  set(Finite(s.output_tokens), kOutputTokens);
  set(Finite(s.retry_count), kRetryCount);
  out.Varint(flags);
  out.Byte(static_cast<uint8_t>(s.status));
  out.Str(s.trace_id);
  out.Str(s.span_id);
  out.Str(s.parent_span_id);
  out.Str(s.name);
  out.Str(s.status_message);
  out.Str(s.kind);
  out.Opt(s.start_ns);
  out.Opt(s.end_ns);
  WriteAttributes(out, s.attributes);
  WriteAttributes(out, s.resource);
  out.Opt(s.model);
  out.Opt(s.input);
  out.Opt(s.output);
  out.Opt(s.session_id);
  out.Opt(s.user_id);
  out.Opt(s.prompt_version);
  if (flags & kInputTokens) out.Raw(*s.input_tokens);
  if (flags & kOutputTokens) out.Raw(*s.output_tokens);
  if (flags & kRetryCount) out.Raw(*s.retry_count);
  out.Varint(s.bytes);
}

void WriteAnnotation(Out& out, const Annotation& a) {
  uint32_t flags = 0;
  const auto set = [&](bool present, uint32_t bit) { flags |= present ? bit : 0; };
  set(Finite(a.score), kScore);
  set(a.label.has_value(), kLabel);
  set(a.explanation.has_value(), kExplanation);
  set(a.source.has_value(), kSource);
  set(a.timestamp_ns.has_value(), kTimestamp);
  set(a.id.has_value(), kId);
  set(a.expected_output.has_value(), kExpectedOutput);
  set(a.schema_version.has_value(), kSchemaVersion);
  out.Varint(flags);
  out.Str(a.trace_id);
  out.Str(a.span_id);
  out.Str(a.name);
  out.Str(a.session_id);
  // The decoders make both compact JSON of an object; anything else (a hand-built annotation)
  // would break the routed item, so it is not carried.
  out.Str(a.metadata_json == "{}" || IsJsonObject(a.metadata_json) ? a.metadata_json : "{}");
  out.Str(a.annotator_json.empty() || IsJsonObject(a.annotator_json) ? a.annotator_json : "");
  if (flags & kScore) out.Raw(*a.score);
  out.Opt(a.label);
  out.Opt(a.explanation);
  out.Opt(a.source);
  out.Opt(a.timestamp_ns);
  out.Opt(a.id);
  out.Opt(a.expected_output);
  out.Opt(a.schema_version);
  out.Varint(a.bytes);
}

// Reads a v2 record; the first failure is kept, and every read after it fails too.
class In {
 public:
  explicit In(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool ok() const { return error_ == nullptr; }
  const char* error() const { return error_; }
  bool at_end() const { return p_ == end_; }
  bool Fail(const char* what) {
    if (error_ == nullptr) error_ = what;
    return false;
  }

  bool Byte(uint8_t& b) {
    if (!ok() || p_ == end_) return Fail("it ends early");
    b = static_cast<uint8_t>(*p_++);
    return true;
  }
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(b)) return false;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return Fail("a varint is too long");
  }
  // A count of things each at least one byte long: never more than the bytes left.
  bool Count(size_t& n) {
    uint64_t v;
    if (!Varint(v)) return false;
    if (v > static_cast<uint64_t>(end_ - p_)) return Fail("a count is larger than the record");
    n = static_cast<size_t>(v);
    return true;
  }
  template <typename T>
  bool Raw(T& v) {
    if (!ok() || end_ - p_ < static_cast<ptrdiff_t>(sizeof v)) return Fail("it ends early");
    std::memcpy(&v, p_, sizeof v);
    p_ += sizeof v;
    if constexpr (std::is_same_v<T, double>) {
      if (!std::isfinite(v)) return Fail("a number is not finite");
    }
    return true;
  }
  bool Str(std::string& out) {
    size_t n;
    if (!Count(n)) return false;
    const std::string_view text(p_, n);
    if (!decode::ValidUtf8(text)) return Fail("a string is not valid UTF-8");
    out.assign(text);
    p_ += n;
    return true;
  }
  template <typename T>
  bool Opt(uint32_t flags, uint32_t bit, std::optional<T>& out) {
    if ((flags & bit) == 0) return ok();
    T v{};
    bool read;
    if constexpr (std::is_same_v<T, std::string>) {
      read = Str(v);
    } else {
      read = Raw(v);
    }
    if (read) out = std::move(v);
    return read;
  }
  bool Flags(uint32_t& flags, uint32_t known) {
    uint64_t v;
    if (!Varint(v)) return false;
    if ((v & ~static_cast<uint64_t>(known)) != 0) return Fail("it sets an unknown field");
    flags = static_cast<uint32_t>(v);
    return true;
  }

 private:
  const char* p_;
  const char* end_;
  const char* error_ = nullptr;
};

// Room for a count read from the record: what it holds grows as it is read, so a count that
// lies costs no more memory than the bytes that follow it.
size_t Reserve(size_t n) { return std::min<size_t>(n, 64); }

bool ReadValue(In& in, AttrValue& out, int depth) {
  if (depth > kMaxValueDepth) return in.Fail("attribute values nest too deep");
  uint8_t kind;
  if (!in.Byte(kind)) return false;
  switch (kind) {
    case kNull: out = AttrValue::Null(); return true;
    case kFalse: out = AttrValue::Bool(false); return true;
    case kTrue: out = AttrValue::Bool(true); return true;
    case kNumber: {
      double d;
      if (!in.Raw(d)) return false;
      out = AttrValue::Number(d);
      return true;
    }
    case kString: {
      std::string s;
      if (!in.Str(s)) return false;
      out = AttrValue::String(std::move(s));
      return true;
    }
    case kArray: {
      size_t n;
      if (!in.Count(n)) return false;
      std::vector<AttrValue> items;
      items.reserve(Reserve(n));
      for (size_t i = 0; i < n; ++i) {
        if (!ReadValue(in, items.emplace_back(), depth + 1)) return false;
      }
      out = AttrValue::Array(std::move(items));
      return true;
    }
    default: return in.Fail("an attribute value has an unknown kind");
  }
}

bool ReadAttributes(In& in, Attributes& out) {
  size_t n;
  if (!in.Count(n)) return false;
  out.reserve(Reserve(n));
  for (size_t i = 0; i < n; ++i) {
    auto& [k, v] = out.emplace_back();
    if (!in.Str(k) || !ReadValue(in, v, 0)) return false;
  }
  return true;
}

bool ReadSpan(In& in, Span& s) {
  constexpr uint32_t kKnown = (kRetryCount << 1) - 1;
  uint32_t flags;
  uint8_t status;
  if (!in.Flags(flags, kKnown) || !in.Byte(status)) return false;
  if (status > static_cast<uint8_t>(SpanStatus::kError)) return in.Fail("status is not 0, 1 or 2");
  s.status = static_cast<SpanStatus>(status);
  if (!in.Str(s.trace_id) || !in.Str(s.span_id) || !in.Str(s.parent_span_id) || !in.Str(s.name) ||
      !in.Str(s.status_message) || !in.Str(s.kind)) {
    return false;
  }
  if (s.trace_id.empty()) return in.Fail("trace_id is missing");
  if (s.span_id.empty()) return in.Fail("span_id is missing");
  uint64_t bytes = 0;
  if (!in.Opt(flags, kStart, s.start_ns) || !in.Opt(flags, kEnd, s.end_ns) ||
      !ReadAttributes(in, s.attributes) || !ReadAttributes(in, s.resource) ||
      !in.Opt(flags, kModel, s.model) || !in.Opt(flags, kInput, s.input) ||
      !in.Opt(flags, kOutput, s.output) || !in.Opt(flags, kSessionId, s.session_id) ||
      !in.Opt(flags, kUserId, s.user_id) || !in.Opt(flags, kPromptVersion, s.prompt_version) ||
      !in.Opt(flags, kInputTokens, s.input_tokens) ||
      !in.Opt(flags, kOutputTokens, s.output_tokens) ||
      !in.Opt(flags, kRetryCount, s.retry_count) || !in.Varint(bytes)) {
    return false;
  }
  s.bytes = static_cast<size_t>(bytes);
  return true;
}

bool ReadAnnotation(In& in, Annotation& a) {
  constexpr uint32_t kKnown = (kSchemaVersion << 1) - 1;
  uint32_t flags;
  if (!in.Flags(flags, kKnown) || !in.Str(a.trace_id) || !in.Str(a.span_id) || !in.Str(a.name) ||
      !in.Str(a.session_id) || !in.Str(a.metadata_json) || !in.Str(a.annotator_json)) {
    return false;
  }
  if (a.trace_id.empty() && a.span_id.empty() && a.session_id.empty()) {
    return in.Fail("an annotation has no trace_id");
  }
  if (a.metadata_json != "{}" && !IsJsonObject(a.metadata_json)) {
    return in.Fail("metadata is not an object");
  }
  if (!a.annotator_json.empty() && !IsJsonObject(a.annotator_json)) {
    return in.Fail("annotator is not an object");
  }
  uint64_t bytes = 0;
  if (!in.Opt(flags, kScore, a.score) || !in.Opt(flags, kLabel, a.label) ||
      !in.Opt(flags, kExplanation, a.explanation) || !in.Opt(flags, kSource, a.source) ||
      !in.Opt(flags, kTimestamp, a.timestamp_ns) || !in.Opt(flags, kId, a.id) ||
      !in.Opt(flags, kExpectedOutput, a.expected_output) ||
      !in.Opt(flags, kSchemaVersion, a.schema_version) || !in.Varint(bytes)) {
    return false;
  }
  a.bytes = static_cast<size_t>(bytes);
  return true;
}

Result<DecodedMessage> DecodeV2(std::string_view record) {
  In in(record.substr(kMagic.size()));
  DecodedMessage msg;
  uint32_t flags = 0;
  uint64_t lookups = 0;
  size_t spans = 0, annotations = 0;
  if (in.Flags(flags, 1) && in.Opt(flags, 1, msg.event_time_ns) && in.Varint(lookups)) {
    if (lookups > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      in.Fail("span_lookups is not a count");
    }
    msg.span_lookups = static_cast<int32_t>(lookups);
  }
  if (in.Count(spans)) {
    msg.spans.reserve(Reserve(spans));
    for (size_t i = 0; i < spans && ReadSpan(in, msg.spans.emplace_back()); ++i) {
    }
  }
  if (in.Count(annotations)) {
    msg.annotations.reserve(Reserve(annotations));
    for (size_t i = 0; i < annotations && ReadAnnotation(in, msg.annotations.emplace_back()); ++i) {
    }
  }
  if (in.ok() && !in.at_end()) in.Fail("bytes follow its last event");
  if (!in.ok()) return Invalid(in.error());
  if (msg.spans.empty() && msg.annotations.empty()) return Invalid("it carries no event");
  return msg;
}

// ---------------------------------------------------------------------------------------------
// v1: the JSON record of earlier versions, still read (a repartition topic or a changelog
// written before an upgrade). Strict, since only triaged wrote these.
namespace v1 {

const Value* Find(const Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

Result<void> GetString(const Value& obj, const char* key, std::string& out) {
  const Value* v = Find(obj, key);
  if (v == nullptr) return {};
  if (!v->IsString()) return Invalid(std::string(key) + " is not a string");
  out.assign(v->GetString(), v->GetStringLength());
  return {};
}

Result<void> GetOptString(const Value& obj, const char* key, std::optional<std::string>& out) {
  if (Find(obj, key) == nullptr) return {};
  std::string s;
  TRIAGED_TRY(GetString(obj, key, s));
  out = std::move(s);
  return {};
}

Result<void> GetOptNumber(const Value& obj, const char* key, std::optional<double>& out) {
  const Value* v = Find(obj, key);
  if (v == nullptr) return {};
  if (!v->IsNumber()) return Invalid(std::string(key) + " is not a number");
  out = v->GetDouble();
  return {};
}

Result<void> GetOptInt(const Value& obj, const char* key, std::optional<int64_t>& out) {
  const Value* v = Find(obj, key);
  if (v == nullptr) return {};
  if (!v->IsInt64()) return Invalid(std::string(key) + " is not an integer");
  out = v->GetInt64();
  return {};
}

Result<void> GetBytes(const Value& obj, size_t& out) {
  const Value* v = Find(obj, "bytes");
  if (v == nullptr || !v->IsUint64()) return Invalid("bytes is missing");
  out = static_cast<size_t>(v->GetUint64());
  return {};
}

Result<AttrValue> ReadValue(const Value& v, int depth) {
  if (depth > 64) return Invalid("attribute values nest too deep");
  if (v.IsNull()) return AttrValue::Null();
  if (v.IsBool()) return AttrValue::Bool(v.GetBool());
  if (v.IsNumber()) return AttrValue::Number(v.GetDouble());
  if (v.IsString()) return AttrValue::String(std::string(v.GetString(), v.GetStringLength()));
  if (v.IsArray()) {
    std::vector<AttrValue> items;
    items.reserve(v.Size());
    for (const Value& item : v.GetArray()) {
      TRIAGED_ASSIGN_OR_RETURN(AttrValue value, ReadValue(item, depth + 1));
      items.push_back(std::move(value));
    }
    return AttrValue::Array(std::move(items));
  }
  return Invalid("an attribute value is an object");
}

Result<void> ReadAttributes(const Value& obj, const char* key, Attributes& out) {
  const Value* list = Find(obj, key);
  if (list == nullptr) return {};
  if (!list->IsArray()) return Invalid(std::string(key) + " is not an array");
  out.reserve(list->Size());
  for (const Value& pair : list->GetArray()) {
    if (!pair.IsArray() || pair.Size() != 2 || !pair[0].IsString()) {
      return Invalid(std::string(key) + " holds something other than [key, value]");
    }
    TRIAGED_ASSIGN_OR_RETURN(AttrValue value, ReadValue(pair[1], 0));
    out.emplace_back(std::string(pair[0].GetString(), pair[0].GetStringLength()), std::move(value));
  }
  return {};
}

Result<void> ReadId(const Value& obj, const char* key, bool required, std::string& out) {
  TRIAGED_TRY(GetString(obj, key, out));
  if (required && out.empty()) return Invalid(std::string(key) + " is missing");
  return {};
}

Result<Span> ReadSpan(const Value& v) {
  if (!v.IsObject()) return Invalid("a span is not an object");
  Span s;
  TRIAGED_TRY(ReadId(v, "trace_id", true, s.trace_id));
  TRIAGED_TRY(ReadId(v, "span_id", true, s.span_id));
  TRIAGED_TRY(ReadId(v, "parent_span_id", false, s.parent_span_id));
  TRIAGED_TRY(GetString(v, "name", s.name));
  TRIAGED_TRY(GetOptInt(v, "start", s.start_ns));
  TRIAGED_TRY(GetOptInt(v, "end", s.end_ns));
  if (const Value* status = Find(v, "status")) {
    if (!status->IsInt() || status->GetInt() < 0 || status->GetInt() > 2) {
      return Invalid("status is not 0, 1 or 2");
    }
    s.status = static_cast<SpanStatus>(status->GetInt());
  }
  TRIAGED_TRY(GetString(v, "status_message", s.status_message));
  TRIAGED_TRY(ReadAttributes(v, "attributes", s.attributes));
  TRIAGED_TRY(ReadAttributes(v, "resource", s.resource));
  TRIAGED_TRY(GetString(v, "kind", s.kind));
  TRIAGED_TRY(GetOptString(v, "model", s.model));
  TRIAGED_TRY(GetOptString(v, "input", s.input));
  TRIAGED_TRY(GetOptString(v, "output", s.output));
  TRIAGED_TRY(GetOptString(v, "session_id", s.session_id));
  TRIAGED_TRY(GetOptString(v, "user_id", s.user_id));
  TRIAGED_TRY(GetOptString(v, "prompt_version", s.prompt_version));
  TRIAGED_TRY(GetOptNumber(v, "input_tokens", s.input_tokens));
  TRIAGED_TRY(GetOptNumber(v, "output_tokens", s.output_tokens));
  TRIAGED_TRY(GetOptNumber(v, "retry_count", s.retry_count));
  TRIAGED_TRY(GetBytes(v, s.bytes));
  return s;
}

Result<Annotation> ReadAnnotation(const Value& v) {
  if (!v.IsObject()) return Invalid("an annotation is not an object");
  Annotation a;
  TRIAGED_TRY(ReadId(v, "trace_id", false, a.trace_id));
  TRIAGED_TRY(ReadId(v, "span_id", false, a.span_id));
  TRIAGED_TRY(GetString(v, "session_id", a.session_id));
  if (a.trace_id.empty() && a.span_id.empty() && a.session_id.empty()) {
    return Invalid("an annotation has no trace_id");
  }
  TRIAGED_TRY(GetString(v, "name", a.name));
  TRIAGED_TRY(GetOptNumber(v, "score", a.score));
  TRIAGED_TRY(GetOptString(v, "label", a.label));
  TRIAGED_TRY(GetOptString(v, "explanation", a.explanation));
  TRIAGED_TRY(GetOptString(v, "source", a.source));
  if (const Value* meta = Find(v, "metadata")) {
    if (!meta->IsObject()) return Invalid("metadata is not an object");
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    meta->Accept(w);
    a.metadata_json.assign(buf.GetString(), buf.GetSize());
  }
  TRIAGED_TRY(GetOptInt(v, "timestamp", a.timestamp_ns));
  TRIAGED_TRY(GetOptString(v, "id", a.id));
  if (const Value* annotator = Find(v, "annotator")) {
    if (!annotator->IsObject()) return Invalid("annotator is not an object");
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    annotator->Accept(w);
    a.annotator_json.assign(buf.GetString(), buf.GetSize());
  }
  TRIAGED_TRY(GetOptString(v, "expected_output", a.expected_output));
  TRIAGED_TRY(GetOptInt(v, "schema_version", a.schema_version));
  TRIAGED_TRY(GetBytes(v, a.bytes));
  return a;
}

Result<DecodedMessage> Decode(std::string_view record) {
  rapidjson::Document doc;
  // Full precision: a number must come back as the very double that was written.
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
            rapidjson::kParseFullPrecisionFlag>(record.data(), record.size());
  if (doc.HasParseError() || !doc.IsObject()) return Invalid("not a JSON object");
  const Value* schema = Find(doc, "schema");
  if (schema == nullptr || !schema->IsString() ||
      std::string_view(schema->GetString()) != kSchemaV1) {
    return Invalid("schema is missing or another");
  }
  DecodedMessage msg;
  TRIAGED_TRY(GetOptInt(doc, "event_time", msg.event_time_ns));
  if (const Value* lookups = Find(doc, "span_lookups")) {
    if (!lookups->IsInt() || lookups->GetInt() < 0) return Invalid("span_lookups is not a count");
    msg.span_lookups = lookups->GetInt();
  }
  if (const Value* spans = Find(doc, "spans")) {
    if (!spans->IsArray()) return Invalid("spans is not an array");
    msg.spans.reserve(spans->Size());
    for (const Value& v : spans->GetArray()) {
      TRIAGED_ASSIGN_OR_RETURN(Span span, ReadSpan(v));
      msg.spans.push_back(std::move(span));
    }
  }
  if (const Value* annotations = Find(doc, "annotations")) {
    if (!annotations->IsArray()) return Invalid("annotations is not an array");
    msg.annotations.reserve(annotations->Size());
    for (const Value& v : annotations->GetArray()) {
      TRIAGED_ASSIGN_OR_RETURN(Annotation a, ReadAnnotation(v));
      msg.annotations.push_back(std::move(a));
    }
  }
  if (msg.spans.empty() && msg.annotations.empty()) return Invalid("it carries no event");
  return msg;
}

}  // namespace v1

}  // namespace

std::string EncodeEventRecord(const DecodedMessage& message) {
  std::string record(kMagic);
  Out out(record);
  out.Varint(message.event_time_ns ? 1 : 0);
  out.Opt(message.event_time_ns);
  out.Varint(static_cast<uint64_t>(std::max(message.span_lookups, 0)));
  out.Varint(message.spans.size());
  for (const Span& s : message.spans) WriteSpan(out, s);
  out.Varint(message.annotations.size());
  for (const Annotation& a : message.annotations) WriteAnnotation(out, a);
  return record;
}

Result<DecodedMessage> DecodeEventRecord(std::string_view record) {
  if (record.substr(0, kMagic.size()) == kMagic) return DecodeV2(record);
  return v1::Decode(record);
}

std::vector<std::pair<std::string, DecodedMessage>> SplitByTrace(DecodedMessage message) {
  std::vector<std::pair<std::string, DecodedMessage>> out;
  if (message.spans.empty() && message.annotations.empty()) return out;
  // Most messages hold one trace (a native span, a feedback event, a Collector message split
  // by trace): no index, no copies.
  const std::string& first =
      message.spans.empty() ? message.annotations.front().trace_id : message.spans.front().trace_id;
  const auto same = [&](const std::string& id) { return id == first; };
  if (std::all_of(message.spans.begin(), message.spans.end(),
                  [&](const Span& s) { return same(s.trace_id); }) &&
      std::all_of(message.annotations.begin(), message.annotations.end(),
                  [&](const Annotation& a) { return same(a.trace_id); })) {
    DecodedMessage whole;
    whole.spans = std::move(message.spans);
    whole.annotations = std::move(message.annotations);
    for (const Span& s : whole.spans) AddEventTime(whole, s);
    for (const Annotation& a : whole.annotations) AddEventTime(whole, a);
    std::string id =
        whole.spans.empty() ? whole.annotations.front().trace_id : whole.spans.front().trace_id;
    out.emplace_back(std::move(id), std::move(whole));
    return out;
  }
  std::unordered_map<std::string, size_t> index;
  auto slot = [&](const std::string& id) -> DecodedMessage& {
    auto [it, inserted] = index.emplace(id, out.size());
    if (inserted) out.emplace_back(id, DecodedMessage{});
    return out[it->second].second;
  };
  for (Span& s : message.spans) {
    DecodedMessage& m = slot(s.trace_id);
    AddEventTime(m, s);
    m.spans.push_back(std::move(s));
  }
  for (Annotation& a : message.annotations) {
    // A span-only annotation (no trace id yet) keeps its own slot, keyed by its span.
    DecodedMessage& m = slot(a.trace_id);
    AddEventTime(m, a);
    m.annotations.push_back(std::move(a));
  }
  return out;
}

}  // namespace triaged
