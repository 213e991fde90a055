#include "rules/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "tests/rules/engine_test_util.h"

namespace triaged {
namespace {

using namespace triaged::testutil;  // NOLINT(google-build-using-namespace)
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using O = RuleVerdict::Outcome;

constexpr int64_t kT0 = Sec(1'000'000);  // an arbitrary start of the injected clock
constexpr int64_t kWait = Sec(10);       // decision_wait
constexpr int64_t kGrace = Sec(2);       // root_grace
constexpr int64_t kMaxWait = Sec(60);    // max_wait
constexpr int64_t kWindow = Sec(100);    // late_feedback_window

void Timing(RuleSetBuilder& b) {
  b.trace().decision_wait_ns = kWait;
  b.trace().root_grace_ns = kGrace;
  b.trace().max_wait_ns = kMaxWait;
  b.trace().late_feedback_window_ns = kWindow;
}

class EngineTest : public ::testing::Test {
 protected:
  // A rule set with destinations `review` and `dataset`, test timing, and whatever the test adds.
  RuleSetBuilder& builder() {
    if (!builder_) {
      builder_ = std::make_unique<RuleSetBuilder>();
      builder_->Dest("review").Dest("dataset");
      Timing(*builder_);
    }
    return *builder_;
  }
  Engine& engine() {
    if (!engine_) {
      engine_ = std::make_unique<Engine>(builder().Build());
      engine_->set_observer(&obs_);
    }
    return *engine_;
  }
  AddResult Add(DecodedMessage m, int64_t now) { return engine().Add(std::move(m), now, sink_); }
  void Advance(int64_t now) { engine().Advance(now, sink_); }
  const RuleCounters& Counters(size_t rule) { return engine().rule_counters().at(rule); }
  std::vector<O> Outcomes(const RecordingObserver::Evaluation& e) {
    std::vector<O> out;
    for (const RuleVerdict& v : e.verdicts) out.push_back(v.outcome);
    return out;
  }

  std::unique_ptr<RuleSetBuilder> builder_;
  std::unique_ptr<Engine> engine_;
  RecordingOutbox sink_;
  RecordingObserver obs_;
};

// --- closing -----------------------------------------------------------------------------------

TEST_F(EngineTest, DecisionWaitIsExtendedByEachSpan) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("t1", "a")), kT0);
  EXPECT_EQ(engine().NextDeadline(), kT0 + kWait);
  EXPECT_EQ(engine().open_traces(), 1u);

  Add(Msg(Child("t1", "b")), kT0 + Sec(4));
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(4) + kWait);
  Add(Msg(Child("t1", "c")), kT0 + Sec(9));
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(9) + kWait);

  // The first deadlines have passed, but each span pushed the close further.
  Advance(kT0 + Sec(9) + kWait - 1);
  EXPECT_THAT(sink_.items(), IsEmpty());
  EXPECT_EQ(engine().open_traces(), 1u);
  EXPECT_THAT(obs_.closes, IsEmpty());

  Advance(kT0 + Sec(9) + kWait);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].trace_id, "t1");
  EXPECT_EQ(sink_.items()[0].trigger, Trigger::kClose);
  EXPECT_EQ(sink_.items()[0].routed_at_ns, kT0 + Sec(9) + kWait);
  EXPECT_EQ(sink_.items()[0].span_count, 3u);
  ASSERT_EQ(obs_.closes.size(), 1u);
  EXPECT_EQ(obs_.closes[0].reason, CloseReason::kDecisionWait);
  EXPECT_EQ(engine().open_traces(), 0u);
  EXPECT_EQ(engine().counters().traces_opened, 1u);
  EXPECT_EQ(engine().counters().traces_closed, 1u);
}

TEST_F(EngineTest, SpansThatPostponeTheCloseQueueNoTimerOfTheirOwn) {
  builder().Rule("all", Always(), {"review"});
  int64_t t = kT0;
  Add(Msg(Child("t1", "s0")), t);
  const size_t queued = engine().queued_timers();
  for (int i = 1; i < 1000; ++i) {
    t += Sec(1) / 100;  // each span pushes the close 10 ms later
    Add(Msg(Child("t1", "s" + std::to_string(i))), t);
  }
  EXPECT_EQ(engine().queued_timers(), queued);
  EXPECT_EQ(engine().NextDeadline(), t + kWait);
  // The timer of the first deadline moved on to the last one.
  Advance(t + kWait - 1);
  EXPECT_THAT(sink_.items(), IsEmpty());
  Advance(t + kWait);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].routed_at_ns, t + kWait);
  EXPECT_EQ(sink_.items()[0].span_count, 1000u);
  ASSERT_EQ(obs_.closes.size(), 1u);
  EXPECT_EQ(obs_.closes[0].reason, CloseReason::kDecisionWait);
}

TEST_F(EngineTest, RootGraceClosesAfterRootEnds) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("t1", "a")), kT0);
  // The root ends at kT0 + 1s: the trace closes root_grace later, well before decision_wait.
  Add(Msg(Root("t1", kT0 - Sec(3), kT0 + Sec(1))), kT0 + Sec(1));
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(1) + kGrace);

  Advance(kT0 + Sec(1) + kGrace - 1);
  EXPECT_THAT(sink_.items(), IsEmpty());
  Advance(kT0 + Sec(1) + kGrace);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].routed_at_ns, kT0 + Sec(1) + kGrace);
  ASSERT_EQ(obs_.closes.size(), 1u);
  EXPECT_EQ(obs_.closes[0].reason, CloseReason::kRootGrace);
}

