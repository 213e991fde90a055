#include "rules/rate_limit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "rules/engine.h"
#include "tests/rules/engine_test_util.h"

namespace triaged {
namespace {

using namespace triaged::testutil;  // NOLINT(google-build-using-namespace)
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using O = RuleVerdict::Outcome;

constexpr int64_t kT0 = Sec(5'000);

RateLimitSpec Limit(uint64_t max, int64_t per_ns) { return RateLimitSpec{max, per_ns}; }

TEST(TokenBucketTest, StartsFullAndSpends) {
  TokenBucket bucket(Limit(3, Sec(60)));
  EXPECT_EQ(bucket.tokens(), 3.0);
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.TryTake(kT0));
  EXPECT_EQ(bucket.tokens(), 0.0);
}

TEST(TokenBucketTest, FirstUseAtAnyTimeFindsItFull) {
  TokenBucket bucket(Limit(2, Sec(1)));
  EXPECT_TRUE(bucket.TryTake(-Sec(100)));  // even before the epoch
  EXPECT_TRUE(bucket.TryTake(-Sec(100)));
  EXPECT_FALSE(bucket.TryTake(-Sec(100)));
}

TEST(TokenBucketTest, RefillsContinuously) {
  TokenBucket bucket(Limit(4, Sec(1)));  // one token every 250 ms
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.TryTake(kT0 + Ms(250) - 1));
  EXPECT_TRUE(bucket.TryTake(kT0 + Ms(250)));
  EXPECT_FALSE(bucket.TryTake(kT0 + Ms(250)));
  // Half a token is kept, not lost, across a failed attempt.
  EXPECT_FALSE(bucket.TryTake(kT0 + Ms(375)));
  EXPECT_DOUBLE_EQ(bucket.tokens(), 0.5);
  EXPECT_TRUE(bucket.TryTake(kT0 + Ms(500)));
  // Two tokens after 500 ms more.
  EXPECT_TRUE(bucket.TryTake(kT0 + Ms(1000)));
  EXPECT_TRUE(bucket.TryTake(kT0 + Ms(1000)));
  EXPECT_FALSE(bucket.TryTake(kT0 + Ms(1000)));
}

TEST(TokenBucketTest, RefillIsExactOverManyIrregularSteps) {
  // 3 per second: a token every 333,333,333.3 ns. Looking at the bucket often must not change
  // when tokens become available.
  TokenBucket bucket(Limit(3, Sec(1)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(bucket.TryTake(0));
  std::mt19937_64 gen(1);
  int64_t t = 0;
  int taken = 0;
  const int64_t end = Sec(100);
  while (t < end) {
    t += static_cast<int64_t>(gen() % 7'000'000) + 1;  // up to 7 ms
    if (bucket.TryTake(t)) {
      ++taken;
      // The k-th token becomes available at ceil(k * 1e9 / 3) ns.
      const int64_t available = (static_cast<int64_t>(taken) * Sec(1) + 2) / 3;
      EXPECT_GE(t, available) << "token " << taken << " too early";
      EXPECT_LT(t - available, 7'000'001) << "token " << taken << " too late";
    }
  }
  EXPECT_EQ(taken, 300);
}

TEST(TokenBucketTest, AvailableDoesNotTake) {
  TokenBucket bucket(Limit(1, Sec(10)));
  EXPECT_TRUE(bucket.Available(kT0));
  EXPECT_TRUE(bucket.Available(kT0));
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.Available(kT0 + Sec(10) - 1));
  EXPECT_TRUE(bucket.Available(kT0 + Sec(10)));
  EXPECT_TRUE(bucket.TryTake(kT0 + Sec(10)));
}

TEST(TokenBucketTest, NeverExceedsMax) {
  TokenBucket bucket(Limit(5, Sec(10)));
  ASSERT_TRUE(bucket.TryTake(kT0));
  // A long idle period refills to max, not beyond.
  EXPECT_TRUE(bucket.TryTake(kT0 + Sec(3600)));
  EXPECT_EQ(bucket.tokens(), 4.0);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(bucket.TryTake(kT0 + Sec(3600)));
  EXPECT_FALSE(bucket.TryTake(kT0 + Sec(3600)));
}

TEST(TokenBucketTest, TimeGoingBackwardsDoesNotRefill) {
  TokenBucket bucket(Limit(1, Sec(10)));
  ASSERT_TRUE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.TryTake(kT0 - Sec(100)));
  EXPECT_FALSE(bucket.TryTake(kT0 + Sec(10) - 1));
  EXPECT_TRUE(bucket.TryTake(kT0 + Sec(10)));
}

TEST(TokenBucketTest, ReconfigureClampsToTheNewMax) {
  TokenBucket bucket(Limit(10, Sec(10)));
  ASSERT_TRUE(bucket.TryTake(kT0));  // 9 left
  bucket.Reconfigure(Limit(2, Sec(10)));
  EXPECT_EQ(bucket.tokens(), 2.0);
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.TryTake(kT0));
  // The new rate applies: 2 per 10 s is a token every 5 s.
  EXPECT_FALSE(bucket.TryTake(kT0 + Sec(5) - 1));
  EXPECT_TRUE(bucket.TryTake(kT0 + Sec(5)));
}

