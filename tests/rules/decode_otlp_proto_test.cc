// The otlp_proto span input (DESIGN §1.1): OTLP protobuf requests, encoded by `protoc --encode`
// from tests/data/otlp_proto/*.txtpb at build time, decode to exactly what the OTLP/JSON decoder
// makes of the same request; auto-detection tells the two encodings apart and names both when a
// message is neither.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "rules/decode.h"
#include "rules/proto/otlp_trace_service.pb.h"

namespace triaged {
namespace {

namespace pb = opentelemetry::proto;
using pb::collector::trace::v1::ExportTraceServiceRequest;

constexpr int64_t kNoon = 1714564800LL * 1'000'000'000;  // 2024-05-01T12:00:00Z

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// tests/data/otlp_proto/NAME.txtpb as protoc encoded it.
std::string Encoded(const std::string& name) {
  return ReadFile(std::string(TRIAGED_BINARY_DIR) + "/tests/data/otlp_proto/" + name + ".binpb");
}

std::string Shape(const std::string& name) {
  return ReadFile(std::string(TRIAGED_SOURCE_DIR) + "/tests/data/shapes/" + name);
}

std::string ReasonOf(const Result<DecodedMessage>& r) { return r.ok() ? "ok" : r.error().reason; }
std::string MessageOf(const Result<DecodedMessage>& r) { return r.ok() ? "" : r.error().message; }

std::string Describe(const AttrValue& v) {
  switch (v.kind) {
    case AttrValue::Kind::kNull: return "null";
    case AttrValue::Kind::kBool: return v.b ? "true" : "false";
    case AttrValue::Kind::kNumber: {
      std::ostringstream out;
      out.precision(17);
      out << v.n;
      return out.str();
    }
    case AttrValue::Kind::kString: return "\"" + v.s + "\"";
    case AttrValue::Kind::kArray: {
      std::string out = "[";
      for (const AttrValue& item : v.items) out += (out.size() > 1 ? "," : "") + Describe(item);
      return out + "]";
    }
  }
  return "?";
}

std::string Describe(const Attributes& attrs) {
  std::string out;
  for (const auto& [key, value] : attrs) out += key + "=" + Describe(value) + "\n";
  return out;
}

// Every field of every span and annotation, but `bytes` (each event's share of the message size,
// which differs between the encodings by design).
void ExpectSameEvents(const DecodedMessage& json, const DecodedMessage& proto) {
  ASSERT_EQ(json.spans.size(), proto.spans.size());
  ASSERT_EQ(json.annotations.size(), proto.annotations.size());
  for (size_t i = 0; i < json.spans.size(); ++i) {
    SCOPED_TRACE("span " + std::to_string(i));
    const Span& a = json.spans[i];
    const Span& b = proto.spans[i];
    EXPECT_EQ(a.trace_id, b.trace_id);
    EXPECT_EQ(a.span_id, b.span_id);
    EXPECT_EQ(a.parent_span_id, b.parent_span_id);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.start_ns, b.start_ns);
    EXPECT_EQ(a.end_ns, b.end_ns);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.status_message, b.status_message);
    EXPECT_EQ(Describe(a.attributes), Describe(b.attributes));
    EXPECT_EQ(Describe(a.resource), Describe(b.resource));
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.model, b.model);
    EXPECT_EQ(a.input, b.input);
    EXPECT_EQ(a.output, b.output);
    EXPECT_EQ(a.session_id, b.session_id);
    EXPECT_EQ(a.user_id, b.user_id);
    EXPECT_EQ(a.prompt_version, b.prompt_version);
    EXPECT_EQ(a.input_tokens, b.input_tokens);
    EXPECT_EQ(a.output_tokens, b.output_tokens);
    EXPECT_EQ(a.retry_count, b.retry_count);
    // And whatever field a later change adds to Span.
    Span a_rest = a, b_rest = b;
    a_rest.bytes = b_rest.bytes = 0;
    EXPECT_TRUE(a_rest == b_rest);
  }
  for (size_t i = 0; i < json.annotations.size(); ++i) {
    SCOPED_TRACE("annotation " + std::to_string(i));
    const Annotation& a = json.annotations[i];
    const Annotation& b = proto.annotations[i];
    EXPECT_EQ(a.trace_id, b.trace_id);
    EXPECT_EQ(a.span_id, b.span_id);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.score, b.score);
    EXPECT_EQ(a.label, b.label);
    EXPECT_EQ(a.explanation, b.explanation);
    EXPECT_EQ(a.source, b.source);
    EXPECT_EQ(a.metadata_json, b.metadata_json);
    EXPECT_EQ(a.timestamp_ns, b.timestamp_ns);
  }
  EXPECT_EQ(json.event_time_ns, proto.event_time_ns);
}

size_t TotalBytes(const DecodedMessage& msg) {
  size_t n = 0;
  for (const Span& s : msg.spans) n += s.bytes;
  for (const Annotation& a : msg.annotations) n += a.bytes;
  return n;
}

Result<DecodedMessage> Decoded(const Result<DecodedMessage>& r) {
  EXPECT_TRUE(r.ok()) << ReasonOf(r) << ": " << MessageOf(r);
  return r;
}