// Root grace runs on the engine's clock from the root's arrival: a root whose own end time is
// long past (an old replay, a producer with a skewed clock) still waits root_grace for its
// children instead of closing at once.
TEST_F(EngineTest, RootGraceRunsFromTheRootsArrival) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Root("t1", kT0 - Sec(30), kT0 - Sec(20))), kT0);
  EXPECT_THAT(sink_.items(), IsEmpty());
  EXPECT_EQ(engine().NextDeadline(), kT0 + kGrace);
  Advance(kT0 + kGrace - 1);
  EXPECT_THAT(sink_.items(), IsEmpty());
  Advance(kT0 + kGrace);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].routed_at_ns, kT0 + kGrace);
  ASSERT_EQ(obs_.closes.size(), 1u);
  EXPECT_EQ(obs_.closes[0].reason, CloseReason::kRootGrace);
  EXPECT_EQ(engine().open_traces(), 0u);
}

TEST_F(EngineTest, MaxWaitCapsATraceThatKeepsReceivingSpans) {
  builder().Rule("all", Always(), {"review"});
  int64_t t = kT0;
  for (int i = 0; t < kT0 + kMaxWait; ++i, t += Sec(5)) {
    Advance(t);
    EXPECT_THAT(sink_.items(), IsEmpty()) << "at +" << (t - kT0) / kNanosPerSecond << "s";
    Add(Msg(Child("busy", "s" + std::to_string(i))), t);
    EXPECT_EQ(engine().NextDeadline(), std::min(t + kWait, kT0 + kMaxWait));
  }
  Advance(kT0 + kMaxWait - 1);
  EXPECT_THAT(sink_.items(), IsEmpty());
  Advance(kT0 + kMaxWait);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].routed_at_ns, kT0 + kMaxWait);
  EXPECT_EQ(sink_.items()[0].span_count, 12u);
  ASSERT_EQ(obs_.closes.size(), 1u);
  EXPECT_EQ(obs_.closes[0].reason, CloseReason::kMaxWait);
}

TEST_F(EngineTest, FeedbackOnlyTraceIsDecidedDecisionWaitAfterOpening) {
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  Add(Msg(ThumbsDown("fb")), kT0);
  EXPECT_EQ(engine().NextDeadline(), kT0 + kWait);
  // More feedback does not extend the wait: only spans do.
  Add(Msg(MakeAnnotation("fb", "judge", "bad")), kT0 + Sec(5));
  EXPECT_EQ(engine().NextDeadline(), kT0 + kWait);

  Advance(kT0 + kWait - 1);
  EXPECT_THAT(sink_.items(), IsEmpty());
  Advance(kT0 + kWait);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].trace_id, "fb");
  EXPECT_EQ(sink_.items()[0].span_count, 0u);
  EXPECT_EQ(sink_.items()[0].annotation_count, 2u);
  EXPECT_EQ(sink_.items()[0].trigger, Trigger::kClose);
  ASSERT_EQ(obs_.closes.size(), 1u);
  EXPECT_EQ(obs_.closes[0].reason, CloseReason::kDecisionWait);
  EXPECT_EQ(obs_.closes[0].span_count, 0u);
}

TEST_F(EngineTest, SpanAfterFeedbackStartsTheDecisionWaitAgain) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(ThumbsDown("t1")), kT0);
  Add(Msg(Child("t1", "a")), kT0 + Sec(8));
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(8) + kWait);
  Advance(kT0 + Sec(8) + kWait - 1);
  EXPECT_THAT(sink_.items(), IsEmpty());
  Advance(kT0 + Sec(8) + kWait);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].span_count, 1u);
}

TEST_F(EngineTest, AdvancingFarClosesAtEachDeadlineInOrder) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("late", "a")), kT0 + Sec(3));
  Add(Msg(Child("early", "a")), kT0 + Sec(3));
  Add(Msg(Child("late", "b")), kT0 + Sec(5));
  Advance(kT0 + Sec(30));
  EXPECT_THAT(sink_.Take(), ElementsAre("early/all/review", "late/all/review"));
  ASSERT_EQ(obs_.closes.size(), 2u);
  // Closed at the deadline, not when we happened to look.
  EXPECT_EQ(obs_.closes[0].now_ns, kT0 + Sec(3) + kWait);
  EXPECT_EQ(obs_.closes[1].now_ns, kT0 + Sec(5) + kWait);
  // The late window runs from the close: eviction deadline of `early` is next.
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(3) + kWait + kWindow);
}

TEST_F(EngineTest, ClockNeverGoesBackwards) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("t1", "a")), kT0);
  Advance(kT0 + Sec(5));
  Advance(kT0);
  EXPECT_EQ(engine().now(), kT0 + Sec(5));
  // An event stamped in the past is taken at the current time.
  Add(Msg(Child("t1", "b")), kT0 + Sec(1));
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(5) + kWait);
}

TEST_F(EngineTest, NextDeadlineTracksCloseAndEviction) {
  builder().Rule("all", Always(), {"review"});
  EXPECT_EQ(engine().NextDeadline(), std::nullopt);
  Add(Msg(Child("a", "1")), kT0);
  Add(Msg(Child("b", "1")), kT0 + Sec(2));
  EXPECT_EQ(engine().NextDeadline(), kT0 + kWait);
  Add(Msg(Child("a", "2")), kT0 + Sec(3));  // a now closes after b
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(2) + kWait);

  Advance(kT0 + Sec(2) + kWait);  // b closes
  EXPECT_THAT(sink_.Take(), ElementsAre("b/all/review"));
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(3) + kWait);
  Advance(kT0 + Sec(3) + kWait);  // a closes
  EXPECT_THAT(sink_.Take(), ElementsAre("a/all/review"));
  // Both closed: the next deadline is b's eviction.
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(2) + kWait + kWindow);
  EXPECT_EQ(engine().retained_traces(), 2u);

  Advance(kT0 + Sec(2) + kWait + kWindow - 1);
  EXPECT_EQ(engine().retained_traces(), 2u);
  Advance(kT0 + Sec(2) + kWait + kWindow);
  EXPECT_EQ(engine().retained_traces(), 1u);
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(3) + kWait + kWindow);
  Advance(kT0 + Sec(3) + kWait + kWindow);
  EXPECT_EQ(engine().retained_traces(), 0u);
  EXPECT_EQ(engine().counters().evicted_expired, 2u);
  EXPECT_EQ(engine().NextDeadline(), std::nullopt);
  ASSERT_EQ(obs_.evicts.size(), 2u);
  EXPECT_EQ(obs_.evicts[0].trace_id, "b");
  EXPECT_EQ(obs_.evicts[0].reason, "expired");
}