TEST(TokenBucketTest, ReconfigureUpKeepsTheCurrentFill) {
  TokenBucket bucket(Limit(2, Sec(10)));
  ASSERT_TRUE(bucket.TryTake(kT0));
  ASSERT_TRUE(bucket.TryTake(kT0));
  bucket.Reconfigure(Limit(100, Sec(10)));  // a reload is not a free refill
  EXPECT_EQ(bucket.tokens(), 0.0);
  EXPECT_FALSE(bucket.TryTake(kT0));
  EXPECT_TRUE(bucket.TryTake(kT0 + Ms(100)));  // 10 per second now
  // And it may now fill up to the new max.
  EXPECT_TRUE(bucket.TryTake(kT0 + Sec(100)));
  EXPECT_EQ(bucket.tokens(), 99.0);
}

// --- through the engine ------------------------------------------------------------------------

class EngineLimitTest : public ::testing::Test {
 protected:
  void Open(const std::string& id, int64_t now) { engine_->Add(Msg(Child(id, "a")), now, sink_); }
  void Start(RuleSetBuilder& b) {
    b.trace().decision_wait_ns = Sec(1);
    engine_ = std::make_unique<Engine>(b.Build());
    engine_->set_observer(&obs_);
  }
  size_t RoutedTo(const std::string& rule, const std::string& dest) {
    size_t n = 0;
    for (const Routed& r : sink_.items()) n += (r.rule == rule && r.destination == dest) ? 1 : 0;
    return n;
  }
  std::unique_ptr<Engine> engine_;
  RecordingOutbox sink_;
  RecordingObserver obs_;
};

TEST_F(EngineLimitTest, SpentRuleLimitCountsRateLimitedAndOtherRulesStillRoute) {
  RuleSetBuilder b;
  b.Dest("review").Dest("dataset");
  b.Rule("limited", Always(), {"review"}).limit = Limit(2, Sec(60));
  b.Rule("free", Always(), {"dataset"});
  Start(b);
  for (int i = 0; i < 5; ++i) Open("t" + std::to_string(i), kT0);
  engine_->Advance(kT0 + Sec(1), sink_);
  EXPECT_EQ(RoutedTo("limited", "review"), 2u);
  EXPECT_EQ(RoutedTo("free", "dataset"), 5u);
  const auto& c = engine_->rule_counters();
  EXPECT_EQ(c[0].matched, 5u);
  EXPECT_EQ(c[0].rate_limited, 3u);
  EXPECT_EQ(c[0].routed, 2u);
  EXPECT_EQ(c[1].rate_limited, 0u);
  EXPECT_EQ(c[1].routed, 5u);
  ASSERT_EQ(obs_.evaluations.size(), 5u);
  EXPECT_EQ(obs_.evaluations[4].verdicts[0].outcome, O::kRateLimited);
  EXPECT_EQ(obs_.evaluations[4].verdicts[1].outcome, O::kRouted);

  // 30 s later one token is back (2 per 60 s).
  sink_.clear();
  Open("u0", kT0 + Sec(30));
  Open("u1", kT0 + Sec(30));
  engine_->Advance(kT0 + Sec(31), sink_);
  EXPECT_EQ(RoutedTo("limited", "review"), 1u);
  EXPECT_EQ(c[0].rate_limited, 4u);
}

TEST_F(EngineLimitTest, RateLimitedTraceMayRouteOnALaterEvaluation) {
  RuleSetBuilder b;
  b.Dest("review");
  b.Rule("limited", Always(), {"review"}).limit = Limit(1, Sec(10));
  Start(b);
  Open("a", kT0);
  Open("b", kT0);
  engine_->Advance(kT0 + Sec(1), sink_);
  EXPECT_THAT(sink_.Take(), ElementsAre("a/limited/review"));
  // Late feedback once the bucket has refilled: b is routed now, a not again.
  engine_->Add(Msg(ThumbsDown("a")), kT0 + Sec(12), sink_);
  engine_->Add(Msg(ThumbsDown("b")), kT0 + Sec(12), sink_);
  EXPECT_THAT(sink_.Take(), ElementsAre("b/limited/review"));
  EXPECT_EQ(engine_->rule_counters()[0].matched, 2u);
  EXPECT_EQ(engine_->rule_counters()[0].rate_limited, 1u);
}

