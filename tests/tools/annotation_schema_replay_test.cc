// `replay`, `test` and `explain` under `annotations:` (DESIGN §1.5): a line whose annotation
// breaks its schema is dead-lettered once with reason annotation_schema and counted, and its
// other events and every valid annotation go on, as in the daemon.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "tests/tools/cli_test_util.h"

namespace triaged::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kConfig = R"(schema_version: 1
destinations:
  review: {kind: queue, topic: annotations.review}
annotations:
  thumbs: {type: categorical, values: [up, down], version: 2}
  faithfulness: {type: score, min: 0, max: 1}
  golden: {type: text, correction: true}
rules:
  - name: thumbs-down
    when: feedback.thumbs.label == "down"
    route_to: [review]
)";

constexpr const char* kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

std::string SpanLine() {
  return std::string(R"({"trace_id":")") + kTraceId +
         R"(","span_id":"00f067aa0ba902b7","name":"chat",)"
         R"("start_time_unix_nano":1793527200000000000,"end_time_unix_nano":1793527201000000000})";
}

std::string Feedback(const std::string& fields) {
  return std::string(R"({"trace_id":")") + kTraceId + R"(",)" + fields + "}";
}

TEST(ReplayAnnotationSchemas, ABrokenThumbsIsDeadLetteredAndAValidOneRoutes) {
  TempDir dir;
  const std::string config = dir.Write("rules.yaml", kConfig);
  const std::string events = dir.Write(
      "events.jsonl",
      SpanLine() + "\n" + Feedback(R"("name":"thumbs","label":"dwn","source":"end_user")") + "\n" +
          Feedback(R"("thumbs":"down")") + "\n" +
          Feedback(R"("name":"golden","explanation":"Order 10442 ships tomorrow.")") + "\n");
  const std::string dlq = dir.path() + "/dlq.jsonl";
  const auto run = RunTriaged("replay -c " + config + " " + events + " --dead-letter " + dlq);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto routed = Lines(run.out);
  ASSERT_EQ(routed.size(), 1u) << run.out;
  rapidjson::Document item;
  item.Parse(routed[0].c_str());
  ASSERT_TRUE(item.IsObject());
  ASSERT_EQ(item["feedback"].Size(), 2u);  // the valid thumbs and the correction
  EXPECT_STREQ(item["feedback"][0]["label"].GetString(), "down");
  EXPECT_EQ(item["feedback"][0]["version"].GetInt(), 2);
  EXPECT_STREQ(item["feedback"][1]["expected_output"].GetString(), "Order 10442 ships tomorrow.");
  EXPECT_THAT(routed[0], Not(HasSubstr("dwn")));

  const auto dead = Lines(ReadFile(dlq));
  ASSERT_EQ(dead.size(), 1u);
  rapidjson::Document d;
  d.Parse(dead[0].c_str());
  ASSERT_TRUE(d.IsObject());
  EXPECT_STREQ(d["reason"].GetString(), "annotation_schema");
  EXPECT_STREQ(d["message"].GetString(),
               "annotation \"thumbs\": label \"dwn\" is not one of [up, down] "
               "(annotations.thumbs, version 2)");
  EXPECT_EQ(d["line"].GetInt(), 2);
  EXPECT_THAT(d["payload"].GetString(), HasSubstr(R"("label":"dwn")"));
  EXPECT_THAT(run.err, HasSubstr("1 invalid (annotation_schema: 1)"));
  EXPECT_THAT(run.err, HasSubstr("3 messages (1 spans, 2 annotations)"));
}

// An OTLP line whose span carries a broken evaluation: one dead letter, and the span goes on.
TEST(ReplayAnnotationSchemas, TheOtherEventsOfTheLineGoOn) {
  TempDir dir;
  const std::string config = dir.Write("rules.yaml", kConfig);
  const std::string otlp =
      std::string(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":")") + kTraceId +
      R"(","spanId":"a1a1a1a1a1a1a1a1","name":"chat",)"
      R"("startTimeUnixNano":"1793527200000000000","endTimeUnixNano":"1793527201000000000",)"
      R"("events":[)"
      R"({"name":"gen_ai.evaluation.result","attributes":[)"
      R"({"key":"gen_ai.evaluation.name","value":{"stringValue":"faithfulness"}},)"
      R"({"key":"gen_ai.evaluation.score.value","value":{"doubleValue":7}}]},)"
      R"({"name":"gen_ai.evaluation.result","attributes":[)"
      R"({"key":"gen_ai.evaluation.name","value":{"stringValue":"thumbs"}},)"
      R"({"key":"gen_ai.evaluation.score.label","value":{"stringValue":"down"}}]}]}]}]}]})";
  const std::string events = dir.Write("events.jsonl", otlp + "\n");
  const std::string dlq = dir.path() + "/dlq.jsonl";
  const auto run = RunTriaged("replay -c " + config + " " + events + " --dead-letter " + dlq);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto routed = Lines(run.out);
  ASSERT_EQ(routed.size(), 1u) << run.err;
  EXPECT_THAT(routed[0], HasSubstr(R"("span_count":1)"));
  const auto dead = Lines(ReadFile(dlq));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_THAT(dead[0], HasSubstr(R"("reason":"annotation_schema")"));
  EXPECT_THAT(dead[0], HasSubstr("score 7 is outside [0, 1] (annotations.faithfulness)"));
  EXPECT_THAT(run.err, HasSubstr("1 messages (1 spans, 1 annotations), 1 invalid"));
}

