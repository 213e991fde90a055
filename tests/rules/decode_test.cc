#include "rules/decode.h"
#include "rules/json_onepass.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace triaged {
namespace {

constexpr int64_t kNoon = 1714564800LL * 1'000'000'000;  // 2024-05-01T12:00:00Z

std::string Sample(const std::string& name) {
  std::ifstream in(std::string(TRIAGED_SOURCE_DIR) + "/tests/data/shapes/" + name,
                   std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The reason of a failed decode, or "ok".
std::string ReasonOf(const Result<DecodedMessage>& r) { return r.ok() ? "ok" : r.error().reason; }

const AttrValue& Attr(const Attributes& attrs, std::string_view key) {
  const AttrValue* v = FindAttr(attrs, key);
  static const AttrValue kMissing = AttrValue::String("<missing>");
  return v != nullptr ? *v : kMissing;
}

Annotation OneAnnotation(const Result<DecodedMessage>& r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().reason + ": " + r.error().message);
  if (!r.ok() || r->annotations.size() != 1) {
    ADD_FAILURE() << "expected exactly one annotation";
    return {};
  }
  EXPECT_TRUE(r->spans.empty());
  return r->annotations[0];
}

Span OneSpan(const Result<DecodedMessage>& r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().reason + ": " + r.error().message);
  if (!r.ok() || r->spans.size() != 1) {
    ADD_FAILURE() << "expected exactly one span";
    return {};
  }
  return r->spans[0];
}

// ---------------------------------------------------------------------------------------------
// Ids

TEST(DecodeNormalizeId, LowercasesPrintableAscii) {
  std::string out;
  ASSERT_TRUE(NormalizeId("4BF92F3577B34DA6", out));
  EXPECT_EQ(out, "4bf92f3577b34da6");
  ASSERT_TRUE(NormalizeId("0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0", out));
  EXPECT_EQ(out, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  ASSERT_TRUE(NormalizeId(std::string(128, 'A'), out));
  EXPECT_EQ(out, std::string(128, 'a'));
}

TEST(DecodeNormalizeId, RejectsEmptyLongAndNonPrintable) {
  std::string out = "unchanged";
  EXPECT_FALSE(NormalizeId("", out));
  EXPECT_FALSE(NormalizeId(std::string(129, 'a'), out));
  EXPECT_FALSE(NormalizeId("ab\ncd", out));
  EXPECT_FALSE(NormalizeId(std::string("ab\0cd", 5), out));
  EXPECT_FALSE(NormalizeId("caf\xc3\xa9", out));
  EXPECT_FALSE(NormalizeId("\x7f", out));
  EXPECT_EQ(out, "unchanged");
}

// ---------------------------------------------------------------------------------------------
// Canonical mapping

TEST(CanonicalMapping, TheFirstNamePresentAndNotNullWinsByTheFirstAttributeOfThatName) {
  Span s;
  s.attributes = {
      {"llm.model_name", AttrValue::String("third")},
      {"gen_ai.request.model", AttrValue::Null()},  // present but null: the next name
      {"gen_ai.response.model", AttrValue::String("second")},
      {"gen_ai.response.model", AttrValue::String("a later value of the same name")},
      {"session.id", AttrValue::Null()},  // its first value is null: not a later one
      {"session.id", AttrValue::String("s-1")},
      {"GEN_AI.PROMPT", AttrValue::String("names are compared as they are")},
      {"gen_ai.prompts", AttrValue::String("one letter more")},
      {"gen_ai.prompt", AttrValue::String("the prompt")},
      {"http.request.resend_count", AttrValue::Number(5)},
      {"retry.count", AttrValue::String("2")},
      {"enduser.id", AttrValue::Bool(true)},
      {"llm.prompt_template.version", AttrValue::Number(3)},
      {"an.attribute.name.longer.than.any.canonical.one", AttrValue::String("x")},
      {"gen_ai.operation.name", AttrValue::String("execute_tool")},
  };
  ApplyCanonicalMapping(s);
  EXPECT_EQ(s.model, "second");
  EXPECT_EQ(s.session_id, std::nullopt);
  EXPECT_EQ(s.input, "the prompt");
  EXPECT_EQ(s.retry_count, 2);
  EXPECT_EQ(s.user_id, "true");
  EXPECT_EQ(s.prompt_version, "3");
  EXPECT_EQ(s.kind, "TOOL");
  EXPECT_EQ(s.output, std::nullopt);
  EXPECT_EQ(s.input_tokens, std::nullopt);

  Span kind;
  kind.attributes = {{"gen_ai.operation.name", AttrValue::String("chat")},
                     {"openinference.span.kind", AttrValue::String("AGENT")}};
  ApplyCanonicalMapping(kind);
  EXPECT_EQ(kind.kind, "AGENT");  // OpenInference's kind before the GenAI operation
}

TEST(DecodeNormalizeId, EveryByteOfEveryLengthIsCheckedAndLowered) {
  // Ids are read eight bytes at a time, then byte by byte: every position of every length up to
  // 40, with each byte that must be refused and each that must be lowered.
  for (size_t n = 1; n <= 40; ++n) {
    for (size_t at = 0; at < n; ++at) {
      for (int bad : {0x00, 0x1f, 0x7f, 0x80, 0xc3, 0xff}) {
        std::string id(n, 'a');
        id[at] = static_cast<char>(bad);
        std::string out = "unchanged";
        EXPECT_FALSE(NormalizeId(id, out)) << n << " " << at << " " << bad;
        EXPECT_EQ(out, "unchanged");
      }
      for (auto [c, lowered] : {std::pair{'A', 'a'},
                                {'Z', 'z'},
                                {'@', '@'},
                                {'[', '['},
                                {' ', ' '},
                                {'~', '~'},
                                {'`', '`'},
                                {'{', '{'}}) {
        std::string id(n, 'Q');
        id[at] = c;
        std::string expected(n, 'q');
        expected[at] = lowered;
        std::string out;
        ASSERT_TRUE(NormalizeId(id, out)) << n << " " << at << " " << c;
        EXPECT_EQ(out, expected);
      }
    }
  }
}

TEST(DecodeNormalizeId, AnIdCanBeNormalizedIntoItself) {
  std::string id = "4BF92F3577B34DA6A3CE929D0E0E4736";
  ASSERT_TRUE(NormalizeId(id, id));
  EXPECT_EQ(id, "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(NormalizeId(std::string_view(id).substr(8, 8), id));
  EXPECT_EQ(id, "77b34da6");
}

// ---------------------------------------------------------------------------------------------
// Native spans

TEST(DecodeSpansNative, SampleFile) {
  const std::string bytes = Sample("native_span.json");
  auto r = DecodeSpans(bytes);
  Span s = OneSpan(r);
  EXPECT_EQ(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.span_id, "00f067aa0ba902b7");
  EXPECT_TRUE(s.is_root());
  EXPECT_EQ(s.name, "chat");
  EXPECT_EQ(s.start_ns, kNoon);
  EXPECT_EQ(s.end_ns, kNoon + 1'500'000'000);
  EXPECT_EQ(s.status, SpanStatus::kError);
  EXPECT_EQ(s.status_message, "rate limited");
  EXPECT_EQ(Attr(s.attributes, "gen_ai.request.model"), AttrValue::String("gpt-4o"));
  EXPECT_EQ(Attr(s.attributes, "gen_ai.usage.input_tokens"), AttrValue::Number(120));
  EXPECT_EQ(Attr(s.attributes, "session.id"), AttrValue::String("sess-1"));  // flattened
  EXPECT_EQ(Attr(s.attributes, "tags"),
            AttrValue::Array({AttrValue::String("a"), AttrValue::Number(1), AttrValue::Bool(true),
                              AttrValue::Null()}));
  EXPECT_EQ(Attr(s.attributes, "cached"), AttrValue::Bool(false));
  EXPECT_EQ(Attr(s.attributes, "nothing"), AttrValue::Null());
  EXPECT_TRUE(s.resource.empty());
  // Canonical fields.
  EXPECT_EQ(s.kind, "LLM");
  EXPECT_EQ(s.model, "gpt-4o");
  EXPECT_EQ(s.input_tokens, 120);
  EXPECT_EQ(s.output_tokens, 30);
  EXPECT_EQ(s.session_id, "sess-1");
  EXPECT_EQ(s.user_id, "u-42");
  EXPECT_EQ(s.input, "What is the capital of France?");
  EXPECT_EQ(s.output, R"({"answer":"Paris"})");  // non-string output serialized compactly
  EXPECT_EQ(s.bytes, bytes.size());
  EXPECT_EQ(r->event_time_ns, kNoon + 1'500'000'000);
}

TEST(DecodeSpansNative, Rfc3339Times) {
  auto r = DecodeSpans(R"({"trace_id":"t","span_id":"s","name":"n",
      "start_time":"2024-05-01T12:00:00Z","end_time":"2024-05-01T14:00:00.5+02:00"})");
  Span s = OneSpan(r);
  EXPECT_EQ(s.start_ns, kNoon);
  EXPECT_EQ(s.end_ns, kNoon + 500'000'000);
  EXPECT_EQ(r->event_time_ns, kNoon + 500'000'000);
}

TEST(DecodeSpansNative, DecimalStringAndIntegerNanos) {
  Span s = OneSpan(DecodeSpans(R"({"trace_id":"t","span_id":"s",
      "start_time_unix_nano":"1714564800000000001","end_time_unix_nano":1714564800000000002})"));
  EXPECT_EQ(s.start_ns, kNoon + 1);
  EXPECT_EQ(s.end_ns, kNoon + 2);
}

TEST(DecodeSpansNative, NanosWinOverRfc3339) {
  Span s = OneSpan(DecodeSpans(R"({"trace_id":"t","span_id":"s",
      "start_time_unix_nano":1714564805000000000,"start_time":"2024-05-01T12:00:00Z"})"));
  EXPECT_EQ(s.start_ns, kNoon + 5'000'000'000);
  EXPECT_FALSE(s.end_ns);
}

TEST(DecodeSpansNative, EventTimeFallsBackToStartThenNone) {
  auto r =
      DecodeSpans(R"({"trace_id":"t","span_id":"s","start_time_unix_nano":1714564800000000007})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->event_time_ns, kNoon + 7);
  r = DecodeSpans(R"({"trace_id":"t","span_id":"s"})");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->event_time_ns);
}

TEST(DecodeSpansNative, ParentAndStatusVariants) {
  Span s = OneSpan(
      DecodeSpans(R"({"trace_id":"t","span_id":"s","parent_span_id":"ABC","status":"Ok"})"));
  EXPECT_EQ(s.parent_span_id, "abc");
  EXPECT_FALSE(s.is_root());
  EXPECT_EQ(s.status, SpanStatus::kOk);
  s = OneSpan(
      DecodeSpans(R"({"trace_id":"t","span_id":"s","parent_span_id":"","status":"unset"})"));
  EXPECT_TRUE(s.is_root());
  EXPECT_EQ(s.status, SpanStatus::kUnset);
  s = OneSpan(
      DecodeSpans(R"({"trace_id":"t","span_id":"s","status":{"code":2,"message":"boom"}})"));
  EXPECT_EQ(s.status, SpanStatus::kError);
  EXPECT_EQ(s.status_message, "boom");
  s = OneSpan(DecodeSpans(R"({"trace_id":"t","span_id":"s","status":{"code":"STATUS_CODE_OK"}})"));
  EXPECT_EQ(s.status, SpanStatus::kOk);
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"trace_id":"t","span_id":"s","status":"fine"})")),
            "invalid_value");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"trace_id":"t","span_id":"s","status":1.5})")), "wrong_type");
}