// --- late events -------------------------------------------------------------------------------

TEST_F(EngineTest, LateFeedbackWithinWindowRoutesOnlyNewPairs) {
  builder().Rule("errors", HasError(), {"review"});
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review", "dataset"});
  Add(Msg(ErrorSpan("t1", "a")), kT0);
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("t1/errors/review"));

  const int64_t late = kT0 + kWait + kWindow - 1;  // last moment of the window
  Advance(late);
  EXPECT_EQ(engine().retained_traces(), 1u);
  Add(Msg(ThumbsDown("t1")), late);
  ASSERT_EQ(sink_.items().size(), 2u);
  for (const Routed& r : sink_.items()) {
    EXPECT_EQ(r.trigger, Trigger::kLateFeedback);
    EXPECT_EQ(r.routed_at_ns, late);
    EXPECT_EQ(r.span_count, 1u);  // the context is still there
    EXPECT_EQ(r.annotation_count, 1u);
  }
  EXPECT_THAT(sink_.Take(), ElementsAre("t1/thumbs-down/review", "t1/thumbs-down/dataset"));
  ASSERT_EQ(obs_.evaluations.size(), 2u);
  EXPECT_EQ(obs_.evaluations[1].trigger, Trigger::kLateFeedback);
  EXPECT_THAT(Outcomes(obs_.evaluations[1]), ElementsAre(O::kAlreadyRouted, O::kRouted));
  EXPECT_EQ(engine().counters().late_evaluations, 1u);
  EXPECT_EQ(obs_.closes.size(), 1u);  // re-evaluated, not closed again

  // Yet another late event: every pair has been routed.
  Add(Msg(ThumbsDown("t1")), late);
  EXPECT_THAT(sink_.items(), IsEmpty());
  ASSERT_EQ(obs_.evaluations.size(), 3u);
  EXPECT_THAT(Outcomes(obs_.evaluations[2]), ElementsAre(O::kAlreadyRouted, O::kAlreadyRouted));
  EXPECT_EQ(Counters(0).routed, 1u);
  EXPECT_EQ(Counters(1).routed, 2u);
}

TEST_F(EngineTest, LateSpanWithinWindowIsAddedAndReEvaluates) {
  builder().Rule("errors", HasError(), {"review"});
  Add(Msg(Child("t1", "a")), kT0);
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.items(), IsEmpty());
  Add(Msg(ErrorSpan("t1", "b")), kT0 + kWait + Sec(1));
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].trigger, Trigger::kLateFeedback);
  EXPECT_EQ(sink_.items()[0].span_count, 2u);
  EXPECT_EQ(engine().open_traces(), 0u);
}

TEST_F(EngineTest, OneMessageReEvaluatesALateTraceOnce) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("t1", "a")), kT0);
  Advance(kT0 + kWait);
  sink_.Take();
  DecodedMessage m;
  m.annotations.push_back(ThumbsDown("t1"));
  m.annotations.push_back(MakeAnnotation("t1", "judge", "bad"));
  Add(std::move(m), kT0 + kWait + Sec(1));
  EXPECT_EQ(engine().counters().late_evaluations, 1u);
  ASSERT_EQ(obs_.evaluations.size(), 2u);
  EXPECT_THAT(sink_.items(), IsEmpty());
}

TEST_F(EngineTest, LateEventAfterEvictionIsContextMissingAndNeverReRoutes) {
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  builder().Rule("judge-bad", FeedbackLabel("judge", "bad"), {"review", "dataset"});
  DecodedMessage m;
  m.spans.push_back(Child("t1", "a"));
  m.annotations.push_back(ThumbsDown("t1"));
  Add(std::move(m), kT0);
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("t1/thumbs-down/review"));

  Advance(kT0 + kWait + kWindow);  // window over: evicted
  EXPECT_EQ(engine().retained_traces(), 0u);
  EXPECT_EQ(engine().counters().evicted_expired, 1u);

  const int64_t late = kT0 + kWait + kWindow + Sec(30);
  DecodedMessage m2;
  m2.annotations.push_back(ThumbsDown("t1"));
  m2.annotations.push_back(MakeAnnotation("t1", "judge", "bad"));
  Add(std::move(m2), late);
  // Evaluated at once, without its spans; thumbs-down/review is not routed a second time.
  ASSERT_EQ(sink_.items().size(), 2u);
  for (const Routed& r : sink_.items()) {
    EXPECT_EQ(r.trigger, Trigger::kLateFeedback);
    EXPECT_EQ(r.routed_at_ns, late);
    EXPECT_EQ(r.span_count, 0u);
    EXPECT_EQ(r.annotation_count, 2u);
  }
  EXPECT_THAT(sink_.Take(), ElementsAre("t1/judge-bad/review", "t1/judge-bad/dataset"));
  ASSERT_EQ(obs_.evaluations.size(), 2u);
  EXPECT_THAT(Outcomes(obs_.evaluations[1]), ElementsAre(O::kAlreadyRouted, O::kRouted));
  EXPECT_EQ(obs_.closes.size(), 1u);
  EXPECT_EQ(engine().open_traces(), 0u);
  EXPECT_EQ(engine().counters().traces_opened, 1u);

  // It is kept for another window, then forgotten again.
  EXPECT_EQ(engine().NextDeadline(), late + kWindow);
  Add(Msg(ThumbsDown("t1")), late + Sec(1));
  EXPECT_THAT(sink_.items(), IsEmpty());
}

