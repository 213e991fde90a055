#include "rules/event_record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "rules/decode.h"

namespace triaged {
namespace {

std::string Data(const std::string& path) {
  std::ifstream in(std::string(TRIAGED_SOURCE_DIR) + "/tests/data/" + path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Shape(const std::string& name) { return Data("shapes/" + name); }

void Replace(std::string& record, std::string_view from, std::string_view to) {
  const size_t at = record.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  record.replace(at, from.size(), to);
}

std::string Bits(double d) {
  std::string out(8, '\0');
  const uint64_t bits = std::bit_cast<uint64_t>(d);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(bits >> (8 * i));
  return out;
}

DecodedMessage EveryField() {
  DecodedMessage m;
  Span s;
  s.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  s.span_id = "00f067aa0ba902b7";
  s.parent_span_id = "00f067aa0ba902b6";
  s.name = "chat \"quoted\" \xc3\xa9";
  s.start_ns = 1793527200000000000;
  s.end_ns = 1793527201500000000;
  s.status = SpanStatus::kError;
  s.status_message = "rate limited";
  s.attributes = {{"gen_ai.request.model", AttrValue::String("gpt-4o")},
                  {"retry.count", AttrValue::Number(2)},
                  {"ratio", AttrValue::Number(0.1 + 0.2)},
                  {"flag", AttrValue::Bool(true)},
                  {"nothing", AttrValue::Null()},
                  {"list", AttrValue::Array({AttrValue::Number(1), AttrValue::String("x"),
                                             AttrValue::Array({AttrValue::Bool(false)})})},
                  {"retry.count", AttrValue::Number(3)}};  // a repeated key keeps its place
  s.resource = {{"service.name", AttrValue::String("support-bot")}};
  s.kind = "LLM";
  s.model = "gpt-4o";
  s.input = "why?";
  s.output = "because";
  s.session_id = "s-1";
  s.user_id = "u-1";
  s.prompt_version = "v3";
  s.input_tokens = 120;
  s.output_tokens = 48;
  s.retry_count = 2;
  s.bytes = 812;
  m.spans.push_back(s);
  Annotation a;
  a.trace_id = s.trace_id;
  a.span_id = s.span_id;
  a.name = "faithfulness";
  a.score = 0.25;
  a.label = "low";
  a.explanation = "made up a refund policy";
  a.source = "llm_judge";
  a.metadata_json = R"({"judge":"gpt-4o-mini","n":[1,2]})";
  a.timestamp_ns = 1793527260000000000;
  a.id = "fb-\"1\"";
  a.annotator_json = R"({"user_id":"u-7","queue_id":"q","n":[1.5,{"x":null}]})";
  a.expected_output = "the refund window is 30 days \xc3\xa9";
  a.schema_version = 3;
  a.bytes = 200;
  m.annotations.push_back(a);
  // A session-scoped annotation: no trace id, no span id.
  Annotation session;
  session.session_id = "Sess-1";
  session.name = "resolved";
  session.score = 0;
  session.source = "human";
  session.id = "score-9";
  session.schema_version = -1;
  session.bytes = 90;
  m.annotations.push_back(session);
  m.event_time_ns = 1793527260000000000;
  m.span_lookups = 3;
  return m;
}

void ExpectSameEvents(const Result<DecodedMessage>& back, const DecodedMessage& m) {
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->spans, m.spans);
  EXPECT_EQ(back->annotations, m.annotations);
  EXPECT_EQ(back->event_time_ns, m.event_time_ns);
  EXPECT_EQ(back->span_lookups, m.span_lookups);
}

TEST(EventRecord, EveryFieldSurvivesTheRoundTrip) {
  const DecodedMessage m = EveryField();
  ExpectSameEvents(DecodeEventRecord(EncodeEventRecord(m)), m);
}

TEST(EventRecord, TheRecordIsBinaryAndSmallerThanTheJsonOfEarlierVersions) {
  const std::string v1 = Data("records/events_v1.json");
  const std::string v2 = EncodeEventRecord(EveryField());
  ASSERT_FALSE(v2.empty());
  EXPECT_NE(v2.front(), '{');
  EXPECT_LT(v2.size(), v1.size() * 3 / 4) << v2.size() << " vs " << v1.size();
}

// A repartition topic or a changelog written by an earlier version holds v1 JSON records: the
// same events come out of them (the file was written by that version's EncodeEventRecord).
TEST(EventRecord, RecordsOfEarlierVersionsAreStillRead) {
  ExpectSameEvents(DecodeEventRecord(Data("records/events_v1.json")), EveryField());
}

// What JSON cannot spell or an annotation cannot carry is written as v1 wrote it: a number that
// is not finite as null (an attribute) or not at all, metadata and an annotator that are not JSON
// objects not at all.
TEST(EventRecord, WhatTheRoutedItemCouldNotWriteIsNotCarried) {
  DecodedMessage m = EveryField();
  m.spans[0].attributes = {{"nan", AttrValue::Number(std::nan(""))}};
  m.spans[0].input_tokens = std::numeric_limits<double>::infinity();
  m.annotations[0].score = std::nan("");
  m.annotations[0].metadata_json = "[1]";
  m.annotations[0].annotator_json = "not json";
  Result<DecodedMessage> back = DecodeEventRecord(EncodeEventRecord(m));
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->spans[0].attributes.size(), 1u);
  EXPECT_EQ(back->spans[0].attributes[0].second.kind, AttrValue::Kind::kNull);
  EXPECT_FALSE(back->spans[0].input_tokens.has_value());
  EXPECT_EQ(back->spans[0].output_tokens, m.spans[0].output_tokens);
  EXPECT_FALSE(back->annotations[0].score.has_value());
  EXPECT_EQ(back->annotations[0].metadata_json, "{}");
  EXPECT_EQ(back->annotations[0].annotator_json, "");
}

TEST(EventRecord, ABrokenBinaryRecordIsRefusedWithAReason) {
  DecodedMessage m = EveryField();
  m.spans[0].attributes = {{"ratio", AttrValue::Number(1.5)}};
  m.annotations[0].metadata_json = R"({"a":1})";
  const std::string good = EncodeEventRecord(m);
  ASSERT_TRUE(DecodeEventRecord(good).ok());
  std::vector<std::pair<std::string, std::string>> bad;
  // Cut anywhere: a count larger than what is left, or the end of the bytes mid-field.
  for (size_t n = 0; n < good.size(); ++n) bad.emplace_back(good.substr(0, n), "");
  bad.emplace_back(good + "x", "bytes follow its last event");
  std::string nan = good;
  Replace(nan, Bits(1.5), Bits(std::nan("")));
  bad.emplace_back(nan, "a number is not finite");
  std::string utf8 = good;
  Replace(utf8, "rate limited", "rate \xc0\xafimited");  // an overlong '/'
  bad.emplace_back(utf8, "a string is not valid UTF-8");
  std::string meta = good;
  Replace(meta, R"({"a":1})", "[1,2,3]");
  bad.emplace_back(meta, "metadata is not an object");
  std::string unclosed = good;
  Replace(unclosed, R"({"a":1})",
          R"({"a":1)"
          "1");
  bad.emplace_back(unclosed, "metadata is not an object");
  std::string id = good;
  Replace(id, "4bf92f3577b34da6a3ce929d0e0e4736", std::string(32, '\0'));
  bad.emplace_back(good.substr(0, 4), "it ends early");
  for (const auto& [record, why] : bad) {
    Result<DecodedMessage> r = DecodeEventRecord(record);
    ASSERT_FALSE(r.ok()) << record.size();
    EXPECT_EQ(r.error().reason, "invalid_event_record");
    EXPECT_THAT(r.error().message, testing::HasSubstr(why)) << record.size();
  }
  // Ids are strings to the record: what they hold was checked by the decoder of the input.
  EXPECT_TRUE(DecodeEventRecord(id).ok());
}

// Every byte of a record overwritten with values that break varints, counts, kinds and flags:
// the decoder answers, a record or a refusal (ASan in CI watches how).
TEST(EventRecord, AnyByteOfARecordOverwrittenIsReadOrRefused) {
  const std::string good = EncodeEventRecord(EveryField());
  size_t refused = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (int b : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
      std::string record = good;
      record[i] = static_cast<char>(b);
      Result<DecodedMessage> r = DecodeEventRecord(record);
      if (!r.ok()) {
        EXPECT_EQ(r.error().reason, "invalid_event_record");
        ++refused;
      }
    }
  }
  EXPECT_GT(refused, good.size());
}

TEST(EventRecord, DecodedShapesSurviveTheRoundTripTraceByTrace) {
  for (const char* name : {"otlp_request.json", "native_span.json"}) {
    Result<DecodedMessage> decoded = DecodeSpans(Shape(name));
    ASSERT_TRUE(decoded.ok()) << name;
    for (auto& [id, events] : SplitByTrace(decoded.value())) {
      Result<DecodedMessage> back = DecodeEventRecord(EncodeEventRecord(events));
      ASSERT_TRUE(back.ok()) << name;
      EXPECT_EQ(back->spans, events.spans) << name;
      EXPECT_EQ(back->annotations, events.annotations) << name;
    }
  }
  for (const char* name : {"langfuse.json", "langsmith.json", "phoenix.json", "otel_eval.json",
                           "thumbs.json", "native_feedback.json", "native_session.json",
                           "phoenix_human.json", "langfuse_correction.json", "langfuse_text.json",
                           "langfuse_session.json", "langsmith_correction.json"}) {
    Result<DecodedMessage> decoded = DecodeFeedback(Shape(name));
    ASSERT_TRUE(decoded.ok()) << name;
    Result<DecodedMessage> back = DecodeEventRecord(EncodeEventRecord(decoded.value()));
    ASSERT_TRUE(back.ok()) << name;
    EXPECT_EQ(back->annotations, decoded->annotations) << name;
  }
}

TEST(EventRecord, SplitsAMessageByTraceInOrderWithEachTracesEventTime) {
  DecodedMessage m;
  for (const char* id : {"b", "a", "b"}) {
    Span s;
    s.trace_id = id;
    s.span_id = std::string("s") + std::to_string(m.spans.size());
    s.start_ns = 100 * static_cast<int64_t>(m.spans.size() + 1);
    s.end_ns = *s.start_ns + 10;
    m.spans.push_back(s);
  }
  Annotation a;
  a.trace_id = "a";
  a.name = "thumbs";
  a.timestamp_ns = 5000;
  m.annotations.push_back(a);
  const auto parts = SplitByTrace(m);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].first, "b");
  EXPECT_EQ(parts[0].second.spans.size(), 2u);
  EXPECT_EQ(parts[0].second.event_time_ns, 310);
  EXPECT_EQ(parts[1].first, "a");
  EXPECT_EQ(parts[1].second.spans.size(), 1u);
  EXPECT_EQ(parts[1].second.annotations.size(), 1u);
  EXPECT_EQ(parts[1].second.event_time_ns, 5000);
}

