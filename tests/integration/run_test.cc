// `triaged run` against a real Apache Kafka broker (scripts/kafka-dev.sh, started by the ctest
// fixture), with kcat as the independent client: the example corpus produced into the input
// topics is routed exactly as `triaged replay` routes it; bad input is dead-lettered; SIGTERM
// exits 0; topics that are not co-partitioned are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <tuple>

#include "tests/integration/integration_util.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)
using ::testing::HasSubstr;

class RunIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  }
};

TEST_F(RunIntegration, RoutesTheCorpusExactlyAsReplayDoes) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  const RouteSet want = Expected(config);
  ASSERT_EQ(want.size(), 16u);
  ProduceCorpus(t, dir.path());

  Daemon daemon(config, dir.path() + "/daemon.log");
  std::vector<Consumed> dead;
  const RouteSet got = WaitForRoutes(t, want.size(), 8, &dead);
  EXPECT_EQ(got, want) << ReadFile(dir.path() + "/daemon.log");
  ASSERT_EQ(dead.size(), kExampleDeadLetters) << ReadFile(dir.path() + "/daemon.log");
  for (const Consumed& c : dead) {
    rapidjson::Document d;
    d.Parse(c.payload.c_str());
    ASSERT_TRUE(d.IsObject() && d.HasMember("reason") && d.HasMember("offset")) << c.payload;
    EXPECT_TRUE(d["offset"].IsInt64()) << c.payload;
  }
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0)
      << ReadFile(dir.path() + "/daemon.log");
  EXPECT_THAT(ReadFile(dir.path() + "/daemon.log"), HasSubstr("\"msg\":\"stopped\""));
  EXPECT_THAT(ReadFile(dir.path() + "/daemon.log"),
              ::testing::Not(HasSubstr("output topic does not exist")));
}

// Stopping the daemon while traces are still open, then starting it again: the open traces
// were not committed, so the new process re-reads and decides them. `sig` SIGTERM is a clean
// stop (flush, commit what is safe, exit 0); SIGKILL loses the process mid-flight.
void RestartLosesNothing(int sig) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  const RouteSet want = Expected(config);
  ProduceCorpus(t, dir.path());
  {
    Daemon first(config, dir.path() + "/first.log");
    // Mid-stream: as soon as the first routed item is on a topic, most traces are still open.
    WaitForRoutes(t, 1, 0);
    const int code = first.Stop(sig, std::chrono::seconds(40));
    if (sig == SIGTERM) {
      EXPECT_EQ(code, 0) << ReadFile(dir.path() + "/first.log");
    }
  }
  Daemon second(config, dir.path() + "/second.log");
  RouteSet got = WaitForRoutes(t, want.size(), kExampleDeadLetters);
  // Wait for the unique set (duplicates are allowed at-least-once; count them).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::set(got.begin(), got.end()).size() < want.size() &&
         std::chrono::steady_clock::now() < deadline) {
    got = WaitForRoutes(t, got.size() + 1, kExampleDeadLetters);
  }
  const std::set<std::tuple<std::string, std::string, std::string>> unique(got.begin(), got.end());
  EXPECT_EQ(unique, std::set(want.begin(), want.end()))
      << ReadFile(dir.path() + "/first.log") << ReadFile(dir.path() + "/second.log");
  std::cerr << "restart after signal " << sig << ": " << got.size() - unique.size()
            << " duplicate routed items\n";
  EXPECT_EQ(second.Stop(SIGTERM, std::chrono::seconds(40)), 0);
}

TEST_F(RunIntegration, SigtermThenRestartLosesNoRoute) { RestartLosesNothing(SIGTERM); }

TEST_F(RunIntegration, KillThenRestartLosesNoRoute) { RestartLosesNothing(SIGKILL); }

TEST_F(RunIntegration, SighupWithABadConfigKeepsRouting) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string good = ConfigFor(t);
  const std::string config = dir.Write("rules.yaml", good);
  const RouteSet want = Expected(config);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  ASSERT_TRUE(WaitForLog(log, "\"msg\":\"started\""));
  dir.Write("rules.yaml", good +
                              "  - name: broken\n    when: trace.duraton_ms > 1\n"
                              "    route_to: [regressions]\n");
  daemon.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog(log, "reload failed")) << ReadFile(log);
  EXPECT_THAT(ReadFile(log), HasSubstr("trace.duraton_ms"));
  ProduceCorpus(t, dir.path());
  EXPECT_EQ(WaitForRoutes(t, want.size(), kExampleDeadLetters), want) << ReadFile(log);
  // A good config is taken at the next SIGHUP.
  dir.Write("rules.yaml", good);
  daemon.Signal(SIGHUP);
  EXPECT_TRUE(WaitForLog(log, "config reloaded")) << ReadFile(log);
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