TEST_F(EngineTest, TombstonesSurviveRepeatedEviction) {
  // A trace evicted, revived by late feedback and evicted again must keep its routed pairs,
  // however the tombstones of other traces come and go around it.
  builder().trace().max_open_traces = 2;  // also bounds the tombstones
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  DecodedMessage m;
  m.spans.push_back(Child("t", "a"));
  m.annotations.push_back(ThumbsDown("t"));
  Add(std::move(m), 0);
  Advance(kWait);  // t closes and routes
  EXPECT_THAT(sink_.Take(), ElementsAre("t/thumbs-down/review"));

  Add(Msg(Child("a", "1")), Sec(100));  // a closes at 110, evicted at 210
  Advance(kWait + kWindow);             // t evicted at 110
  Add(Msg(ThumbsDown("t")), Sec(120));  // t revived (context missing), evicted at 220
  EXPECT_THAT(sink_.items(), IsEmpty());
  Advance(Sec(210));  // a evicted
  Advance(Sec(220));  // t evicted again
  EXPECT_EQ(engine().retained_traces(), 0u);

  Add(Msg(ThumbsDown("t")), Sec(230));
  Advance(Sec(300));
  EXPECT_THAT(sink_.items(), IsEmpty());
}

TEST_F(EngineTest, ManyRevivalsKeepTheTombstonesAndTheBound) {
  builder().trace().max_open_traces = 2;
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  DecodedMessage m;
  m.spans.push_back(Child("z", "a"));
  m.annotations.push_back(ThumbsDown("z"));
  m.spans.push_back(Child("t", "a"));
  m.annotations.push_back(ThumbsDown("t"));
  Add(std::move(m), 0);
  Advance(kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("z/thumbs-down/review", "t/thumbs-down/review"));
  // z's tombstone stays oldest while t is evicted and revived over and over.
  int64_t now = kWait;
  for (int i = 0; i < 200; ++i) {
    now += kWindow;
    Advance(now);  // evicted
    ASSERT_EQ(engine().retained_traces(), 0u) << i;
    Add(Msg(ThumbsDown("t")), now);  // revived, decided at once, nothing new
    ASSERT_THAT(sink_.items(), IsEmpty()) << i;
    ASSERT_EQ(engine().open_traces(), 0u) << i;
  }
  EXPECT_EQ(engine().counters().evicted_expired, 201u);
  EXPECT_EQ(engine().rule_counters()[0].matched, 2u);
  Add(Msg(ThumbsDown("z")), now);
  EXPECT_THAT(sink_.items(), IsEmpty());
  EXPECT_EQ(engine().open_traces(), 0u);

  // Two newer tombstones push both out: after that, t is a new trace again.
  now += kWindow;
  Add(Msg(Child("a", "1")), now);
  Add(Msg(Child("b", "1")), now);
  Advance(now + kWait + kWindow);
  EXPECT_EQ(engine().retained_traces(), 0u);
  Add(Msg(ThumbsDown("t")), now + kWait + kWindow);
  EXPECT_EQ(engine().open_traces(), 1u);
}

TEST_F(EngineTest, OversizedSpanDoesNotReviveAnEvictedTrace) {
  builder().trace().max_trace_bytes = 1000;
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("t", "a")), kT0);
  Advance(kT0 + kWait + kWindow);
  EXPECT_EQ(sink_.Take().size(), 1u);
  EXPECT_EQ(engine().retained_traces(), 0u);
  EXPECT_EQ(Add(Msg(Child("t", "big", 5000)), kT0 + kWait + kWindow + 1).spans_rejected, 1u);
  EXPECT_EQ(engine().retained_traces(), 0u);
  EXPECT_EQ(obs_.evaluations.size(), 1u);
}

TEST_F(EngineTest, TombstonesAreBounded) {
  builder().trace().max_open_traces = 2;
  builder().Rule("all", Always(), {"review"});
  for (int i = 0; i < 3; ++i) Add(Msg(Child("t" + std::to_string(i), "a")), kT0);
  Advance(kT0 + kWait + kWindow);
  // The first capacity eviction and two expirations; only the last two tombstones remain.
  EXPECT_EQ(engine().retained_traces(), 0u);
  EXPECT_EQ(sink_.Take().size(), 3u);
  Add(Msg(ThumbsDown("t0")), kT0 + kWait + kWindow + 1);  // tombstone gone: a new trace
  EXPECT_EQ(engine().open_traces(), 1u);
  Add(Msg(ThumbsDown("t2")), kT0 + kWait + kWindow + 1);  // tombstone kept: evaluated at once
  EXPECT_EQ(engine().open_traces(), 1u);
  EXPECT_THAT(sink_.items(), IsEmpty());
}

// --- capacity and size limits ------------------------------------------------------------------

// --- routed state seeded from an earlier run (exactly-once restarts) -----------------------------

TEST_F(EngineTest, SeededPairsAreNotRoutedAgainAndTheTraceOpensNormally) {
  builder().Rule("all", Always(), {"review", "dataset"});
  builder().Rule("other", Always(), {"review"});
  engine().SeedRouted("t1", "all", "review");
  engine().SeedRouted("t1", "all", "review");  // twice: still one pair
  Add(Msg(Child("t1", "a")), kT0);
  EXPECT_EQ(engine().open_traces(), 1u);  // open, not a late event on a forgotten trace
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("t1/all/dataset", "t1/other/review"));
  ASSERT_EQ(obs_.evaluations.size(), 1u);
  EXPECT_EQ(obs_.evaluations[0].trigger, Trigger::kClose);
}