TEST(DecodeSpansNative, InputOutputKindAndResource) {
  Span s = OneSpan(DecodeSpans(R"({"trace_id":"t","span_id":"s","input":[1,2],"output":null,
      "kind":"retriever-ish","attributes":{"output.value":"from attr"},
      "resource":{"service":{"name":"svc"}}})"));
  EXPECT_EQ(s.input, "[1,2]");
  EXPECT_EQ(s.output, "from attr");  // null native output: the attribute applies
  EXPECT_EQ(s.kind, "retriever-ish");
  EXPECT_EQ(Attr(s.resource, "service.name"), AttrValue::String("svc"));
}

TEST(DecodeSpansNative, ObjectsInsideArraysStayJsonText) {
  Span s = OneSpan(DecodeSpans(R"({"trace_id":"t","span_id":"s","attributes":{"a":[{"b":1}],
      "deep":{"x":{"y":{"z":true}}},"empty":{}}})"));
  EXPECT_EQ(Attr(s.attributes, "a"), AttrValue::Array({AttrValue::String(R"({"b":1})")}));
  EXPECT_EQ(Attr(s.attributes, "deep.x.y.z"), AttrValue::Bool(true));
  EXPECT_EQ(FindAttr(s.attributes, "empty"), nullptr);
}

TEST(DecodeSpansNative, MissingIds) {
  auto r = DecodeSpans(R"({"span_id":"s","name":"n"})");
  EXPECT_EQ(ReasonOf(r), "missing_trace_id");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"trace_id":null,"span_id":"s"})")), "missing_trace_id");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"trace_id":"","span_id":"s"})")), "missing_trace_id");
  r = DecodeSpans(R"({"trace_id":"t","name":"n"})");
  EXPECT_EQ(ReasonOf(r), "missing_field");
  EXPECT_NE(r.error().message.find("span_id"), std::string::npos);
}

TEST(DecodeSpansNative, WrongTypesNameTheField) {
  struct Case {
    const char* json;
    const char* field;
  };
  for (const Case& c : {
           Case{R"({"trace_id":123,"span_id":"s"})", "trace_id"},
           Case{R"({"trace_id":"t","span_id":["s"]})", "span_id"},
           Case{R"({"trace_id":"t","span_id":"s","parent_span_id":1})", "parent_span_id"},
           Case{R"({"trace_id":"t","span_id":"s","name":{}})", "name"},
           Case{R"({"trace_id":"t","span_id":"s","start_time_unix_nano":true})",
                "start_time_unix_nano"},
           Case{R"({"trace_id":"t","span_id":"s","end_time":1714564800})", "end_time"},
           Case{R"({"trace_id":"t","span_id":"s","status_message":5})", "status_message"},
           Case{R"({"trace_id":"t","span_id":"s","attributes":[1]})", "attributes"},
           Case{R"({"trace_id":"t","span_id":"s","kind":1})", "kind"},
       }) {
    auto r = DecodeSpans(c.json);
    ASSERT_EQ(ReasonOf(r), "wrong_type") << c.json;
    EXPECT_NE(r.error().message.find(c.field), std::string::npos) << r.error().message;
  }
}

TEST(DecodeSpansNative, BadTimes) {
  for (const char* json : {
           R"({"trace_id":"t","span_id":"s","start_time":"yesterday"})",
           R"({"trace_id":"t","span_id":"s","start_time":"2024-02-30T00:00:00Z"})",
           R"({"trace_id":"t","span_id":"s","start_time_unix_nano":"12x"})",
           R"({"trace_id":"t","span_id":"s","start_time_unix_nano":""})",
           R"({"trace_id":"t","span_id":"s","start_time_unix_nano":"-5"})",
           R"({"trace_id":"t","span_id":"s","start_time_unix_nano":"+5"})",
           R"({"trace_id":"t","span_id":"s","start_time_unix_nano":-5})",
           R"({"trace_id":"t","span_id":"s","start_time_unix_nano":1.5})",
           R"({"trace_id":"t","span_id":"s","start_time_unix_nano":9223372036854775808})",
           R"({"trace_id":"t","span_id":"s","start_time_unix_nano":"9223372036854775808"})",
           R"({"trace_id":"t","span_id":"s","end_time_unix_nano":"99999999999999999999999"})",
           R"({"trace_id":"t","span_id":"s","end_time_unix_nano":1e300})",
           R"({"trace_id":"t","span_id":"s","start_time_unix_nano":"9223372036854775807"})",
       }) {
    EXPECT_EQ(ReasonOf(DecodeSpans(json)), "invalid_value") << json;
  }
}

TEST(DecodeSpansNative, InvalidIds) {
  const std::string long_id(129, 'a');
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"trace_id":")" + long_id + R"(","span_id":"s"})")),
            "invalid_value");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"trace_id":"a\tb","span_id":"s"})")), "invalid_value");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"trace_id":"t","span_id":"\u00e9"})")), "invalid_value");
}

TEST(DecodeSpansNative, HugeAttributeMapIsTooLarge) {
  std::string json = R"({"trace_id":"t","span_id":"s","attributes":{)";
  for (int i = 0; i < 5000; ++i) {
    if (i > 0) json += ',';
    json += "\"k" + std::to_string(i) + "\":" + std::to_string(i);
  }
  json += "}}";
  EXPECT_EQ(ReasonOf(DecodeSpans(json)), "too_large");
  DecodeLimits roomy;
  roomy.max_attributes = 5000;
  Span s = OneSpan(DecodeSpans(json, SpanShape::kAuto, roomy));
  EXPECT_EQ(s.attributes.size(), 5000u);
  // Flattened keys count, not top-level members.
  DecodeLimits tight;
  tight.max_attributes = 2;
  EXPECT_EQ(ReasonOf(DecodeSpans(
                R"({"trace_id":"t","span_id":"s","attributes":{"a":{"b":1,"c":2,"d":3}}})",
                SpanShape::kAuto, tight)),
            "too_large");
}

TEST(DecodeSpansNative, PinnedOtlpRejectsNative) {
  EXPECT_EQ(ReasonOf(DecodeSpans(Sample("native_span.json"), SpanShape::kOtlpJson)),
            "missing_field");
  // And a pinned native decoder treats an OTLP request as a span without ids.
  EXPECT_EQ(ReasonOf(DecodeSpans(Sample("otlp_request.json"), SpanShape::kNative)),
            "missing_trace_id");
}

// ---------------------------------------------------------------------------------------------
// OTLP/JSON spans

TEST(DecodeSpansOtlp, SampleFile) {
  const std::string bytes = Sample("otlp_request.json");
  auto r = DecodeSpans(bytes);
  ASSERT_TRUE(r.ok()) << r.error().reason << ": " << r.error().message;
  ASSERT_EQ(r->spans.size(), 2u);
  ASSERT_EQ(r->annotations.size(), 1u);

  const Span& agent = r->spans[0];
  EXPECT_EQ(agent.trace_id, "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(agent.span_id, "eee19b7ec3c1b174");
  EXPECT_TRUE(agent.is_root());
  EXPECT_EQ(agent.name, "agent");
  EXPECT_EQ(agent.start_ns, kNoon);
  EXPECT_EQ(agent.end_ns, kNoon + 5'000'000'000);
  EXPECT_EQ(agent.status, SpanStatus::kError);
  EXPECT_EQ(agent.status_message, "tool failed");
  // Every AnyValue kind.
  EXPECT_EQ(Attr(agent.attributes, "input.value"), AttrValue::String("book a flight"));
  EXPECT_EQ(Attr(agent.attributes, "retry.count"), AttrValue::Number(2));  // string int64
  EXPECT_EQ(Attr(agent.attributes, "llm.token_count.prompt"), AttrValue::Number(150));
  EXPECT_EQ(Attr(agent.attributes, "temperature"), AttrValue::Number(0.7));
  EXPECT_EQ(Attr(agent.attributes, "streaming"), AttrValue::Bool(true));
  EXPECT_EQ(
      Attr(agent.attributes, "tags"),
      AttrValue::Array({AttrValue::String("a"), AttrValue::Number(7), AttrValue::Bool(false)}));
  EXPECT_EQ(Attr(agent.attributes, "blob"), AttrValue::String("aGVsbG8="));
  EXPECT_EQ(Attr(agent.attributes, "request.id"), AttrValue::String("r-1"));  // kvlist
  EXPECT_EQ(Attr(agent.attributes, "request.headers.accept"), AttrValue::String("json"));
  EXPECT_EQ(Attr(agent.attributes, "empty"), AttrValue::Null());
  EXPECT_EQ(FindAttr(agent.attributes, "request"), nullptr);
  // Resource attributes, flattened too, on every span of the resource.
  EXPECT_EQ(Attr(agent.resource, "service.name"), AttrValue::String("chatbot"));
  EXPECT_EQ(Attr(agent.resource, "deployment.env"), AttrValue::String("prod"));
  EXPECT_EQ(Attr(agent.resource, "deployment.region"), AttrValue::String("eu-west-1"));
  // Canonical mapping ran.
  EXPECT_EQ(agent.kind, "AGENT");
  EXPECT_EQ(agent.input, "book a flight");
  EXPECT_EQ(agent.retry_count, 2);
  EXPECT_EQ(agent.input_tokens, 150);

  const Span& search = r->spans[1];  // from legacy instrumentationLibrarySpans
  EXPECT_EQ(search.span_id, "1111111111111111");
  EXPECT_EQ(search.parent_span_id, "eee19b7ec3c1b174");
  EXPECT_EQ(search.start_ns, kNoon + 1'000'000'000);  // integer nanos
  EXPECT_EQ(search.status, SpanStatus::kOk);
  EXPECT_EQ(search.kind, "TOOL");
  EXPECT_EQ(Attr(search.resource, "service.name"), AttrValue::String("retriever"));

  const Annotation& eval = r->annotations[0];
  EXPECT_EQ(eval.trace_id, agent.trace_id);
  EXPECT_EQ(eval.span_id, agent.span_id);
  EXPECT_EQ(eval.name, "relevance");
  EXPECT_EQ(eval.score, 0.25);
  EXPECT_EQ(eval.label, "irrelevant");
  EXPECT_EQ(eval.explanation, "off topic");
  EXPECT_EQ(eval.source, "llm_judge");
  EXPECT_EQ(eval.timestamp_ns, kNoon + 6'000'000'000);
  EXPECT_EQ(eval.metadata_json, R"({"gen_ai.response.id":"resp-9"})");

  EXPECT_EQ(agent.bytes + search.bytes + eval.bytes, bytes.size());
  EXPECT_GT(search.bytes, 0u);
  EXPECT_EQ(r->event_time_ns, kNoon + 6'000'000'000);  // the evaluation is the latest event
}

std::string OtlpWith(const std::string& span_fields) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{)" + span_fields + "}]}]}]}";
}