// ---------------------------------------------------------------------------------------------
// The same request in both encodings

TEST(DecodeOtlpProto, SampleRequestDecodesExactlyAsItsJson) {
  const std::string proto_bytes = Encoded("otlp_request");
  auto json = Decoded(DecodeSpans(Shape("otlp_request.json")));
  ASSERT_TRUE(json.ok());
  for (SpanShape shape : {SpanShape::kAuto, SpanShape::kOtlpProto}) {
    auto proto = DecodeSpans(proto_bytes, shape);
    ASSERT_TRUE(proto.ok()) << proto.error().reason << ": " << proto.error().message;
    ExpectSameEvents(*json, *proto);
    EXPECT_EQ(TotalBytes(*proto), proto_bytes.size());
  }
  // Replay's entry point detects it too.
  auto any = DecodeAny(proto_bytes);
  ASSERT_TRUE(any.ok()) << any.error().message;
  ExpectSameEvents(*json, *any);
}

// What only the protobuf encoding can get wrong; the rest is SampleRequestDecodesExactlyAsItsJson
// (and decode_test.cc's DecodeSpansOtlp.SampleFile, field by field, for the JSON).
TEST(DecodeOtlpProto, IdBytesBecomeLowercaseHex) {
  auto r = Decoded(DecodeSpans(Encoded("otlp_request")));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->spans.size(), 2u);  // the second from instrumentation_library_spans (field 1000)
  EXPECT_EQ(r->spans[0].trace_id, "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(r->spans[0].span_id, "eee19b7ec3c1b174");
  EXPECT_EQ(r->spans[1].span_id, "1111111111111111");
  EXPECT_EQ(r->spans[1].parent_span_id, "eee19b7ec3c1b174");
  ASSERT_EQ(r->annotations.size(), 1u);
  EXPECT_EQ(r->annotations[0].span_id, "eee19b7ec3c1b174");
  EXPECT_EQ(*FindAttr(r->spans[0].attributes, "blob"), AttrValue::String("aGVsbG8="));  // base64
}

// values.txtpb in proto3's JSON mapping, as the Collector writes OTLP/JSON.
constexpr const char* kValuesJson = R"({"resourceSpans":[{"scopeSpans":[{"spans":[{
  "traceId":"0F1E2D3C4B5A69788796A5B4C3D2E1F0","spanId":"0123456789ABCDEF",
  "name":"values","startTimeUnixNano":"946684800000000000",
  "attributes":[
    {"key":"nan","value":{"doubleValue":"NaN"}},
    {"key":"inf","value":{"doubleValue":"Infinity"}},
    {"key":"ninf","value":{"doubleValue":"-Infinity"}},
    {"key":"int_min","value":{"intValue":"-9223372036854775808"}},
    {"key":"int_max","value":{"intValue":"9223372036854775807"}},
    {"key":"whole","value":{"doubleValue":3}},
    {"key":"empty_array","value":{"arrayValue":{}}},
    {"key":"empty_kvlist","value":{"kvlistValue":{}}},
    {"key":"nothing","value":{}},
    {"key":"no_value"},
    {"key":"","value":{"stringValue":"empty key"}},
    {"key":"bytes","value":{"bytesValue":"AP/+"}},
    {"key":"nested","value":{"arrayValue":{"values":[
      {"arrayValue":{"values":[{"intValue":"1"},{"doubleValue":2.5}]}},
      {"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}},{"key":"n","value":{"intValue":"-3"}},{"key":"d","value":{"doubleValue":1.5}},{"key":"w","value":{"doubleValue":2}},{"key":"x","value":{"doubleValue":"NaN"}},{"key":"b","value":{"bytesValue":"aGk="}},{"key":"t","value":{"boolValue":true}},{"key":"a","value":{"arrayValue":{"values":[{"stringValue":"s"}]}}},{"key":"e","value":{"arrayValue":{}}},{"key":"kv","value":{"kvlistValue":{"values":[{"key":"z","value":{}}]}}},{"key":"none"}]}},
      {"kvlistValue":{}}]}}}]}]}]}]})";

