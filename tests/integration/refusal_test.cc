// Records the broker refuses for good, on the real broker: a destination whose topic takes
// messages of at most 20,000 bytes. The routed item that does not fit goes to the dead-letter
// topic (reason produce_refused, with its id) and the partition moves on — offsets committed,
// nothing routed twice after a restart — in both guarantees. An item over max_item_bytes is
// cut to fit instead of being refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <fstream>

#include "daemon/kafka_client.h"
#include "rules/routed_item.h"
#include "tests/integration/integration_util.h"
#include "tests/param_name.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)
using ::testing::HasSubstr;

constexpr const char* kBig = "b16b00b5000000000000000000000001";
constexpr const char* kSmall = "5a11000000000000000000000000a001";

// Sets a topic's configuration through the Admin API (AlterConfigs).
void SetTopicConfig(const std::string& topic, const char* name, const char* value) {
  char err[512];
  KafkaConf conf(rd_kafka_conf_new());
  ASSERT_EQ(
      rd_kafka_conf_set(conf.get(), "bootstrap.servers", Bootstrap().c_str(), err, sizeof err),
      RD_KAFKA_CONF_OK);
  KafkaHandle admin(rd_kafka_new(RD_KAFKA_PRODUCER, conf.release(), err, sizeof err));
  ASSERT_TRUE(admin) << err;
  rd_kafka_ConfigResource_t* res =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  rd_kafka_ConfigResource_set_config(res, name, value);
  KafkaQueue queue(rd_kafka_queue_new(admin.get()));
  rd_kafka_AlterConfigs(admin.get(), &res, 1, nullptr, queue.get());
  KafkaEvent ev(rd_kafka_queue_poll(queue.get(), 30000));
  rd_kafka_ConfigResource_destroy(res);
  ASSERT_TRUE(ev);
  ASSERT_EQ(rd_kafka_event_error(ev.get()), RD_KAFKA_RESP_ERR_NO_ERROR)
      << rd_kafka_event_error_string(ev.get());
}

std::string Span(const std::string& trace, const std::string& output) {
  return "{\"trace_id\":\"" + trace +
         "\",\"span_id\":\"a1\",\"name\":\"chat\","
         "\"start_time\":\"2026-11-01T10:00:00Z\",\"end_time\":\"2026-11-01T10:00:01Z\","
         "\"output\":\"" +
         output + "\"}";
}

class Refusal : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  }
};

