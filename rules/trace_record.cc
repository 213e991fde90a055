#include "rules/trace_record.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rules/event_record.h"

namespace triaged {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Error Invalid(const std::string& why) {
  return Error{"invalid_trace_record", "trace record: " + why};
}

void Hashes(Writer& w, const char* key, const std::vector<uint64_t>& hashes) {
  w.Key(key);
  w.StartArray();
  for (uint64_t h : hashes) w.Uint64(h);
  w.EndArray();
}

Result<void> ReadHashes(const rapidjson::Value& doc, const char* key, std::vector<uint64_t>& out) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd()) return {};
  if (!it->value.IsArray()) return Invalid(std::string(key) + " is not an array");
  for (const rapidjson::Value& v : it->value.GetArray()) {
    if (!v.IsUint64()) return Invalid(std::string(key) + " holds a value that is not a hash");
    out.push_back(v.GetUint64());
  }
  return {};
}

Result<int64_t> ReadInt(const rapidjson::Value& doc, const char* key) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsInt64())
    return Invalid(std::string(key) + " is missing");
  return it->value.GetInt64();
}

// The decision line, parsed.
Result<rapidjson::Document> ParseHeader(std::string_view bytes, std::string_view& events) {
  const size_t nl = bytes.find('\n');
  if (nl == std::string_view::npos) return Invalid("no events after the decision line");
  rapidjson::Document doc;
  doc.Parse(bytes.data(), nl);
  if (doc.HasParseError() || !doc.IsObject()) return Invalid("the decision line is not JSON");
  auto schema = doc.FindMember("schema");
  if (schema == doc.MemberEnd() || !schema->value.IsString() ||
      std::string_view(schema->value.GetString()) != kTraceRecordSchema) {
    return Invalid("schema is missing or another");
  }
  events = bytes.substr(nl + 1);
  return doc;
}

}  // namespace

std::string EncodeTraceRecord(const TraceRecord& record) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("schema");
  w.String(kTraceRecordSchema);
  w.Key("trace_id");
  w.String(record.trace_id.data(), static_cast<rapidjson::SizeType>(record.trace_id.size()));
  w.Key("closed_ns");
  w.Int64(record.closed_ns);
  w.Key("expires_ns");
  w.Int64(record.expires_ns);
  w.Key("has_span");
  w.Bool(record.has_span);
  Hashes(w, "routed", record.routed);
  Hashes(w, "matched", record.counted_match);
  Hashes(w, "sampled_out", record.counted_sampled_out);
  w.EndObject();
  std::string out(buf.GetString(), buf.GetSize());
  out.push_back('\n');
  out += EncodeEventRecord(record.events);
  return out;
}

Result<TraceRecord> DecodeTraceRecord(std::string_view bytes, bool with_events) {
  std::string_view events;
  TRIAGED_ASSIGN_OR_RETURN(rapidjson::Document doc, ParseHeader(bytes, events));
  TraceRecord record;
  auto id = doc.FindMember("trace_id");
  if (id == doc.MemberEnd() || !id->value.IsString()) return Invalid("trace_id is missing");
  record.trace_id.assign(id->value.GetString(), id->value.GetStringLength());
  TRIAGED_ASSIGN_OR_RETURN(record.closed_ns, ReadInt(doc, "closed_ns"));
  TRIAGED_ASSIGN_OR_RETURN(record.expires_ns, ReadInt(doc, "expires_ns"));
  auto has_span = doc.FindMember("has_span");
  record.has_span =
      has_span != doc.MemberEnd() && has_span->value.IsBool() && has_span->value.GetBool();
  TRIAGED_TRY(ReadHashes(doc, "routed", record.routed));
  TRIAGED_TRY(ReadHashes(doc, "matched", record.counted_match));
  TRIAGED_TRY(ReadHashes(doc, "sampled_out", record.counted_sampled_out));
  if (!with_events) return record;
  Result<DecodedMessage> decoded = DecodeEventRecord(events);
  if (!decoded.ok()) return Invalid(decoded.error().message);
  record.events = std::move(decoded).value();
  return record;
}

Result<int64_t> TraceRecordExpiry(std::string_view bytes) {
  std::string_view events;
  TRIAGED_ASSIGN_OR_RETURN(rapidjson::Document doc, ParseHeader(bytes, events));
  return ReadInt(doc, "expires_ns");
}

}  // namespace triaged
