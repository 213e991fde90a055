// Exactly-once under transaction failures injected with librdkafka's mock cluster, hosted in the
// test process (the daemon is a child pointed at it): an abortable error (the group not
// authorized when offsets are added to the transaction) and a fatal one (the producer fenced
// at commit). The daemon aborts or replaces its producer, rewinds to the committed offsets,
// stays up, and routes every expected pair. (The mock writes no transaction markers, so items
// of an aborted transaction stay visible to readers there; the real broker hides them — see
// broker_restart_test.cc. Here only "nothing lost, daemon alive" is asserted.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
// clang-format off: the mock header needs rdkafka.h first
#include <librdkafka/rdkafka_mock.h>
// clang-format on
#include <signal.h>

#include "config/config.h"
#include "daemon/embedded_broker.h"
#include "daemon/exactly_once.h"
#include "tests/integration/integration_util.h"
#include "tests/tools/cli_test_util.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)
using ::testing::HasSubstr;

constexpr int16_t kAddOffsetsToTxn = 25;
constexpr int16_t kEndTxn = 26;

struct Injection {
  const char* name;
  int16_t api;
  rd_kafka_resp_err_t error;
  const char* expect_in_log;
};

class TransactionFaults : public ::testing::TestWithParam<Injection> {};

TEST_P(TransactionFaults, TheDaemonRecoversAndLosesNothing) {
  const Injection& inject = GetParam();
  Result<std::unique_ptr<EmbeddedBroker>> started = EmbeddedBroker::Start();
  ASSERT_TRUE(started.ok()) << started.error().message;
  EmbeddedBroker& broker = *started.value();
  TempDir dir;
  Topics t;
  const std::string text =
      WithGuarantee(WithoutLimits(ConfigFor(t, broker.bootstrap())), "exactly_once");
  const std::string config = dir.Write("rules.yaml", text);
  auto loaded = LoadConfigString(text, config);
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE(broker.CreateTopicsFor(**loaded).ok());
  ASSERT_TRUE(broker.CreateTopic(DecisionsTopic(**loaded), kEmbeddedPartitions).ok());

  const Traffic traffic(dir, t, "--events 1500 --seed 12");
  ASSERT_EQ(traffic.error(), "");
  const RouteSet want = Expected(config, traffic.file());
  ASSERT_GT(want.size(), 50u);
  const testing::Run produced = traffic.Burst(broker.bootstrap());
  ASSERT_EQ(produced.exit_code, 0) << produced.err;

  // The first two such requests fail.
  rd_kafka_mock_push_request_errors(broker.cluster(), inject.api, 2, inject.error, inject.error);
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  size_t duplicates = 0;
  const RouteKeys got = WaitForUniqueRoutes(t, want, &duplicates, 0, broker.bootstrap());
  EXPECT_EQ(got, RouteKeys(want.begin(), want.end())) << ReadFile(log);
  const std::string text_log = ReadFile(log);
  EXPECT_THAT(text_log, HasSubstr("\"msg\":\"transaction failed\"")) << text_log;
  EXPECT_THAT(text_log, HasSubstr(inject.expect_in_log)) << text_log;
  EXPECT_THAT(text_log, HasSubstr("\"msg\":\"rewinding to the committed offsets\"")) << text_log;
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(60)), 0) << ReadFile(log);
}

INSTANTIATE_TEST_SUITE_P(
    Injections, TransactionFaults,
    ::testing::Values(Injection{"abortable", kAddOffsetsToTxn,
                                RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, "\"fatal\":false"},
                      Injection{"fenced", kEndTxn, RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
                                "\"fatal\":true"}),
    [](const ::testing::TestParamInfo<Injection>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace triaged
