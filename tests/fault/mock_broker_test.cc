// Broker faults that are easier to inject in librdkafka's mock cluster, hosted in the test
// process with the daemon as a child pointed at it: produce requests failing with retriable
// errors, and a slow broker with a small producer queue (backpressure). Nothing is lost; the
// idempotent producer adds no duplicates; memory stays flat while consumption is paused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
// clang-format off: the mock header needs rdkafka.h first
#include <librdkafka/rdkafka_mock.h>
// clang-format on
#include <signal.h>

#include <iostream>

#include "config/config.h"
#include "daemon/embedded_broker.h"
#include "tests/integration/integration_util.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)
using ::testing::HasSubstr;

constexpr int16_t kProduce = 0;
constexpr int16_t kHeartbeat = 12;

// A mock cluster with this test's topics, and the config pointing at it.
struct MockSetup {
  std::unique_ptr<EmbeddedBroker> broker;
  std::string config;
};

MockSetup StartMock(const TempDir& dir, const Topics& t, const std::string& extra_kafka) {
  MockSetup m;
  Result<std::unique_ptr<EmbeddedBroker>> started = EmbeddedBroker::Start();
  EXPECT_TRUE(started.ok());
  if (!started.ok()) return m;
  m.broker = std::move(started.value());
  std::string text = WithoutLimits(ConfigFor(t, m.broker->bootstrap()));
  text.replace(text.find("\n  group_id:"), 0, extra_kafka);
  m.config = dir.Write("rules.yaml", text);
  auto loaded = LoadConfigString(text, m.config);
  EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.error()[0].ToString());
  if (loaded.ok()) {
    EXPECT_TRUE(m.broker->CreateTopicsFor(**loaded).ok());
  }
  return m;
}

// Generated traffic (`triaged generate ARGS`) burst into the mock; `want` is what replay routes
// for it. Use as ASSERT_NO_FATAL_FAILURE(BurstTraffic(...)).
void BurstTraffic(const TempDir& dir, const Topics& t, const MockSetup& mock,
                  const std::string& args, RouteSet& want) {
  const Traffic traffic(dir, t, args);
  ASSERT_EQ(traffic.error(), "");
  want = Expected(mock.config, traffic.file());
  ASSERT_EQ(traffic.Burst(mock.broker->bootstrap()).exit_code, 0);
}

