// The daemon's ingest of annotations under `annotations:` (DESIGN §1.5, §6 Metrics): one that
// breaks its schema leaves its message, which is dead-lettered once with reason
// annotation_schema and counted, while the message's other events and every valid annotation go
// on; triaged_annotations_total counts what was taken in.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/daemon/pipeline_fixture.h"

namespace triaged::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string WithAnnotations(const std::string& guarantee, const std::string& strict = "false") {
  return ConfigText(guarantee) +
         "annotations:\n"
         "  thumbs: {type: categorical, values: [up, down], version: 2}\n"
         "  strict: " +
         strict + "\n";
}

std::string Native(const std::string& trace, const std::string& name, const std::string& label) {
  return R"({"trace_id":")" + trace + R"(","name":")" + name + R"(","label":")" + label +
         R"(","source":"end_user"})";
}

// One OTLP/JSON message: a root span of `trace` and, as its span event, an evaluation.
std::string OtlpSpanWithEvaluation(const std::string& trace, const std::string& label) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":")" + trace +
         R"(","spanId":"a1a1a1a1a1a1a1a1","name":"chat",)"
         R"("startTimeUnixNano":"1793527200000000000","endTimeUnixNano":"1793527201000000000",)"
         R"("events":[{"name":"gen_ai.evaluation.result","timeUnixNano":"1793527201000000000",)"
         R"("attributes":[{"key":"gen_ai.evaluation.name","value":{"stringValue":"thumbs"}},)"
         R"({"key":"gen_ai.evaluation.score.label","value":{"stringValue":")" +
         label + R"("}}]}]}]}]}]})";
}

class AnnotationSchemaPipelineTest : public PipelineFixture {
 protected:
  double Counter(const std::string& name, const std::map<std::string, std::string>& labels) {
    for (const prometheus::MetricFamily& family :
         pipeline_->metrics().shared_registry()->Collect()) {
      if (family.name != name) continue;
      for (const prometheus::ClientMetric& m : family.metric) {
        std::map<std::string, std::string> got;
        for (const auto& l : m.label) got[l.name] = l.value;
        if (got == labels) return m.counter.value;
      }
    }
    return -1;  // no such series
  }
};

TEST_F(AnnotationSchemaPipelineTest, ABrokenThumbsIsDeadLetteredOnceAndAValidOneRoutes) {
  StartWith(WithAnnotations("at_least_once"), false, [](FakeKafka& k) {
    k.Append("spans", 0, kTrace, Span(kTrace, "a1"));
    k.Append("feedback", 0, kTrace, Native(kTrace, "thumbs", "dwn"));
    k.Append("feedback", 0, kTrace, Native(kTrace, "thumbs", "down"));
    k.Append("feedback", 0, kTrace, Native(kTrace, "tone", "calm"));  // undeclared, not strict
  });
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("review").size() == 1; }));
  ASSERT_EQ(kafka_->Records("dlq").size(), 1u);
  const FakeRecord dead = kafka_->Records("dlq")[0];
  EXPECT_EQ(dead.Header("triaged-reason"), "annotation_schema");
  EXPECT_THAT(*dead.value, HasSubstr(R"("reason":"annotation_schema")"));
  EXPECT_THAT(*dead.value,
              HasSubstr(R"x("message":"annotation \"thumbs\": label \"dwn\" is not one of )x"
                        R"x([up, down] (annotations.thumbs, version 2)")x"));
  EXPECT_THAT(*dead.value, HasSubstr(R"("offset":0)"));
  // The routed item carries the valid thumbs only, with its schema version.
  const std::string item = *kafka_->Records("review")[0].value;
  EXPECT_THAT(item, HasSubstr(R"("label":"down")"));
  EXPECT_THAT(item, HasSubstr(R"("version":2)"));
  EXPECT_THAT(item, Not(HasSubstr("dwn")));
  EXPECT_TRUE(StepUntil([&] { return Committed("feedback") == 3; }));
  EXPECT_EQ(Counter("triaged_events_invalid_total",
                    {{"input", "feedback"}, {"reason", "annotation_schema"}}),
            1);
  EXPECT_EQ(pipeline_->metrics().dead_lettered(), 1u);
  EXPECT_EQ(Counter("triaged_annotations_total", {{"name", "thumbs"}, {"source", "end_user"}}), 1);
  EXPECT_EQ(Counter("triaged_annotations_total", {{"name", "other"}, {"source", "end_user"}}), 1);
}