// ---------------------------------------------------------------------------------------------
// Timestamps: a span ends no earlier than it starts, and every time lies in 2000..2200, so one
// bad clock cannot move event time (replay's clock, the daemon's trace timers) by centuries.

constexpr int64_t k2000 = 946684800LL * 1'000'000'000;   // 2000-01-01T00:00:00Z
constexpr int64_t k2200 = 7258118400LL * 1'000'000'000;  // 2200-01-01T00:00:00Z

std::string Native(const std::string& times) {
  return R"({"trace_id":"t","span_id":"s",)" + times + "}";
}

// The message of a decode that must fail with invalid_value.
std::string InvalidValue(const Result<DecodedMessage>& r) {
  EXPECT_EQ(ReasonOf(r), "invalid_value");
  return r.ok() ? "" : r.error().message;
}

TEST(DecodeTimestamps, NativeSpanEndingBeforeItStartsIsInvalid) {
  EXPECT_EQ(InvalidValue(DecodeSpans(Native(R"("start_time_unix_nano":1714564800000000002,)"
                                            R"("end_time_unix_nano":"1714564800000000001")"))),
            "end_time_unix_nano is before start_time_unix_nano");
  EXPECT_EQ(InvalidValue(DecodeSpans(Native(R"("start_time":"2024-05-01T12:00:01Z",)"
                                            R"("end_time":"2024-05-01T12:00:00Z")"))),
            "end_time is before start_time");
  EXPECT_EQ(InvalidValue(DecodeSpans(Native(R"("start_time":"2024-05-01T12:00:01Z",)"
                                            R"("end_time_unix_nano":1714564800000000000)"))),
            "end_time_unix_nano is before start_time");
  // Through auto-detection too (replay's bare lines).
  EXPECT_EQ(InvalidValue(DecodeAny(Native(R"("name":"x",)"
                                          R"("start_time_unix_nano":1714564800000000002,)"
                                          R"("end_time_unix_nano":1714564800000000001)"))),
            "end_time_unix_nano is before start_time_unix_nano");
  // A span of zero length, and one with a single time, are fine.
  Span s = OneSpan(DecodeSpans(Native(R"("start_time_unix_nano":1714564800000000000,)"
                                      R"("end_time_unix_nano":1714564800000000000)")));
  EXPECT_EQ(s.duration_ms(), 0.0);
  EXPECT_EQ(OneSpan(DecodeSpans(Native(R"("end_time_unix_nano":1714564800000000000)"))).end_ns,
            kNoon);
}

TEST(DecodeTimestamps, NativeSpanTimesOutsideTheRangeAreInvalid) {
  const std::string range = " is not between 2000-01-01 and 2200-01-01";
  EXPECT_EQ(InvalidValue(DecodeSpans(Native(R"("start_time_unix_nano":9223372036854775807)"))),
            "start_time_unix_nano" + range);
  EXPECT_EQ(InvalidValue(DecodeSpans(Native(R"("end_time_unix_nano":"1")"))),
            "end_time_unix_nano" + range);
  EXPECT_EQ(InvalidValue(DecodeSpans(Native(R"("start_time_unix_nano":0)"))),
            "start_time_unix_nano" + range);
  EXPECT_EQ(InvalidValue(DecodeSpans(Native(R"("start_time":"1999-12-31T23:59:59.999Z")"))),
            "start_time" + range);
  EXPECT_EQ(InvalidValue(DecodeSpans(Native(R"("end_time":"2250-01-01T00:00:00Z")"))),
            "end_time" + range);
  EXPECT_EQ(InvalidValue(DecodeSpans(Native(R"("end_time":"2200-01-01T00:00:00Z")"))),
            "end_time" + range);
  // The bounds: 2000-01-01 is in, 2200-01-01 is out.
  EXPECT_EQ(OneSpan(DecodeSpans(Native(R"("start_time":"2000-01-01T00:00:00Z")"))).start_ns, k2000);
  EXPECT_EQ(OneSpan(DecodeSpans(Native(R"("end_time_unix_nano":7258118399999999999)"))).end_ns,
            k2200 - 1);
}

TEST(DecodeTimestamps, OtlpSpanTimesAreCheckedLikeNativeOnes) {
  const std::string span = "resourceSpans[0].scopeSpans[0].spans[0].";
  EXPECT_EQ(InvalidValue(DecodeSpans(
                OtlpWith(R"("traceId":"a","spanId":"b","startTimeUnixNano":"1714564805000000000",)"
                         R"("endTimeUnixNano":"1714564800000000000")"))),
            span + "endTimeUnixNano is before " + span + "startTimeUnixNano");
  EXPECT_EQ(InvalidValue(DecodeSpans(
                OtlpWith(R"("traceId":"a","spanId":"b","endTimeUnixNano":"9223372036854775807")"))),
            span + "endTimeUnixNano is not between 2000-01-01 and 2200-01-01");
  EXPECT_EQ(
      InvalidValue(DecodeSpans(OtlpWith(R"("traceId":"a","spanId":"b","startTimeUnixNano":"0")"))),
      span + "startTimeUnixNano is not between 2000-01-01 and 2200-01-01");
  // An evaluation event's time, too.
  EXPECT_EQ(InvalidValue(DecodeSpans(OtlpWith(R"("traceId":"a","spanId":"b","events":[
      {"name":"gen_ai.evaluation.result","timeUnixNano":"9223372036854775807","attributes":[
        {"key":"gen_ai.evaluation.name","value":{"stringValue":"tone"}}]}])"))),
            span + "events[0].timeUnixNano is not between 2000-01-01 and 2200-01-01");
}

TEST(DecodeTimestamps, FeedbackTimesOutsideTheRangeAreInvalid) {
  const std::string range = " is not between 2000-01-01 and 2200-01-01";
  EXPECT_EQ(InvalidValue(DecodeFeedback(
                R"({"trace_id":"t","name":"n","timestamp_unix_nano":9223372036854775807})")),
            "timestamp_unix_nano" + range);
  EXPECT_EQ(InvalidValue(DecodeFeedback(
                R"({"trace_id":"t","name":"n","timestamp":"1970-01-01T00:00:00Z"})")),
            "timestamp" + range);
  EXPECT_EQ(InvalidValue(DecodeFeedback(
                R"({"trace_id":"t","thumbs":"up","timestamp":"2250-06-30T12:00:00Z"})")),
            "timestamp" + range);
  EXPECT_EQ(InvalidValue(DecodeFeedback(
                R"({"trace_id":"t","key":"k","run_id":"r","created_at":"2250-01-01T00:00:00"})")),
            "created_at" + range);
  EXPECT_EQ(InvalidValue(DecodeAny(
                R"({"trace_id":"t","span_id":"s","name":"flag","timestamp_unix_nano":"12"})")),
            "timestamp_unix_nano" + range);
}

TEST(DecodeSpansOtlp, StatusCodes) {
  struct Case {
    const char* status;
    SpanStatus want;
  };
  for (const Case& c :
       {Case{R"({"code":0})", SpanStatus::kUnset}, Case{R"({"code":1})", SpanStatus::kOk},
        Case{R"({"code":2})", SpanStatus::kError},
        Case{R"({"code":"STATUS_CODE_UNSET"})", SpanStatus::kUnset},
        Case{R"({"code":"STATUS_CODE_OK"})", SpanStatus::kOk},
        Case{R"({"code":"STATUS_CODE_ERROR","message":"m"})", SpanStatus::kError},
        Case{R"({})", SpanStatus::kUnset}}) {
    Span s = OneSpan(
        DecodeSpans(OtlpWith(R"("traceId":"AB","spanId":"CD","status":)" + std::string(c.status))));
    EXPECT_EQ(s.status, c.want) << c.status;
  }
  EXPECT_EQ(ReasonOf(DecodeSpans(OtlpWith(R"("traceId":"a","spanId":"b","status":{"code":7})"))),
            "invalid_value");
  EXPECT_EQ(ReasonOf(DecodeSpans(OtlpWith(R"("traceId":"a","spanId":"b","status":"ERROR")"))),
            "wrong_type");
}

TEST(DecodeSpansOtlp, MissingParentIsRootAndIdsLowercase) {
  Span s = OneSpan(DecodeSpans(OtlpWith(R"("traceId":"ABCDEF","spanId":"0A0B")")));
  EXPECT_EQ(s.trace_id, "abcdef");
  EXPECT_EQ(s.span_id, "0a0b");
  EXPECT_TRUE(s.is_root());
  EXPECT_EQ(s.name, "");
}

TEST(DecodeSpansOtlp, DoubleAndIntValueEdgeCases) {
  Span s = OneSpan(DecodeSpans(OtlpWith(R"("traceId":"a","spanId":"b","attributes":[
      {"key":"d1","value":{"doubleValue":"1.5"}},
      {"key":"d2","value":{"doubleValue":"NaN"}},
      {"key":"d3","value":{"doubleValue":"-Infinity"}},
      {"key":"i1","value":{"intValue":"-42"}},
      {"key":"i2","value":{"intValue":18446744073709551615}},
      {"key":"nokey"},
      {"key":"arr","value":{"arrayValue":{}}},
      {"key":"nested","value":{"arrayValue":{"values":[{"arrayValue":{"values":[{"intValue":1}]}},
          {"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}]}}}])")));
  EXPECT_EQ(Attr(s.attributes, "d1"), AttrValue::Number(1.5));
  EXPECT_EQ(Attr(s.attributes, "d2"), AttrValue::String("NaN"));
  EXPECT_EQ(Attr(s.attributes, "d3"), AttrValue::String("-Infinity"));
  EXPECT_EQ(Attr(s.attributes, "i1"), AttrValue::Number(-42));
  EXPECT_EQ(Attr(s.attributes, "i2"), AttrValue::Number(18446744073709551615.0));
  EXPECT_EQ(Attr(s.attributes, "nokey"), AttrValue::Null());
  EXPECT_EQ(Attr(s.attributes, "arr"), AttrValue::Array({}));
  EXPECT_EQ(Attr(s.attributes, "nested"),
            AttrValue::Array(
                {AttrValue::Array({AttrValue::Number(1)}),
                 AttrValue::String(R"({"values":[{"key":"k","value":{"stringValue":"v"}}]})")}));
}

TEST(DecodeSpansOtlp, MalformedFields) {
  struct Case {
    std::string fields;
    const char* reason;
    const char* mention;
  };
  for (
      const Case& c : {
          Case{R"("spanId":"b")", "missing_trace_id", "traceId"},
          Case{R"("traceId":"","spanId":"b")", "missing_trace_id", "traceId"},
          Case{R"("traceId":"a")", "missing_field", "spanId"},
          Case{R"("traceId":7,"spanId":"b")", "wrong_type", "traceId"},
          Case{R"("traceId":"a","spanId":"b","parentSpanId":[])", "wrong_type", "parentSpanId"},
          Case{R"("traceId":"a","spanId":"b","name":1)", "wrong_type", "name"},
          Case{R"("traceId":"a","spanId":"b","startTimeUnixNano":"soon")", "invalid_value",
               "startTimeUnixNano"},
          Case{R"("traceId":"a","spanId":"b","endTimeUnixNano":"99999999999999999999")",
               "invalid_value", "endTimeUnixNano"},
          Case{R"("traceId":"a","spanId":"b","endTimeUnixNano":{})", "wrong_type",
               "endTimeUnixNano"},
          Case{R"("traceId":"a","spanId":"b","attributes":{})", "wrong_type", "attributes"},
          Case{R"("traceId":"a","spanId":"b","attributes":[5])", "wrong_type", "attributes[0]"},
          Case{R"("traceId":"a","spanId":"b","attributes":[{"value":{}}])", "missing_field", "key"},
          Case{R"("traceId":"a","spanId":"b","attributes":[{"key":"k","value":{"intValue":"x"}}])",
               "invalid_value", "intValue"},
          Case{R"("traceId":"a","spanId":"b","attributes":[{"key":"k","value":{"intValue":1.5}}])",
               "wrong_type", "intValue"},
          Case{R"("traceId":"a","spanId":"b","attributes":[{"key":"k","value":{"stringValue":1}}])",
               "wrong_type", "stringValue"},
          Case{
              R"("traceId":"a","spanId":"b","attributes":[{"key":"k","value":{"boolValue":"yes"}}])",
              "wrong_type", "boolValue"},
          Case{
              R"("traceId":"a","spanId":"b","attributes":[{"key":"k","value":{"doubleValue":"x"}}])",
              "invalid_value", "doubleValue"},
          Case{R"("traceId":"a","spanId":"b","attributes":[{"key":"k","value":{"arrayValue":[]}}])",
               "wrong_type", "arrayValue"},
          Case{
              R"("traceId":"a","spanId":"b","attributes":[{"key":"k","value":{"kvlistValue":[]}}])",
              "wrong_type", "kvlistValue"},
          Case{R"("traceId":"a","spanId":"b","attributes":[{"key":"k","value":"str"}])",
               "wrong_type", "value"},
          Case{R"("traceId":"a","spanId":"b","events":{})", "wrong_type", "events"},
          Case{R"("traceId":"a","spanId":"b","events":[{"name":"gen_ai.evaluation.result"}])",
               "missing_field", "gen_ai.evaluation.name"},
          Case{R"("traceId":"a","spanId":"b","events":[{"name":"gen_ai.evaluation.result",
                "attributes":[{"key":"gen_ai.evaluation.name","value":{"stringValue":"x"}},
                {"key":"gen_ai.evaluation.score.value","value":{"stringValue":"high"}}]}])",
               "wrong_type", "gen_ai.evaluation.score.value"},
      }) {
    auto r = DecodeSpans(OtlpWith(c.fields));
    ASSERT_EQ(ReasonOf(r), c.reason) << c.fields;
    EXPECT_NE(r.error().message.find(c.mention), std::string::npos) << r.error().message;
  }
}

TEST(DecodeSpansOtlp, MalformedStructure) {
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"resourceSpans":{}})")), "wrong_type");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"resourceSpans":[1]})")), "wrong_type");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"resourceSpans":[{"resource":[]}]})")), "wrong_type");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"resourceSpans":[{"scopeSpans":{}}]})")), "wrong_type");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"resourceSpans":[{"scopeSpans":[{"spans":{}}]}]})")),
            "wrong_type");
  EXPECT_EQ(ReasonOf(DecodeSpans(R"({"resourceSpans":[{"scopeSpans":[{"spans":["x"]}]}]})")),
            "wrong_type");
}

