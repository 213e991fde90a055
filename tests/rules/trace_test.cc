#include <gtest/gtest.h>

#include <limits>
#include <random>
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

TEST(Trace, ForEachSpanGivesTheSpansInArrivalOrderWithoutUnpacking) {
  Trace t("t");
  for (const char* id : {"c", "a", "b"}) t.AddSpan(MakeSpan(id, "x", 0, 10));
  auto ids = [&t](size_t stop_after) {
    std::vector<std::string> seen;
    t.ForEachSpan([&](const PackedSpan::Fields& s) {
      seen.push_back(std::string(s.span_id()) + "/" + std::string(s.parent_span_id()));
      return seen.size() < stop_after;
    });
    return seen;
  };
  const std::vector<std::string> all = {"c/x", "a/x", "b/x"};
  EXPECT_EQ(ids(10), all);
  EXPECT_EQ(ids(2), std::vector<std::string>(all.begin(), all.begin() + 2));
  ASSERT_EQ(t.spans().size(), 3u);
  EXPECT_EQ(ids(10), all);  // the same with the spans unpacked
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

// The summary as DESIGN §2.1 defines it, computed from all the spans at once.
TraceSummary SummaryOf(const std::vector<Span>& spans) {
  auto start = [](const Span& s) {
    return s.start_ns.value_or(std::numeric_limits<int64_t>::max());
  };
  TraceSummary s;
  s.span_count = static_cast<int64_t>(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& span = spans[i];
    if (span.status == SpanStatus::kError) ++s.error_count;
    if (span.start_ns && (!s.start_ns || *span.start_ns < *s.start_ns)) s.start_ns = span.start_ns;
    if (span.end_ns && (!s.end_ns || *span.end_ns > *s.end_ns)) s.end_ns = span.end_ns;
    if (span.is_root() && (s.root_index < 0 || start(span) < start(spans[s.root_index]))) {
      s.root_index = static_cast<int64_t>(i);
    }
    if (span.input_tokens) s.input_tokens = s.input_tokens.value_or(0) + *span.input_tokens;
    if (span.output_tokens) s.output_tokens = s.output_tokens.value_or(0) + *span.output_tokens;
    if (span.retry_count) s.retry_count += *span.retry_count;
  }
  s.error = s.error_count > 0;
  if (s.start_ns && s.end_ns) s.duration_ms = static_cast<double>(*s.end_ns - *s.start_ns) / 1e6;
  if (s.input_tokens || s.output_tokens) {
    s.total_tokens = s.input_tokens.value_or(0) + s.output_tokens.value_or(0);
  }
  std::optional<std::string_view>* fields[] = {&s.model,      &s.input,   &s.output,
                                               &s.session_id, &s.user_id, &s.prompt_version};
  auto field = [](const Span& span, size_t f) -> const std::optional<std::string>& {
    const std::optional<std::string>* all[] = {&span.model,   &span.input,
                                               &span.output,  &span.session_id,
                                               &span.user_id, &span.prompt_version};
    return *all[f];
  };
  for (size_t f = 0; f < std::size(fields); ++f) {
    if (s.root_index >= 0 && field(spans[s.root_index], f)) {
      *fields[f] = *field(spans[s.root_index], f);
      continue;
    }
    int64_t best = -1;
    for (size_t i = 0; i < spans.size(); ++i) {
      if (static_cast<int64_t>(i) == s.root_index || !field(spans[i], f)) continue;
      if (best < 0 || start(spans[i]) < start(spans[best])) best = static_cast<int64_t>(i);
    }
    if (best >= 0) *fields[f] = *field(spans[best], f);
  }
  if (s.root_index >= 0) s.name = spans[s.root_index].name;
  return s;
}

void ExpectSameSummary(const TraceSummary& got, const TraceSummary& want, const std::string& at) {
  EXPECT_EQ(got.name, want.name) << at;
  EXPECT_EQ(got.error, want.error) << at;
  EXPECT_EQ(got.error_count, want.error_count) << at;
  EXPECT_EQ(got.span_count, want.span_count) << at;
  EXPECT_EQ(got.duration_ms, want.duration_ms) << at;
  EXPECT_EQ(got.start_ns, want.start_ns) << at;
  EXPECT_EQ(got.end_ns, want.end_ns) << at;
  EXPECT_EQ(got.model, want.model) << at;
  EXPECT_EQ(got.input, want.input) << at;
  EXPECT_EQ(got.output, want.output) << at;
  EXPECT_EQ(got.session_id, want.session_id) << at;
  EXPECT_EQ(got.user_id, want.user_id) << at;
  EXPECT_EQ(got.prompt_version, want.prompt_version) << at;
  EXPECT_EQ(got.input_tokens, want.input_tokens) << at;
  EXPECT_EQ(got.output_tokens, want.output_tokens) << at;
  EXPECT_EQ(got.total_tokens, want.total_tokens) << at;
  EXPECT_EQ(got.retry_count, want.retry_count) << at;
  EXPECT_EQ(got.root_index, want.root_index) << at;
}

TEST(Trace, TheSummaryKeptAsSpansArriveIsTheSummaryOfAllTheSpans) {
  // Random traces with few distinct start times (ties), untimed spans, several roots and
  // canonical fields on some spans; after every span, and after a Release, the summary
  // equals the one computed from all the spans at once.
  std::mt19937 rng(20261206);
  auto pick = [&rng](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int trial = 0; trial < 300; ++trial) {
    Trace t("t");
    std::vector<Span> spans;
    const int n = 1 + pick(12);
    for (int i = 0; i < n; ++i) {
      Span s;
      s.trace_id = "t";
      s.span_id = "s" + std::to_string(i);
      s.parent_span_id = pick(3) == 0 ? "" : "p";
      s.name = "n" + std::to_string(i);
      if (pick(4) != 0) s.start_ns = pick(4) * 1000;
      if (pick(4) != 0) s.end_ns = 2000 + pick(4) * 1000;
      s.status = pick(4) == 0 ? SpanStatus::kError : SpanStatus::kOk;
      if (pick(2) == 0) s.input_tokens = pick(100) + 0.25;
      if (pick(3) == 0) s.output_tokens = pick(100);
      if (pick(5) == 0) s.retry_count = pick(3);
      for (std::optional<std::string>* f :
           {&s.model, &s.input, &s.output, &s.session_id, &s.user_id, &s.prompt_version}) {
        if (pick(3) == 0) *f = "v" + std::to_string(i);
      }
      if (pick(3) == 0) s.attributes.emplace_back("gen_ai.request.model", AttrValue::String("m"));
      spans.push_back(s);
      ASSERT_TRUE(t.AddSpan(s));
      const std::string at = "trial " + std::to_string(trial) + " span " + std::to_string(i);
      ExpectSameSummary(t.summary(), SummaryOf(spans), at);
      if (pick(2) == 0) {
        t.Release();
        ExpectSameSummary(t.summary(), SummaryOf(spans), at + " released");
      }
    }
  }
}

}  // namespace
}  // namespace triaged
