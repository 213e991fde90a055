#include "rules/event_record.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>

namespace triaged {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using rapidjson::Value;

void Str(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void Key(Writer& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void WriteValue(Writer& w, const AttrValue& v) {
  switch (v.kind) {
    case AttrValue::Kind::kNull: w.Null(); break;
    case AttrValue::Kind::kBool: w.Bool(v.b); break;
    case AttrValue::Kind::kNumber:
      if (std::isfinite(v.n)) {
        w.Double(v.n);
      } else {
        w.Null();  // decoders never make one; a writer must not emit invalid JSON
      }
      break;
    case AttrValue::Kind::kString: Str(w, v.s); break;
    case AttrValue::Kind::kArray:
      w.StartArray();
      for (const AttrValue& item : v.items) WriteValue(w, item);
      w.EndArray();
      break;
  }
}

// Attributes as [[key, value], ...]: keys may repeat and their order matters.
void WriteAttributes(Writer& w, std::string_view key, const Attributes& attrs) {
  if (attrs.empty()) return;
  Key(w, key);
  w.StartArray();
  for (const auto& [k, v] : attrs) {
    w.StartArray();
    Str(w, k);
    WriteValue(w, v);
    w.EndArray();
  }
  w.EndArray();
}

void OptString(Writer& w, std::string_view key, const std::optional<std::string>& v) {
  if (!v) return;
  Key(w, key);
  Str(w, *v);
}

void OptNumber(Writer& w, std::string_view key, const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return;
  Key(w, key);
  w.Double(*v);
}

void OptInt(Writer& w, std::string_view key, const std::optional<int64_t>& v) {
  if (!v) return;
  Key(w, key);
  w.Int64(*v);
}

void NonEmpty(Writer& w, std::string_view key, const std::string& v) {
  if (v.empty()) return;
  Key(w, key);
  Str(w, v);
}

void WriteSpan(Writer& w, const Span& s) {
  w.StartObject();
  Key(w, "trace_id");
  Str(w, s.trace_id);
  Key(w, "span_id");
  Str(w, s.span_id);
  NonEmpty(w, "parent_span_id", s.parent_span_id);
  NonEmpty(w, "name", s.name);
  OptInt(w, "start", s.start_ns);
  OptInt(w, "end", s.end_ns);
  if (s.status != SpanStatus::kUnset) {
    Key(w, "status");
    w.Int(static_cast<int>(s.status));
  }
  NonEmpty(w, "status_message", s.status_message);
  WriteAttributes(w, "attributes", s.attributes);
  WriteAttributes(w, "resource", s.resource);
  NonEmpty(w, "kind", s.kind);
  OptString(w, "model", s.model);
  OptString(w, "input", s.input);
  OptString(w, "output", s.output);
  OptString(w, "session_id", s.session_id);
  OptString(w, "user_id", s.user_id);
  OptString(w, "prompt_version", s.prompt_version);
  OptNumber(w, "input_tokens", s.input_tokens);
  OptNumber(w, "output_tokens", s.output_tokens);
  OptNumber(w, "retry_count", s.retry_count);
  Key(w, "bytes");
  w.Uint64(s.bytes);
  w.EndObject();
}

void WriteAnnotation(Writer& w, const Annotation& a) {
  w.StartObject();
  Key(w, "trace_id");
  Str(w, a.trace_id);
  NonEmpty(w, "span_id", a.span_id);
  Key(w, "name");
  Str(w, a.name);
  OptNumber(w, "score", a.score);
  OptString(w, "label", a.label);
  OptString(w, "explanation", a.explanation);
  OptString(w, "source", a.source);
  if (a.metadata_json != "{}") {
    Key(w, "metadata");
    w.RawValue(a.metadata_json.data(), a.metadata_json.size(), rapidjson::kObjectType);
  }
  OptInt(w, "timestamp", a.timestamp_ns);
  NonEmpty(w, "session_id", a.session_id);
  OptString(w, "id", a.id);
  if (!a.annotator_json.empty()) {
    // The decoders make it compact JSON of an object; anything else (a hand-built annotation)
    // would break the record, so it is written only when it is one.
    rapidjson::Document annotator;
    annotator.Parse(a.annotator_json.data(), a.annotator_json.size());
    if (!annotator.HasParseError() && annotator.IsObject()) {
      Key(w, "annotator");
      w.RawValue(a.annotator_json.data(), a.annotator_json.size(), rapidjson::kObjectType);
    }
  }
  OptString(w, "expected_output", a.expected_output);
  OptInt(w, "schema_version", a.schema_version);
  Key(w, "bytes");
  w.Uint64(a.bytes);
  w.EndObject();
}

// ---------------------------------------------------------------------------------------------
// Reading back: strict, since only EncodeEventRecord writes these.

Error Invalid(std::string what) {
  return MakeError("invalid_event_record",
                   "not a " + std::string(kEventRecordSchema) + " record: " + std::move(what));
}

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

}  // namespace

std::string EncodeEventRecord(const DecodedMessage& message) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Key(w, "schema");
  w.String(kEventRecordSchema);
  OptInt(w, "event_time", message.event_time_ns);
  if (message.span_lookups > 0) {
    Key(w, "span_lookups");
    w.Int(message.span_lookups);
  }
  if (!message.spans.empty()) {
    Key(w, "spans");
    w.StartArray();
    for (const Span& s : message.spans) WriteSpan(w, s);
    w.EndArray();
  }
  if (!message.annotations.empty()) {
    Key(w, "annotations");
    w.StartArray();
    for (const Annotation& a : message.annotations) WriteAnnotation(w, a);
    w.EndArray();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<DecodedMessage> DecodeEventRecord(std::string_view record) {
  rapidjson::Document doc;
  // Full precision: a number must come back as the very double that was written.
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
            rapidjson::kParseFullPrecisionFlag>(record.data(), record.size());
  if (doc.HasParseError() || !doc.IsObject()) return Invalid("not a JSON object");
  const Value* schema = Find(doc, "schema");
  if (schema == nullptr || !schema->IsString() ||
      std::string_view(schema->GetString()) != std::string_view(kEventRecordSchema)) {
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