TEST_F(EngineTest, SeedingAnOpenTraceMarksItsPairs) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("t1", "a")), kT0);
  engine().SeedRouted("t1", "all", "review");
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.items(), IsEmpty());
  ASSERT_EQ(obs_.evaluations.size(), 1u);
  EXPECT_EQ(obs_.evaluations[0].verdicts[0].outcome, O::kAlreadyRouted);
}

TEST_F(EngineTest, CapacityEvictsTheOldestClosedTraceFirst) {
  builder().trace().max_open_traces = 3;
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("c1", "a")), kT0);
  Add(Msg(Child("c2", "a")), kT0 + Sec(1));
  Advance(kT0 + Sec(1) + kWait);  // c1, c2 closed and retained
  EXPECT_THAT(sink_.Take(), ElementsAre("c1/all/review", "c2/all/review"));
  Add(Msg(Child("o1", "a")), kT0 + Sec(12));
  EXPECT_EQ(engine().retained_traces(), 3u);

  Add(Msg(Child("o2", "a")), kT0 + Sec(13));
  EXPECT_EQ(engine().retained_traces(), 3u);
  EXPECT_EQ(engine().open_traces(), 2u);
  EXPECT_EQ(engine().counters().evicted_capacity, 1u);
  ASSERT_EQ(obs_.evicts.size(), 1u);
  EXPECT_EQ(obs_.evicts[0].trace_id, "c1");
  EXPECT_EQ(obs_.evicts[0].reason, "capacity");
  EXPECT_THAT(sink_.items(), IsEmpty());  // nothing was decided early
  EXPECT_EQ(obs_.closes.size(), 2u);

  Add(Msg(Child("o3", "a")), kT0 + Sec(14));
  ASSERT_EQ(obs_.evicts.size(), 2u);
  EXPECT_EQ(obs_.evicts[1].trace_id, "c2");
  EXPECT_THAT(sink_.items(), IsEmpty());
}

// The daemon's partition engines share one max_open_traces: together they hold at most the cap
// plus one trace per engine, each making room by deciding its own oldest; a destroyed engine
// (a revoked partition) gives its share back.
TEST(EngineGroupTest, PartitionEnginesShareMaxOpenTraces) {
  RuleSetBuilder b;
  b.trace().max_open_traces = 10;
  b.Dest("review");
  b.Rule("all", Always(), {"review"});
  const std::shared_ptr<const RuleSet> rules = b.Build();
  auto group = std::make_shared<EngineGroup>();
  RecordingOutbox sink;
  Engine p0(rules, group);
  auto p1 = std::make_unique<Engine>(rules, group);
  for (int i = 0; i < 8; ++i) p0.Add(Msg(Child("a" + std::to_string(i), "s")), kT0 + i, sink);
  EXPECT_EQ(group->traces, 8u);
  for (int i = 0; i < 8; ++i) p1->Add(Msg(Child("b" + std::to_string(i), "s")), kT0 + 10 + i, sink);
  // p1 opened 2 in the room left, then made room for 6 more by deciding its own oldest.
  EXPECT_EQ(p0.retained_traces(), 8u);
  EXPECT_EQ(p1->retained_traces(), 2u);
  EXPECT_EQ(group->traces, 10u);
  EXPECT_EQ(p1->counters().evicted_capacity, 6u);
  EXPECT_EQ(sink.items().size(), 6u);  // decided early, not lost
  // An engine with nothing of its own to evict still opens one trace.
  Engine p2(rules, group);
  p2.Add(Msg(Child("c0", "s")), kT0 + 30, sink);
  p2.Add(Msg(Child("c1", "s")), kT0 + 31, sink);
  EXPECT_EQ(p2.retained_traces(), 1u);
  EXPECT_EQ(group->traces, 11u);
  EXPECT_EQ(group->tombstones, 7u);  // routed state of the 6 + 1 forgotten traces
  p1.reset();
  EXPECT_EQ(group->traces, 9u);
  EXPECT_EQ(group->tombstones, 1u);
}

TEST_F(EngineTest, CapacityForceClosesTheOldestOpenTraceAndEvaluatesIt) {
  builder().trace().max_open_traces = 2;
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  DecodedMessage m;
  m.spans.push_back(Child("o1", "a"));
  m.annotations.push_back(ThumbsDown("o1"));
  Add(std::move(m), kT0);
  Add(Msg(Child("o2", "a")), kT0 + Sec(1));
  Add(Msg(Child("o3", "a")), kT0 + Sec(2));

  // o1 was decided early (and routed), then forgotten.
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].trace_id, "o1");
  EXPECT_EQ(sink_.items()[0].trigger, Trigger::kClose);
  EXPECT_EQ(sink_.items()[0].routed_at_ns, kT0 + Sec(2));
  EXPECT_EQ(sink_.items()[0].span_count, 1u);
  sink_.Take();
  ASSERT_EQ(obs_.closes.size(), 1u);
  EXPECT_EQ(obs_.closes[0].trace_id, "o1");
  EXPECT_EQ(obs_.closes[0].reason, CloseReason::kCapacity);
  EXPECT_EQ(engine().open_traces(), 2u);
  EXPECT_EQ(engine().retained_traces(), 2u);
  EXPECT_EQ(engine().counters().evicted_capacity, 1u);

  // Late feedback for it: context missing, and the routed pair is not routed again.
  Add(Msg(ThumbsDown("o1")), kT0 + Sec(3));
  EXPECT_THAT(sink_.items(), IsEmpty());
  ASSERT_FALSE(obs_.evaluations.empty());
  EXPECT_EQ(obs_.evaluations.back().trace_id, "o1");
  EXPECT_EQ(obs_.evaluations.back().trigger, Trigger::kLateFeedback);
  EXPECT_THAT(Outcomes(obs_.evaluations.back()), ElementsAre(O::kAlreadyRouted));
  // Reviving o1 made room by force-closing o2, the oldest open trace.
  ASSERT_EQ(obs_.closes.size(), 2u);
  EXPECT_EQ(obs_.closes[1].trace_id, "o2");
  EXPECT_EQ(engine().retained_traces(), 2u);
}