TEST(DecodeSpansOtlp, ZeroSpansIsAnError) {
  for (const char* json : {R"({"resourceSpans":[]})", R"({"resourceSpans":null})",
                           R"({"resourceSpans":[{"scopeSpans":[{"spans":[]}]}]})",
                           R"({"resourceSpans":[{"resource":{"attributes":[]}}]})"}) {
    auto r = DecodeSpans(json);
    EXPECT_EQ(ReasonOf(r), "missing_field") << json;
  }
}

TEST(DecodeSpansOtlp, EvaluationEventWithoutTimeOrScore) {
  auto r = DecodeSpans(OtlpWith(R"("traceId":"A","spanId":"B","events":[
      {"name":"gen_ai.evaluation.result","attributes":[
        {"key":"gen_ai.evaluation.name","value":{"stringValue":"tone"}},
        {"key":"gen_ai.evaluation.score.value","value":{"intValue":"3"}},
        {"key":"extra.flag","value":{"boolValue":true}}]}])"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->annotations.size(), 1u);
  const Annotation& a = r->annotations[0];
  EXPECT_EQ(a.trace_id, "a");
  EXPECT_EQ(a.span_id, "b");
  EXPECT_EQ(a.score, 3);
  EXPECT_FALSE(a.label);
  EXPECT_FALSE(a.timestamp_ns);
  EXPECT_EQ(a.metadata_json, R"({"extra.flag":true})");
}

TEST(DecodeSpansOtlp, HugeAttributeListIsTooLarge) {
  std::string attrs;
  for (int i = 0; i < 4097; ++i) {
    if (i > 0) attrs += ',';
    attrs += R"({"key":"k)" + std::to_string(i) + R"(","value":{"intValue":1}})";
  }
  EXPECT_EQ(
      ReasonOf(DecodeSpans(OtlpWith(R"("traceId":"a","spanId":"b","attributes":[)" + attrs + "]"))),
      "too_large");
  EXPECT_EQ(
      ReasonOf(DecodeSpans(R"({"resourceSpans":[{"resource":{"attributes":[)" + attrs + "]}}]}")),
      "too_large");
}

// ---------------------------------------------------------------------------------------------
// Feedback shapes

TEST(DecodeFeedbackNative, SampleFile) {
  const std::string bytes = Sample("native_feedback.json");
  auto r = DecodeFeedback(bytes);
  Annotation a = OneAnnotation(r);
  EXPECT_EQ(a.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(a.span_id, "00f067aa0ba902b7");
  EXPECT_EQ(a.name, "helpfulness");
  EXPECT_EQ(a.score, 0.5);
  EXPECT_EQ(a.label, "partial");
  EXPECT_EQ(a.explanation, "missed one step");
  EXPECT_EQ(a.source, "support");
  EXPECT_EQ(a.metadata_json, R"({"ticket":"T-1","agent":{"id":7}})");
  EXPECT_EQ(a.timestamp_ns, kNoon + 250'000'000);
  EXPECT_EQ(a.bytes, bytes.size());
  EXPECT_EQ(r->event_time_ns, kNoon + 250'000'000);
}

TEST(DecodeFeedbackNative, EverySource) {
  for (const char* source : {"end_user", "llm_judge", "human", "code", "support"}) {
    Annotation a = OneAnnotation(
        DecodeFeedback(std::string(R"({"trace_id":"t","name":"n","source":")") + source + R"("})"));
    EXPECT_EQ(a.source, source);
  }
  Annotation a = OneAnnotation(DecodeFeedback(R"({"trace_id":"t","name":"n","source":"HUMAN"})"));
  EXPECT_EQ(a.source, "human");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","name":"n","source":"robot"})")),
            "invalid_value");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","name":"n","source":1})")), "wrong_type");
}

TEST(DecodeFeedbackNative, MinimalAndNulls) {
  auto r =
      DecodeFeedback(R"({"trace_id":"T","name":"n","score":null,"label":null,"metadata":null})");
  Annotation a = OneAnnotation(r);
  EXPECT_EQ(a.trace_id, "t");
  EXPECT_EQ(a.span_id, "");
  EXPECT_FALSE(a.score);
  EXPECT_FALSE(a.label);
  EXPECT_FALSE(a.source);
  EXPECT_EQ(a.metadata_json, "{}");
  EXPECT_FALSE(a.timestamp_ns);
  EXPECT_FALSE(r->event_time_ns);
}

TEST(DecodeFeedbackNative, Timestamps) {
  Annotation a = OneAnnotation(
      DecodeFeedback(R"({"trace_id":"t","name":"n","timestamp_unix_nano":"1714564800000000009"})"));
  EXPECT_EQ(a.timestamp_ns, kNoon + 9);
  a = OneAnnotation(
      DecodeFeedback(R"({"trace_id":"t","name":"n","timestamp_unix_nano":1714564800000000012})"));
  EXPECT_EQ(a.timestamp_ns, kNoon + 12);
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","name":"n","timestamp":1714564800})")),
            "wrong_type");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","name":"n","timestamp":"2024-05-01"})")),
            "invalid_value");
  EXPECT_EQ(
      ReasonOf(DecodeFeedback(R"({"trace_id":"t","name":"n","timestamp_unix_nano":"later"})")),
      "invalid_value");
}

TEST(DecodeFeedbackNative, Malformed) {
  struct Case {
    const char* json;
    const char* reason;
  };
  for (const Case& c : {
           Case{R"({"name":"n","score":1})", "missing_trace_id"},
           Case{R"({"trace_id":"t"})", "missing_field"},
           Case{R"({"trace_id":"t","name":3})", "wrong_type"},
           Case{R"({"trace_id":"t","name":"n","score":"0.5"})", "wrong_type"},
           Case{R"({"trace_id":"t","name":"n","score":true})", "wrong_type"},
           Case{R"({"trace_id":"t","name":"n","label":5})", "wrong_type"},
           Case{R"({"trace_id":"t","name":"n","explanation":[]})", "wrong_type"},
           Case{R"({"trace_id":"t","name":"n","metadata":[1]})", "wrong_type"},
           Case{R"({"trace_id":"t","name":"n","metadata":"x"})", "wrong_type"},
           Case{R"({"trace_id":"t","span_id":5,"name":"n"})", "wrong_type"},
           Case{R"({"trace_id":{},"name":"n"})", "wrong_type"},
       }) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(c.json)), c.reason) << c.json;
  }
}

TEST(DecodeFeedbackPhoenix, SampleFile) {
  Annotation a = OneAnnotation(DecodeFeedback(Sample("phoenix.json")));
  EXPECT_EQ(a.trace_id, "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(a.span_id, "eee19b7ec3c1b174");
  EXPECT_EQ(a.name, "correctness");
  EXPECT_EQ(a.source, "llm_judge");
  EXPECT_EQ(a.label, "incorrect");
  EXPECT_EQ(a.score, 0);
  EXPECT_EQ(a.explanation, "wrong airport");
  EXPECT_EQ(a.metadata_json, R"({"model":"gpt-4o-mini"})");
  EXPECT_FALSE(a.id);  // "identifier": "" is no id
}

TEST(DecodeFeedbackPhoenix, AnnotatorKinds) {
  struct Case {
    const char* kind;
    const char* source;
  };
  for (const Case& c : {Case{"HUMAN", "human"}, Case{"LLM", "llm_judge"}, Case{"CODE", "code"},
                        Case{"human", "human"}}) {
    Annotation a = OneAnnotation(
        DecodeFeedback(std::string(R"({"trace_id":"t","name":"n","annotator_kind":")") + c.kind +
                       R"(","result":{"score":1}})"));
    EXPECT_EQ(a.source, c.source) << c.kind;
  }
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","name":"n","annotator_kind":"ROBOT"})")),
            "invalid_value");
}

