// The engine with a trace store (DESIGN §6 "Trace store"): closed traces leave memory after the
// hot window, late feedback days later brings them back with full context and routes each
// (rule, destination) at most once, records go when their late window is over.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "rules/engine.h"
#include "rules/routed_item.h"
#include "rules/trace_record.h"
#include "rules/trace_store.h"
#include "tests/rules/engine_test_util.h"

namespace triaged {
namespace {

using namespace triaged::testutil;  // NOLINT(google-build-using-namespace)
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

constexpr int64_t kT0 = Sec(1'000'000);
constexpr int64_t kHot = Sec(300);
constexpr int64_t kDay = Sec(86'400);
constexpr int64_t kWindow = 7 * kDay;

std::shared_ptr<const RuleSet> Rules(int64_t window = kWindow) {
  RuleSetBuilder b;
  b.Dest("review").Dest("dataset");
  b.trace().decision_wait_ns = Sec(10);
  b.trace().late_feedback_window_ns = window;
  b.trace().hot_window_ns = kHot;
  b.Rule("errors", HasError(), {"review"});
  b.Rule("corrected", FeedbackLabel("correctness", "wrong"), {"dataset"});
  return b.Build();
}

Annotation Correction(const std::string& trace_id) {
  Annotation a = MakeAnnotation(trace_id, "correctness", "wrong", 0.0, kT0 + 2 * kDay);
  a.source = "human";
  a.expected_output = "Paris";
  return a;
}

class TraceStoreEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { engine_.set_store(&store_); }
  MemoryTraceStore store_;
  Engine engine_{Rules()};
  RecordingOutbox out_;
};

TEST_F(TraceStoreEngineTest, AClosedTraceLeavesMemoryAfterTheHotWindow) {
  engine_.Add(Msg(ErrorSpan("t1", "a")), kT0, out_);
  engine_.Advance(kT0 + Sec(10), out_);
  // Written at its decision to the changelog; to the store when it leaves memory.
  EXPECT_EQ(out_.changelog.size(), 1u);
  EXPECT_THAT(out_.Take(), ElementsAre("t1/errors/review"));
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_EQ(engine_.retained_traces(), 1u);
  engine_.Advance(kT0 + Sec(10) + kHot - 1, out_);
  EXPECT_EQ(engine_.retained_traces(), 1u);
  engine_.Advance(kT0 + Sec(10) + kHot, out_);
  EXPECT_EQ(engine_.retained_traces(), 0u);
  EXPECT_EQ(engine_.counters().stored, 1u);
  EXPECT_EQ(store_.size(), 1u);
}

TEST_F(TraceStoreEngineTest, ACorrectionTwoDaysLateFindsTheWholeTrace) {
  DecodedMessage spans;
  spans.spans.push_back(ErrorSpan("t1", "a"));
  spans.spans.push_back(Child("t1", "b"));
  engine_.Add(std::move(spans), kT0, out_);
  engine_.Advance(kT0 + Sec(10), out_);
  out_.Take();
  engine_.Advance(kT0 + kDay, out_);
  ASSERT_EQ(engine_.retained_traces(), 0u);

  out_.changelog.clear();
  engine_.Add(Msg(Correction("t1")), kT0 + 2 * kDay, out_);
  ASSERT_EQ(out_.routes.size(), 1u);  // errors/review is not routed again
  const Route& route = out_.routes[0];
  EXPECT_EQ(route.rule->name, "corrected");
  EXPECT_EQ(route.trigger, Trigger::kLateFeedback);
  EXPECT_EQ(route.span_count, 2u);
  EXPECT_EQ(route.annotation_count, 1u);
  EXPECT_NE(route.document.find("\"spans\":[{"), std::string::npos);
  EXPECT_EQ(route.document.find("\"context\":\"missing\""), std::string::npos);
  EXPECT_EQ(engine_.counters().revived, 1u);
  // The new state goes to the changelog, with the correction in it.
  ASSERT_EQ(out_.changelog.size(), 1u);
  Result<TraceRecord> record = DecodeTraceRecord(out_.changelog[0].record);
  ASSERT_TRUE(record.ok()) << record.error().message;
  EXPECT_EQ(record.value().events.spans.size(), 2u);
  ASSERT_EQ(record.value().events.annotations.size(), 1u);
  EXPECT_EQ(record.value().events.annotations[0].expected_output, "Paris");
  EXPECT_EQ(record.value().routed.size(), 2u);
}

// A store closed cleanly is all a next owner reads (with the changelog's tail): the closed
// traces still in their hot window must be in it, not only those that left memory.
TEST_F(TraceStoreEngineTest, SaveClosedWritesTheHotTracesForTheNextOwner) {
  engine_.Add(Msg(ErrorSpan("t1", "a")), kT0, out_);
  engine_.Add(Msg(Child("t2", "a")), kT0, out_);
  engine_.Advance(kT0 + Sec(10), out_);
  engine_.Add(Msg(Child("t3", "a")), kT0 + Sec(10), out_);  // still open
  EXPECT_THAT(out_.Take(), ElementsAre("t1/errors/review"));
  ASSERT_EQ(store_.size(), 0u);
  EXPECT_EQ(engine_.SaveClosed(), 2u);
  EXPECT_EQ(store_.size(), 2u);
  EXPECT_EQ(engine_.retained_traces(), 3u);  // kept in memory
  EXPECT_EQ(engine_.SaveClosed(), 0u);       // the store has them as they are
  EXPECT_FALSE(store_.Get("t3").has_value());

  // The next owner: a correction days later finds t1 whole, and errors/review stays routed once.
  Engine next(Rules());
  next.set_store(&store_);
  RecordingOutbox out;
  next.Add(Msg(Correction("t1")), kT0 + 2 * kDay, out);
  ASSERT_EQ(out.routes.size(), 1u);
  EXPECT_EQ(out.routes[0].rule->name, "corrected");
  EXPECT_EQ(out.routes[0].span_count, 1u);
  EXPECT_EQ(next.counters().revived, 1u);
}

TEST_F(TraceStoreEngineTest, WithoutAStoreTheSameCorrectionHasNoContext) {
  Engine memory(Rules(Sec(3600)));
  memory.Add(Msg(ErrorSpan("t1", "a")), kT0, out_);
  memory.Advance(kT0 + 2 * kDay, out_);
  out_.Take();
  memory.Add(Msg(Correction("t1")), kT0 + 2 * kDay, out_);
  ASSERT_EQ(out_.routes.size(), 1u);
  EXPECT_EQ(out_.routes[0].span_count, 0u);
  EXPECT_NE(out_.routes[0].document.find("\"context\":\"missing\""), std::string::npos);
}

TEST_F(TraceStoreEngineTest, ARevivedTraceIsRoutedAtMostOncePerPair) {
  engine_.Add(Msg(Child("t1", "a")), kT0, out_);
  engine_.Advance(kT0 + kDay, out_);
  engine_.Add(Msg(Correction("t1")), kT0 + kDay, out_);
  EXPECT_THAT(out_.Take(), ElementsAre("t1/corrected/dataset"));
  engine_.Advance(kT0 + 2 * kDay, out_);
  ASSERT_EQ(engine_.retained_traces(), 0u);
  Annotation again = Correction("t1");
  again.timestamp_ns = kT0 + 3 * kDay;
  engine_.Add(Msg(again), kT0 + 3 * kDay, out_);
  EXPECT_THAT(out_.Take(), IsEmpty());
  EXPECT_EQ(engine_.counters().revived, 2u);
}

TEST_F(TraceStoreEngineTest, TheSameAnnotationReadAgainIsKeptOnce) {
  engine_.Add(Msg(Child("t1", "a")), kT0, out_);
  engine_.Add(Msg(Correction("t1")), kT0 + kDay, out_);
  engine_.Advance(kT0 + 2 * kDay, out_);
  engine_.Add(Msg(Correction("t1")), kT0 + 2 * kDay, out_);
  engine_.Advance(kT0 + 3 * kDay, out_);
  Result<TraceRecord> record = DecodeTraceRecord(*store_.Get("t1"));
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record.value().events.annotations.size(), 1u);
}

TEST_F(TraceStoreEngineTest, RecordsGoWhenTheLateWindowIsOver) {
  engine_.Add(Msg(ErrorSpan("t1", "a")), kT0, out_);
  engine_.Advance(kT0 + Sec(10), out_);
  out_.Take();
  out_.changelog.clear();
  engine_.Advance(kT0 + Sec(10) + kWindow, out_);
  EXPECT_EQ(store_.size(), 0u);
  ASSERT_EQ(out_.changelog.size(), 1u);
  EXPECT_EQ(out_.changelog[0].trace_id, "t1");
  EXPECT_EQ(out_.changelog[0].record, "");  // a delete
  EXPECT_EQ(engine_.counters().evicted_expired, 1u);
  // Its routed state outlives it: an error span after the window does not route errors again.
  engine_.Add(Msg(ErrorSpan("t1", "b")), kT0 + Sec(20) + kWindow, out_);
  engine_.Advance(kT0 + Sec(40) + kWindow, out_);
  EXPECT_THAT(out_.Take(), IsEmpty());
}

TEST_F(TraceStoreEngineTest, MemoryDoesNotGrowWithTheWindow) {
  // 2,000 traces decided a minute apart: with the store only those of the last hot window stay
  // in memory, whatever the late window.
  for (int i = 0; i < 2000; ++i) {
    engine_.Add(Msg(Child("t" + std::to_string(i), "a")), kT0 + i * Sec(60), out_);
    out_.clear();
  }
  engine_.Advance(kT0 + 2000 * Sec(60), out_);
  EXPECT_LE(engine_.retained_traces(), 6u);
  EXPECT_EQ(store_.size() + engine_.retained_traces(), 2000u);
}

TEST_F(TraceStoreEngineTest, CapacityMovesClosedTracesToTheStoreInsteadOfForgetting) {
  RuleSetBuilder b;
  b.Dest("review");
  b.trace().decision_wait_ns = Sec(10);
  b.trace().late_feedback_window_ns = kWindow;
  b.trace().hot_window_ns = kHot;
  b.trace().max_open_traces = 10;
  b.Rule("corrected", FeedbackLabel("correctness", "wrong"), {"review"});
  Engine small(b.Build());
  small.set_store(&store_);
  for (int i = 0; i < 50; ++i) {
    small.Add(Msg(Child("t" + std::to_string(i), "a")), kT0 + i * Sec(20), out_);
  }
  EXPECT_LE(small.retained_traces(), 10u);
  EXPECT_EQ(small.counters().evicted_capacity, 0u);
  out_.clear();
  small.Add(Msg(Correction("t0")), kT0 + kDay, out_);
  ASSERT_EQ(out_.routes.size(), 1u);
  EXPECT_EQ(out_.routes[0].span_count, 1u);
}

TEST(TraceRecordTest, RoundTripsAndRefusesOtherBytes) {
  TraceRecord r;
  r.trace_id = "0af7651916cd43dd8448eb211c80319c";
  r.closed_ns = 5;
  r.expires_ns = 7;
  r.has_span = true;
  r.routed = {1, UINT64_MAX};
  r.counted_match = {3};
  r.events.spans.push_back(Child(r.trace_id, "a"));
  r.events.annotations.push_back(Correction(r.trace_id));
  Result<TraceRecord> back = DecodeTraceRecord(EncodeTraceRecord(r));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back.value().trace_id, r.trace_id);
  EXPECT_EQ(back.value().expires_ns, 7);
  EXPECT_EQ(back.value().routed, r.routed);
  EXPECT_EQ(back.value().counted_match, r.counted_match);
  EXPECT_EQ(back.value().events.spans, r.events.spans);
  EXPECT_EQ(back.value().events.annotations, r.events.annotations);
  EXPECT_EQ(TraceRecordExpiry(EncodeTraceRecord(r)).value(), 7);
  for (std::string bad : {"", "{}", "{\"schema\":\"triaged.trace/v1\"}\n{}", "not json\n{}"}) {
    Result<TraceRecord> refused = DecodeTraceRecord(bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().reason, "invalid_trace_record");
  }
}

}  // namespace
}  // namespace triaged