TEST_F(EngineTest, LateFeedbackIsEvaluatedEvenIfTheSameMessageEvictsItsTrace) {
  builder().trace().max_open_traces = 2;
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  Add(Msg(Child("a", "1")), kT0);
  Advance(kT0 + kWait);  // a closed, retained
  Add(Msg(Child("c", "1")), kT0 + kWait);
  EXPECT_THAT(sink_.items(), IsEmpty());
  // One message: late feedback for a, then a new trace b that needs a's room.
  DecodedMessage m;
  m.annotations.push_back(ThumbsDown("a"));
  m.annotations.push_back(MakeAnnotation("b", "judge", "ok"));
  Add(std::move(m), kT0 + kWait + Sec(1));
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].trace_id, "a");
  EXPECT_EQ(sink_.items()[0].trigger, Trigger::kLateFeedback);
  EXPECT_EQ(sink_.items()[0].span_count, 1u);
  EXPECT_EQ(engine().counters().evicted_capacity, 1u);
  // And a stays decided: more feedback revives it without routing again.
  Add(Msg(ThumbsDown("a")), kT0 + kWait + Sec(2));
  EXPECT_EQ(sink_.items().size(), 1u);
}

TEST_F(EngineTest, MaxTraceBytesRejectsSpansThatWouldExceedIt) {
  builder().trace().max_trace_bytes = 1000;
  builder().Rule("all", Always(), {"review"});
  EXPECT_EQ(Add(Msg(Child("t1", "a", 400)), kT0).spans_rejected, 0u);
  EXPECT_EQ(Add(Msg(Child("t1", "b", 400)), kT0 + Sec(1)).spans_rejected, 0u);
  // 1200 > 1000: refused, and it does not extend the decision wait.
  EXPECT_EQ(Add(Msg(Child("t1", "c", 400)), kT0 + Sec(5)).spans_rejected, 1u);
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(1) + kWait);
  // Exactly 1000 is allowed.
  DecodedMessage m;
  m.spans.push_back(Child("t1", "d", 200));
  m.spans.push_back(Child("t1", "e", 1));
  m.spans.push_back(Child("other", "a", 1001));
  EXPECT_EQ(Add(std::move(m), kT0 + Sec(6)).spans_rejected, 2u);
  EXPECT_EQ(engine().counters().spans_over_size, 3u);
  // A span too large for an empty trace does not open one (it would be decided on nothing).
  EXPECT_EQ(engine().counters().traces_opened, 1u);
  EXPECT_EQ(engine().open_traces(), 1u);

  Advance(kT0 + Sec(6) + kWait);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].trace_id, "t1");
  EXPECT_EQ(sink_.items()[0].span_count, 3u);
}

// --- routing modes -----------------------------------------------------------------------------

TEST_F(EngineTest, FanOutRoutesEveryMatchingRule) {
  builder().Rule("never", Never(), {"review"});
  builder().Rule("first", Always(), {"review"});
  builder().Rule("second", Always(), {"dataset"});
  builder().Rule("third", Always(), {"review", "dataset"});
  Add(Msg(Child("t1", "a")), kT0);
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("t1/first/review", "t1/second/dataset", "t1/third/review",
                                        "t1/third/dataset"));
  ASSERT_EQ(obs_.evaluations.size(), 1u);
  EXPECT_THAT(Outcomes(obs_.evaluations[0]),
              ElementsAre(O::kNoMatch, O::kRouted, O::kRouted, O::kRouted));
  EXPECT_EQ(Counters(0).matched, 0u);
  EXPECT_EQ(Counters(3).matched, 1u);
  EXPECT_EQ(Counters(3).routed, 2u);
}

TEST_F(EngineTest, FirstMatchRoutesOnlyTheFirstMatchingRule) {
  builder().Mode(RoutingMode::kFirstMatch);
  builder().Rule("never", Never(), {"review"});
  builder().Rule("first", Always(), {"review"});
  builder().Rule("second", Always(), {"dataset"});
  builder().Rule("third", Never(), {"dataset"});
  Add(Msg(Child("t1", "a")), kT0);
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("t1/first/review"));
  ASSERT_EQ(obs_.evaluations.size(), 1u);
  EXPECT_THAT(Outcomes(obs_.evaluations[0]),
              ElementsAre(O::kNoMatch, O::kRouted, O::kShadowed, O::kNoMatch));
  EXPECT_EQ(Counters(1).matched, 1u);
  EXPECT_EQ(Counters(2).matched, 0u);
  EXPECT_EQ(Counters(2).routed, 0u);

  // On re-evaluation the winner stays the winner: the shadowed rule still does not route.
  Add(Msg(ThumbsDown("t1")), kT0 + kWait + Sec(1));
  EXPECT_THAT(sink_.items(), IsEmpty());
  ASSERT_EQ(obs_.evaluations.size(), 2u);
  EXPECT_THAT(Outcomes(obs_.evaluations[1]),
              ElementsAre(O::kNoMatch, O::kAlreadyRouted, O::kShadowed, O::kNoMatch));
}