// A span annotation without its trace id is for the engine to join to the trace that holds
// the span; a Kafka key that is a trace id gives it one. Without either, nothing to join to.
TEST(DecodeFeedbackPhoenix, SpanOnlyIsLeftForTheSpansTrace) {
  const char* json =
      R"({"span_id":"ABC","name":"n","annotator_kind":"HUMAN","result":{"label":"good"}})";
  Annotation a = OneAnnotation(DecodeFeedback(json));
  EXPECT_EQ(a.trace_id, "");
  EXPECT_EQ(a.span_id, "abc");
  EXPECT_EQ(a.label, "good");
  a = OneAnnotation(DecodeFeedbackKeyed(json, "4BF92F3577B34DA6A3CE929D0E0E4736"));
  EXPECT_EQ(a.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"name":"n","annotator_kind":"HUMAN"})")),
            "missing_trace_id");
}

TEST(DecodeFeedback, WithoutATraceIdTheKafkaKeyJoinsIt) {
  const std::string id = "0af7651916cd43dd8448eb211c80319c";
  for (const char* json : {R"({"thumbs":"down"})", R"({"name":"n","score":1})",
                           R"({"key":"k","score":1,"feedback_source":{"type":"api"}})",
                           R"({"traceId":"","name":"n","value":1,"dataType":"NUMERIC"})",
                           R"({"gen_ai.evaluation.name":"e","gen_ai.evaluation.score.value":1})"}) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(json)), "missing_trace_id") << json;
    EXPECT_EQ(OneAnnotation(DecodeFeedbackKeyed(json, id)).trace_id, id) << json;
    // A key that is not a trace id (a user id, a short token) is not taken for one.
    for (const char* key : {"user-42", "abc", "0af7651916cd43dd8448eb211c80319g"}) {
      EXPECT_EQ(ReasonOf(DecodeFeedbackKeyed(json, key)), "missing_trace_id") << json << key;
    }
  }
  // The payload's own trace id wins over the key.
  EXPECT_EQ(OneAnnotation(DecodeFeedbackKeyed(R"({"trace_id":"AB12","thumbs":"up"})", id)).trace_id,
            "ab12");
}

TEST(DecodeFeedbackPhoenix, Malformed) {
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","name":"n","result":[]})")), "wrong_type");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","name":"n","result":{"score":"x"}})")),
            "wrong_type");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","result":{}})")), "missing_field");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","name":"n","annotator_kind":1})")),
            "wrong_type");
}

TEST(DecodeFeedbackLangfuse, SampleFile) {
  Annotation a = OneAnnotation(DecodeFeedback(Sample("langfuse.json")));
  EXPECT_EQ(a.trace_id, "trace-abc");
  EXPECT_EQ(a.span_id, "obs-def");
  EXPECT_EQ(a.name, "accuracy");
  EXPECT_EQ(a.score, 0.9);
  EXPECT_FALSE(a.label);
  EXPECT_EQ(a.explanation, "close enough");
  EXPECT_EQ(a.source, "llm_judge");
  EXPECT_EQ(a.timestamp_ns, kNoon);
  EXPECT_EQ(a.metadata_json, R"({"configId":"c1"})");
  EXPECT_EQ(a.id, "score-1");
}

TEST(DecodeFeedbackLangfuse, DataTypes) {
  Annotation a = OneAnnotation(
      DecodeFeedback(R"({"traceId":"t","name":"n","value":"good","dataType":"CATEGORICAL"})"));
  EXPECT_EQ(a.label, "good");
  EXPECT_FALSE(a.score);
  a = OneAnnotation(
      DecodeFeedback(R"({"traceId":"t","name":"n","value":true,"dataType":"BOOLEAN"})"));
  EXPECT_EQ(a.score, 1);
  a = OneAnnotation(DecodeFeedback(
      R"({"traceId":"t","name":"n","value":0,"stringValue":"False","dataType":"BOOLEAN"})"));
  EXPECT_EQ(a.score, 0);
  EXPECT_EQ(a.label, "False");
  a = OneAnnotation(DecodeFeedback(R"({"traceId":"t","name":"n","value":3,"dataType":"NUMERIC"})"));
  EXPECT_EQ(a.score, 3);
  // No dataType: inferred from the value.
  a = OneAnnotation(DecodeFeedback(R"({"traceId":"t","name":"n","value":"meh"})"));
  EXPECT_EQ(a.label, "meh");
  a = OneAnnotation(DecodeFeedback(R"({"traceId":"t","name":"n","value":2.5})"));
  EXPECT_EQ(a.score, 2.5);
  a = OneAnnotation(DecodeFeedback(R"({"traceId":"t","name":"n","value":false})"));
  EXPECT_EQ(a.score, 0);
  // Categorical with only stringValue.
  a = OneAnnotation(DecodeFeedback(
      R"({"traceId":"t","name":"n","value":null,"stringValue":"x","dataType":"CATEGORICAL"})"));
  EXPECT_EQ(a.label, "x");
}

TEST(DecodeFeedbackLangfuse, Sources) {
  struct Case {
    const char* source;
    const char* want;
  };
  for (const Case& c :
       {Case{"API", "end_user"}, Case{"ANNOTATION", "human"}, Case{"EVAL", "llm_judge"}}) {
    Annotation a = OneAnnotation(DecodeFeedback(
        std::string(R"({"traceId":"t","name":"n","value":1,"source":")") + c.source + R"("})"));
    EXPECT_EQ(a.source, c.want) << c.source;
  }
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"traceId":"t","name":"n","value":1,"source":"SDK"})")),
            "invalid_value");
}

TEST(DecodeFeedbackLangfuse, Malformed) {
  struct Case {
    const char* json;
    const char* reason;
  };
  for (const Case& c : {
           Case{R"({"traceId":"t","name":"n","value":"x","dataType":"NUMERIC"})", "wrong_type"},
           Case{R"({"traceId":"t","name":"n","value":1,"dataType":"CATEGORICAL"})", "wrong_type"},
           Case{R"({"traceId":"t","name":"n","value":"yes","dataType":"BOOLEAN"})", "wrong_type"},
           Case{R"({"traceId":"t","name":"n","value":2,"dataType":"BOOLEAN"})", "invalid_value"},
           Case{R"({"traceId":"t","name":"n","value":1,"dataType":"IMAGE"})", "invalid_value"},
           Case{R"({"traceId":"t","name":"n","value":1,"dataType":1})", "wrong_type"},
           Case{R"({"traceId":"t","value":1})", "missing_field"},
           Case{R"({"traceId":"","name":"n","value":1})", "missing_trace_id"},
           Case{R"({"traceId":"t","name":"n","value":1,"comment":7})", "wrong_type"},
           Case{R"({"traceId":"t","name":"n","value":1,"timestamp":"nope"})", "invalid_value"},
       }) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(c.json)), c.reason) << c.json;
  }
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"name":"n","value":1})", FeedbackShape::kLangfuse)),
            "missing_trace_id");
}

TEST(DecodeFeedbackLangSmith, SampleFile) {
  Annotation a = OneAnnotation(DecodeFeedback(Sample("langsmith.json")));
  EXPECT_EQ(a.trace_id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  EXPECT_EQ(a.span_id, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(a.name, "user_score");
  EXPECT_EQ(a.score, 1);  // true
  EXPECT_EQ(a.label, "great");
  EXPECT_EQ(a.explanation, "worked first time");
  EXPECT_EQ(a.source, "end_user");
  EXPECT_EQ(a.timestamp_ns, kNoon + 123'456'000);  // naive created_at read as UTC
  EXPECT_EQ(a.metadata_json, R"({"feedback_source":{"type":"api","metadata":{}}})");
  EXPECT_EQ(a.id, "7c0e4b1e-4a52-4e8f-9f6c-2a1f5c3d9e10");
  EXPECT_FALSE(a.expected_output);  // "correction": null
  EXPECT_EQ(a.annotator_json, "");
}

TEST(DecodeFeedbackLangSmith, FeedbackSourceMapping) {
  struct Case {
    const char* type;
    std::optional<std::string> want;
  };
  for (const Case& c : {Case{"api", "end_user"}, Case{"app", "human"}, Case{"model", "llm_judge"},
                        Case{"MODEL", "llm_judge"}, Case{"auto_eval", "llm_judge"},
                        Case{"something_new", std::nullopt}}) {
    Annotation a = OneAnnotation(DecodeFeedback(
        std::string(R"({"trace_id":"t","run_id":"r","key":"k","feedback_source":{"type":")") +
        c.type + R"("}})"));
    EXPECT_EQ(a.source, c.want) << c.type;
  }
  Annotation a = OneAnnotation(DecodeFeedback(R"({"trace_id":"t","run_id":"r","key":"k"})"));
  EXPECT_FALSE(a.source);
  EXPECT_EQ(a.metadata_json, "{}");
}

TEST(DecodeFeedbackLangSmith, ScoreAndValue) {
  Annotation a =
      OneAnnotation(DecodeFeedback(R"({"trace_id":"t","run_id":"r","key":"k","score":false})"));
  EXPECT_EQ(a.score, 0);
  a = OneAnnotation(DecodeFeedback(R"({"trace_id":"t","run_id":"r","key":"k","value":4})"));
  EXPECT_EQ(a.score, 4);
  EXPECT_FALSE(a.label);
  a = OneAnnotation(
      DecodeFeedback(R"({"trace_id":"t","run_id":"r","key":"k","score":1,"value":4})"));
  EXPECT_EQ(a.score, 1);
  EXPECT_EQ(a.label, "4");
  a = OneAnnotation(DecodeFeedback(R"({"trace_id":"t","run_id":"r","key":"k","value":{"a":[1]}})"));
  EXPECT_EQ(a.label, R"({"a":[1]})");
  a = OneAnnotation(DecodeFeedback(
      R"({"trace_id":"t","key":"k","feedback_source":{"type":"api"},"value":true})"));
  EXPECT_EQ(a.score, 1);
  EXPECT_EQ(a.span_id, "");
}

TEST(DecodeFeedbackLangSmith, Malformed) {
  struct Case {
    const char* json;
    const char* reason;
  };
  for (const Case& c : {
           Case{R"({"key":"k","score":1,"feedback_source":{}})", "missing_trace_id"},
           Case{R"({"trace_id":"t","run_id":"r","key":"k","score":"1"})", "wrong_type"},
           Case{R"({"trace_id":"t","run_id":"r","key":"k","feedback_source":"api"})", "wrong_type"},
           Case{R"({"trace_id":"t","run_id":"r","key":"k","feedback_source":{"type":1}})",
                "wrong_type"},
           Case{R"({"trace_id":"t","run_id":"r","key":7})", "wrong_type"},
           Case{R"({"trace_id":"t","run_id":"r","key":"k","created_at":"May 1st"})",
                "invalid_value"},
           Case{R"({"trace_id":"t","run_id":"r","key":"k","comment":{}})", "wrong_type"},
       }) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(c.json)), c.reason) << c.json;
  }
}