TEST_P(Refusal, ARefusedItemIsDeadLetteredAndThePartitionMovesOn) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  ASSERT_NO_FATAL_FAILURE(SetTopicConfig(t.support, "max.message.bytes", "20000"));
  const std::string config = dir.Write("rules.yaml", WithGuarantee(ConfigFor(t), GetParam()));
  // A trace with a thumbs-down and a 100 KB answer; once its item is refused, a small one.
  ASSERT_NO_FATAL_FAILURE(
      Produce(dir, t.spans, {std::string(kBig) + "\t" + Span(kBig, std::string(100'000, 'x'))}));
  ASSERT_NO_FATAL_FAILURE(
      Produce(dir, t.feedback,
              {std::string(kBig) + "\t{\"trace_id\":\"" + kBig + "\",\"thumbs\":\"down\"}"}));
  const std::string log = dir.path() + "/first.log";
  {
    Daemon daemon(config, log);
    ASSERT_TRUE(WaitForLog(log, "routed item refused by the broker")) << ReadFile(log);
    ASSERT_NO_FATAL_FAILURE(
        Produce(dir, t.spans, {std::string(kSmall) + "\t" + Span(kSmall, "ok")}));
    ASSERT_NO_FATAL_FAILURE(
        Produce(dir, t.feedback,
                {std::string(kSmall) + "\t{\"trace_id\":\"" + kSmall + "\",\"thumbs\":\"down\"}"}));
    std::vector<Consumed> dead;
    // support-review takes the small item; regressions (1 MB) takes both.
    const RouteSet got = WaitForRoutes(t, 3, 1, &dead);
    EXPECT_EQ(got, RouteSet({{kBig, "thumbs-down", "regressions"},
                             {kSmall, "thumbs-down", "regressions"},
                             {kSmall, "thumbs-down", "support-review"}}))
        << ReadFile(log);
    ASSERT_EQ(dead.size(), 1u) << ReadFile(log);
    rapidjson::Document d;
    d.Parse(dead[0].payload.c_str());
    ASSERT_TRUE(d.IsObject()) << dead[0].payload;
    EXPECT_STREQ(d["reason"].GetString(), "produce_refused");
    EXPECT_EQ(d["id"].GetString(), RoutedItemId(kBig, "thumbs-down", "support-review"));
    EXPECT_THAT(d["message"].GetString(), HasSubstr("too large"));
    EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
  }
  // Committed past both traces: a restart routes nothing again. Two more traces, produced
  // behind them in their partitions (same keys), are routed by the second run; by then the
  // first two would have been read and decided again had their offsets not been committed.
  constexpr const char* kAfter1 = "afe7000000000000000000000000b001";
  constexpr const char* kAfter2 = "afe7000000000000000000000000b002";
  ASSERT_NO_FATAL_FAILURE(Produce(dir, t.spans,
                                  {std::string(kBig) + "\t" + Span(kAfter1, "ok"),
                                   std::string(kSmall) + "\t" + Span(kAfter2, "ok")}));
  ASSERT_NO_FATAL_FAILURE(
      Produce(dir, t.feedback,
              {std::string(kBig) + "\t{\"trace_id\":\"" + kAfter1 + "\",\"thumbs\":\"down\"}",
               std::string(kSmall) + "\t{\"trace_id\":\"" + kAfter2 + "\",\"thumbs\":\"down\"}"}));
  const std::string again = dir.path() + "/second.log";
  Daemon second(config, again);
  std::vector<Consumed> dead;
  const RouteSet got = WaitForRoutes(t, 7, 1, &dead);
  EXPECT_EQ(got, RouteSet({{kBig, "thumbs-down", "regressions"},
                           {kSmall, "thumbs-down", "regressions"},
                           {kSmall, "thumbs-down", "support-review"},
                           {kAfter1, "thumbs-down", "regressions"},
                           {kAfter1, "thumbs-down", "support-review"},
                           {kAfter2, "thumbs-down", "regressions"},
                           {kAfter2, "thumbs-down", "support-review"}}))
      << ReadFile(again);
  EXPECT_EQ(dead.size(), 1u) << ReadFile(again);
  EXPECT_EQ(second.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(again);
}

// An item over max_item_bytes (here 64 KiB) is cut to fit: it reaches the topic, marked.
TEST_P(Refusal, AnItemOverMaxItemBytesIsCutToFit) {
  TempDir dir;
  Topics t;
  CreateTopics(t);
  const std::string config =
      dir.Write("rules.yaml", "max_item_bytes: 64KiB\n" + WithGuarantee(ConfigFor(t), GetParam()));
  ASSERT_NO_FATAL_FAILURE(
      Produce(dir, t.spans, {std::string(kBig) + "\t" + Span(kBig, std::string(300'000, 'x'))}));
  ASSERT_NO_FATAL_FAILURE(
      Produce(dir, t.feedback,
              {std::string(kBig) + "\t{\"trace_id\":\"" + kBig + "\",\"thumbs\":\"down\"}"}));
  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  const RouteSet got = WaitForRoutes(t, 2, 0);
  EXPECT_EQ(got.size(), 2u) << ReadFile(log);
  for (const Consumed& c : ReadTopic(t.support, Bootstrap())) {
    EXPECT_LE(c.payload.size(), 64u * 1024);
    EXPECT_THAT(c.payload, HasSubstr("\"truncated\":{\"bytes_before\":"));
  }
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

INSTANTIATE_TEST_SUITE_P(Guarantees, Refusal, ::testing::Values("at_least_once", "exactly_once"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace triaged