TEST_F(AnnotationSchemaPipelineTest, TheSpansOfAMessageGoOnWithoutItsBrokenEvaluation) {
  StartWith(WithAnnotations("at_least_once"), false, [](FakeKafka& k) {
    k.Append("spans", 0, kTrace, OtlpSpanWithEvaluation(kTrace, "dwn"));
    k.Append("feedback", 0, kTrace, ThumbsDown(kTrace));
  });
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("review").size() == 1; }));
  const std::string item = *kafka_->Records("review")[0].value;
  EXPECT_THAT(item, HasSubstr(R"("span_count":1)"));  // the span reached its trace
  EXPECT_THAT(item, Not(HasSubstr("dwn")));
  ASSERT_EQ(kafka_->Records("dlq").size(), 1u);
  EXPECT_EQ(kafka_->Records("dlq")[0].Header("triaged-reason"), "annotation_schema");
  EXPECT_EQ(Counter("triaged_events_invalid_total",
                    {{"input", "spans"}, {"reason", "annotation_schema"}}),
            1);
  EXPECT_TRUE(StepUntil([&] { return Committed("spans") == 1 && Committed("feedback") == 1; }));
}

TEST_F(AnnotationSchemaPipelineTest, StrictDeadLettersUndeclaredNames) {
  StartWith(WithAnnotations("at_least_once", "true"), false,
            [](FakeKafka& k) { k.Append("feedback", 0, kTrace, Native(kTrace, "tone", "calm")); });
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("dlq").size() == 1; }));
  EXPECT_THAT(*kafka_->Records("dlq")[0].value,
              HasSubstr(R"(annotation \"tone\": the name is not declared in annotations)"));
  EXPECT_TRUE(StepUntil([&] { return Committed("feedback") == 1; }));
  EXPECT_EQ(Counter("triaged_annotations_total", {{"name", "other"}, {"source", "end_user"}}), -1);
}

// Without `annotations:` nothing is checked and every name is counted as "other".
TEST_F(AnnotationSchemaPipelineTest, WithoutTheSectionEveryNameIsOther) {
  Start("at_least_once",
        [](FakeKafka& k) { k.Append("feedback", 0, kTrace, Native(kTrace, "thumbs", "dwn")); });
  ASSERT_TRUE(StepUntil([&] { return Committed("feedback") == 1; }, 100));
  EXPECT_TRUE(kafka_->Records("dlq").empty());
  EXPECT_EQ(Counter("triaged_annotations_total", {{"name", "other"}, {"source", "end_user"}}), 1);
}

// `annotations` is reloadable: a reload that fixes the schema lets the same label through.
TEST_F(AnnotationSchemaPipelineTest, AReloadSwapsTheSchemas) {
  StartWith(WithAnnotations("at_least_once"), false,
            [](FakeKafka& k) { k.Append("feedback", 0, kTrace, Native(kTrace, "thumbs", "meh")); });
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("dlq").size() == 1; }));
  dir_.Write("rules.yaml",
             ConfigText("at_least_once") +
                 "annotations:\n  thumbs: {type: categorical, values: [up, down, meh]}\n");
  pipeline_->Reload("test");
  EXPECT_EQ(Counter("triaged_config_reloads_total", {{"result", "success"}}), 1);
  kafka_->Append("feedback", 0, kTrace, Native(kTrace, "thumbs", "meh"));
  ASSERT_TRUE(StepUntil([&] { return Committed("feedback") == 2; }));
  EXPECT_EQ(kafka_->Records("dlq").size(), 1u);
  EXPECT_EQ(Counter("triaged_annotations_total", {{"name", "thumbs"}, {"source", "end_user"}}), 1);
}

}  // namespace
}  // namespace triaged::testing