// --- sessions (DESIGN §2.1 session.*, §1.2 session-scoped feedback) ------------------------

namespace triaged {
namespace {

Span InSession(const std::string& trace_id, const std::string& session) {
  Span s = Child(trace_id, "a");
  s.session_id = session;
  return s;
}

Annotation SessionScore(const std::string& session, double score) {
  Annotation a = MakeAnnotation("", "csat", std::nullopt, score);
  a.session_id = session;
  return a;
}

std::shared_ptr<const RuleSet> SessionRules() {
  RuleSetBuilder b;
  b.Dest("review");
  b.trace().decision_wait_ns = Sec(10);
  b.trace().late_feedback_window_ns = kWindow;
  b.trace().hot_window_ns = kHot;
  b.Rule("unhappy-session", When([](const Trace& t) {
           const SessionView* s = t.session();
           const Annotation* a = s != nullptr ? s->Latest("csat") : nullptr;
           return a != nullptr && a->score && *a->score < 3;
         }),
         {"review"});
  b.Rule("long-session", When([](const Trace& t) {
           return t.session() != nullptr && t.session()->trace_count >= 3;
         }),
         {"review"});
  return b.Build();
}

class SessionEngineTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) engine_.set_store(&store_);
  }
  MemoryTraceStore store_;
  Engine engine_{SessionRules()};
  RecordingOutbox out_;
};

