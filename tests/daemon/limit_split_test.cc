// Limits hold for the whole deployment (DESIGN §2.3), against the in-memory Kafka: replicas that
// split the partitions route into a capped queue what one replica owning them all routes (each
// partition spends its 1/P share), never more than max + P in a window; with exactly-once a
// partition's buckets move with it, and an aborted transaction gives its tokens back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "daemon/pipeline.h"
#include "rules/partitioner.h"
#include "tests/daemon/fake_kafka.h"
#include "tests/daemon/pipeline_fixture.h"
#include "tests/tools/cli_test_util.h"

namespace triaged {
namespace {

using testing::FakeKafka;
using testing::Span;

constexpr int kPartitions = 6;

// Every trace with a span routes to `review`, whose limit is split over the six partitions.
std::string LimitConfig(const std::string& guarantee, const std::string& limit) {
  return "kafka:\n  bootstrap_servers: fake:9092\n  group_id: unit\n  guarantee: " + guarantee +
         "\ninputs:\n  spans: {topic: spans}\n  feedback: {topic: feedback}\n"
         "trace: {decision_wait: 2s, root_grace: 1s, max_wait: 30s, late_feedback_window: 1h}\n"
         "destinations:\n  review: {kind: queue, topic: review, limit: " +
         limit +
         "}\n"
         "dead_letter: {topic: dlq}\n"
         "admin: {listen: \"127.0.0.1:0\"}\n"
         "rules:\n  - name: every-trace\n    when: trace.span_count > 0\n    route_to: [review]\n";
}

// `n` trace ids whose home (Kafka's murmur2 over six partitions) is `partition`, from `from`.
std::vector<std::string> TracesOn(int32_t partition, int n, unsigned& from) {
  std::vector<std::string> ids;
  while (static_cast<int>(ids.size()) < n) {
    char buf[33];
    std::snprintf(buf, sizeof buf, "%032x", ++from * 2654435761u);
    if (Murmur2Partition(buf, kPartitions) == partition) ids.push_back(buf);
  }
  return ids;
}

// A root span of each trace on its home partition, keyed by its id (processed in place).
void AppendTraces(FakeKafka& k, const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    k.Append("spans", Murmur2Partition(id, kPartitions), id, Span(id, "a1"));
  }
}

class LimitSplitTest : public ::testing::Test {
 protected:
  struct Replica {
    std::unique_ptr<Pipeline> pipeline;
    FakeKafka* kafka = nullptr;
  };

  void SetUp() override { limit_ = "{max: 12, per: 1h}"; }

  // A replica the group assigns `owned` (every partition when empty); `setup` fills its cluster
  // before it starts.
  Replica& StartReplica(const std::string& guarantee, std::set<int32_t> owned,
                        const std::function<void(FakeKafka&)>& setup) {
    const std::string path = dir_.Write("rules.yaml", LimitConfig(guarantee, limit_));
    auto loaded = LoadConfigFile(path);
    EXPECT_TRUE(loaded.ok()) << loaded.error().front().ToString();
    auto& replica = *replicas_.emplace_back(std::make_unique<Replica>());
    const bool transactional = guarantee == "exactly_once";
    replica.pipeline = std::make_unique<Pipeline>(
        RunOptions{path, false}, *loaded, clock_,
        [&replica, transactional, owned, setup](
            const Config&, const std::string&, const std::string&, const std::string&,
            KafkaListener& listener) -> Result<std::unique_ptr<KafkaClient>> {
          auto fake = std::make_unique<FakeKafka>(listener, transactional);
          for (const char* t : {"spans", "feedback"}) fake->CreateTopic(t, kPartitions);
          for (const char* t : {"review", "dlq"}) fake->CreateTopic(t, 1);
          fake->owned = owned;
          if (setup) setup(*fake);
          replica.kafka = fake.get();
          return std::unique_ptr<KafkaClient>(std::move(fake));
        });
    EXPECT_TRUE(replica.pipeline->Start());
    return replica;
  }

  // Replicas owning these sets of partitions (together, all of them) on the same traffic.
  void StartDeployment(const std::vector<std::set<int32_t>>& owners,
                       const std::function<void(FakeKafka&)>& traffic) {
    for (const std::set<int32_t>& owned : owners) StartReplica("at_least_once", owned, traffic);
  }

  // One turn of every replica's loop, after 100 ms of clock.
  void Turn() {
    clock_.Advance(std::chrono::milliseconds(100));
    for (auto& r : replicas_) r->pipeline->Step(milliseconds(0));
  }
  bool TurnUntil(const std::function<bool()>& done, int turns = 600) {
    for (int i = 0; i < turns && !done(); ++i) Turn();
    return done();
  }
  void TurnFor(std::chrono::milliseconds d) {
    for (int64_t i = 0; i < d.count() / 100; ++i) Turn();
  }

