// Limits hold for the whole deployment (DESIGN §2.3) against a real broker: one replica and
// three replicas of `triaged run`, in their own consumer groups on the same input topics of six
// partitions, route the same number (±P) of traces into a queue capped at 12 an hour, and
// neither routes more than max + P.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "rules/partitioner.h"
#include "tests/integration/integration_util.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)

constexpr int kPartitions = 6;
constexpr int kPerPartition = 8;
constexpr int kMax = 12;  // the queue's limit an hour: 2 a partition

class LimitSplitIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  }
};

std::string ConfigOf(const Topics& t, const std::string& group, const std::string& queue) {
  return "kafka:\n  bootstrap_servers: " + Bootstrap() + "\n  group_id: " + group +
         "\ninputs:\n  spans: {topic: " + t.spans + "}\n  feedback: {topic: " + t.feedback +
         "}\n  repartition: never\n"
         "trace: {decision_wait: 1s, root_grace: 500ms, max_wait: 30s}\n"
         "destinations:\n  review: {kind: queue, topic: " +
         queue + ", limit: {max: " + std::to_string(kMax) +
         ", per: 1h}}\n"
         "dead_letter: {topic: " +
         t.dead_letter +
         "}\n"
         "admin: {listen: 127.0.0.1:0}\n"
         "rules:\n  - name: every-trace\n    when: trace.span_count > 0\n    route_to: [review]\n";
}

// `routed` counts broker acknowledgements; `decided` the routes the rules took (in /v1/rules, from
// the same snapshot): a trace leaves `open` when it is decided, before its items are acknowledged.
struct Status {
  uint64_t partitions = 0, consumed = 0, routed = 0, decided = 0, open = 0;
  bool ok = false;
};

Status StatusOf(const std::string& port) {
  Status s;
  rapidjson::Document d;
  d.Parse(Get(port, "/v1/status").c_str());
  if (!d.IsObject() || !d.HasMember("partitions")) return s;
  s.partitions = d["partitions"].GetUint64();
  s.consumed = d["events_consumed"].GetUint64();
  s.routed = d["routed"].GetUint64();
  s.open = d["traces_open"].GetUint64();
  rapidjson::Document rules;
  rules.Parse(Get(port, "/v1/rules").c_str());
  if (!rules.IsObject() || !rules.HasMember("rules")) return s;
  for (const auto& r : rules["rules"].GetArray()) s.decided += r["routed"].GetUint64();
  s.ok = true;
  return s;
}

// `replicas` daemons in one group, started together; waits until the group has settled (every
// replica owns some of the six partitions, all of them are owned).
struct Deployment {
  TempDir dir;
  std::string group, queue;
  std::vector<std::unique_ptr<Daemon>> daemons;
  std::vector<std::string> logs, ports;

  bool Start(const Topics& t, int replicas) {
    group = "it-limit-group-" + NextId();
    queue = "it.limit-review-" + NextId();
    CreateTopic(queue, 1);
    const std::string config = dir.Write("rules.yaml", ConfigOf(t, group, queue));
    for (int i = 0; i < replicas; ++i) {
      logs.push_back(dir.path() + "/replica" + std::to_string(i) + ".log");
      daemons.push_back(std::make_unique<Daemon>(config, logs.back()));
    }
    for (const std::string& log : logs) {
      ports.push_back(AdminPort(log));
      if (ports.back().empty()) return false;
    }
    return Until([&](const std::vector<Status>& all) {
      uint64_t owned = 0;
      for (const Status& s : all) {
        if (!s.ok || s.partitions == 0) return false;
        owned += s.partitions;
      }
      return owned == kPartitions;
    });
  }
  // Polls every replica's /v1/status (refreshed each second) until `done` (or a deadline).
  template <typename Fn>
  bool Until(Fn done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      std::vector<Status> all;
      for (const std::string& port : ports) all.push_back(StatusOf(port));
      if (done(all)) return true;
      usleep(100'000);  // polling a condition with a deadline
    }
    return false;
  }
  // Waits until every span was consumed and every trace decided and each of its routes
  // acknowledged; returns the routed items in the queue (-1 if it never settled).
  int Routed(size_t spans) {
    uint64_t routed = 0;
    const bool settled = Until([&](const std::vector<Status>& all) {
      uint64_t consumed = 0, open = 0, decided = 0;
      routed = 0;
      for (const Status& s : all) {
        if (!s.ok) return false;
        consumed += s.consumed;
        open += s.open;
        routed += s.routed;
        decided += s.decided;
      }
      return consumed == spans && open == 0 && routed > 0 && routed == decided;
    });
    if (!settled) return -1;
    // routed counts broker acknowledgements: the queue holds as many.
    const size_t in_queue = ReadTopic(queue).size();
    EXPECT_EQ(in_queue, routed);
    return static_cast<int>(in_queue);
  }
  std::string Logs() const {
    std::string all;
    for (const std::string& log : logs) all += ReadFile(log);
    return all;
  }
};

TEST_F(LimitSplitIntegration, OneReplicaAndThreeRouteTheSameIntoACappedQueue) {
  Topics t;
  for (const std::string* topic : {&t.spans, &t.feedback}) CreateTopic(*topic, kPartitions);
  CreateTopic(t.dead_letter, 1);

  // Both deployments are up and settled before any traffic, so no partition moves under load.
  Deployment one, three;
  ASSERT_TRUE(one.Start(t, 1)) << one.Logs();
  ASSERT_TRUE(three.Start(t, 3)) << three.Logs();

  // Eight traces on each partition, keyed by trace id with Kafka's murmur2 partitioner.
  TempDir dir;
  std::ofstream spans(dir.path() + "/spans.txt");
  int on[kPartitions] = {};
  size_t count = 0;
  for (unsigned i = 1; count < kPartitions * kPerPartition; ++i) {
    char id[33];
    std::snprintf(id, sizeof id, "%032x", i * 2654435761u);
    int& n = on[Murmur2Partition(id, kPartitions)];
    if (n == kPerPartition) continue;
    ++n;
    ++count;
    spans << id << "\t{\"trace_id\":\"" << id
          << "\",\"span_id\":\"00f067aa0ba902b7\",\"name\":\"chat\","
             "\"start_time\":\"2026-11-01T10:00:00Z\",\"end_time\":\"2026-11-01T10:00:01Z\"}\n";
  }
  spans.close();
  const std::string cmd = "kcat -P -b " + Bootstrap() + " -t " + t.spans +
                          " -X topic.partitioner=murmur2_random -K '\t' -l " + dir.path() +
                          "/spans.txt 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  const int routed_one = one.Routed(count);
  const int routed_three = three.Routed(count);
  ASSERT_GE(routed_one, 0) << one.Logs();
  ASSERT_GE(routed_three, 0) << three.Logs();
  std::fprintf(stderr, "routed into a queue capped at %d/h: 1 replica %d, 3 replicas %d\n", kMax,
               routed_one, routed_three);
  // Everything was routed within seconds of an hour's window: the burst is the bound.
  EXPECT_LE(routed_one, kMax + kPartitions);
  EXPECT_LE(routed_three, kMax + kPartitions) << three.Logs();
  EXPECT_NEAR(routed_three, routed_one, kPartitions);
  for (auto* d : {&one, &three}) {
    for (auto& daemon : d->daemons) EXPECT_EQ(daemon->Stop(SIGTERM, std::chrono::seconds(40)), 0);
  }
}

}  // namespace
}  // namespace triaged