TEST(ExplainAnnotationSchemas, SaysWhichAnnotationOfTheTraceWasRefused) {
  TempDir dir;
  const std::string config = dir.Write("rules.yaml", kConfig);
  std::string upper = Feedback(R"("name":"thumbs","label":"dwn","source":"end_user")");
  upper.replace(upper.find(kTraceId), 32, "4BF92F3577B34DA6A3CE929D0E0E4736");
  const std::string events = dir.Write(
      "events.jsonl", SpanLine() + "\n" + upper + "\n" +
                          R"({"trace_id":"5c0a3f4688c45eb7b4df03ae1f1f5847","name":"thumbs",)"
                          R"("label":"meh"})" +
                          "\n");
  const auto run = RunTriaged("explain -c " + config + " " + events + " " + kTraceId);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("line 2: refused (annotation_schema): annotation \"thumbs\": "
                                 "label \"dwn\" is not one of [up, down] (annotations.thumbs, "
                                 "version 2)\n"));
  EXPECT_THAT(run.out, Not(HasSubstr("meh")));  // another trace's
  EXPECT_THAT(run.out, HasSubstr("rule thumbs-down: no_match"));
}

TEST(RuleTestsAnnotationSchemas, CountABrokenAnnotationAsInvalid) {
  TempDir dir;
  const std::string config = dir.Write("rules.yaml", kConfig);
  const std::string tests = dir.Write("tests.yaml", R"(tests:
  - name: a misspelt label is refused and does not route
    events:
      - {trace_id: abc, name: thumbs, label: dwn, source: end_user}
    expect:
      routes: []
      invalid: 1
      exact: true
  - name: a declared label routes
    events:
      - {trace_id: abd, name: thumbs, label: down, source: end_user}
    expect:
      routes: [{rule: thumbs-down}]
      invalid: 0
)");
  const auto run = RunTriaged("test -c " + config + " " + tests);
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("2 passed, 0 failed"));
}

TEST(ValidateAnnotationSchemas, ARuleComparingAnUndeclaredValueIsAConfigError) {
  TempDir dir;
  std::string text = kConfig;
  text.replace(text.find("== \"down\""), 9, "== \"dwn\"");
  const std::string config = dir.Write("rules.yaml", text);
  const auto run = RunTriaged("validate -c " + config);
  EXPECT_EQ(run.exit_code, 78);
  EXPECT_THAT(run.err, HasSubstr("rules.yaml:10:36: rule \"thumbs-down\": label \"dwn\" is not "
                                 "one of annotations.thumbs's values [up, down]; did you mean "
                                 "\"down\"?"));
}

}  // namespace
}  // namespace triaged::testing