TEST(DecodeOtlpProto, EdgeValuesDecodeExactlyAsTheirJson) {
  auto json = Decoded(DecodeSpans(kValuesJson));
  auto proto = Decoded(DecodeSpans(Encoded("values")));
  ASSERT_TRUE(json.ok() && proto.ok());
  ExpectSameEvents(*json, *proto);
  ASSERT_EQ(proto->spans.size(), 1u);
  const Attributes& attrs = proto->spans[0].attributes;
  // Non-finite doubles as proto3 JSON spells them, never a NaN number.
  EXPECT_EQ(*FindAttr(attrs, "nan"), AttrValue::String("NaN"));
  EXPECT_EQ(*FindAttr(attrs, "ninf"), AttrValue::String("-Infinity"));
  EXPECT_EQ(*FindAttr(attrs, "int_min"), AttrValue::Number(-9223372036854775808.0));
  EXPECT_EQ(*FindAttr(attrs, "bytes"), AttrValue::String("AP/+"));
  EXPECT_EQ(FindAttr(attrs, "empty_kvlist"), nullptr);
  // An all-zero parent span id is a root.
  EXPECT_TRUE(proto->spans[0].is_root());
  // A kvlist inside an array: the same compact JSON text as the JSON decoder keeps.
  const AttrValue& nested = *FindAttr(attrs, "nested");
  ASSERT_EQ(nested.items.size(), 3u);
  EXPECT_EQ(nested.items[1].s,
            R"({"values":[{"key":"k","value":{"stringValue":"v"}},)"
            R"({"key":"n","value":{"intValue":"-3"}},{"key":"d","value":{"doubleValue":1.5}},)"
            R"({"key":"w","value":{"doubleValue":2}},{"key":"x","value":{"doubleValue":"NaN"}},)"
            R"({"key":"b","value":{"bytesValue":"aGk="}},{"key":"t","value":{"boolValue":true}},)"
            R"({"key":"a","value":{"arrayValue":{"values":[{"stringValue":"s"}]}}},)"
            R"({"key":"e","value":{"arrayValue":{}}},)"
            R"({"key":"kv","value":{"kvlistValue":{"values":[{"key":"z","value":{}}]}}},)"
            R"({"key":"none"}]})");
  EXPECT_EQ(nested.items[2], AttrValue::String("{}"));
}

TEST(DecodeOtlpProto, OneRequestCarriesSpansOfSeveralTraces) {
  const std::string bytes = Encoded("multi_trace");
  auto r = Decoded(DecodeSpans(bytes));
  ASSERT_TRUE(r.ok());
  std::map<std::string, std::vector<std::string>> spans_by_trace;
  for (const Span& s : r->spans) spans_by_trace[s.trace_id].push_back(s.span_id);
  const std::string a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01", b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb02";
  ASSERT_EQ(spans_by_trace.size(), 2u);
  EXPECT_EQ(spans_by_trace[a], (std::vector<std::string>{"a100000000000001", "a200000000000002"}));
  EXPECT_EQ(spans_by_trace[b], (std::vector<std::string>{"b100000000000001"}));
  // Each span keeps its own resource; the canonical fields are read per span.
  EXPECT_EQ(*FindAttr(r->spans[0].resource, "service.name"), AttrValue::String("gateway"));
  EXPECT_EQ(r->spans[0].user_id, "u-42");
  EXPECT_EQ(r->spans[1].status, SpanStatus::kError);
  EXPECT_EQ(r->spans[1].status_message, "upstream timeout");
  const Span& llm = r->spans[2];
  EXPECT_EQ(*FindAttr(llm.resource, "service.name"), AttrValue::String("llm-worker"));
  EXPECT_EQ(llm.parent_span_id, "a100000000000001");
  EXPECT_EQ(llm.kind, "LLM");
  EXPECT_EQ(llm.model, "gpt-4o");
  EXPECT_EQ(llm.input_tokens, 812);
  ASSERT_EQ(r->annotations.size(), 1u);
  EXPECT_EQ(r->annotations[0].trace_id, a);
  EXPECT_EQ(r->annotations[0].span_id, "a200000000000002");
  EXPECT_EQ(r->annotations[0].name, "faithfulness");
  EXPECT_EQ(TotalBytes(*r), bytes.size());
}

