#include <gtest/gtest.h>

#include <string>
#include <vector>

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
  EXPECT_FALSE(t.summary().name);  // no root yet
  t.AddSpan(MakeSpan("a", "", 0, 1000));
  EXPECT_EQ(t.summary().span_count, 2);
  ASSERT_TRUE(t.summary().name);
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

TEST(Trace, CanonicalFieldsComeFromTheRootElseTheEarliestStartingSpan) {
  Trace t("t");
  Span late = MakeSpan("c", "a", 500, 600);
  late.model = "late-model";
  late.user_id = "u-late";
  Span early = MakeSpan("b", "a", 100, 200);
  early.model = "early-model";
  Span untimed = MakeSpan("d", "a", 0, 0);
  untimed.start_ns.reset();
  untimed.prompt_version = "v-untimed";
  untimed.session_id = "s-untimed";
  for (const Span& s : {late, untimed, early}) t.AddSpan(s);
  EXPECT_EQ(t.summary().model, std::optional<std::string_view>("early-model"));
  EXPECT_EQ(t.summary().user_id, std::optional<std::string_view>("u-late"));
  EXPECT_EQ(t.summary().prompt_version, std::optional<std::string_view>("v-untimed"));
  EXPECT_FALSE(t.summary().name);
  // A root with a session id and no model: the session is the root's, the model still the
  // earliest span's.
  Span root = MakeSpan("a", "", 300, 1000);
  root.session_id = "s-root";
  t.AddSpan(root);
  EXPECT_EQ(t.summary().session_id, std::optional<std::string_view>("s-root"));
  EXPECT_EQ(t.summary().model, std::optional<std::string_view>("early-model"));
  EXPECT_EQ(t.summary().name, std::optional<std::string_view>("span-a"));
  // An earlier root takes over; the first one is a span like the others again.
  Span earlier = MakeSpan("r", "", 50, 900);
  earlier.model = "root-model";
  t.AddSpan(earlier);
  EXPECT_EQ(t.summary().name, std::optional<std::string_view>("span-r"));
  EXPECT_EQ(t.summary().model, std::optional<std::string_view>("root-model"));
  EXPECT_EQ(t.summary().session_id, std::optional<std::string_view>("s-root"));
  // The views stay valid when the trace is released and unpacked again.
  t.Release();
  EXPECT_EQ(t.summary().user_id, std::optional<std::string_view>("u-late"));
}

TEST(Trace, ForEachSpanGivesTheSpansInArrivalOrderPackedOrNot) {
  Trace t("t");
  for (const char* id : {"c", "a", "b"}) t.AddSpan(MakeSpan(id, "x", 0, 10));
  auto ids = [&t](size_t stop_after) {
    std::vector<std::string> seen;
    t.ForEachSpan([&](const Span& s) {
      seen.push_back(s.span_id + "/" + s.trace_id);
      return seen.size() < stop_after;
    });
    return seen;
  };
  const std::vector<std::string> all = {"c/t", "a/t", "b/t"};
  EXPECT_EQ(ids(10), all);  // packed: one span at a time
  EXPECT_EQ(ids(2), std::vector<std::string>(all.begin(), all.begin() + 2));
  ASSERT_EQ(t.spans().size(), 3u);
  EXPECT_EQ(ids(10), all);  // unpacked
  EXPECT_EQ(t.span_count(), 3u);
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
