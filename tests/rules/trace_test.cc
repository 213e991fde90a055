#include <gtest/gtest.h>

#include "rules/trace.h"

namespace triaged {
namespace {

Span MakeSpan(const std::string& id, const std::string& parent, int64_t start_ms, int64_t end_ms) {
  Span s;
  s.trace_id = "t";
  s.span_id = id;
  s.parent_span_id = parent;
  s.name = "span-" + id;
  s.start_ns = start_ms * 1'000'000;
  s.end_ns = end_ms * 1'000'000;
  s.input_tokens = 10;
  s.bytes = 100;
  return s;
}

TEST(Trace, SummaryFollowsEveryAddition) {
  Trace t("t");
  EXPECT_EQ(t.summary().span_count, 0);
  EXPECT_FALSE(t.summary().duration_ms.has_value());
  t.AddSpan(MakeSpan("b", "a", 100, 300));
  EXPECT_EQ(t.summary().span_count, 1);
  EXPECT_EQ(t.summary().name, nullptr);  // no root yet
  t.AddSpan(MakeSpan("a", "", 0, 1000));
  EXPECT_EQ(t.summary().span_count, 2);
  ASSERT_NE(t.summary().name, nullptr);
  EXPECT_EQ(*t.summary().name, "span-a");
  EXPECT_DOUBLE_EQ(*t.summary().duration_ms, 1000.0);
  EXPECT_DOUBLE_EQ(*t.summary().input_tokens, 20.0);
  Annotation a;
  a.name = "thumbs";
  a.score = 0;
  t.AddAnnotation(a);
  EXPECT_EQ(t.summary().feedback_count, 1);
  EXPECT_DOUBLE_EQ(*t.summary().min_score, 0.0);
}

TEST(Trace, IgnoresARetriedSpanWithTheSameId) {
  Trace t("t");
  EXPECT_TRUE(t.AddSpan(MakeSpan("a", "", 0, 1000)));
  EXPECT_FALSE(t.AddSpan(MakeSpan("a", "", 0, 1000)));
  EXPECT_EQ(t.summary().span_count, 1);
  EXPECT_DOUBLE_EQ(*t.summary().input_tokens, 10.0);
  EXPECT_EQ(t.bytes(), 100u);
}

TEST(Trace, LatestAnnotationByTimestampThenArrival) {
  Trace t("t");
  Annotation late, early, tie;
  late.name = early.name = tie.name = "judge";
  late.timestamp_ns = 200;
  late.score = 1;
  early.timestamp_ns = 100;
  early.score = 2;
  tie.timestamp_ns = 200;
  tie.score = 3;
  t.AddAnnotation(late);
  t.AddAnnotation(early);
  EXPECT_EQ(*t.LatestAnnotation("judge")->score, 1);
  t.AddAnnotation(tie);
  EXPECT_EQ(*t.LatestAnnotation("judge")->score, 3);
  EXPECT_EQ(t.AnnotationCount("judge"), 3);
  EXPECT_EQ(t.LatestAnnotation("other"), nullptr);
}

}  // namespace
}  // namespace triaged