std::string Varint(uint64_t n) {
  std::string out;
  do {
    out.push_back(static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
    n >>= 7;
  } while (n != 0);
  return out;
}

// A length-delimited field: its tag (field number << 3 | 2), its length, its bytes.
std::string Field(uint32_t number, const std::string& body) {
  return Varint(number << 3 | 2) + Varint(body.size()) + body;
}

// Bytes written by hand from OTLP's field numbers (opentelemetry-proto), so that a wrong number in
// our .proto would show here even though protoc encodes the other test data with that .proto.
TEST(DecodeOtlpProto, HandWrittenWireBytes) {
  const std::string noon("\x00\x80\x63\xf8\x99\x5b\xcb\x17", 8);  // fixed64, little-endian
  const std::string noon_1s("\x00\x4a\xfe\x33\x9a\x5b\xcb\x17", 8);
  const std::string noon_6s("\x00\x3c\x04\x5e\x9b\x5b\xcb\x17", 8);
  const std::string one_and_a_half("\x00\x00\x00\x00\x00\x00\xf8\x3f", 8);  // double 1.5
  // KeyValue{key = 1, value = 2}
  auto kv = [](const std::string& key, const std::string& any) {
    return Field(1, key) + Field(2, any);
  };
  // AnyValue{string_value = 1, bool_value = 2, int_value = 3, double_value = 4,
  //          array_value = 5 (ArrayValue{values = 1}), kvlist_value = 6 (KeyValueList{values = 1}),
  //          bytes_value = 7}
  const std::string attributes =
      Field(9, kv("s", Field(1, "v"))) + Field(9, kv("b", std::string("\x10\x01", 2))) +
      Field(9, kv("i", std::string("\x18\x07", 2))) + Field(9, kv("d", "\x21" + one_and_a_half)) +
      Field(9, kv("a", Field(5, Field(1, std::string("\x18\x01", 2)) +
                                    Field(1, Field(6, Field(1, kv("k", Field(1, "v")))))))) +
      Field(9, kv("l", Field(6, Field(1, kv("k", std::string("\x10\x00", 2)))))) +
      Field(9, kv("y", Field(7, "\x01\x02")));
  const std::string event = "\x09" + noon_6s +                      // time_unix_nano = 1
                            Field(2, "gen_ai.evaluation.result") +  // name = 2
                            Field(3, kv("gen_ai.evaluation.name", Field(1, "x")));  // attributes
  const std::string span =
      Field(1, std::string(15, '\x01') + "\x02") +    // trace_id = 1
      Field(2, std::string(8, '\x03')) +              // span_id = 2
      Field(3, "rojo=00f067aa0ba902b7") +             // trace_state = 3 (not read)
      Field(4, std::string(8, '\x04')) +              // parent_span_id = 4
      Field(5, "hi") +                                // name = 5
      std::string("\x30\x03", 2) +                    // kind = 6 (varint): SPAN_KIND_CLIENT
      "\x39" + noon + "\x41" + noon_1s +              // start = 7, end = 8 (fixed64)
      attributes +                                    // attributes = 9
      std::string("\x50\x02", 2) +                    // dropped_attributes_count = 10
      Field(11, event) +                              // events = 11
      Field(13, Field(1, std::string(16, '\x09'))) +  // links = 13 (not read)
      Field(15, Field(2, "m") + std::string("\x18\x02", 2)) +  // status = 15 {message=2, code=3}
      "\x85\x01" + std::string("\x01\x00\x00\x00", 4);         // flags = 16 (fixed32)
  const std::string resource = Field(1, kv("service.name", Field(1, "svc")));  // attributes = 1
  const std::string scope = Field(1, "lib");                                   // name = 1
  // Request{resource_spans = 1: ResourceSpans{resource = 1, scope_spans = 2: ScopeSpans{
  //   scope = 1, spans = 2}}}
  const std::string bytes =
      Field(1, Field(1, resource) + Field(2, Field(1, scope) + Field(2, span)));
  auto r = Decoded(DecodeSpans(bytes));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->spans.size(), 1u);
  const Span& s = r->spans[0];
  EXPECT_EQ(s.trace_id, "01010101010101010101010101010102");
  EXPECT_EQ(s.span_id, "0303030303030303");
  EXPECT_EQ(s.parent_span_id, "0404040404040404");
  EXPECT_EQ(s.name, "hi");
  EXPECT_EQ(s.start_ns, kNoon);
  EXPECT_EQ(s.end_ns, kNoon + 1'000'000'000);
  EXPECT_EQ(s.status, SpanStatus::kError);
  EXPECT_EQ(s.status_message, "m");
  EXPECT_EQ(Describe(s.attributes),
            "s=\"v\"\nb=true\ni=7\nd=1.5\n"
            R"(a=[1,"{"values":[{"key":"k","value":{"stringValue":"v"}}]}"])"
            "\nl.k=false\ny=\"AQI=\"\n");
  EXPECT_EQ(Describe(s.resource), "service.name=\"svc\"\n");
  ASSERT_EQ(r->annotations.size(), 1u);
  EXPECT_EQ(r->annotations[0].name, "x");
  EXPECT_EQ(r->annotations[0].span_id, "0303030303030303");
  EXPECT_EQ(r->annotations[0].timestamp_ns, kNoon + 6'000'000'000);
}

// ---------------------------------------------------------------------------------------------
// Requests built with the generated classes, one field changed at a time

// A request with one span (16- and 8-byte ids, times at noon), changed by `edit`.
std::string OneSpan(const std::function<void(pb::trace::v1::Span&)>& edit = {}) {
  ExportTraceServiceRequest request;
  pb::trace::v1::Span& span = *request.add_resource_spans()->add_scope_spans()->add_spans();
  span.set_trace_id(
      std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16));
  span.set_span_id(std::string("\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8));
  span.set_name("chat");
  span.set_start_time_unix_nano(static_cast<uint64_t>(kNoon));
  span.set_end_time_unix_nano(static_cast<uint64_t>(kNoon) + 1'000'000'000);
  if (edit) edit(span);
  return request.SerializeAsString();
}

// Found by the decode_otlp_proto fuzzer: a canonical text field (user.id) from an int64 near its
// maximum, which as a double is outside long long (the cast used to be undefined behaviour).
TEST(DecodeOtlpProto, CanonicalTextFromAHugeInteger) {
  const std::string proto = OneSpan([](auto& s) {
    auto& kv = *s.add_attributes();
    kv.set_key("user.id");
    kv.mutable_value()->set_int_value(INT64_MAX);
  });
  auto r = Decoded(DecodeSpans(proto));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->spans[0].user_id, "9223372036854775808.000000");
  auto small = Decoded(DecodeSpans(OneSpan([](auto& s) {
    auto& kv = *s.add_attributes();
    kv.set_key("user.id");
    kv.mutable_value()->set_int_value(-42);
  })));
  EXPECT_EQ(small->spans[0].user_id, "-42");
}

TEST(DecodeOtlpProto, IdsOfTheWrongLengthOrAllZerosAreRefused) {
  struct Case {
    std::function<void(pb::trace::v1::Span&)> edit;
    const char* reason;
    const char* mention;
  };
  const Case cases[] = {
      {[](auto& s) { s.clear_trace_id(); }, "missing_trace_id", "trace_id is missing"},
      {[](auto& s) { s.set_trace_id(std::string(8, '\x01')); }, "invalid_value",
       "trace_id must be 16 bytes, not 8"},
      {[](auto& s) { s.set_trace_id("5B8EFFF798038103D269B633813FC60C"); }, "invalid_value",
       "trace_id must be 16 bytes, not 32"},  // hex text where bytes belong
      {[](auto& s) { s.set_trace_id(std::string(16, '\0')); }, "invalid_value", "all zeros"},
      {[](auto& s) { s.clear_span_id(); }, "missing_field", "span_id is missing"},
      {[](auto& s) { s.set_span_id(std::string(16, '\x01')); }, "invalid_value",
       "span_id must be 8 bytes, not 16"},
      {[](auto& s) { s.set_span_id(std::string(8, '\0')); }, "invalid_value", "all zeros"},
      {[](auto& s) { s.set_parent_span_id(std::string(4, '\x01')); }, "invalid_value",
       "parent_span_id must be 8 bytes, not 4"},
  };
  for (const Case& c : cases) {
    auto r = DecodeSpans(OneSpan(c.edit));
    EXPECT_EQ(ReasonOf(r), c.reason) << c.mention;
    EXPECT_NE(MessageOf(r).find(c.mention), std::string::npos) << MessageOf(r);
  }
  // Where the message says which span.
  EXPECT_NE(MessageOf(DecodeSpans(OneSpan(cases[1].edit)))
                .find("resource_spans[0].scope_spans[0].spans[0].trace_id"),
            std::string::npos);
  // An empty or all-zero parent is a root.
  EXPECT_TRUE(Decoded(DecodeSpans(OneSpan()))->spans[0].is_root());
  auto zero_parent = [](auto& s) { s.set_parent_span_id(std::string(8, '\0')); };
  EXPECT_TRUE(Decoded(DecodeSpans(OneSpan(zero_parent)))->spans[0].is_root());
}

TEST(DecodeOtlpProto, TimesAndStatusAreCheckedAsInJson) {
  const std::string span = "resource_spans[0].scope_spans[0].spans[0].";
  auto r = DecodeSpans(OneSpan([](auto& s) { s.set_end_time_unix_nano(uint64_t(kNoon) - 1); }));
  EXPECT_EQ(ReasonOf(r), "invalid_value");
  EXPECT_EQ(MessageOf(r), span + "end_time_unix_nano is before " + span + "start_time_unix_nano");
  r = DecodeSpans(OneSpan([](auto& s) { s.set_start_time_unix_nano(1'000'000'000); }));
  EXPECT_EQ(MessageOf(r), span + "start_time_unix_nano is not between 2000-01-01 and 2200-01-01");
  r = DecodeSpans(OneSpan([](auto& s) { s.set_end_time_unix_nano(UINT64_MAX); }));
  EXPECT_EQ(MessageOf(r), span + "end_time_unix_nano is not between 2000-01-01 and 2200-01-01");
  // Zero is proto3's "not set".
  Span s =
      Decoded(DecodeSpans(OneSpan([](auto& sp) { sp.set_start_time_unix_nano(0); })))->spans[0];
  EXPECT_FALSE(s.start_ns);
  EXPECT_EQ(s.end_ns, kNoon + 1'000'000'000);

  for (auto [code, want] : {std::pair{0, SpanStatus::kUnset}, std::pair{1, SpanStatus::kOk},
                            std::pair{2, SpanStatus::kError}}) {
    auto st = DecodeSpans(OneSpan([code = code](auto& sp) {
      sp.mutable_status()->set_code(static_cast<pb::trace::v1::Status::StatusCode>(code));
    }));
    EXPECT_EQ(Decoded(st)->spans[0].status, want) << code;
  }
  r = DecodeSpans(OneSpan([](auto& sp) {
    sp.mutable_status()->set_code(static_cast<pb::trace::v1::Status::StatusCode>(7));
  }));
  EXPECT_EQ(ReasonOf(r), "invalid_value");
  EXPECT_EQ(MessageOf(r), span + "status.code must be 0, 1 or 2");
}

TEST(DecodeOtlpProto, EvaluationEventsAsInJson) {
  auto event = [](const std::function<void(pb::trace::v1::Span::Event&)>& fill) {
    return OneSpan([&](auto& s) {
      auto& e = *s.add_events();
      e.set_name("gen_ai.evaluation.result");
      fill(e);
    });
  };
  auto attr = [](pb::trace::v1::Span::Event& e, const std::string& key) {
    auto& kv = *e.add_attributes();
    kv.set_key(key);
    return kv.mutable_value();
  };
  auto r = DecodeSpans(event([&](auto& e) {
    attr(e, "gen_ai.evaluation.name")->set_string_value("tone");
    attr(e, "gen_ai.evaluation.score.value")->set_int_value(3);
    attr(e, "extra.flag")->set_bool_value(true);
  }));
  ASSERT_EQ(Decoded(r)->annotations.size(), 1u);
  const Annotation& a = r->annotations[0];
  EXPECT_EQ(a.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(a.span_id, "00f067aa0ba902b7");
  EXPECT_EQ(a.score, 3);
  EXPECT_FALSE(a.timestamp_ns);
  EXPECT_EQ(a.source, "llm_judge");
  EXPECT_EQ(a.metadata_json, R"({"extra.flag":true})");

  r = DecodeSpans(event([](auto&) {}));
  EXPECT_EQ(ReasonOf(r), "missing_field");
  EXPECT_NE(MessageOf(r).find("spans[0].events[0] has no gen_ai.evaluation.name"),
            std::string::npos);
  r = DecodeSpans(event([&](auto& e) {
    attr(e, "gen_ai.evaluation.name")->set_string_value("tone");
    attr(e, "gen_ai.evaluation.score.value")->set_string_value("high");
  }));
  EXPECT_EQ(ReasonOf(r), "wrong_type");
  r = DecodeSpans(event([&](auto& e) {
    e.set_time_unix_nano(UINT64_MAX);
    attr(e, "gen_ai.evaluation.name")->set_string_value("tone");
  }));
  EXPECT_EQ(MessageOf(r),
            "resource_spans[0].scope_spans[0].spans[0].events[0].time_unix_nano is "
            "not between 2000-01-01 and 2200-01-01");
  // Other events are not annotations.
  EXPECT_TRUE(Decoded(DecodeSpans(OneSpan([](auto& s) {
                s.add_events()->set_name("exception");
              })))->annotations.empty());
}

TEST(DecodeOtlpProto, TextThatIsNotUtf8IsRefusedNamingTheField) {
  auto r = DecodeSpans(OneSpan([](auto& s) { s.set_name("a\xff"); }));
  EXPECT_EQ(ReasonOf(r), "invalid_protobuf");
  EXPECT_NE(MessageOf(r).find("spans[0].name is not valid UTF-8"), std::string::npos);
  r = DecodeSpans(OneSpan([](auto& s) {
    auto& kv = *s.add_attributes();
    kv.set_key("k");
    kv.mutable_value()->set_string_value("\xc0\x80");  // overlong, as the JSON parser refuses it
  }));
  EXPECT_NE(MessageOf(r).find("attributes[0].value.string_value is not valid UTF-8"),
            std::string::npos);
}

TEST(DecodeOtlpProto, ARequestWithoutSpansIsADeadLetter) {
  ExportTraceServiceRequest request;
  request.add_resource_spans()->add_scope_spans();
  EXPECT_EQ(ReasonOf(DecodeSpans(request.SerializeAsString())), "missing_field");
  EXPECT_EQ(ReasonOf(DecodeSpans("", SpanShape::kOtlpProto)), "missing_field");
}

// ---------------------------------------------------------------------------------------------
// Malformed bytes

TEST(DecodeOtlpProto, EveryTruncationIsRefusedOrAShorterRequest) {
  const std::string bytes = Encoded("otlp_request");
  // The first resource_spans ends here; a cut there is a request of one resource.
  const size_t first_resource = 3 + 0x2d3;
  for (size_t n = 1; n < bytes.size(); ++n) {
    const std::string prefix = bytes.substr(0, n);  // a copy, so ASan sees the real end
    auto r = DecodeSpans(prefix);
    if (n == first_resource) {
      EXPECT_EQ(ReasonOf(r), "ok");
      continue;
    }
    ASSERT_EQ(ReasonOf(r), "invalid_protobuf") << "at " << n << ": " << MessageOf(r);
    EXPECT_NE(MessageOf(r).find("protobuf"), std::string::npos);
    EXPECT_NE(MessageOf(r).find(" at byte "), std::string::npos) << MessageOf(r);
  }
}

TEST(DecodeOtlpProto, MalformedWireFormatSaysWhere) {
  struct Case {
    std::string bytes;
    const char* mention;
  };
  const Case cases[] = {
      {std::string("\x0a\x05\x12\x03", 4), "field 1 at byte 0: its length of 5 bytes runs past"},
      {std::string("\x0a\x02\x12\x05", 4), "field 2 at byte 2: its length of 5 bytes runs past"},
      {std::string("\x0a") + std::string(11, '\xff'),
       "field 1 at byte 0: its length is not a valid varint"},
      {std::string("\x0a\x00\x07", 3), "field number 0 at byte 2"},
      {std::string("\x0a\x00\x0f\x00", 4), "field 1 at byte 2: wire type 7 does not exist"},
      {std::string("\x0a\x00\x0b\x08\x01", 5), "the group of field 1 is never closed"},
      {std::string("\x0a\x00\x0c", 3), "an end-group tag of field 1 at byte 2 without its start"},
      {std::string("\x0a\x00\x09\x01\x02", 5), "field 1 at byte 2: its value is cut short"},
  };
  for (const Case& c : cases) {
    auto r = DecodeSpans(c.bytes);
    EXPECT_EQ(ReasonOf(r), "invalid_protobuf") << c.mention;
    EXPECT_NE(MessageOf(r).find(c.mention), std::string::npos) << MessageOf(r);
    EXPECT_EQ(MessageOf(r).rfind("not a valid OTLP protobuf request: ", 0), 0u) << MessageOf(r);
  }
  // Unknown fields are skipped, as protobuf skips them: a closed group, a fixed32, a varint.
  std::string request = OneSpan();
  request += std::string("\x13\x08\x01\x14\x1d\x01\x02\x03\x04\x10\x05", 11);
  EXPECT_EQ(ReasonOf(DecodeSpans(request)), "ok");
}

// ---------------------------------------------------------------------------------------------
// Which encoding

TEST(DecodeOtlpProto, BytesThatAreNeitherJsonNorProtobufSayBoth) {
  for (const std::string& bytes :
       {std::string("\x00\x00\x00\x00\x01\x0a\x02", 7),  // Confluent's schema-registry framing
        std::string("\x1f\x8b\x08\x00", 4),              // gzip
        std::string("hello"), std::string("  <xml/>")}) {
    for (const auto& r : {DecodeSpans(bytes), DecodeAny(bytes)}) {
      EXPECT_EQ(ReasonOf(r), "invalid_json");
      EXPECT_NE(MessageOf(r).find("neither JSON nor OTLP protobuf"), std::string::npos)
          << MessageOf(r);
    }
  }
  EXPECT_NE(MessageOf(DecodeSpans(std::string("\x00\x01", 2))).find("starts with byte 0x00"),
            std::string::npos);
  EXPECT_NE(MessageOf(DecodeSpans("  <xml/>")).find("starts with byte 0x3c"), std::string::npos);
  EXPECT_NE(MessageOf(DecodeSpans("")).find("neither JSON nor OTLP protobuf"), std::string::npos);
}

TEST(DecodeOtlpProto, ProtobufIsNoLongerInvalidJsonAtOffsetOne) {
  const std::string bytes = Encoded("otlp_request");
  auto r = DecodeSpans(bytes);
  EXPECT_EQ(ReasonOf(r), "ok") << MessageOf(r);
  EXPECT_EQ(MessageOf(r).find("Invalid value"), std::string::npos);
}

TEST(DecodeOtlpProto, PinnedFormatsRefuseTheOtherEncodingClearly) {
  auto r = DecodeSpans(Shape("otlp_request.json"), SpanShape::kOtlpProto);
  EXPECT_EQ(ReasonOf(r), "invalid_protobuf");
  EXPECT_NE(MessageOf(r).find("JSON"), std::string::npos) << MessageOf(r);
  EXPECT_NE(MessageOf(r).find("otlp_proto"), std::string::npos) << MessageOf(r);
  for (SpanShape shape : {SpanShape::kOtlpJson, SpanShape::kNative}) {
    r = DecodeSpans(Encoded("otlp_request"), shape);
    EXPECT_EQ(ReasonOf(r), "invalid_json");
    EXPECT_EQ(MessageOf(r), "not JSON: it starts as OTLP protobuf does (byte 0x0a, then 0xd3)");
  }
  // The feedback topic reads JSON only.
  EXPECT_EQ(ReasonOf(DecodeFeedback(Encoded("otlp_request"))), "invalid_json");
}

// 0x0a is also a newline: JSON after one is JSON, and a request whose first resource_spans is
// 123 bytes long (0x0a 0x7b, `\n{`) is protobuf.
TEST(DecodeOtlpProto, ANewlineBeforeJsonOrABraceAfterTheFirstTag) {
  EXPECT_EQ(Decoded(DecodeSpans("\n" + Shape("otlp_request.json")))->spans.size(), 2u);
  EXPECT_EQ(Decoded(DecodeSpans("\n\n  {\"trace_id\":\"t\",\"span_id\":\"s\"}"))->spans.size(), 1u);
  std::string request;
  size_t pad = 0;
  for (; pad < 120; ++pad) {
    request = OneSpan([pad](auto& s) { s.set_name(std::string(pad, 'n')); });
    if (request[1] == '{') break;
  }
  ASSERT_EQ(request.substr(0, 2), "\n{");
  EXPECT_EQ(Decoded(DecodeSpans(request))->spans[0].name, std::string(pad, 'n'));
  EXPECT_EQ(ReasonOf(DecodeAny(request)), "ok");
  // Neither, then: both errors are in the message.
  auto r = DecodeSpans("\n{broken");
  EXPECT_EQ(ReasonOf(r), "invalid_json");
  EXPECT_NE(MessageOf(r).find("neither JSON ("), std::string::npos) << MessageOf(r);
  EXPECT_NE(MessageOf(r).find(") nor OTLP protobuf (not a valid OTLP protobuf request: "),
            std::string::npos)
      << MessageOf(r);
}

// ---------------------------------------------------------------------------------------------
// Limits

TEST(DecodeOtlpProto, MessageSizeLimit) {
  const std::string bytes = Encoded("otlp_request");
  DecodeLimits limits;
  limits.max_message_bytes = bytes.size() - 1;
  for (SpanShape shape : {SpanShape::kAuto, SpanShape::kOtlpProto}) {
    EXPECT_EQ(ReasonOf(DecodeSpans(bytes, shape, limits)), "too_large");
  }
  EXPECT_EQ(ReasonOf(DecodeAny(bytes, limits)), "too_large");
  limits.max_message_bytes = bytes.size();
  EXPECT_EQ(ReasonOf(DecodeSpans(bytes, SpanShape::kAuto, limits)), "ok");
}

TEST(DecodeOtlpProto, AttributeLimitPerSpanAndResource) {
  auto attrs = [](auto* list, int n) {
    for (int i = 0; i < n; ++i) {
      auto& kv = *list->Add();
      kv.set_key("k" + std::to_string(i));
      kv.mutable_value()->set_int_value(1);
    }
  };
  EXPECT_EQ(ReasonOf(DecodeSpans(OneSpan([&](auto& s) { attrs(s.mutable_attributes(), 4097); }))),
            "too_large");
  EXPECT_EQ(ReasonOf(DecodeSpans(OneSpan([&](auto& s) { attrs(s.mutable_attributes(), 4096); }))),
            "ok");
  ExportTraceServiceRequest request;
  auto& rs = *request.add_resource_spans();
  attrs(rs.mutable_resource()->mutable_attributes(), 4097);
  EXPECT_EQ(ReasonOf(DecodeSpans(request.SerializeAsString())), "too_large");
  // Flattened kvlist entries count, as in JSON.
  DecodeLimits tight;
  tight.max_attributes = 2;
  const std::string kvlist = OneSpan([](auto& s) {
    auto& kv = *s.add_attributes();
    kv.set_key("a");
    for (const char* key : {"b", "c", "d"}) {
      auto& inner = *kv.mutable_value()->mutable_kvlist_value()->add_values();
      inner.set_key(key);
      inner.mutable_value()->set_int_value(1);
    }
  });
  EXPECT_EQ(ReasonOf(DecodeSpans(kvlist, SpanShape::kAuto, tight)), "too_large");
}

// An attribute whose value nests `levels` arrays, in each encoding.
std::string NestedJson(int levels) {
  std::string value = R"({"intValue":"1"})";
  for (int i = 0; i < levels; ++i) value = R"({"arrayValue":{"values":[)" + value + "]}}";
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736",)"
         R"("spanId":"00f067aa0ba902b7","attributes":[{"key":"a","value":)" +
         value + "}]}]}]}]}";
}

std::string NestedProto(int levels) {
  return OneSpan([levels](auto& s) {
    s.clear_name();
    s.clear_start_time_unix_nano();
    s.clear_end_time_unix_nano();
    auto& kv = *s.add_attributes();
    kv.set_key("a");
    pb::common::v1::AnyValue* v = kv.mutable_value();
    for (int i = 0; i < levels; ++i) v = v->mutable_array_value()->add_values();
    v->set_int_value(1);
  });
}

TEST(DecodeOtlpProto, DepthLimitMeansTheSameInBothEncodings) {
  DecodeLimits limits;
  limits.max_depth = 20;
  int first_too_deep = -1;
  for (int levels = 0; levels <= 8; ++levels) {
    const std::string json = ReasonOf(DecodeSpans(NestedJson(levels), SpanShape::kAuto, limits));
    const std::string proto = ReasonOf(DecodeSpans(NestedProto(levels), SpanShape::kAuto, limits));
    EXPECT_EQ(json, proto) << levels << " levels";
    if (proto == "too_deep" && first_too_deep < 0) first_too_deep = levels;
  }
  // {resourceSpans:[{scopeSpans:[{spans:[{attributes:[{value:{  is 10 levels; each array 3 more.
  EXPECT_EQ(first_too_deep, 4);
}

// 60,000 AnyValue/ArrayValue levels, written by hand (the generated code would recurse to
// serialize them): refused as too_deep before protobuf's recursive parser sees them.
TEST(DecodeOtlpProto, HostileNestingIsTooDeepNotACrash) {
  constexpr int kLevels = 60'000;
  // Inside out: AnyValue{array_value=5: ArrayValue{values=1: AnyValue{...}}}; tags 0x2a, 0x0a.
  std::vector<size_t> length(kLevels + 1, 0);
  for (int i = 1; i <= kLevels; ++i) {
    length[i] = length[i - 1] + 1 + Varint(length[i - 1]).size();
  }
  std::string value;
  value.reserve(length[kLevels] + 16);
  for (int i = kLevels; i > 0; --i) {
    value += (i % 2 == 0 ? '\x2a' : '\x0a') + Varint(length[i - 1]);
  }
  ExportTraceServiceRequest base;
  ASSERT_TRUE(base.ParseFromString(OneSpan()));
  const std::string span = base.resource_spans(0).scope_spans(0).spans(0).SerializeAsString() +
                           Field(9, Field(1, "k") + Field(2, value));
  const std::string request = Field(1, Field(2, Field(2, span)));
  for (SpanShape shape : {SpanShape::kAuto, SpanShape::kOtlpProto}) {
    EXPECT_EQ(ReasonOf(DecodeSpans(request, shape)), "too_deep");
  }
  DecodeLimits roomy;
  roomy.max_depth = 1'000'000;  // past protobuf's own limit: still refused, by the parser
  EXPECT_EQ(ReasonOf(DecodeSpans(request, SpanShape::kAuto, roomy)), "invalid_protobuf");
}

}  // namespace
}  // namespace triaged