TEST_F(EngineLimitTest, DestinationLimitCapsADestinationAcrossRules) {
  RuleSetBuilder b;
  b.Dest("queue", Limit(3, Sec(3600))).Dest("dataset");
  b.Rule("r1", Always(), {"queue", "dataset"});
  b.Rule("r2", Always(), {"queue", "dataset"});
  Start(b);
  Open("a", kT0);
  Open("b", kT0);
  engine_->Advance(kT0 + Sec(1), sink_);
  // Four (trace, rule) pairs want the queue, three get it; the dataset is not limited.
  EXPECT_EQ(RoutedTo("r1", "queue") + RoutedTo("r2", "queue"), 3u);
  EXPECT_EQ(RoutedTo("r1", "dataset") + RoutedTo("r2", "dataset"), 4u);
  ASSERT_EQ(obs_.evaluations.size(), 2u);
  const RuleVerdict& last = obs_.evaluations[1].verdicts[1];
  EXPECT_EQ(last.outcome, O::kRouted);  // routed to the dataset
  EXPECT_THAT(last.limited, ElementsAre(0u));
  EXPECT_THAT(last.routed, ElementsAre(1u));
  const auto& c = engine_->rule_counters();
  EXPECT_EQ(c[0].rate_limited + c[1].rate_limited, 1u);
  EXPECT_EQ(c[0].routed + c[1].routed, 7u);
}

TEST_F(EngineLimitTest, DestinationLimitDoesNotBlockOtherDestinations) {
  RuleSetBuilder b;
  b.Dest("small", Limit(1, Sec(3600))).Dest("other");
  b.Rule("to-small", Always(), {"small"});
  b.Rule("to-other", Always(), {"other"});
  Start(b);
  for (int i = 0; i < 4; ++i) Open("t" + std::to_string(i), kT0);
  engine_->Advance(kT0 + Sec(1), sink_);
  EXPECT_EQ(RoutedTo("to-small", "small"), 1u);
  EXPECT_EQ(RoutedTo("to-other", "other"), 4u);
  ASSERT_EQ(obs_.evaluations.size(), 4u);
  EXPECT_EQ(obs_.evaluations[3].verdicts[0].outcome, O::kDestinationLimited);
  EXPECT_THAT(obs_.evaluations[3].verdicts[0].routed, IsEmpty());
  EXPECT_EQ(engine_->rule_counters()[0].rate_limited, 3u);
  EXPECT_EQ(engine_->rule_counters()[1].rate_limited, 0u);
}

TEST_F(EngineLimitTest, DestinationLimitedEvaluationDoesNotSpendTheRuleLimit) {
  // The rule's budget caps traces it routes; one refused by every destination is not routed.
  RuleSetBuilder b;
  b.Dest("small", Limit(1, Sec(10)));
  b.Rule("x-only", When([](const Trace& t) { return t.id() == "x"; }), {"small"});
  b.Rule("limited", Always(), {"small"}).limit = Limit(1, Sec(3600));
  Start(b);
  Open("x", kT0);
  engine_->Advance(kT0 + Sec(1), sink_);
  EXPECT_THAT(sink_.Take(), ElementsAre("x/x-only/small"));
  ASSERT_EQ(obs_.evaluations.size(), 1u);
  EXPECT_EQ(obs_.evaluations[0].verdicts[1].outcome, O::kDestinationLimited);

  Open("y", kT0 + Sec(20));  // the destination has refilled
  engine_->Advance(kT0 + Sec(21), sink_);
  EXPECT_THAT(sink_.Take(), ElementsAre("y/limited/small"));
}

TEST_F(EngineLimitTest, FinishingAPartlyRoutedTraceDoesNotSpendTheRuleLimitAgain) {
  RuleSetBuilder b;
  b.Dest("small", Limit(1, Sec(10))).Dest("other");
  b.Rule("x-only", When([](const Trace& t) { return t.id() == "x"; }), {"small"});
  b.Rule("limited", Always(), {"other", "small"}).limit = Limit(2, Sec(3600));
  Start(b);
  Open("x", kT0);
  engine_->Advance(kT0 + Sec(1), sink_);
  // x-only took the small queue's token: `limited` routes x to `other` only.
  EXPECT_THAT(sink_.Take(), ElementsAre("x/x-only/small", "x/limited/other"));
  // Late feedback after the queue refilled completes x; that is still one trace for the rule.
  engine_->Add(Msg(ThumbsDown("x")), kT0 + Sec(20), sink_);
  EXPECT_THAT(sink_.Take(), ElementsAre("x/limited/small"));
  Open("y", kT0 + Sec(20));
  engine_->Advance(kT0 + Sec(21), sink_);
  EXPECT_THAT(sink_.Take(), ElementsAre("y/limited/other"));
}