TEST(MockBrokerFaults, RetriableProduceErrorsAreRetriedWithoutLossOrDuplicates) {
  TempDir dir;
  Topics t;
  MockSetup mock = StartMock(dir, t, "");
  ASSERT_TRUE(mock.broker);
  RouteSet want;
  ASSERT_NO_FATAL_FAILURE(BurstTraffic(dir, t, mock, "--events 1500 --seed 31", want));

  // The daemon's first six produce requests fail; librdkafka retries them. (Not
  // REQUEST_TIMED_OUT: to the idempotent producer that means "possibly written", which on the
  // mock can hold the partition's queue until message.timeout.ms, longer than this test waits.)
  rd_kafka_mock_push_request_errors(
      mock.broker->cluster(), kProduce, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
      RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(mock.config, log);
  size_t duplicates = 0;
  const RouteKeys got = WaitForUniqueRoutes(t, want, &duplicates, 0, mock.broker->bootstrap());
  EXPECT_EQ(got, RouteKeys(want.begin(), want.end())) << ReadFile(log);
  EXPECT_EQ(duplicates, 0u) << ReadFile(log);
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

// The group fences the daemon's static member (as a coordinator that restarted can): the
// daemon replaces its consumer, rejoins, re-reads from the committed offsets and routes
// everything; it does not exit.
TEST(MockBrokerFaults, AFencedGroupMemberRejoinsAndLosesNothing) {
  TempDir dir;
  Topics t;
  // The mock does not replace a static member on a new join as brokers do: the old one stays
  // until its session times out, so keep that short.
  MockSetup mock = StartMock(
      dir, t, "\n  properties: {session.timeout.ms: '6000', heartbeat.interval.ms: '500'}");
  ASSERT_TRUE(mock.broker);
  RouteSet want;
  ASSERT_NO_FATAL_FAILURE(BurstTraffic(dir, t, mock, "--events 1500 --seed 32", want));

  rd_kafka_mock_push_request_errors(mock.broker->cluster(), kHeartbeat, 1,
                                    RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(mock.config, log);
  ASSERT_TRUE(WaitForLog(log, "rejoining the group with a new consumer")) << ReadFile(log);
  size_t duplicates = 0;
  const RouteKeys got = WaitForUniqueRoutes(t, want, &duplicates, 0, mock.broker->bootstrap());
  EXPECT_EQ(got, RouteKeys(want.begin(), want.end())) << ReadFile(log);
  std::cerr << "fenced member: rejoined; " << want.size() << " routes expected, "
            << RouteKeys(want.begin(), want.end()).size() - got.size() << " lost, " << duplicates
            << " duplicated\n";
  EXPECT_THAT(ReadFile(log), ::testing::Not(HasSubstr("fatal consumer error")));
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

// Every trace to one dataset through a slow broker (200 ms per request) and a producer queue of
// 40 messages: the daemon pauses consumption when 20 wait, resumes under 4, and routes all.
TEST(MockBrokerFaults, ASlowBrokerPausesConsumptionAndMemoryStaysFlat) {
  TempDir dir;
  Topics t;
  MockSetup mock = StartMock(
      dir, t, "\n  properties: {queue.buffering.max.messages: \"40\", linger.ms: \"20\"}");
  ASSERT_TRUE(mock.broker);
  // Rules: everything to the regressions dataset, on top of the example rules.
  std::string text = ReadFile(mock.config) +
                     "  - name: everything\n    when: trace.span_count > 0\n"
                     "    route_to: [regressions]\n";
  dir.Write("rules.yaml", text);
  RouteSet want;
  ASSERT_NO_FATAL_FAILURE(BurstTraffic(dir, t, mock, "--events 1000 --seed 32", want));

  rd_kafka_mock_broker_set_rtt(mock.broker->cluster(), 1, 200);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(mock.config, log);
  size_t duplicates = 0;
  const RouteKeys got = WaitForUniqueRoutes(t, want, &duplicates, 0, mock.broker->bootstrap());
  const long peak_kib = daemon.PeakRssKib();
  EXPECT_EQ(got, RouteKeys(want.begin(), want.end())) << ReadFile(log);
  const std::string text_log = ReadFile(log);
  EXPECT_THAT(text_log, HasSubstr("\"msg\":\"producer queue full: consumption paused\""));
  EXPECT_THAT(text_log, HasSubstr("\"msg\":\"consumption resumed\""));
  std::cerr << "slow broker: " << want.size() << " routes, " << duplicates << " duplicates, "
            << "peak RSS " << peak_kib / 1024 << " MiB (ASan build)\n";
  RecordProperty("peak_rss_kib", static_cast<int>(peak_kib));
  // The sanitized daemon idles at about 150 MiB; a queue of 40 items adds nothing measurable.
  EXPECT_LT(peak_kib, 400 * 1024);
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(60)), 0) << ReadFile(log);
}

// SIGTERM while the broker does not answer: every call that waits on it (flush, the final
// commit, leaving the group) used to wait as long as librdkafka lets it — the commit's request
// timeout, session.timeout.ms, message.timeout.ms (5 minutes) for what is in flight. Now the
// whole shutdown takes at most kafka.shutdown_timeout, and the exit code (75) says it gave up.
TEST(MockBrokerFaults, SigtermWithAStalledBrokerExitsWithinTheShutdownTimeout) {
  TempDir dir;
  Topics t;
  MockSetup mock = StartMock(dir, t, "\n  shutdown_timeout: 3s");
  ASSERT_TRUE(mock.broker);
  RouteSet want;
  ASSERT_NO_FATAL_FAILURE(BurstTraffic(dir, t, mock, "--events 600 --seed 33", want));
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(mock.config, log);
  const std::string port = AdminPort(log);
  ASSERT_FALSE(port.empty()) << ReadFile(log);
  // Routing, then the broker stops answering (every request takes 30 s).
  auto routed = [&] {
    const std::string status = Get(port, "/v1/status");
    const size_t at = status.find("\"routed\":");
    return at == std::string::npos ? 0L : std::atol(status.c_str() + at + 9);
  };
  const auto routing_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (routed() == 0 && std::chrono::steady_clock::now() < routing_deadline) {
    usleep(100'000);  // polling a condition with a deadline
  }
  ASSERT_GT(routed(), 0) << ReadFile(log);
  rd_kafka_mock_broker_set_rtt(mock.broker->cluster(), 1, 30000);
  const auto stopped_at = std::chrono::steady_clock::now();
  const int code = daemon.Stop(SIGTERM, std::chrono::seconds(120));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
  std::cerr << "SIGTERM with a stalled broker: exit " << code << " after " << seconds << " s\n";
  EXPECT_LT(seconds, 15.0) << ReadFile(log);
  EXPECT_EQ(code, 75) << ReadFile(log);
  EXPECT_THAT(ReadFile(log), HasSubstr("\"flushed\":false")) << ReadFile(log);
}

}  // namespace
}  // namespace triaged