TEST(DecodeFeedbackOtel, SampleFile) {
  Annotation a = OneAnnotation(DecodeFeedback(Sample("otel_eval.json")));
  EXPECT_EQ(a.trace_id, "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(a.span_id, "eee19b7ec3c1b174");
  EXPECT_EQ(a.name, "toxicity");
  EXPECT_EQ(a.score, 0.02);
  EXPECT_EQ(a.label, "non_toxic");
  EXPECT_EQ(a.explanation, "no harmful content");
  EXPECT_EQ(a.source, "llm_judge");
  EXPECT_EQ(a.timestamp_ns, kNoon + 10'000'000'000);
}

TEST(DecodeFeedbackOtel, Malformed) {
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"gen_ai.evaluation.name":"x"})")), "missing_trace_id");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","gen_ai.evaluation.name":null})")),
            "missing_field");
  EXPECT_EQ(
      ReasonOf(DecodeFeedback(
          R"({"trace_id":"t","gen_ai.evaluation.name":"x","gen_ai.evaluation.score.value":"1"})")),
      "wrong_type");
  EXPECT_EQ(
      ReasonOf(DecodeFeedback(
          R"({"trace_id":"t","gen_ai.evaluation.name":"x","gen_ai.evaluation.score.label":1})")),
      "wrong_type");
}

TEST(DecodeFeedbackThumbs, SampleFileAndUp) {
  Annotation a = OneAnnotation(DecodeFeedback(Sample("thumbs.json")));
  EXPECT_EQ(a.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(a.name, "thumbs");
  EXPECT_EQ(a.score, 0);
  EXPECT_EQ(a.label, "down");
  EXPECT_EQ(a.source, "end_user");
  EXPECT_EQ(a.explanation, "wrong answer");
  EXPECT_EQ(a.timestamp_ns, kNoon + 5'000'000'000 - 7200LL * 1'000'000'000);
  a = OneAnnotation(DecodeFeedback(R"({"trace_id":"t","span_id":"S","thumbs":"UP"})"));
  EXPECT_EQ(a.score, 1);
  EXPECT_EQ(a.label, "up");
  EXPECT_EQ(a.span_id, "s");
}

TEST(DecodeFeedbackThumbs, OtherValues) {
  for (const char* v : {R"("sideways")", R"("")"}) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(std::string(R"({"trace_id":"t","thumbs":)") + v + "}")),
              "invalid_value")
        << v;
  }
  for (const char* v : {"1", "true", "[]"}) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(std::string(R"({"trace_id":"t","thumbs":)") + v + "}")),
              "wrong_type")
        << v;
  }
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","thumbs":null})")), "missing_field");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"thumbs":"up"})")), "missing_trace_id");
}

// ---------------------------------------------------------------------------------------------
// Upstream ids, annotators, corrections and session scope (DESIGN §1.2 "Every annotation also
// keeps ...")

TEST(DecodeFeedbackNative, KeepsIdAnnotatorAndExpectedOutput) {
  Annotation a = OneAnnotation(DecodeFeedback(
      R"({"trace_id":"T","name":"n","id":"fb-1","annotator":{"user_id":"u-1","queue_id":"q",)"
      R"("n":[1,2]},"expected_output":"the right answer"})"));
  EXPECT_EQ(a.trace_id, "t");
  EXPECT_EQ(a.id, "fb-1");  // verbatim, not lowercased
  EXPECT_EQ(a.annotator_json, R"({"user_id":"u-1","queue_id":"q","n":[1,2]})");
  EXPECT_EQ(a.expected_output, "the right answer");
  EXPECT_EQ(a.session_id, "");
  // Absent and null are the same: none of them.
  for (const char* json :
       {R"({"trace_id":"t","name":"n"})",
        R"({"trace_id":"t","name":"n","id":null,"annotator":null,"expected_output":null})",
        R"({"trace_id":"t","name":"n","id":"","annotator":{}})"}) {
    a = OneAnnotation(DecodeFeedback(json));
    EXPECT_FALSE(a.id) << json;
    EXPECT_EQ(a.annotator_json, "") << json;
    EXPECT_FALSE(a.expected_output) << json;
  }
}

TEST(DecodeFeedbackNative, NewFieldsOfTheWrongTypeAreDeadLettered) {
  for (const char* json : {
           R"({"trace_id":"t","name":"n","id":7})",
           R"({"trace_id":"t","name":"n","id":{"v":1}})",
           R"({"trace_id":"t","name":"n","annotator":"u-1"})",
           R"({"trace_id":"t","name":"n","annotator":["u-1"]})",
           R"({"trace_id":"t","name":"n","expected_output":{"answer":"x"}})",
           R"({"trace_id":"t","name":"n","expected_output":42})",
           R"({"trace_id":"t","name":"n","expected_output":true})",
           R"({"name":"n","session_id":7})",
           R"({"trace_id":"t","name":"n","session_id":["s"]})",
       }) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(json)), "wrong_type") << json;
  }
}

// Feedback about a whole session: no trace id, no span id, a session id. It applies to every
// trace of the session (the engine's part); the decoder keeps it instead of dead-lettering it.
TEST(DecodeFeedbackNative, SessionScoped) {
  const std::string bytes = Sample("native_session.json");
  auto r = DecodeFeedback(bytes);
  Annotation a = OneAnnotation(r);
  EXPECT_EQ(a.trace_id, "");
  EXPECT_EQ(a.span_id, "");
  EXPECT_EQ(a.session_id, "sess-7F3A");  // verbatim: session ids are compared as given
  EXPECT_EQ(a.name, "conversation_quality");
  EXPECT_EQ(a.source, "human");
  EXPECT_EQ(a.id, "rev-000123");
  EXPECT_EQ(a.annotator_json, R"({"user_id":"u-42","queue_id":"q-support"})");
  EXPECT_EQ(a.expected_output, "Offer a refund link after the second repeat.");
  EXPECT_EQ(a.timestamp_ns, kNoon);
  EXPECT_EQ(a.bytes, bytes.size());
  EXPECT_EQ(r->event_time_ns, kNoon);
  // A Kafka key that looks like a trace id does not turn session feedback into trace feedback.
  a = OneAnnotation(DecodeFeedbackKeyed(bytes, "4bf92f3577b34da6a3ce929d0e0e4736"));
  EXPECT_EQ(a.trace_id, "");
  EXPECT_EQ(a.session_id, "sess-7F3A");
  // With a trace id (or a span id) the feedback is about that trace: the session id is not a
  // scope then.
  a = OneAnnotation(DecodeFeedback(R"({"trace_id":"T","session_id":"s","name":"n"})"));
  EXPECT_EQ(a.trace_id, "t");
  EXPECT_EQ(a.session_id, "");
  a = OneAnnotation(DecodeFeedback(R"({"span_id":"S","session_id":"s","name":"n"})"));
  EXPECT_EQ(a.span_id, "s");
  EXPECT_EQ(a.session_id, "");
  // Neither trace id, span id, session id nor a trace-id key: nothing to join to.
  for (const char* json : {R"({"name":"n","score":1})", R"({"name":"n","session_id":""})",
                           R"({"name":"n","session_id":null})"}) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(json)), "missing_trace_id") << json;
  }
}

TEST(DecodeFeedbackThumbs, IdAndSessionScope) {
  Annotation a = OneAnnotation(DecodeFeedback(R"({"session_id":"s-1","thumbs":"down","id":"x"})"));
  EXPECT_EQ(a.session_id, "s-1");
  EXPECT_EQ(a.trace_id, "");
  EXPECT_EQ(a.id, "x");
  EXPECT_EQ(a.label, "down");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t","thumbs":"up","id":1})")), "wrong_type");
}

TEST(DecodeFeedbackPhoenix, IdentifierUserAndSession) {
  Annotation a = OneAnnotation(DecodeFeedback(Sample("phoenix_human.json")));
  EXPECT_EQ(a.trace_id, "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(a.span_id, "67f6740bbe1ddc3f");
  EXPECT_EQ(a.source, "human");
  EXPECT_EQ(a.id, "review-9");  // the identifier wins over the annotation's id
  EXPECT_EQ(a.annotator_json, R"({"user_id":"VXNlcjox"})");
  EXPECT_EQ(a.timestamp_ns, kNoon);
  // Without an identifier (or with an empty one), the annotation's own id.
  a = OneAnnotation(DecodeFeedback(
      R"({"trace_id":"t","name":"n","annotator_kind":"HUMAN","identifier":"","id":"QW5uOjE="})"));
  EXPECT_EQ(a.id, "QW5uOjE=");
  // A session annotation (Phoenix >= 12): session_id and no trace or span.
  a = OneAnnotation(DecodeFeedback(
      R"({"session_id":"conv-1","name":"resolved","annotator_kind":"HUMAN","result":{"label":"no"}})"));
  EXPECT_EQ(a.session_id, "conv-1");
  EXPECT_EQ(a.trace_id, "");
  EXPECT_EQ(a.label, "no");
  for (const char* json : {
           R"({"trace_id":"t","name":"n","annotator_kind":"HUMAN","identifier":5})",
           R"({"trace_id":"t","name":"n","annotator_kind":"HUMAN","id":5})",
           R"({"trace_id":"t","name":"n","annotator_kind":"HUMAN","user_id":5})",
           R"({"session_id":5,"name":"n","annotator_kind":"HUMAN"})",
       }) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(json)), "wrong_type") << json;
  }
}

