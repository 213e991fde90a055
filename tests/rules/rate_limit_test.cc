#include "rules/rate_limit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "rules/engine.h"
#include "rules/partitioner.h"
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

// Engines of one process share the buckets: engines of the same limit partition (here the
// default, a single one) spend one budget.
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

// --- a limit split over P partitions (DESIGN §2.3) ----------------------------------------------

TEST(LimitShareTest, APartitionsShareIsTheRateAndBurstOverP) {
  TokenBucket bucket(Limit(12, Sec(60)), 3);  // 4 tokens, 4 per minute: one every 15 s
  EXPECT_EQ(bucket.capacity(), 4.0);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(bucket.TryTake(kT0)) << i;
  EXPECT_FALSE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.TryTake(kT0 + Sec(15) - Ms(1)));
  EXPECT_TRUE(bucket.TryTake(kT0 + Sec(15)));
  EXPECT_FALSE(bucket.TryTake(kT0 + Sec(15)));
  // Idle for long: back to the share's burst, not the whole limit's.
  EXPECT_TRUE(bucket.Available(kT0 + Sec(3600)));
  EXPECT_EQ(bucket.tokens(), 4.0);
}

TEST(LimitShareTest, FractionalTokensOfAShareAreKept) {
  // 10 over 3 partitions: 3.33 tokens, refilling 10/3 a minute (one every 18 s).
  TokenBucket bucket(Limit(10, Sec(60)), 3);
  EXPECT_DOUBLE_EQ(bucket.capacity(), 10.0 / 3.0);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.TryTake(kT0)) << i;
  EXPECT_FALSE(bucket.TryTake(kT0));
  EXPECT_NEAR(bucket.tokens(), 1.0 / 3.0, 1e-12);
  // The third of a token left makes the next one come after 12 s, not 18 s.
  EXPECT_FALSE(bucket.TryTake(kT0 + Ms(11'900)));
  EXPECT_TRUE(bucket.TryTake(kT0 + Ms(12'100)));
}

TEST(LimitShareTest, AShareBelowOneTokenHoldsOneSoThePartitionStillRoutes) {
  // 2 per 10 s over 5 partitions: 0.4 tokens each; the floor is one token, refilled at the
  // share's rate (0.4 per 10 s: one every 25 s).
  TokenBucket bucket(Limit(2, Sec(10)), 5);
  EXPECT_EQ(bucket.capacity(), 1.0);
  EXPECT_TRUE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.TryTake(kT0));
  EXPECT_FALSE(bucket.TryTake(kT0 + Ms(24'900)));
  EXPECT_TRUE(bucket.TryTake(kT0 + Ms(25'100)));
}

TEST(LimitShareTest, OnePartitionIsTheWholeLimit) {
  TokenBucket whole(Limit(7, Sec(70))), one(Limit(7, Sec(70)), 1);
  EXPECT_EQ(whole.capacity(), 7.0);
  for (int64_t t = kT0; t < kT0 + Sec(300); t += Ms(700)) {
    EXPECT_EQ(whole.TryTake(t), one.TryTake(t)) << t;
  }
}

TEST(LimitShareTest, ReconfigureKeepsTheShare) {
  TokenBucket bucket(Limit(30, Sec(60)), 3);  // 10
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(bucket.TryTake(kT0));
  bucket.Reconfigure(Limit(9, Sec(60)));  // 3 per partition now
  EXPECT_EQ(bucket.capacity(), 3.0);
  EXPECT_EQ(bucket.tokens(), 3.0);
}

TEST(LimitShareTest, RestoredStateRefillsFromItsOwnClock) {
  TokenBucket bucket(Limit(12, Sec(60)), 3);  // one token every 15 s
  bucket.Restore(0.5, kT0);
  EXPECT_EQ(bucket.at_ns(), kT0);
  EXPECT_FALSE(bucket.TryTake(kT0 + Ms(7'400)));
  EXPECT_TRUE(bucket.TryTake(kT0 + Ms(7'600)));
  // Clamped to the capacity; nonsense is an empty bucket, never a full one.
  bucket.Restore(100, kT0);
  EXPECT_EQ(bucket.tokens(), 4.0);
  bucket.Restore(-3, kT0);
  EXPECT_EQ(bucket.tokens(), 0.0);
  bucket.Restore(std::nan(""), kT0);
  EXPECT_EQ(bucket.tokens(), 0.0);
}

TEST(LimitShareTest, BucketsAreKeptByPartitionAndNameAndForgottenByPartition) {
  RuleSetBuilder b;
  b.Dest("queue", Limit(4, Sec(3600)));
  b.Rule("r", Always(), {"queue"}).limit = Limit(4, Sec(3600));
  const std::shared_ptr<const RuleSet> rules = b.Build();
  RateLimits limits;
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(limits.Rule(0, 2, rules->rules[0]).TryTake(kT0));
  EXPECT_FALSE(limits.Rule(0, 2, rules->rules[0]).TryTake(kT0));
  EXPECT_TRUE(limits.Rule(1, 2, rules->rules[0]).TryTake(kT0));  // another partition's share
  // A rule and a destination of the same name are different buckets.
  EXPECT_EQ(limits.Destination(0, 2, rules->destinations[0]).tokens(), 2.0);
  EXPECT_EQ(limits.size(), 3u);
  limits.Forget(0);
  EXPECT_EQ(limits.size(), 1u);
  EXPECT_TRUE(limits.Rule(0, 2, rules->rules[0]).TryTake(kT0));  // full again
}

TEST(LimitShareTest, RestoreSetsTheNamedLimitOnlyWhileItExists) {
  RuleSetBuilder b;
  b.Dest("queue", Limit(6, Sec(3600))).Dest("free");
  b.Rule("r", Always(), {"queue"}).limit = Limit(6, Sec(3600));
  b.Rule("unlimited", Always(), {"free"});
  const std::shared_ptr<const RuleSet> rules = b.Build();
  RateLimits limits;
  EXPECT_TRUE(limits.Restore(*rules, 3, {2, LimitKind::kRule, "r", 1.0, kT0}));
  EXPECT_TRUE(limits.Restore(*rules, 3, {2, LimitKind::kDestination, "queue", 0.0, kT0}));
  EXPECT_FALSE(limits.Restore(*rules, 3, {2, LimitKind::kRule, "unlimited", 0.0, kT0}));
  EXPECT_FALSE(limits.Restore(*rules, 3, {2, LimitKind::kDestination, "free", 0.0, kT0}));
  EXPECT_FALSE(limits.Restore(*rules, 3, {2, LimitKind::kRule, "gone", 0.0, kT0}));
  EXPECT_EQ(limits.size(), 2u);
  EXPECT_TRUE(limits.Rule(2, 3, rules->rules[0]).TryTake(kT0));
  EXPECT_FALSE(limits.Rule(2, 3, rules->rules[0]).TryTake(kT0));
  EXPECT_FALSE(limits.Destination(2, 3, rules->destinations[0]).TryTake(kT0));
  EXPECT_EQ(limits.Rule(0, 3, rules->rules[0]).tokens(), 2.0);  // other partitions: untouched
}

// Many trace ids, at time t each: spread over partitions by Kafka's murmur2, as the daemon
// places them.
std::vector<std::string> TraceIds(int n, const std::string& prefix = "") {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    char buf[33];
    std::snprintf(buf, sizeof buf, "%032x", static_cast<unsigned>(i * 2654435761u));
    ids.push_back(prefix + buf);
  }
  return ids;
}

// Routes of a capped queue, for an engine that splits its limits over `partitions` with each
// trace spending the share of its own partition (the replay view of a deployment).
struct SplitRun {
  std::vector<int64_t> routed_at;
  std::map<int32_t, int> by_partition;
};
SplitRun RunSplit(int32_t partitions, const RateLimitSpec& limit, int traces, int64_t spacing_ns,
                  bool destination_limit) {
  RuleSetBuilder b;
  b.trace().decision_wait_ns = Sec(1);
  if (destination_limit) {
    b.Dest("queue", limit);
    b.Rule("all", Always(), {"queue"});
  } else {
    b.Dest("queue");
    b.Rule("all", Always(), {"queue"}).limit = limit;
  }
  Engine engine(b.Build(), nullptr, LimitScope{partitions, -1});
  RecordingOutbox sink;
  SplitRun run;
  int64_t t = kT0;
  for (const std::string& id : TraceIds(traces)) {
    engine.Add(Msg(Child(id, "a")), t, sink);
    engine.Advance(t, sink);
    t += spacing_ns;
  }
  engine.CloseAll(t, sink);
  for (const Route& r : sink.routes) {
    run.routed_at.push_back(r.routed_at_ns);
    ++run.by_partition[Murmur2Partition(r.trace_id, partitions)];
  }
  return run;
}

// At most max + P in any window too short to refill a token; at most max + P plus the refill
// over any longer one.
void ExpectWithinTheSplitBound(const SplitRun& run, const RateLimitSpec& limit,
                               int32_t partitions) {
  const std::vector<int64_t>& at = run.routed_at;
  for (size_t i = 0; i < at.size(); ++i) {
    for (size_t j = i; j < at.size(); ++j) {
      const double refill = static_cast<double>(limit.max) * static_cast<double>(at[j] - at[i]) /
                            static_cast<double>(limit.per_ns);
      ASSERT_LE(static_cast<double>(j - i + 1),
                static_cast<double>(limit.max + static_cast<uint64_t>(partitions)) + refill)
          << "routes " << i << ".." << j;
    }
  }
}

TEST(LimitShareTest, AnEngineOverPPartitionsRoutesAtMostMaxPlusPInABurst) {
  for (bool destination_limit : {false, true}) {
    for (int32_t p : {1, 2, 3, 7, 16}) {
      const RateLimitSpec limit = Limit(10, Sec(3600));
      // 400 traces in 4 s: well under the time one token takes to come back.
      const SplitRun run = RunSplit(p, limit, 400, Ms(10), destination_limit);
      SCOPED_TRACE("P=" + std::to_string(p) + (destination_limit ? " destination" : " rule"));
      EXPECT_LE(run.routed_at.size(), 10u + static_cast<size_t>(p));
      // Each partition its share (every partition had traces to spend it on).
      for (const auto& [partition, n] : run.by_partition) {
        EXPECT_EQ(n, static_cast<int>(std::max(10.0 / p, 1.0))) << "partition " << partition;
      }
      ExpectWithinTheSplitBound(run, limit, p);
    }
  }
}

TEST(LimitShareTest, OverTimeASplitLimitRoutesWhatTheWholeLimitDoesWithinP) {
  const RateLimitSpec limit = Limit(20, Sec(60));
  // Two traces a second for 10 minutes: 1,200 traces for a limit of 20 a minute.
  const SplitRun whole = RunSplit(1, limit, 1200, Ms(500), false);
  for (int32_t p : {2, 3, 8}) {
    const SplitRun split = RunSplit(p, limit, 1200, Ms(500), false);
    SCOPED_TRACE("P=" + std::to_string(p));
    EXPECT_NEAR(static_cast<double>(split.routed_at.size()),
                static_cast<double>(whole.routed_at.size()), p);
    ExpectWithinTheSplitBound(split, limit, p);
  }
  ExpectWithinTheSplitBound(whole, limit, 1);
}

TEST(LimitShareTest, AnEngineOfOnePartitionSpendsThatPartitionsShareForEveryTrace) {
  RuleSetBuilder b;
  b.trace().decision_wait_ns = Sec(1);
  b.Dest("queue");
  b.Rule("all", Always(), {"queue"}).limit = Limit(12, Sec(3600));
  const std::shared_ptr<const RuleSet> rules = b.Build();
  auto group = std::make_shared<EngineGroup>();
  // The daemon's engines of partitions 0 and 2 of 3, in one process.
  Engine p0(rules, group, LimitScope{3, 0}), p2(rules, group, LimitScope{3, 2});
  RecordingOutbox sink0, sink2;
  for (const std::string& id : TraceIds(10, "a")) p0.Add(Msg(Child(id, "a")), kT0, sink0);
  for (const std::string& id : TraceIds(10, "b")) p2.Add(Msg(Child(id, "a")), kT0, sink2);
  p0.Advance(kT0 + Sec(1), sink0);
  p2.Advance(kT0 + Sec(1), sink2);
  EXPECT_EQ(sink0.routes.size(), 4u);
  EXPECT_EQ(sink2.routes.size(), 4u);
  EXPECT_EQ(group->limits.size(), 2u);
}

TEST(LimitShareTest, ARouteCarriesTheStateOfTheBucketsItSpent) {
  RuleSetBuilder b;
  b.trace().decision_wait_ns = Sec(1);
  b.Dest("queue", Limit(6, Sec(3600))).Dest("free");
  b.Rule("limited", Always(), {"free", "queue"}).limit = Limit(9, Sec(3600));
  b.Rule("plain", Always(), {"free"});
  Engine engine(b.Build(), nullptr, LimitScope{3, 1});
  RecordingOutbox sink;
  engine.Add(Msg(Child("t1", "a")), kT0, sink);
  engine.Advance(kT0 + Sec(1), sink);
  ASSERT_EQ(sink.routes.size(), 3u);
  // limited -> free: the rule's token (the route that spent it); limited -> queue: the queue's.
  const auto& free_route = sink.routes[0].buckets;
  ASSERT_EQ(free_route.size(), 1u);
  EXPECT_EQ(free_route[0].partition, 1);
  EXPECT_EQ(free_route[0].kind, LimitKind::kRule);
  EXPECT_EQ(free_route[0].name, "limited");
  EXPECT_EQ(free_route[0].tokens, 2.0);  // 9 / 3 - 1
  EXPECT_EQ(free_route[0].at_ns, kT0 + Sec(1));
  const auto& queue_route = sink.routes[1].buckets;
  ASSERT_EQ(queue_route.size(), 1u);
  EXPECT_EQ(queue_route[0].kind, LimitKind::kDestination);
  EXPECT_EQ(queue_route[0].name, "queue");
  EXPECT_EQ(queue_route[0].tokens, 1.0);        // 6 / 3 - 1
  EXPECT_TRUE(sink.routes[2].buckets.empty());  // nothing limited
}

}  // namespace
}  // namespace triaged