TEST(EventRecord, EachNewAnnotationFieldIsWrittenAndReadBack) {
  DecodedMessage m;
  Annotation a;
  a.trace_id = "t";
  a.name = "n";
  a.bytes = 1;
  m.annotations.push_back(a);
  // Each field alone, so that one the record drops cannot hide behind another.
  std::vector<Annotation> variants(5, a);
  variants[0].session_id = "s";
  variants[0].trace_id.clear();
  variants[1].id = "";  // an empty id is still an id
  variants[2].annotator_json = R"({"user_id":"u"})";
  variants[3].expected_output = "";
  variants[4].schema_version = 0;
  for (const Annotation& v : variants) {
    m.annotations = {v};
    Result<DecodedMessage> back = DecodeEventRecord(EncodeEventRecord(m));
    ASSERT_TRUE(back.ok()) << back.error().message;
    ASSERT_EQ(back->annotations.size(), 1u);
    EXPECT_EQ(back->annotations[0], v) << EncodeEventRecord(m);
  }
}

// Session-scoped annotations have no trace id: SplitByTrace puts them in the group with an
// empty trace id (with span-only ones), which the caller routes by session.
TEST(EventRecord, SessionAnnotationsSplitIntoTheEmptyTraceGroup) {
  DecodedMessage m;
  Span s;
  s.trace_id = "a";
  s.span_id = "s1";
  m.spans.push_back(s);
  Annotation session;
  session.session_id = "sess";
  session.name = "resolved";
  session.timestamp_ns = 7000;
  m.annotations.push_back(session);
  const auto parts = SplitByTrace(m);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].first, "a");
  EXPECT_EQ(parts[1].first, "");
  ASSERT_EQ(parts[1].second.annotations.size(), 1u);
  EXPECT_EQ(parts[1].second.annotations[0].session_id, "sess");
  EXPECT_EQ(parts[1].second.event_time_ns, 7000);
  m.spans.clear();
  const auto alone = SplitByTrace(m);
  ASSERT_EQ(alone.size(), 1u);
  EXPECT_EQ(alone[0].first, "");
  EXPECT_EQ(alone[0].second.annotations[0].session_id, "sess");
}