TEST_P(SessionEngineTest, SessionFeedbackReevaluatesTheSessionsDecidedTraces) {
  engine_.Add(Msg(InSession("t1", "s1")), kT0, out_);
  engine_.Add(Msg(InSession("t2", "s1")), kT0 + Sec(1), out_);
  engine_.Add(Msg(InSession("t9", "other")), kT0 + Sec(1), out_);
  // Decided, and (with the store) out of memory a day later.
  engine_.Advance(kT0 + kDay, out_);
  EXPECT_THAT(out_.Take(), IsEmpty());
  engine_.Add(Msg(SessionScore("s1", 1)), kT0 + kDay, out_);
  EXPECT_THAT(out_.Take(), ElementsAre("t1/unhappy-session/review", "t2/unhappy-session/review"));
  // A later trace of the session sees the feedback when it closes, and counts as the third.
  engine_.Add(Msg(InSession("t3", "s1")), kT0 + kDay + Sec(1), out_);
  engine_.Advance(kT0 + kDay + Sec(20), out_);
  EXPECT_THAT(out_.Take(), ElementsAre("t3/unhappy-session/review", "t3/long-session/review"));
  // The same session feedback read again changes nothing.
  engine_.Add(Msg(SessionScore("s1", 1)), kT0 + kDay + Sec(30), out_);
  EXPECT_THAT(out_.Take(), IsEmpty());
}