// SIGHUP with one of the config's topics (`topic` picks it) renamed is refused with `why` in the
// log and counted as a failed reload; the running config keeps routing the corpus.
void RefusedReloadKeepsRouting(const std::string& (*topic)(const Topics&), const std::string& why) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string good = ConfigFor(t);
  const std::string config = dir.Write("rules.yaml", good);
  const RouteSet want = Expected(config);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  const std::string port = AdminPort(log);
  ASSERT_FALSE(port.empty()) << ReadFile(log);
  ASSERT_TRUE(WaitForLog(log, "\"msg\":\"started\""));
  std::string changed = good;
  const std::string& from = topic(t);
  const size_t at = changed.find(from);
  ASSERT_NE(at, std::string::npos);
  changed.replace(at, from.size(), from + ".renamed");
  dir.Write("rules.yaml", changed);
  daemon.Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog(log, "reload failed")) << ReadFile(log);
  EXPECT_THAT(ReadFile(log), HasSubstr(why));
  EXPECT_THAT(Get(port, "/metrics"),
              HasSubstr("triaged_config_reloads_total{result=\"failure\"} 1"));
  ProduceCorpus(t, dir.path());
  EXPECT_EQ(WaitForRoutes(t, want.size(), kExampleDeadLetters), want) << ReadFile(log);
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

// Only rules, destinations, mode, sampling, limits and trace timings may change in a reload
// (DESIGN §6): renaming an input topic would leave the consumer on the old topics while the
// daemon decoded and committed by the new names.
TEST_F(RunIntegration, SighupRenamingAnInputTopicIsRefusedAndRoutingGoesOn) {
  RefusedReloadKeepsRouting([](const Topics& t) -> const std::string& { return t.spans; },
                            "restart required: inputs.spans.topic changed");
}

// A reload naming a destination topic the cluster does not have used to be accepted; the first
// item routed there failed as fatal and the daemon exited (and again after every restart).
TEST_F(RunIntegration, SighupToAMissingDestinationTopicIsRefusedAndRoutingGoesOn) {
  RefusedReloadKeepsRouting([](const Topics& t) -> const std::string& { return t.support; },
                            ".renamed does not exist");
}

TEST_F(RunIntegration, TwoReplicasSplitThePartitionsAndRouteTheExpectedSet) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  const RouteSet want = Expected(config);
  Daemon a(config, dir.path() + "/a.log"), b(config, dir.path() + "/b.log");
  // Range assignment: each replica gets partitions 0-1 or 2-3 of both inputs and of the
  // repartition topic, 6 in all.
  const std::string six = "\"msg\":\"partitions assigned\",\"count\":6";
  ASSERT_TRUE(WaitForLog(dir.path() + "/a.log", six)) << ReadFile(dir.path() + "/a.log");
  ASSERT_TRUE(WaitForLog(dir.path() + "/b.log", six)) << ReadFile(dir.path() + "/b.log");
  ProduceCorpus(t, dir.path());
  size_t duplicates = 0;
  EXPECT_EQ(WaitForUniqueRoutes(t, want, &duplicates), RouteKeys(want.begin(), want.end()))
      << ReadFile(dir.path() + "/a.log") << ReadFile(dir.path() + "/b.log");
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(a.Stop(SIGTERM, std::chrono::seconds(40)), 0);
  EXPECT_EQ(b.Stop(SIGTERM, std::chrono::seconds(40)), 0);
}

TEST_F(RunIntegration, ARebalanceMidStreamLosesNothing) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config = dir.Write("rules.yaml", ConfigFor(t));
  const RouteSet want = Expected(config);
  Daemon a(config, dir.path() + "/a.log");
  ProduceCorpus(t, dir.path());
  WaitForRoutes(t, 1, 0);                   // the first route is out; most traces are still open
  Daemon b(config, dir.path() + "/b.log");  // joining takes half the partitions away from `a`
  size_t duplicates = 0;
  EXPECT_EQ(WaitForUniqueRoutes(t, want, &duplicates), RouteKeys(want.begin(), want.end()))
      << ReadFile(dir.path() + "/a.log") << ReadFile(dir.path() + "/b.log");
  std::cerr << "rebalance mid-stream: " << duplicates << " duplicate routed items\n";
  EXPECT_EQ(a.Stop(SIGTERM, std::chrono::seconds(40)), 0);
  EXPECT_EQ(b.Stop(SIGTERM, std::chrono::seconds(40)), 0);
}