TEST_F(EngineTest, FirstMatchSampledOutWinnerStillShadowsLaterRules) {
  builder().Mode(RoutingMode::kFirstMatch);
  builder().Rule("sampled", Always(), {"review"}).sample_rate = 0.0;
  builder().Rule("fallback", Always(), {"dataset"});
  Add(Msg(Child("t1", "a")), kT0);
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.items(), IsEmpty());
  ASSERT_EQ(obs_.evaluations.size(), 1u);
  EXPECT_THAT(Outcomes(obs_.evaluations[0]), ElementsAre(O::kSampledOut, O::kShadowed));
}

TEST_F(EngineTest, FilterFalseMeansNoRuleSeesTheTrace) {
  builder().Filter(When([](const Trace& t) { return t.id() != "filtered"; }));
  builder().Rule("all", Always(), {"review"});
  builder().Rule("thumbs", FeedbackLabel("thumbs", "down"), {"dataset"});
  Add(Msg(Child("filtered", "a")), kT0);
  Add(Msg(Child("kept", "a")), kT0);
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("kept/all/review"));
  ASSERT_EQ(obs_.evaluations.size(), 2u);
  EXPECT_THAT(Outcomes(obs_.evaluations[0]), ElementsAre(O::kFilteredOut, O::kFilteredOut));
  EXPECT_THAT(Outcomes(obs_.evaluations[1]), ElementsAre(O::kRouted, O::kNoMatch));
  EXPECT_EQ(Counters(0).matched, 1u);  // the kept trace only
  EXPECT_EQ(Counters(0).routed, 1u);

  // A late annotation re-evaluates the filtered trace, and the filter still holds it back.
  Add(Msg(ThumbsDown("filtered")), kT0 + kWait + Sec(1));
  EXPECT_THAT(sink_.items(), IsEmpty());
  ASSERT_EQ(obs_.evaluations.size(), 3u);
  EXPECT_THAT(Outcomes(obs_.evaluations[2]), ElementsAre(O::kFilteredOut, O::kFilteredOut));
  EXPECT_EQ(Counters(1).matched, 0u);
}

// --- end of input, reload ----------------------------------------------------------------------

TEST_F(EngineTest, CloseAllClosesEveryOpenTraceInOpeningOrder) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("done", "a")), kT0);
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("done/all/review"));
  Add(Msg(Child("z", "a")), kT0 + Sec(11));
  Add(Msg(ThumbsDown("a")), kT0 + Sec(12));
  Add(Msg(Child("m", "a")), kT0 + Sec(13));
  Add(Msg(Child("z", "b")), kT0 + Sec(14));
  EXPECT_EQ(engine().open_traces(), 3u);

  engine().CloseAll(kT0 + Sec(15), sink_);
  EXPECT_EQ(engine().open_traces(), 0u);
  for (const Routed& r : sink_.items()) EXPECT_EQ(r.routed_at_ns, kT0 + Sec(15));
  EXPECT_THAT(sink_.Take(), ElementsAre("z/all/review", "a/all/review", "m/all/review"));
  ASSERT_EQ(obs_.closes.size(), 4u);
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(obs_.closes[i].reason, CloseReason::kEndOfInput);
  // Closed traces remain for late feedback; nothing routes twice.
  EXPECT_EQ(engine().retained_traces(), 4u);
  engine().CloseAll(kT0 + Sec(16), sink_);
  Advance(kT0 + Sec(60));
  EXPECT_THAT(sink_.items(), IsEmpty());
  EXPECT_EQ(obs_.closes.size(), 4u);
}

TEST_F(EngineTest, SetRuleSetKeepsOpenTracesAndRoutedState) {
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  DecodedMessage m;
  m.spans.push_back(Child("closed", "a"));
  m.annotations.push_back(ThumbsDown("closed"));
  Add(std::move(m), kT0);
  Advance(kT0 + kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("closed/thumbs-down/review"));
  DecodedMessage m2;
  m2.spans.push_back(Child("open", "a"));
  m2.annotations.push_back(ThumbsDown("open"));
  Add(std::move(m2), kT0 + Sec(11));

  // The new set lists destinations in another order and adds one, and a rule.
  RuleSetBuilder next;
  next.Dest("archive").Dest("dataset").Dest("review");
  Timing(next);
  next.Rule("errors", HasError(), {"archive"});
  next.Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"dataset", "review"});
  auto rs = std::const_pointer_cast<RuleSet>(next.Build());
  rs->config_version = "v2";
  engine().SetRuleSet(rs);
  EXPECT_EQ(engine().open_traces(), 1u);
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(11) + kWait);
  // Counters follow the rule by name.
  EXPECT_EQ(Counters(0).matched, 0u);
  EXPECT_EQ(Counters(1).matched, 1u);
  EXPECT_EQ(Counters(1).routed, 1u);

  Advance(kT0 + Sec(11) + kWait);
  EXPECT_THAT(sink_.Take(), ElementsAre("open/thumbs-down/dataset", "open/thumbs-down/review"));

  // The closed trace re-evaluates under the new set: only the new pairs route.
  Add(Msg(ErrorSpan("closed", "b")), kT0 + Sec(30));
  for (const Routed& r : sink_.items()) EXPECT_EQ(r.config_version, "v2");
  EXPECT_THAT(sink_.Take(), ElementsAre("closed/errors/archive", "closed/thumbs-down/dataset"));
  EXPECT_EQ(Counters(1).matched, 2u);
  EXPECT_EQ(Counters(1).routed, 4u);
}