// A session remembers its latest 1,000 traces: session feedback re-evaluates those, oldest first,
// and not the ones before them.
TEST_P(SessionEngineTest, SessionFeedbackReachesTheSessionsLatestThousandTraces) {
  std::vector<std::string> expected;
  for (int i = 0; i < 1003; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "t%04d", i);
    engine_.Add(Msg(InSession(id, "s1")), kT0 + i, out_);
    if (i >= 3) expected.push_back(std::string(id) + "/unhappy-session/review");
  }
  engine_.Advance(kT0 + kDay, out_);
  out_.Take();
  engine_.Add(Msg(SessionScore("s1", 1)), kT0 + kDay, out_);
  EXPECT_THAT(out_.Take(), ElementsAreArray(expected));
}

TEST_P(SessionEngineTest, SessionsEndWithTheLateWindow) {
  engine_.Add(Msg(InSession("t1", "s1")), kT0, out_);
  engine_.Advance(kT0 + Sec(20) + kWindow + kWindow / 4, out_);
  engine_.Add(Msg(SessionScore("s1", 1)), kT0 + 2 * kWindow, out_);
  EXPECT_THAT(out_.Take(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Store, SessionEngineTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? std::string("with_store")
                                              : std::string("in_memory");
                         });

}  // namespace
}  // namespace triaged
