// `triaged replay --partitions P` (DESIGN §2.3) through the binary: limits split as a deployment
// whose engines join on P partitions splits them, so the prediction for P partitions routes
// into a capped destination what one partition does, within P, and never more than max + P.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <map>
#include <string>

#include "rules/partitioner.h"
#include "tests/tools/cli_test_util.h"

namespace triaged {
namespace {

using ::testing::HasSubstr;
using ::triaged::testing::Lines;
using ::triaged::testing::RunTriaged;
using ::triaged::testing::TempDir;

constexpr int kTraces = 300;

class ReplayPartitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rules_ = dir_.Write("rules.yaml", R"(schema_version: 1
destinations:
  review: {kind: queue, topic: annotations.review, limit: {max: 10, per: 1h}}
  all: {kind: dataset, topic: datasets.all}
rules:
  - name: every-trace
    when: trace.span_count > 0
    route_to: [review, all]
)");
    // A trace a second for five minutes of event time.
    std::string events;
    for (int i = 0; i < kTraces; ++i) {
      char id[33];
      std::snprintf(id, sizeof id, "%032x", static_cast<unsigned>(i + 1) * 2654435761u);
      const long long start = 1'793'527'200'000'000'000LL + i * 1'000'000'000LL;
      events += std::string(R"({"trace_id":")") + id +
                R"(","span_id":"00f067aa0ba902b7","name":"chat","start_time_unix_nano":)" +
                std::to_string(start) + R"(,"end_time_unix_nano":)" +
                std::to_string(start + 500'000'000) + "}\n";
    }
    events_ = dir_.Write("events.jsonl", events);
  }

  // Routed items by destination, and into `review` by the trace's partition of `partitions`.
  struct Counts {
    std::map<std::string, int> by_destination;
    std::map<int32_t, int> review_by_partition;
  };
  Counts Replay(const std::string& flags, int32_t partitions) {
    const auto run = RunTriaged("replay -q -c " + rules_ + " " + events_ + " " + flags);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    Counts counts;
    for (const std::string& line : Lines(run.out)) {
      rapidjson::Document doc;
      doc.Parse(line.c_str());
      EXPECT_TRUE(doc.IsObject()) << line;
      if (!doc.IsObject()) continue;
      const std::string destination = doc["destination"].GetString();
      ++counts.by_destination[destination];
      if (destination == "review") {
        ++counts.review_by_partition[Murmur2Partition(doc["trace_id"].GetString(), partitions)];
      }
    }
    return counts;
  }

  TempDir dir_;
  std::string rules_, events_;
};

TEST_F(ReplayPartitionsTest, ThreePartitionsRouteWhatOneRoutesWithinP) {
  const Counts one = Replay("--partitions 1", 1);
  const Counts three = Replay("--partitions 3", 3);
  EXPECT_EQ(one.by_destination.at("all"), kTraces);
  EXPECT_EQ(three.by_destination.at("all"), kTraces);  // unlimited: the split changes nothing
  EXPECT_EQ(one.by_destination.at("review"), 10);
  EXPECT_LE(three.by_destination.at("review"), 10 + 3);
  EXPECT_NEAR(three.by_destination.at("review"), one.by_destination.at("review"), 3);
  // Each partition spent its own share: 10/3 tokens, so three each.
  EXPECT_THAT(
      three.review_by_partition,
      ::testing::ElementsAre(::testing::Pair(0, 3), ::testing::Pair(1, 3), ::testing::Pair(2, 3)));
}

TEST_F(ReplayPartitionsTest, ManyPartitionsStayWithinMaxPlusP) {
  // 10 over 16 partitions: below one token each, so each holds one (the floor).
  const Counts many = Replay("--partitions 16", 16);
  EXPECT_LE(many.by_destination.at("review"), 10 + 16);
  for (const auto& [partition, n] : many.review_by_partition) {
    EXPECT_EQ(n, 1) << "partition " << partition;
  }
}

TEST_F(ReplayPartitionsTest, OnePartitionIsTheDefault) {
  const auto plain = RunTriaged("replay -q -c " + rules_ + " " + events_);
  const auto one = RunTriaged("replay -q -c " + rules_ + " " + events_ + " --partitions 1");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, one.out);
}

TEST_F(ReplayPartitionsTest, NoPartitionsIsAUsageError) {
  const auto run = RunTriaged("replay -q -c " + rules_ + " " + events_ + " --partitions 0");
  EXPECT_EQ(run.exit_code, 64);
  EXPECT_THAT(run.err, HasSubstr("--partitions"));
}

}  // namespace
}  // namespace triaged