TEST_F(EngineTest, SetRuleSetReschedulesOpenTraces) {
  builder().Rule("all", Always(), {"review"});
  Add(Msg(Child("t1", "a")), kT0);
  EXPECT_EQ(engine().NextDeadline(), kT0 + kWait);
  RuleSetBuilder next;
  next.Dest("review");
  Timing(next);
  next.trace().decision_wait_ns = Sec(4);
  next.Rule("all", Always(), {"review"});
  engine().SetRuleSet(next.Build());
  EXPECT_EQ(engine().NextDeadline(), kT0 + Sec(4));
  Advance(kT0 + Sec(4));
  EXPECT_THAT(sink_.Take(), ElementsAre("t1/all/review"));
}

// --- counters ----------------------------------------------------------------------------------

TEST_F(EngineTest, MatchedAndSampledOutCountOncePerTrace) {
  builder().Rule("kept", Always(), {"review"});
  builder().Rule("dropped", Always(), {"dataset"}).sample_rate = 0.0;
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  Add(Msg(Child("t1", "a")), kT0);
  Add(Msg(Child("t2", "a")), kT0);
  Advance(kT0 + kWait);
  for (int i = 0; i < 3; ++i) {
    Add(Msg(ThumbsDown("t1")), kT0 + kWait + Sec(1 + i));
  }
  EXPECT_EQ(engine().counters().late_evaluations, 3u);
  EXPECT_EQ(Counters(0).matched, 2u);
  EXPECT_EQ(Counters(0).routed, 2u);
  EXPECT_EQ(Counters(0).sampled_out, 0u);
  EXPECT_EQ(Counters(1).matched, 2u);
  EXPECT_EQ(Counters(1).sampled_out, 2u);
  EXPECT_EQ(Counters(1).routed, 0u);
  EXPECT_EQ(Counters(2).matched, 1u);
  EXPECT_EQ(Counters(2).routed, 1u);
  EXPECT_EQ(engine().counters().traces_opened, 2u);
  EXPECT_EQ(engine().counters().traces_closed, 2u);
  // Sampled-out verdicts are reported on every evaluation, counted once.
  EXPECT_EQ(Outcomes(obs_.evaluations.back())[1], O::kSampledOut);
}

TEST_F(EngineTest, CountersSurviveEvictionAndRevival) {
  builder().Rule("dropped", Always(), {"dataset"}).sample_rate = 0.0;
  Add(Msg(Child("t1", "a")), kT0);
  Advance(kT0 + kWait + kWindow);  // closed, then evicted
  EXPECT_EQ(engine().retained_traces(), 0u);
  Add(Msg(ThumbsDown("t1")), kT0 + kWait + kWindow + Sec(1));
  EXPECT_EQ(Counters(0).matched, 1u);
  EXPECT_EQ(Counters(0).sampled_out, 1u);
}

TEST_F(EngineTest, RoutedItemCarriesRuleDestinationAndConfigVersion) {
  builder().Rule("all", Always(), {"dataset"});
  auto rs = std::const_pointer_cast<RuleSet>(builder().Build());
  rs->config_version = "abc123";
  Add(Msg(Child("t1", "a")), kT0);
  Advance(kT0 + kWait);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].rule, "all");
  EXPECT_EQ(sink_.items()[0].destination, "dataset");
  EXPECT_EQ(sink_.items()[0].config_version, "abc123");
}

// A span-only annotation (Phoenix `span_id`, no trace id) joins the trace that holds the span,
// open or closed within the late window; one whose span no trace holds comes back unjoined.
TEST_F(EngineTest, ASpanOnlyAnnotationJoinsTheTraceHoldingTheSpan) {
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  Add(Msg(Child("t1", "s1")), kT0);
  Add(Msg(Child("t2", "s2")), kT0);
  Annotation on_span = ThumbsDown("");
  on_span.span_id = "s2";
  AddResult r = Add(Msg(on_span), kT0 + Sec(1));
  EXPECT_THAT(r.unjoined, IsEmpty());
  Advance(kT0 + Sec(1) + kWait);
  ASSERT_EQ(sink_.items().size(), 1u);
  EXPECT_EQ(sink_.items()[0].trace_id, "t2");
  EXPECT_EQ(sink_.items()[0].span_count, 1u);

  // Closed, still within the late window: joined late.
  Annotation late = ThumbsDown("");
  late.span_id = "s1";
  r = Add(Msg(late), kT0 + Sec(30));
  EXPECT_THAT(r.unjoined, IsEmpty());
  ASSERT_EQ(sink_.items().size(), 2u);
  EXPECT_EQ(sink_.items()[1].trace_id, "t1");
  EXPECT_EQ(sink_.items()[1].trigger, Trigger::kLateFeedback);

  Annotation stray = ThumbsDown("");
  stray.span_id = "nowhere";
  r = Add(Msg(stray), kT0 + Sec(31));
  ASSERT_EQ(r.unjoined.size(), 1u);
  EXPECT_EQ(r.unjoined[0].span_id, "nowhere");
  EXPECT_EQ(engine().retained_traces(), 2u);  // it opened nothing
}

TEST_F(EngineTest, SpansOfForgottenTracesAreNotFoundAgain) {
  builder().Rule("thumbs-down", FeedbackLabel("thumbs", "down"), {"review"});
  Annotation first = ThumbsDown("");
  first.span_id = "none-yet";  // turns the span index on
  EXPECT_EQ(Add(Msg(first), kT0).unjoined.size(), 1u);
  Add(Msg(Child("t1", "s1")), kT0);
  Advance(kT0 + kWait + kWindow + Sec(1));  // closed, then forgotten
  EXPECT_EQ(engine().retained_traces(), 0u);
  Annotation on_span = ThumbsDown("");
  on_span.span_id = "s1";
  EXPECT_EQ(Add(Msg(on_span), kT0 + kWait + kWindow + Sec(2)).unjoined.size(), 1u);
}

}  // namespace
}  // namespace triaged