TEST(EventRecord, AnythingElseIsRefusedWithAReason) {
  for (
      const char* bad :
      {"", "not json", "[]", R"({"schema":"other"})", R"({"schema":"triaged.events/v1"})",
       R"({"schema":"triaged.events/v1","spans":[{"trace_id":"a","span_id":"b"}]})",
       R"({"schema":"triaged.events/v1","spans":[{"span_id":"b","bytes":1}]})",
       R"({"schema":"triaged.events/v1","spans":[{"trace_id":"a","span_id":"b","bytes":1,"status":7}]})",
       R"({"schema":"triaged.events/v1","annotations":[{"name":"x","bytes":1}]})",
       R"({"schema":"triaged.events/v1","annotations":[{"name":"x","session_id":"","bytes":1}]})",
       R"({"schema":"triaged.events/v1","annotations":[{"trace_id":"t","name":"x","id":1,"bytes":1}]})",
       R"({"schema":"triaged.events/v1","annotations":[{"trace_id":"t","name":"x","annotator":"u","bytes":1}]})",
       R"({"schema":"triaged.events/v1","annotations":[{"trace_id":"t","name":"x","expected_output":{},"bytes":1}]})",
       R"({"schema":"triaged.events/v1","annotations":[{"trace_id":"t","name":"x","schema_version":1.5,"bytes":1}]})"}) {
    Result<DecodedMessage> r = DecodeEventRecord(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().reason, "invalid_event_record") << bad;
  }
}

}  // namespace
}  // namespace triaged