// /metrics, /healthz, /readyz and /v1/rules of a running daemon; promtool accepts the metrics
// and a real Prometheus server scrapes them.
TEST_F(RunIntegration, AdminEndpointsMetricsAndAPrometheusScrape) {
  RoutedExample x;
  ASSERT_NO_FATAL_FAILURE(RouteExample(x, [](const Topics& t) { return ConfigFor(t); }));
  const TempDir& dir = x.dir;
  const std::string& port = x.port;
  const std::string& log = x.log;
  const RouteSet& want = x.want;

  int status = 0;
  EXPECT_EQ(Get(port, "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200);
  Get(port, "/readyz", &status);
  EXPECT_EQ(status, 200);
  Get(port, "/nope", &status);
  EXPECT_EQ(status, 404);

  // Counters are published once a second: wait until /v1/rules shows every routed item.
  uint64_t routed = 0;
  rapidjson::Document rules;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (routed < want.size() && std::chrono::steady_clock::now() < deadline) {
    rules.Parse(Get(port, "/v1/rules").c_str());
    routed = 0;
    if (rules.IsObject() && rules.HasMember("rules")) {
      for (const auto& r : rules["rules"].GetArray()) routed += r["routed"].GetUint64();
    }
    if (routed < want.size()) usleep(100'000);
  }
  EXPECT_EQ(routed, want.size()) << Get(port, "/v1/rules");

  const std::string metrics = Get(port, "/metrics", &status);
  EXPECT_EQ(status, 200);
  const std::string dead_lettered =
      "triaged_dead_lettered_total " + std::to_string(kExampleDeadLetters);
  for (const char* family :
       {"triaged_events_consumed_total", "triaged_events_invalid_total", dead_lettered.c_str(),
        "triaged_traces_open", "triaged_rule_matched_total", "triaged_routed_total",
        "triaged_decision_latency_seconds_bucket", "triaged_consumer_lag",
        "triaged_route_ack_latency_seconds_bucket", "triaged_config_reloads_total",
        "triaged_build_info"}) {
    EXPECT_THAT(metrics, HasSubstr(family));
  }
  EXPECT_THAT(metrics, HasSubstr("triaged_rule_matched_total{rule=\"thumbs-down\"} 4"));
  const std::string metrics_file = dir.Write("metrics.txt", metrics);
  EXPECT_EQ(std::system(("promtool check metrics < " + metrics_file + " >/dev/null 2>&1").c_str()),
            0)
      << Shell("promtool check metrics < " + metrics_file + " 2>&1");

  // A real Prometheus server scrapes the daemon.
  std::string answer;
  {
    Prometheus prometheus(dir, port);
    const auto scrape_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < scrape_deadline) {
      answer = prometheus.Api("/api/v1/query?query=triaged_dead_lettered_total");
      if (answer.find("\"value\"") != std::string::npos) break;
      usleep(200'000);
    }
    EXPECT_THAT(answer, HasSubstr("\"" + std::to_string(kExampleDeadLetters) + "\""))
        << answer << prometheus.Log();
  }
  EXPECT_EQ(x.daemon->Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

// With `inputs.repartition: never` the producers are trusted to co-partition the inputs: topics
// of different partition counts cannot be, and the daemon says so at start.
TEST_F(RunIntegration, NeverRefusesInputsThatAreNotCoPartitioned) {
  TempDir dir;
  Topics t;
  CreateTopic(t.spans, 4);
  CreateTopic(t.feedback, 2);
  std::string config_text = ConfigFor(t);
  config_text.replace(config_text.find("\ninputs:\n") + 9, 0, "  repartition: never\n");
  const std::string config = dir.Write("rules.yaml", config_text);
  Daemon daemon(config, dir.path() + "/daemon.log");
  EXPECT_EQ(daemon.Wait(std::chrono::seconds(30)), 1);
  EXPECT_THAT(ReadFile(dir.path() + "/daemon.log"), HasSubstr("not co-partitioned"));
  // The destination topics were not created either: named at start.
  EXPECT_THAT(ReadFile(dir.path() + "/daemon.log"),
              HasSubstr("\"msg\":\"output topic does not exist; producing to it fails unless the "
                        "broker creates topics automatically\",\"topic\":\"" +
                        t.support + "\""));
}

// By default inputs of different partition counts join through the repartition topic (a
// Collector topic of 6 partitions beside a feedback topic of 4 used to stop the start).
TEST_F(RunIntegration, InputsOfDifferentPartitionCountsRouteAsReplay) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string spans6 = t.spans + "-6";
  CreateTopic(spans6, 6);
  std::string config_text = ConfigFor(t);
  config_text.replace(config_text.find("{topic: " + t.spans + "}"),
                      ("{topic: " + t.spans + "}").size(), "{topic: " + spans6 + "}");
  const std::string config = dir.Write("rules.yaml", config_text);
  const RouteSet want = Expected(config);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  ASSERT_FALSE(AdminPort(log).empty()) << ReadFile(log);
  Topics produced = t;
  produced.spans = spans6;
  ProduceCorpus(produced, dir.path());
  EXPECT_EQ(WaitForRoutes(t, want.size(), kExampleDeadLetters), want) << ReadFile(log);
  EXPECT_THAT(ReadFile(log), HasSubstr("\"partitions\":6,\"spans_in_place\":true,"
                                       "\"feedback_in_place\":false"));
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

}  // namespace
}  // namespace triaged
