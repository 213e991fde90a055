// A poison pill in every position of a batch: seven batches of seven messages on one partition
// of the spans topic, batch k holding a malformed message at position k. Each pill is on the
// dead-letter topic with its reason, source topic/partition/offset and original bytes; every
// good message is routed exactly as `replay` routes them. Both guarantees.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <fstream>

#include "tests/integration/integration_util.h"
#include "tests/param_name.h"

namespace triaged {
namespace {

using namespace ::triaged::it;  // NOLINT(google-build-using-namespace)

struct Pill {
  std::string bytes;
  std::string reason;
};

std::vector<Pill> Pills() {
  return {{"this is not json", "invalid_json"},
          {"", "empty_payload"},
          {R"({"trace_id":7,"span_id":"a1","name":"x"})", "wrong_type"},
          {R"({"span_id":"a1","name":"no trace"})", "missing_trace_id"},
          {R"({"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":)", "invalid_json"},
          {std::string(100, '[') + std::string(100, ']'), "too_deep"},
          {"{\"trace_id\":\"\xff\xfe\",\"span_id\":\"a1\"}", "invalid_json"}};
}

// Six good spans: two traces of three, one with an error.
std::vector<std::string> GoodSpans(int batch) {
  std::vector<std::string> out;
  for (int trace = 0; trace < 2; ++trace) {
    char id[33];
    std::snprintf(id, sizeof id, "%08x%08x%08x%08x", 0xb0b0 + batch, trace, 0xc0ffee, 7);
    for (int span = 0; span < 3; ++span) {
      char span_id[17], root_id[17];
      std::snprintf(span_id, sizeof span_id, "%015x%x", 0xa0 + trace, span);
      std::snprintf(root_id, sizeof root_id, "%015x%x", 0xa0 + trace, 0);
      const std::string parent = span == 0 ? "null" : std::string("\"") + root_id + "\"";
      out.push_back(std::string(R"({"trace_id":")") + id + R"(","span_id":")" + span_id +
                    R"(","parent_span_id":)" + parent + R"(,"name":"step )" + std::to_string(span) +
                    R"(","start_time_unix_nano":1793527200000000000,"end_time_unix_nano":)" +
                    std::to_string(1793527200000000000LL + (span + 1) * 100'000'000LL) +
                    R"(,"status":")" + (trace == 1 && span == 2 ? "error" : "ok") +
                    R"(","attributes":{"session.id":"s-1"}})");
    }
  }
  return out;
}

// Sends `values` to partition 0 of `topic` as one batch (one linger window, then flush).
void ProduceBatch(const std::string& topic, const std::vector<std::string>& values) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", Bootstrap().c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "linger.ms", "200", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(producer, nullptr) << err;
  for (const std::string& v : values) {
    ASSERT_EQ(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_VALUE(const_cast<char*>(v.data()), v.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  EXPECT_EQ(rd_kafka_flush(producer, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(producer);
}

class PoisonPill : public ::testing::TestWithParam<std::string> {};

TEST_P(PoisonPill, InEveryPositionOfABatch) {
  if (Bootstrap().empty()) GTEST_SKIP() << "no Kafka broker (scripts/kafka-dev.sh start)";
  TempDir dir;
  Topics t;
  for (const std::string* topic : {&t.spans, &t.feedback}) CreateTopic(*topic, 1);
  for (const std::string* topic :
       {&t.support, &t.agent, &t.regressions, &t.sessions, &t.dead_letter}) {
    CreateTopic(*topic, 1);
  }
  const std::string config =
      dir.Write("rules.yaml", WithGuarantee(WithoutLimits(ConfigFor(t)), GetParam()));
  const std::vector<Pill> pills = Pills();
  std::ofstream good(dir.path() + "/good.jsonl");
  for (size_t k = 0; k < pills.size(); ++k) {
    std::vector<std::string> batch = GoodSpans(static_cast<int>(k));
    for (const std::string& line : batch) good << line << '\n';
    batch.insert(batch.begin() + static_cast<std::ptrdiff_t>(k), pills[k].bytes);
    ProduceBatch(t.spans, batch);
  }
  good.close();
  const RouteSet want = Expected(config, dir.path() + "/good.jsonl");
  ASSERT_GE(want.size(), pills.size());  // the error trace of every batch at least

  const std::string log = dir.path() + "/daemon.log";
  Daemon daemon(config, log);
  std::vector<Consumed> dead;
  EXPECT_EQ(WaitForRoutes(t, want.size(), pills.size(), &dead), want) << ReadFile(log);
  ASSERT_EQ(dead.size(), pills.size()) << ReadFile(log);
  const int64_t batch_size = 7;
  for (const Consumed& c : dead) {
    rapidjson::Document d;
    d.Parse(c.payload.c_str());
    ASSERT_TRUE(d.IsObject() && d["offset"].IsInt64()) << c.payload;
    const int64_t offset = d["offset"].GetInt64();
    const size_t k = static_cast<size_t>(offset / batch_size);
    ASSERT_LT(k, pills.size()) << c.payload;
    EXPECT_EQ(offset % batch_size, static_cast<int64_t>(k)) << "pill not where it was put";
    EXPECT_EQ(d["reason"].GetString(), pills[k].reason) << c.payload;
    EXPECT_EQ(d["topic"].GetString(), t.spans);
    EXPECT_EQ(d["partition"].GetInt(), 0);
    if (d.HasMember("payload")) {
      EXPECT_EQ(d["payload"].GetString(), pills[k].bytes);
    } else {
      EXPECT_TRUE(d.HasMember("payload_base64")) << c.payload;  // bytes that are not UTF-8
    }
  }
  EXPECT_EQ(daemon.Stop(SIGTERM, std::chrono::seconds(40)), 0) << ReadFile(log);
}

INSTANTIATE_TEST_SUITE_P(Guarantees, PoisonPill, ::testing::Values("at_least_once", "exactly_once"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return ::triaged::testing::ParamName(p.param);
                         });

}  // namespace
}  // namespace triaged