  // Routed items in the capped queue, over every replica.
  size_t Routed() const {
    size_t n = 0;
    for (const auto& r : replicas_) n += r->kafka->Records("review").size();
    return n;
  }
  size_t Consumed() const {
    size_t n = 0;
    for (const auto& r : replicas_) n += r->pipeline->metrics().consumed();
    return n;
  }

  testing::TempDir dir_;
  ManualClock clock_;
  std::string limit_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

// The whole limit is 12 an hour: 2 for each of the six partitions, whoever owns them.
TEST_F(LimitSplitTest, ThreeReplicasRouteWhatOneRoutesIntoACappedQueue) {
  unsigned from = 0;
  std::vector<std::string> traffic;
  for (int32_t p = 0; p < kPartitions; ++p) {
    for (const std::string& id : TracesOn(p, 8, from)) traffic.push_back(id);
  }
  const auto append = [&](FakeKafka& k) { AppendTraces(k, traffic); };
  std::map<int, size_t> routed;
  for (const std::vector<std::set<int32_t>>& owners :
       std::vector<std::vector<std::set<int32_t>>>{{{}}, {{0, 1}, {2, 3}, {4, 5}}}) {
    replicas_.clear();
    StartDeployment(owners, append);
    ASSERT_TRUE(TurnUntil([&] { return Consumed() == traffic.size(); }));
    TurnFor(std::chrono::seconds(5));  // every trace decided
    routed[static_cast<int>(owners.size())] = Routed();
  }
  EXPECT_LE(routed[1], 12u + kPartitions);
  EXPECT_LE(routed[3], 12u + kPartitions);
  EXPECT_NEAR(static_cast<double>(routed[3]), static_cast<double>(routed[1]), kPartitions);
  EXPECT_EQ(routed[1], 12u);
  EXPECT_EQ(routed[3], 12u);
}

// The status document shows each replica what it may still route to a capped destination: the
// shares of the partitions it owns, full before any traffic, spent after.
TEST_F(LimitSplitTest, StatusShowsEachReplicasBudgetLeft) {
  const auto budget = [](const Replica& r) {
    rapidjson::Document doc;
    doc.Parse(r.pipeline->status().status_json(false).c_str());
    const auto& limit = doc["destinations"][0]["limit"];
    return std::make_pair(limit["budget_left"].GetUint64(), limit["budget"].GetUint64());
  };
  StartReplica("at_least_once", {}, {});
  TurnFor(std::chrono::seconds(2));
  EXPECT_EQ(budget(*replicas_[0]), std::make_pair(uint64_t{12}, uint64_t{12}));

  replicas_.clear();
  unsigned from = 0;
  std::vector<std::string> traffic;
  for (int32_t p = 0; p < kPartitions; ++p) {
    for (const std::string& id : TracesOn(p, 3, from)) traffic.push_back(id);
  }
  StartDeployment({{0, 1}, {2, 3}, {4, 5}}, [&](FakeKafka& k) { AppendTraces(k, traffic); });
  ASSERT_TRUE(TurnUntil([&] { return Consumed() == traffic.size(); }));
  TurnFor(std::chrono::seconds(5));
  EXPECT_EQ(Routed(), 12u);
  for (const auto& r : replicas_) {
    EXPECT_EQ(budget(*r), std::make_pair(uint64_t{0}, uint64_t{4}));
  }
}

// Traffic over a minute against 6 per 10 s (one token per partition per 10 s): the same count
// for one replica and three, and never more than max + P plus the refill in any window.
TEST_F(LimitSplitTest, OverTimeReplicasRouteTheSameAndNoWindowExceedsTheSplitBound) {
  limit_ = "{max: 6, per: 10s}";
  std::map<int, size_t> routed;
  for (const std::vector<std::set<int32_t>>& owners :
       std::vector<std::vector<std::set<int32_t>>>{{{}}, {{0, 1}, {2, 3}, {4, 5}}}) {
    replicas_.clear();
    StartDeployment(owners, {});
    unsigned from = 0;
    std::vector<std::pair<int64_t, size_t>> seen;  // (ms, routed so far)
    for (int64_t ms = 0; ms < 60'000; ms += 100) {
      if (ms % 1000 == 0 && ms < 50'000) {
        // A trace a second on each partition, the same on every replica's cluster.
        for (int32_t p = 0; p < kPartitions; ++p) {
          const std::vector<std::string> ids = TracesOn(p, 1, from);
          for (auto& r : replicas_) AppendTraces(*r->kafka, ids);
        }
      }
      Turn();
      seen.emplace_back(ms, Routed());
    }
    for (size_t i = 0; i < seen.size(); ++i) {
      for (size_t j = i + 1; j < seen.size(); ++j) {
        const double refill = 6.0 * static_cast<double>(seen[j].first - seen[i].first) / 10'000;
        ASSERT_LE(static_cast<double>(seen[j].second - seen[i].second), 6.0 + kPartitions + refill)
            << owners.size() << " replicas, " << seen[i].first << " ms to " << seen[j].first
            << " ms";
      }
    }
    routed[static_cast<int>(owners.size())] = Routed();
  }
  // A token a partition to start with, then one per 10 s for 50 s of traffic.
  EXPECT_GE(routed[1], 30u);
  EXPECT_LE(routed[1], 6u + 6u * 6u);
  EXPECT_NEAR(static_cast<double>(routed[3]), static_cast<double>(routed[1]), kPartitions);
}

// Partition 2 spends its share (2 of 12) under one replica, then moves to another: exactly-once
// hands the bucket over with the decisions, so the new owner routes nothing more this hour.
TEST_F(LimitSplitTest, ExactlyOnceTheBucketMovesWithItsPartition) {
  unsigned from = 0;
  const std::vector<std::string> first = TracesOn(2, 6, from);
  const std::vector<std::string> later = TracesOn(2, 6, from);
  Replica& a = StartReplica("exactly_once", {}, [&](FakeKafka& k) { AppendTraces(k, first); });
  ASSERT_TRUE(TurnUntil([&] {
    return a.kafka->Records("review").size() == 2 && a.kafka->CommittedOffset("spans", 2) == 6;
  }));
  size_t bucket_records = 0;
  for (const testing::FakeRecord& r : a.kafka->Records("unit.decisions")) {
    if (r.key == "bucket/2/destination/review") ++bucket_records;
  }
  EXPECT_EQ(bucket_records, 2u);  // one a routed item, the latest wins

  Replica& b = StartReplica("exactly_once", {2}, [&](FakeKafka& k) {
    k.CopyClusterFrom(*a.kafka);
    AppendTraces(k, later);
  });
  ASSERT_TRUE(TurnUntil([&] { return b.kafka->CommittedOffset("spans", 2) == 12; }));
  TurnFor(std::chrono::seconds(3));
  EXPECT_EQ(b.kafka->Records("review").size(), 2u);  // A's two; none from B
  EXPECT_EQ(b.pipeline->metrics().routed(), 0u);
}

// At-least-once hands no bucket over: the new owner of a partition starts its share full.
TEST_F(LimitSplitTest, AtLeastOnceTheNewOwnerOfAPartitionStartsItsBucketFull) {
  unsigned from = 0;
  const std::vector<std::string> first = TracesOn(2, 6, from);
  const std::vector<std::string> later = TracesOn(2, 6, from);
  Replica& a = StartReplica("at_least_once", {}, [&](FakeKafka& k) { AppendTraces(k, first); });
  ASSERT_TRUE(TurnUntil([&] {
    return a.kafka->Records("review").size() == 2 && a.kafka->CommittedOffset("spans", 2) == 6;
  }));
  Replica& b = StartReplica("at_least_once", {2}, [&](FakeKafka& k) {
    k.CopyClusterFrom(*a.kafka);
    AppendTraces(k, later);
  });
  ASSERT_TRUE(TurnUntil([&] { return b.kafka->CommittedOffset("spans", 2) == 12; }));
  TurnFor(std::chrono::seconds(3));
  EXPECT_EQ(b.kafka->Records("review").size(), 4u);
}

// A transaction that aborts takes back the tokens its routed items spent: after the rewind the
// same traces are decided again with the bucket as the last committed transaction left it.
TEST_F(LimitSplitTest, ExactlyOnceAnAbortedTransactionGivesItsTokensBack) {
  unsigned from = 0;
  const std::vector<std::string> traffic = TracesOn(2, 14, from);
  Replica& a = StartReplica("exactly_once", {}, [&](FakeKafka& k) { AppendTraces(k, traffic); });
  // Routed and acknowledged inside the open transaction; make its commit fail.
  ASSERT_TRUE(TurnUntil([&] { return a.pipeline->metrics().routed() == 2; }));
  ASSERT_TRUE(a.kafka->Records("review").empty());
  a.kafka->fail_next_commit = TxnError{"Broker: coordinator load in progress", false, false};
  ASSERT_TRUE(TurnUntil([&] { return a.kafka->transactions_aborted == 1; }));
  ASSERT_TRUE(TurnUntil([&] { return a.kafka->CommittedOffset("spans", 2) == 14; }));
  TurnFor(std::chrono::seconds(3));
  EXPECT_EQ(a.kafka->Records("review").size(), 2u);
  EXPECT_FALSE(a.pipeline->failed());
}

}  // namespace
}  // namespace triaged