TEST_F(EngineLimitTest, ReloadKeepsBucketsOfRulesThatKeepTheirName) {
  RuleSetBuilder b;
  b.Dest("review");
  b.Rule("limited", Always(), {"review"}).limit = Limit(1, Sec(3600));
  Start(b);
  Open("a", kT0);
  engine_->Advance(kT0 + Sec(1), sink_);
  EXPECT_EQ(sink_.Take().size(), 1u);

  RuleSetBuilder next;
  next.Dest("review");
  next.trace().decision_wait_ns = Sec(1);
  next.Rule("limited", Always(), {"review"}).limit = Limit(1, Sec(3600));
  next.Rule("renamed", Always(), {"review"}).limit = Limit(1, Sec(3600));
  engine_->SetRuleSet(next.Build());
  Open("b", kT0 + Sec(2));
  engine_->Advance(kT0 + Sec(3), sink_);
  // `limited` is still spent; `renamed` has a fresh bucket.
  EXPECT_THAT(sink_.Take(), ElementsAre("b/renamed/review"));
  EXPECT_EQ(engine_->rule_counters()[0].rate_limited, 1u);
}

// The daemon runs one engine per partition; a limit caps them together.
TEST(SharedRateLimitsTest, EnginesSharingLimitsSpendOneBudget) {
  RuleSetBuilder b;
  b.trace().decision_wait_ns = Sec(1);
  b.Dest("queue", Limit(3, Sec(3600)));
  b.Rule("limited", Always(), {"queue"}).limit = Limit(2, Sec(3600));
  b.Rule("to-queue", Always(), {"queue"});
  const std::shared_ptr<const RuleSet> rules = b.Build();
  auto group = std::make_shared<EngineGroup>();
  Engine p0(rules, group), p1(rules, group), alone(rules);
  RecordingOutbox sink0, sink1, sink_alone;
  for (int i = 0; i < 3; ++i) {
    p0.Add(Msg(Child("p0-" + std::to_string(i), "a")), kT0, sink0);
    p1.Add(Msg(Child("p1-" + std::to_string(i), "a")), kT0, sink1);
    alone.Add(Msg(Child("x-" + std::to_string(i), "a")), kT0, sink_alone);
  }
  p0.Advance(kT0 + Sec(1), sink0);
  p1.Advance(kT0 + Sec(1), sink1);
  alone.Advance(kT0 + Sec(1), sink_alone);
  // Three queue tokens for the two partitions together; the unshared engine has its own three.
  EXPECT_EQ(sink0.items().size() + sink1.items().size(), 3u);
  EXPECT_EQ(sink_alone.items().size(), 3u);
  EXPECT_EQ(p0.rule_counters()[0].routed + p1.rule_counters()[0].routed, 2u);
}

TEST(SharedRateLimitsTest, ReconfigureDropsBucketsOfRemovedAndUnlimitedRules) {
  RuleSetBuilder b;
  b.Dest("queue", Limit(1, Sec(3600))).Dest("other", Limit(1, Sec(3600)));
  b.Rule("kept", Always(), {"queue"}).limit = Limit(1, Sec(3600));
  b.Rule("gone", Always(), {"queue"}).limit = Limit(1, Sec(3600));
  const std::shared_ptr<const RuleSet> first = b.Build();
  RateLimits limits;
  for (const RuleSpec& r : first->rules) EXPECT_TRUE(limits.Rule(r).TryTake(kT0));
  for (const DestinationSpec& d : first->destinations)
    EXPECT_TRUE(limits.Destination(d).TryTake(kT0));

  RuleSetBuilder next;
  next.Dest("queue").Dest("other", Limit(1, Sec(3600)));  // queue is no longer limited
  next.Rule("kept", Always(), {"queue"}).limit = Limit(1, Sec(3600));
  next.Rule("gone", Always(), {"queue"});  // gone is no longer limited
  const std::shared_ptr<const RuleSet> second = next.Build();
  limits.Reconfigure(*second);
  EXPECT_FALSE(limits.Rule(second->rules[0]).TryTake(kT0));  // still spent
  EXPECT_FALSE(limits.Destination(second->destinations[1]).TryTake(kT0));

  // Limited again later: a fresh, full bucket, not the spent one.
  limits.Reconfigure(*first);
  EXPECT_TRUE(limits.Rule(first->rules[1]).TryTake(kT0));
  EXPECT_TRUE(limits.Destination(first->destinations[0]).TryTake(kT0));
}

}  // namespace
}  // namespace triaged
