// Exactly-once pieces that need no broker: decision records and the instance id.
#include "daemon/exactly_once.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "config/config.h"
#include "rules/trace.h"
#include "tests/tools/cli_test_util.h"

namespace triaged {
namespace {

using ::testing::EndsWith;
using ::testing::StartsWith;
using ::triaged::testing::TempDir;

std::shared_ptr<const Config> Load(const std::string& text) {
  auto r = LoadConfigString(text, "test.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error()[0].ToString());
  return r.ok() ? *r : nullptr;
}

const char* kConfig =
    "kafka: {group_id: reviewers}\n"
    "trace: {max_wait: 5m, late_feedback_window: 2h}\n"
    "destinations: {q: {kind: queue, topic: q}}\n"
    "rules: [{name: all, when: 'trace.span_count > 0', route_to: [q]}]\n";

TEST(ExactlyOnceTest, DecisionsTopicAndRetention) {
  auto config = Load(kConfig);
  ASSERT_TRUE(config);
  EXPECT_EQ(DecisionsTopic(*config), "reviewers.decisions");
  // The longer of max_wait and the late window, plus an hour.
  EXPECT_EQ(DecisionsRetentionMs(*config), 3 * 3600 * 1000);
  // Or of a limit's period: its bucket state must last until the bucket has refilled.
  std::string text = kConfig;
  const std::string plain = "{kind: queue, topic: q}";
  text.replace(text.find(plain), plain.size(), "{kind: queue, topic: q, limit: {max: 5, per: 1d}}");
  auto limited = Load(text);
  ASSERT_TRUE(limited);
  EXPECT_EQ(DecisionsRetentionMs(*limited), 25 * 3600 * 1000);
}

TEST(ExactlyOnceTest, RoutedItemDecisionRoundTrips) {
  auto config = Load(kConfig);
  ASSERT_TRUE(config);
  Route route;
  route.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  route.rules = config->rules;
  route.rule = &config->rules->rules[0];
  route.destination = &config->rules->destinations[0];
  route.routed_at_ns = 1'793'527'200'000'000'000;
  Result<Decision> d = ParseDecisionRecord(DecisionRecord(route));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(d->rule, "all");
  EXPECT_EQ(d->destination, "q");
  EXPECT_EQ(d->dead_letter_offset, -1);
}

TEST(ExactlyOnceTest, DeadLetterDecisionRoundTrips) {
  EXPECT_EQ(DeadLetterDecisionKey("llm.spans", 3, 77), "dead-letter/llm.spans/3/77");
  Result<Decision> d = ParseDecisionRecord(DeadLetterDecisionRecord("llm.spans", 3, 77));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->dead_letter_topic, "llm.spans");
  EXPECT_EQ(d->dead_letter_offset, 77);
  EXPECT_TRUE(d->trace_id.empty());
}

TEST(ExactlyOnceTest, MalformedDecisionsAreRefused) {
  for (const char* bad :
       {"", "not json", "[]", R"({"trace_id":"t","rule":"r"})", R"({"dead_letter":{"topic":"t"}})",
        R"({"trace_id":1,"rule":"r","destination":"d"})"}) {
    EXPECT_FALSE(ParseDecisionRecord(bad).ok()) << bad;
  }
}

// A routed item's limit buckets go with the decisions (DESIGN §2.3), keyed by partition, kind
// and name so compaction keeps the latest state of each.
TEST(ExactlyOnceTest, BucketStateRoundTrips) {
  const BucketState bucket{5, LimitKind::kDestination, "support-review", 1.0 / 3.0,
                           1'793'527'200'123'456'789};
  EXPECT_EQ(BucketDecisionKey(bucket), "bucket/5/destination/support-review");
  EXPECT_EQ(BucketDecisionKey({0, LimitKind::kRule, "low-faithfulness", 0, 0}),
            "bucket/0/rule/low-faithfulness");
  Result<Decision> d = ParseDecisionRecord(BucketDecisionRecord(bucket));
  ASSERT_TRUE(d.ok()) << d.error().message;
  ASSERT_TRUE(d->bucket.has_value());
  EXPECT_EQ(d->bucket->partition, 5);
  EXPECT_EQ(d->bucket->kind, LimitKind::kDestination);
  EXPECT_EQ(d->bucket->name, "support-review");
  EXPECT_EQ(d->bucket->tokens, 1.0 / 3.0);  // exactly: fractions of a token are kept
  EXPECT_EQ(d->bucket->at_ns, 1'793'527'200'123'456'789);
  EXPECT_TRUE(d->trace_id.empty());
  EXPECT_EQ(d->dead_letter_offset, -1);
}

// Records written before buckets were handed over still read as they did.
TEST(ExactlyOnceTest, RecordsWithoutBucketsStillParse) {
  Result<Decision> routed = ParseDecisionRecord(
      R"({"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","rule":"all","destination":"q",)"
      R"("routed_at":"2026-11-01T10:00:00.000Z"})");
  ASSERT_TRUE(routed.ok()) << routed.error().message;
  EXPECT_EQ(routed->rule, "all");
  EXPECT_FALSE(routed->bucket.has_value());
  Result<Decision> dead =
      ParseDecisionRecord(R"({"dead_letter":{"topic":"llm.spans","partition":3,"offset":77}})");
  ASSERT_TRUE(dead.ok()) << dead.error().message;
  EXPECT_FALSE(dead->bucket.has_value());
}

TEST(ExactlyOnceTest, MalformedBucketRecordsAreRefused) {
  for (const char* bad : {
           R"({"bucket":[]})",
           R"({"bucket":{}})",
           R"({"bucket":{"partition":1,"kind":"rule","name":"r","tokens":1}})",
           R"({"bucket":{"partition":1,"kind":"queue","name":"r","tokens":1,"at_unix_nano":0}})",
           R"({"bucket":{"partition":-1,"kind":"rule","name":"r","tokens":1,"at_unix_nano":0}})",
           R"({"bucket":{"partition":1,"kind":"rule","name":"r","tokens":"1","at_unix_nano":0}})",
           R"({"bucket":{"partition":1,"kind":"rule","name":2,"tokens":1,"at_unix_nano":0}})",
       }) {
    EXPECT_FALSE(ParseDecisionRecord(bad).ok()) << bad;
  }
}

TEST(ExactlyOnceTest, InstanceIdsTakeTheLowestFreeSlot) {
  TempDir dir;
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  setenv("TMPDIR", dir.path().c_str(), 1);
  auto config = Load(kConfig);
  ASSERT_TRUE(config);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  {
    Result<InstanceId> a = InstanceId::Choose(*config);
    Result<InstanceId> b = InstanceId::Choose(*config);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->id(), std::string("reviewers-") + host + "-0");
    EXPECT_EQ(b->id(), std::string("reviewers-") + host + "-1");
    InstanceId moved = std::move(b.value());  // the lock moves with it
    Result<InstanceId> c = InstanceId::Choose(*config);
    ASSERT_TRUE(c.ok());
    EXPECT_THAT(c->id(), EndsWith("-2"));
  }
  // All released: a restarted instance gets slot 0 back.
  Result<InstanceId> again = InstanceId::Choose(*config);
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(again->id(), StartsWith("reviewers-"));
  EXPECT_THAT(again->id(), EndsWith("-0"));
  if (old != nullptr) {
    setenv("TMPDIR", saved.c_str(), 1);
  } else {
    unsetenv("TMPDIR");
  }
}

}  // namespace
}  // namespace triaged
