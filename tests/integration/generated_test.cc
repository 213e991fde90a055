// Generated traffic of every shape (`triaged generate`) through `triaged run`, on the real Kafka
// broker and on the embedded one: the routed topics hold exactly what `triaged replay` routes
// for the same traffic, and every malformed message is on the dead-letter topic. Also
// `triaged broker` on its own, with kcat as the client.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/integration_util.h"
#include "tools/commands.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)
using ::testing::HasSubstr;
using ::triaged::testing::RunTriaged;

// One traffic, named by its seed and start: written to a file for replay, produced for run.
const std::string kTraffic = "--events 1500 --seed 21 --invalid 0.01 --start 2026-11-01T10:00:00Z";

void GeneratedTrafficRoutesAsReplay(bool embedded) {
  TempDir dir;
  Topics t;
  if (!embedded) CreateTopics(t);
  const std::string config =
      dir.Write("rules.yaml", WithoutLimits(ConfigFor(t, embedded ? "embedded" : Bootstrap())));
  const Traffic traffic(dir, t, kTraffic);
  ASSERT_EQ(traffic.error(), "");
  const size_t invalid = traffic.invalid();
  ASSERT_GT(invalid, 0u);
  const RouteSet want = Expected(config, traffic.file());
  ASSERT_GT(want.size(), 100u);

  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  std::string bootstrap = Bootstrap();
  if (embedded) {
    ASSERT_TRUE(WaitForLog(log, "embedded broker listening")) << ReadFile(log);
    bootstrap = LogValue(ReadFile(log), "embedded broker listening", "bootstrap");
  }
  const std::string port = AdminPort(log);
  ASSERT_FALSE(port.empty()) << ReadFile(log);
  const testing::Run produced = traffic.Burst(bootstrap);
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  EXPECT_EQ(LogValue(produced.err, "generated", "failed"), "0");

  std::vector<Consumed> dead;
  const RouteSet got = WaitForRoutes(t, want.size(), invalid, &dead, bootstrap);
  EXPECT_EQ(got, want) << ReadFile(log);
  EXPECT_EQ(dead.size(), invalid);

  // /v1/rules counts every routed item (counters are published once a second).
  uint64_t routed = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (routed != want.size() && std::chrono::steady_clock::now() < deadline) {
    rapidjson::Document rules;
    rules.Parse(Get(port, "/v1/rules").c_str());
    routed = 0;
    if (rules.IsObject() && rules.HasMember("rules")) {
      for (const auto& r : rules["rules"].GetArray()) routed += r["routed"].GetUint64();
    }
    if (routed != want.size()) usleep(100'000);
  }
  EXPECT_EQ(routed, want.size()) << Get(port, "/v1/rules");
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

TEST(GeneratedTraffic, RoutesOnTheEmbeddedBrokerAsReplayDoes) {
  GeneratedTrafficRoutesAsReplay(/*embedded=*/true);
}

TEST(GeneratedTraffic, RoutesOnRealKafkaAsReplayDoes) {
  if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  GeneratedTrafficRoutesAsReplay(/*embedded=*/false);
}

// Memory is bounded by max_open_traces for the whole process, not per partition: with traces
// that would stay open for ten minutes, the daemon holds at most the cap (plus one per
// partition engine) and decides the oldest early.
TEST(GeneratedTraffic, OpenTracesStayWithinMaxOpenTraces) {
  if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config =
      dir.Write("rules.yaml",
                std::regex_replace(ConfigFor(t), std::regex(R"(\ntrace: \{[^\n]*\})"),
                                   "\ntrace: {decision_wait: 10m, root_grace: 10m, max_wait: 10m, "
                                   "max_open_traces: 200}"));
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  const std::string port = AdminPort(log);
  ASSERT_FALSE(port.empty()) << ReadFile(log);
  const testing::Run produced =
      RunTriaged("generate --burst --events 3000 --seed 4 -b " + Bootstrap() + " --spans-topic " +
                 t.spans + " --feedback-topic " + t.feedback);
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  const double delivered = std::stod(LogValue(produced.err, "generated", "delivered"));
  const double traces = std::stod(LogValue(produced.err, "generated", "traces"));

  std::string metrics;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    metrics = Get(port, "/metrics");
    if (MetricSum(metrics, "triaged_events_consumed_total") >= delivered &&
        MetricSum(metrics, "triaged_traces_evicted_total{reason=\"capacity\"}") >= traces - 204) {
      break;
    }
    usleep(100'000);
  }
  EXPECT_EQ(MetricSum(metrics, "triaged_events_consumed_total"), delivered) << metrics;
  EXPECT_LE(MetricSum(metrics, "triaged_traces_open "), 204.0) << metrics;
  EXPECT_GE(MetricSum(metrics, "triaged_traces_open "), 150.0) << metrics;
  EXPECT_GE(MetricSum(metrics, "triaged_traces_evicted_total{reason=\"capacity\"}"), traces - 204)
      << metrics;
  EXPECT_GT(MetricSum(metrics, "triaged_routed_total"), 0.0) << metrics;  // decided early
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

// `triaged broker` prints its bootstrap on stdout, creates the config's topics, serves a
// Kafka client, and exits 0 on SIGTERM.
TEST(EmbeddedBroker, ServesKcatAndStopsOnSigterm) {
  TempDir dir;
  Topics t;
  const std::string config = dir.Write("rules.yaml", ConfigFor(t, "embedded"));
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    freopen((dir.path() + "/broker.log").c_str(), "w", stderr);
    execl(TRIAGED_BINARY, TRIAGED_BINARY, "broker", "-c", config.c_str(), "--partitions", "3",
          nullptr);
    _exit(127);
  }
  close(out[1]);
  FILE* lines = fdopen(out[0], "r");
  char buf[256] = {};
  ASSERT_NE(fgets(buf, sizeof buf, lines), nullptr) << ReadFile(dir.path() + "/broker.log");
  std::string bootstrap(buf);
  while (!bootstrap.empty() && bootstrap.back() == '\n') bootstrap.pop_back();
  EXPECT_THAT(bootstrap, ::testing::MatchesRegex("127\\.0\\.0\\.1:[0-9]+"));

  const std::string metadata = Shell("kcat -L -b " + bootstrap + " 2>&1");
  EXPECT_THAT(metadata, HasSubstr("topic \"" + t.spans + "\" with 3 partitions"));
  EXPECT_THAT(metadata, HasSubstr("topic \"" + t.feedback + "\" with 3 partitions"));
  EXPECT_THAT(metadata, HasSubstr("topic \"" + t.dead_letter + "\" with 3 partitions"));
  const std::string produce = "printf 'k1\\tone\\nk2\\ttwo\\n' | kcat -P -b " + bootstrap + " -t " +
                              t.spans + " -K '\\t' 2>&1";
  EXPECT_EQ(std::system(produce.c_str()), 0);
  const std::string consumed =
      Shell("kcat -C -b " + bootstrap + " -t " + t.spans + " -o beginning -e -q -f '%k=%s\\n'");
  EXPECT_THAT(consumed, HasSubstr("k1=one"));
  EXPECT_THAT(consumed, HasSubstr("k2=two"));

  kill(pid, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  pid_t done = 0;
  while (done == 0 && std::chrono::steady_clock::now() < deadline) {
    done = waitpid(pid, &status, WNOHANG);
    if (done == 0) usleep(20'000);  // polling the child's exit with a deadline
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  fclose(lines);
  ASSERT_EQ(done, pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace triaged