TEST(DecodeFeedbackLangfuse, CorrectionScore) {
  Annotation a = OneAnnotation(DecodeFeedback(Sample("langfuse_correction.json")));
  EXPECT_EQ(a.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(a.span_id, "00f067aa0ba902b7");
  EXPECT_EQ(a.name, "output");  // the name stays
  EXPECT_EQ(a.expected_output, "Refunds are accepted within 30 days of delivery.");
  EXPECT_FALSE(a.score);
  EXPECT_FALSE(a.label);
  EXPECT_EQ(a.explanation, "the 60-day window is the old policy");
  EXPECT_EQ(a.source, "human");
  EXPECT_EQ(a.id, "9d3c1a52-5e0b-4c1e-a6a2-1b7f0e2d4c11");
  EXPECT_EQ(a.annotator_json,
            R"({"user_id":"user-7","queue_id":"queue-support","config_id":"cfg-correction"})");
  // The string may come as stringValue (the API's read shape).
  a = OneAnnotation(DecodeFeedback(
      R"({"traceId":"t","name":"output","value":null,"stringValue":"fixed","dataType":"CORRECTION"})"));
  EXPECT_EQ(a.expected_output, "fixed");
  EXPECT_EQ(ReasonOf(DecodeFeedback(
                R"({"traceId":"t","name":"output","value":3,"dataType":"CORRECTION"})")),
            "wrong_type");
}

TEST(DecodeFeedbackLangfuse, TextScoreBecomesExplanation) {
  Annotation a = OneAnnotation(DecodeFeedback(Sample("langfuse_text.json")));
  EXPECT_EQ(a.name, "reviewer_note");
  EXPECT_EQ(a.explanation, "Tone is fine, the policy is outdated.");
  EXPECT_FALSE(a.score);
  EXPECT_FALSE(a.label);
  // The comment, which explanation would otherwise hold, is kept in metadata.
  EXPECT_EQ(a.metadata_json, R"({"comment":"second pass","round":2})");
  EXPECT_EQ(a.id, "score-text-1");
  EXPECT_EQ(a.annotator_json, R"({"user_id":"user-7"})");
  // Without a value the comment is the explanation, as for every other type.
  a = OneAnnotation(
      DecodeFeedback(R"({"traceId":"t","name":"n","dataType":"TEXT","comment":"only this"})"));
  EXPECT_EQ(a.explanation, "only this");
  EXPECT_EQ(a.metadata_json, "{}");
  // A comment already in metadata is not overwritten.
  a = OneAnnotation(DecodeFeedback(
      R"({"traceId":"t","name":"n","value":"v","dataType":"TEXT","comment":"c","metadata":{"comment":"m"}})"));
  EXPECT_EQ(a.explanation, "v");
  EXPECT_EQ(a.metadata_json, R"({"comment":"m"})");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"traceId":"t","name":"n","value":1,"dataType":"TEXT"})")),
            "wrong_type");
}

TEST(DecodeFeedbackLangfuse, SessionScore) {
  const std::string bytes = Sample("langfuse_session.json");
  Annotation a = OneAnnotation(DecodeFeedback(bytes));
  EXPECT_EQ(a.session_id, "chat-2024-05-01-0042");
  EXPECT_EQ(a.trace_id, "");
  EXPECT_EQ(a.span_id, "");
  EXPECT_EQ(a.name, "resolved");
  EXPECT_EQ(a.score, 0);
  EXPECT_EQ(a.label, "False");
  EXPECT_EQ(a.source, "human");
  EXPECT_EQ(a.id, "score-session-1");
  EXPECT_EQ(a.annotator_json, R"({"user_id":"user-9","queue_id":"queue-sessions"})");
  EXPECT_EQ(OneAnnotation(DecodeFeedback(bytes, FeedbackShape::kLangfuse)).session_id,
            "chat-2024-05-01-0042");
  // A score with both ids is about the trace.
  a = OneAnnotation(DecodeFeedback(R"({"traceId":"T","sessionId":"s","name":"n","value":1})"));
  EXPECT_EQ(a.trace_id, "t");
  EXPECT_EQ(a.session_id, "");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"sessionId":"","name":"n","value":1})",
                                    FeedbackShape::kLangfuse)),
            "missing_trace_id");
}

TEST(DecodeFeedbackLangfuse, NewFieldsOfTheWrongTypeAreDeadLettered) {
  for (const char* json : {
           R"({"traceId":"t","name":"n","value":1,"id":1})",
           R"({"traceId":"t","name":"n","value":1,"authorUserId":1})",
           R"({"traceId":"t","name":"n","value":1,"queueId":{}})",
           R"({"traceId":"t","name":"n","value":1,"configId":[]})",
           R"({"sessionId":1,"name":"n","value":1,"dataType":"NUMERIC"})",
       }) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(json)), "wrong_type") << json;
  }
}

TEST(DecodeFeedbackLangSmith, CorrectionIdAndAnnotator) {
  Annotation a = OneAnnotation(DecodeFeedback(Sample("langsmith_correction.json")));
  EXPECT_EQ(a.trace_id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  EXPECT_EQ(a.name, "correctness");
  EXPECT_EQ(a.source, "human");
  EXPECT_EQ(a.id, "2a0e4f9c-1d8b-4b3e-9a6f-7c5d3e1b0a92");
  // An object holding only the corrected `output` string is that string.
  EXPECT_EQ(a.expected_output, "Your order 10442 ships tomorrow.");
  EXPECT_EQ(a.annotator_json,
            R"({"user_id":"5f1c9a7e-3b2d-4e6f-8a9b-0c1d2e3f4a5b","user_name":"Dana"})");
  // LangSmith's session_id is the tracing project, not a conversation: never a session scope.
  EXPECT_EQ(a.session_id, "");
  EXPECT_EQ(ReasonOf(DecodeFeedback(
                R"({"session_id":"p","key":"k","score":1,"feedback_source":{"type":"app"}})")),
            "missing_trace_id");
}

TEST(DecodeFeedbackLangSmith, CorrectionShapes) {
  struct Case {
    const char* correction;
    const char* want;
  };
  for (const Case& c : {
           Case{R"("Use the new policy.")", "Use the new policy."},
           Case{R"({"output":"x"})", "x"},
           Case{R"({"outputs":"y"})", "y"},
           // Anything else is kept whole, as compact JSON.
           Case{R"({"outputs":{"answer":"z"}})", R"({"outputs":{"answer":"z"}})"},
           Case{R"({"output":"x","reason":"typo"})", R"({"output":"x","reason":"typo"})"},
           Case{R"({"answer": "z", "n": 1})", R"({"answer":"z","n":1})"},
           Case{"{}", "{}"},
       }) {
    Annotation a = OneAnnotation(
        DecodeFeedback(std::string(R"({"trace_id":"t","run_id":"r","key":"k","correction":)") +
                       c.correction + "}"));
    EXPECT_EQ(a.expected_output, c.want) << c.correction;
  }
  for (const char* correction : {"1", "true", R"(["x"])"}) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(
                  std::string(R"({"trace_id":"t","run_id":"r","key":"k","correction":)") +
                  correction + "}")),
              "wrong_type")
        << correction;
  }
  for (const char* json : {
           R"({"trace_id":"t","run_id":"r","key":"k","id":3})",
           R"({"trace_id":"t","run_id":"r","key":"k","feedback_source":{"user_id":3}})",
           R"({"trace_id":"t","run_id":"r","key":"k","feedback_source":{"user_name":{}}})",
       }) {
    EXPECT_EQ(ReasonOf(DecodeFeedback(json)), "wrong_type") << json;
  }
}

// ---------------------------------------------------------------------------------------------
// Auto-detection

TEST(DecodeDetect, FeedbackSamplesDetectTheirShape) {
  struct Case {
    const char* file;
    const char* name;
  };
  for (const Case& c :
       {Case{"native_feedback.json", "helpfulness"}, Case{"phoenix.json", "correctness"},
        Case{"langfuse.json", "accuracy"}, Case{"langsmith.json", "user_score"},
        Case{"otel_eval.json", "toxicity"}, Case{"thumbs.json", "thumbs"},
        Case{"native_session.json", "conversation_quality"},
        Case{"phoenix_human.json", "correctness"}, Case{"langfuse_correction.json", "output"},
        Case{"langfuse_text.json", "reviewer_note"}, Case{"langfuse_session.json", "resolved"},
        Case{"langsmith_correction.json", "correctness"}}) {
    EXPECT_EQ(OneAnnotation(DecodeFeedback(Sample(c.file))).name, c.name) << c.file;
    EXPECT_EQ(OneAnnotation(DecodeAny(Sample(c.file))).name, c.name) << c.file;
  }
}

TEST(DecodeDetect, SpanSamplesViaDecodeAny) {
  Span s = OneSpan(DecodeAny(Sample("native_span.json")));
  EXPECT_EQ(s.name, "chat");
  auto r = DecodeAny(Sample("otlp_request.json"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->spans.size(), 2u);
  EXPECT_EQ(r->annotations.size(), 1u);
}

TEST(DecodeDetect, PinnedShapesMatchAuto) {
  EXPECT_EQ(OneAnnotation(DecodeFeedback(Sample("phoenix.json"), FeedbackShape::kPhoenix)).source,
            "llm_judge");
  EXPECT_EQ(OneAnnotation(DecodeFeedback(Sample("langfuse.json"), FeedbackShape::kLangfuse)).score,
            0.9);
  EXPECT_EQ(OneAnnotation(DecodeFeedback(Sample("langsmith.json"), FeedbackShape::kLangSmith)).name,
            "user_score");
  EXPECT_EQ(OneAnnotation(DecodeFeedback(Sample("otel_eval.json"), FeedbackShape::kOtelGenAi)).name,
            "toxicity");
  EXPECT_EQ(OneAnnotation(DecodeFeedback(Sample("thumbs.json"), FeedbackShape::kThumbs)).label,
            "down");
  EXPECT_EQ(
      OneAnnotation(DecodeFeedback(Sample("native_feedback.json"), FeedbackShape::kNative)).label,
      "partial");
  // A shape pinned wrongly reports what that shape is missing.
  EXPECT_EQ(ReasonOf(DecodeFeedback(Sample("thumbs.json"), FeedbackShape::kNative)),
            "missing_field");
}

TEST(DecodeDetect, OrderIsUnambiguous) {
  // thumbs wins over everything, OTel over Phoenix, Phoenix over native.
  EXPECT_EQ(
      OneAnnotation(DecodeFeedback(R"({"trace_id":"t","thumbs":"up","name":"x","result":{}})"))
          .name,
      "thumbs");
  EXPECT_EQ(OneAnnotation(
                DecodeFeedback(
                    R"({"trace_id":"t","gen_ai.evaluation.name":"g","annotator_kind":"HUMAN"})"))
                .source,
            "llm_judge");
  EXPECT_EQ(
      OneAnnotation(DecodeFeedback(R"({"trace_id":"t","name":"n","result":{"score":2}})")).score,
      2);
  // `key` without run_id/feedback_source is not LangSmith; with a name it is native.
  EXPECT_EQ(OneAnnotation(DecodeFeedback(R"({"trace_id":"t","name":"n","key":"k"})")).name, "n");
  // traceId alone is not Langfuse.
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"traceId":"t"})")), "unknown_shape");
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"hello":"world"})")), "unknown_shape");
  EXPECT_EQ(ReasonOf(DecodeFeedback("{}")), "unknown_shape");
}

TEST(DecodeDetect, AnySeparatesSpansFromSpanFeedback) {
  // span_id + name and no feedback marker: a native span.
  auto r = DecodeAny(R"({"trace_id":"t","span_id":"s","name":"llm"})");
  EXPECT_EQ(OneSpan(r).name, "llm");
  r = DecodeAny(R"({"trace_id":"t","span_id":"s","start_time_unix_nano":1714564800000000001})");
  EXPECT_EQ(OneSpan(r).start_ns, kNoon + 1);
  // span_id + name + score: native feedback about a span.
  r = DecodeAny(R"({"trace_id":"t","span_id":"s","name":"quality","score":1})");
  EXPECT_EQ(OneAnnotation(r).span_id, "s");
  // span_id + name + metadata or timestamp: feedback too (spans carry neither).
  r = DecodeAny(R"({"trace_id":"t","span_id":"s","name":"flag","metadata":{"k":1}})");
  EXPECT_EQ(OneAnnotation(r).metadata_json, R"({"k":1})");
  r = DecodeAny(R"({"trace_id":"t","span_id":"s","name":"flag",)"
                R"("timestamp_unix_nano":"1714564800000000003"})");
  EXPECT_EQ(OneAnnotation(r).timestamp_ns, kNoon + 3);
  // Phoenix span annotation.
  r = DecodeAny(R"({"trace_id":"t","span_id":"s","name":"q","annotator_kind":"CODE"})");
  EXPECT_EQ(OneAnnotation(r).source, "code");
  // Only a span_id: nothing span-like, nothing feedback-like.
  EXPECT_EQ(ReasonOf(DecodeAny(R"({"span_id":"s"})")), "unknown_shape");
  // A native span without trace id still says so.
  EXPECT_EQ(ReasonOf(DecodeAny(R"({"span_id":"s","start_time":"2024-05-01T12:00:00Z"})")),
            "missing_trace_id");
  EXPECT_EQ(ReasonOf(DecodeAny(R"({"resourceSpans":[]})")), "missing_field");
}

// ---------------------------------------------------------------------------------------------
// Malformed input of every kind, through every entry point.

using Decoder = Result<DecodedMessage> (*)(std::string_view);

Result<DecodedMessage> Spans(std::string_view b) { return DecodeSpans(b); }
Result<DecodedMessage> Feedback(std::string_view b) { return DecodeFeedback(b); }
Result<DecodedMessage> Any(std::string_view b) { return DecodeAny(b); }

TEST(DecodeMalformed, ReasonsForBadBytes) {
  const std::string deep_array(100'000, '[');
  std::string deep_object;
  for (int i = 0; i < 10'000; ++i) deep_object += R"({"a":)";
  struct Case {
    std::string bytes;
    const char* reason;
  };
  const Case cases[] = {
      {"", "invalid_json"},
      {"   \n", "invalid_json"},
      {"{", "invalid_json"},
      {R"({"trace_id":"t","name":"n")", "invalid_json"},  // truncated
      {R"({"trace_id":"t",})", "invalid_json"},
      {R"({"trace_id":'t'})", "invalid_json"},
      {"{} trailing", "invalid_json"},
      {"{}{}", "invalid_json"},
      {R"({"trace_id":"t","name":"n","score":NaN})", "invalid_json"},
      {R"({"trace_id":"t","name":"n","score":Infinity})", "invalid_json"},
      {R"({"trace_id":"t","name":"n","score":-Infinity})", "invalid_json"},
      {R"({"trace_id":"t","name":"n","score":1e400})", "invalid_json"},
      {"{\"trace_id\":\"t\xff\",\"name\":\"n\"}", "invalid_json"},          // invalid UTF-8
      {"{\"trace_id\":\"t\xc0\x80\",\"name\":\"n\"}", "invalid_json"},      // overlong encoding
      {"{\"trace_id\":\"t\xed\xa0\x80\",\"name\":\"n\"}", "invalid_json"},  // surrogate
      {"{\"na\xe2\x82me\":1}", "invalid_json"},
      {"[]", "not_an_object"},
      {R"([{"trace_id":"t","name":"n"}])", "not_an_object"},
      {"42", "not_an_object"},
      {R"("string")", "not_an_object"},
      {"null", "not_an_object"},
      {"true", "not_an_object"},
      {deep_array, "too_deep"},
      {deep_object, "too_deep"},
  };
  for (Decoder decode : {&Spans, &Feedback, &Any}) {
    for (const Case& c : cases) {
      EXPECT_EQ(ReasonOf(decode(c.bytes)), c.reason) << c.bytes.substr(0, 60);
    }
  }
}

TEST(DecodeMalformed, EveryRawControlByteInAStringIsRefusedWhereverItIs) {
  // JSON allows no byte below 0x20 in a string; a reader that scans strings 16 bytes at a time
  // must not miss one inside a block (Debian's RapidJSON's SSE2 scan missed 0x1A-0x1F).
  const std::string base =
      R"({"trace_id":"t","thumbs":"up","comment":")" + std::string(64, 'c') + R"("})";
  const size_t at = base.find("ccc");
  for (int byte = 0; byte < 0x20; ++byte) {
    for (size_t i = at; i < at + 64; ++i) {
      std::string bad = base;
      bad[i] = static_cast<char>(byte);
      ASSERT_EQ(ReasonOf(DecodeFeedback(bad)), "invalid_json") << "byte " << byte << " at " << i;
      ASSERT_EQ(ReasonOf(DecodeSpans("{\"trace_id\":\"t\",\"span_id\":\"s\",\"name\":\"" +
                                     bad.substr(at, 64) + "\"}")),
                "invalid_json")
          << "byte " << byte << " at " << i;
    }
  }
}

TEST(DecodeMalformed, NonAsciiBytesAreValidatedWhereverTheyAre) {
  // ASCII text is parsed without the per-character UTF-8 check; a byte of 0x80 or above at any
  // place (inside or after the 8-byte words that the ASCII test reads) turns it back on.
  const std::string base = R"({"trace_id":"t","thumbs":"up","comment":"0123456789abcdefghij"})";
  const size_t at = base.find("0123");
  for (size_t i = at; i < at + 20; ++i) {
    std::string bad = base;
    bad[i] = '\xff';
    EXPECT_EQ(ReasonOf(DecodeFeedback(bad)), "invalid_json") << i;
    std::string good = base;
    good.replace(i, 1, "\xc3\xa9");  // é
    EXPECT_TRUE(DecodeFeedback(good).ok()) << i;
  }
  EXPECT_TRUE(decode::onepass::IsAscii(base));
  for (size_t n = 0; n < 20; ++n) {
    for (size_t i = 0; i < n; ++i) {
      std::string s(n, 'a');
      EXPECT_TRUE(decode::onepass::IsAscii(s));
      s[i] = '\x80';
      EXPECT_FALSE(decode::onepass::IsAscii(s)) << n << " " << i;
    }
  }
}

TEST(DecodeMalformed, ByteOrderMarkIsTolerated) {
  // RFC 8259 §8.1 lets a parser ignore a leading byte-order mark; RapidJSON does.
  Annotation a =
      OneAnnotation(DecodeFeedback("\xef\xbb\xbf{\"trace_id\":\"t\",\"thumbs\":\"up\"}"));
  EXPECT_EQ(a.name, "thumbs");
}

TEST(DecodeMalformed, EmbeddedNulInStringIsKept) {
  const std::string json = std::string(R"({"trace_id":"t","name":"a\u0000b"})");
  Annotation a = OneAnnotation(DecodeFeedback(json));
  EXPECT_EQ(a.name, std::string("a\0b", 3));
  // But never inside an id.
  EXPECT_EQ(ReasonOf(DecodeFeedback(R"({"trace_id":"t\u0000","name":"n"})")), "invalid_value");
}

TEST(DecodeMalformed, DepthLimitIsExact) {
  DecodeLimits limits;
  limits.max_depth = 4;
  // Depth 4: object > attributes > nested > array.
  const std::string ok = R"({"trace_id":"t","span_id":"s","attributes":{"a":{"b":[1]}}})";
  EXPECT_EQ(ReasonOf(DecodeSpans(ok, SpanShape::kAuto, limits)), "ok");
  const std::string deep = R"({"trace_id":"t","span_id":"s","attributes":{"a":{"b":[[1]]}}})";
  EXPECT_EQ(ReasonOf(DecodeSpans(deep, SpanShape::kAuto, limits)), "too_deep");
  // Brackets inside strings (and escaped quotes) do not count.
  const std::string in_string =
      R"({"trace_id":"t","span_id":"s","name":"[[[[[[{{{{\"[[[[[","attributes":{"x":"]]]]"}})";
  Span s = OneSpan(DecodeSpans(in_string, SpanShape::kAuto, limits));
  EXPECT_EQ(s.name, R"([[[[[[{{{{"[[[[[)");
}

TEST(DecodeMalformed, TooLarge) {
  DecodeLimits limits;
  limits.max_message_bytes = 16;
  const std::string msg = R"({"trace_id":"t","thumbs":"up"})";
  EXPECT_EQ(ReasonOf(DecodeFeedback(msg, FeedbackShape::kAuto, limits)), "too_large");
  EXPECT_EQ(ReasonOf(DecodeSpans(msg, SpanShape::kAuto, limits)), "too_large");
  EXPECT_EQ(ReasonOf(DecodeAny(msg, limits)), "too_large");
  limits.max_message_bytes = msg.size();
  EXPECT_EQ(ReasonOf(DecodeFeedback(msg, FeedbackShape::kAuto, limits)), "ok");
}

// Every proper prefix of every sample is rejected cleanly (run under ASan/UBSan).
TEST(DecodeMalformed, EveryTruncationOfEverySample) {
  for (const char* file :
       {"native_span.json", "otlp_request.json", "native_feedback.json", "phoenix.json",
        "langfuse.json", "langsmith.json", "otel_eval.json", "thumbs.json", "native_session.json",
        "phoenix_human.json", "langfuse_correction.json", "langfuse_text.json",
        "langfuse_session.json", "langsmith_correction.json"}) {
    std::string bytes = Sample(file);
    while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == ' ')) bytes.pop_back();
    ASSERT_EQ(ReasonOf(DecodeAny(bytes)), "ok") << file;
    for (size_t n = 0; n < bytes.size(); ++n) {
      const std::string prefix = bytes.substr(0, n);  // a copy, so ASan sees the real end
      EXPECT_EQ(ReasonOf(DecodeAny(prefix)), "invalid_json") << file << " at " << n;
    }
  }
}

// Deterministic byte mutations of every sample: whatever comes back, nothing crashes and every
// error carries a known reason.
TEST(DecodeMalformed, MutatedSamplesNeverCrash) {
  const std::string known[] = {"invalid_json",     "not_an_object", "unknown_shape",
                               "missing_trace_id", "missing_field", "wrong_type",
                               "invalid_value",    "too_large",     "too_deep"};
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const char replacements[] = {'{', '}', '[', ']', '"', ':', ',', '0', '-', 'e', '\\', '\xff', 'n'};
  for (const char* file :
       {"native_span.json", "otlp_request.json", "native_feedback.json", "phoenix.json",
        "langfuse.json", "langsmith.json", "otel_eval.json", "thumbs.json", "native_session.json",
        "phoenix_human.json", "langfuse_correction.json", "langfuse_text.json",
        "langfuse_session.json", "langsmith_correction.json"}) {
    const std::string original = Sample(file);
    for (int round = 0; round < 300; ++round) {
      std::string bytes = original;
      const int edits = 1 + static_cast<int>(next() % 3);
      for (int e = 0; e < edits; ++e) {
        bytes[next() % bytes.size()] = replacements[next() % sizeof replacements];
      }
      for (Decoder decode : {&Spans, &Feedback, &Any}) {
        auto r = decode(bytes);
        if (r.ok()) continue;
        bool is_known = false;
        for (const std::string& k : known) is_known = is_known || r.error().reason == k;
        EXPECT_TRUE(is_known) << r.error().reason;
        EXPECT_FALSE(r.error().message.empty());
      }
    }
  }
}

}  // namespace
}  // namespace triaged
