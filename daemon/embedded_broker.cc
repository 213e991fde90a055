#include "daemon/embedded_broker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <set>

#include "config/config.h"
#include "daemon/kafka_client.h"

namespace triaged {

Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::Start(int brokers) {
  std::unique_ptr<EmbeddedBroker> b(new EmbeddedBroker());
  KafkaConf conf(rd_kafka_conf_new());
  char err[512];
  // The owning handle never connects anywhere; keep it from logging that it has no brokers.
  if (rd_kafka_conf_set(conf.get(), "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf.get(), "client.id", "triaged-embedded-broker", err, sizeof err) !=
          RD_KAFKA_CONF_OK) {
    return MakeError("embedded_broker", err);
  }
  b->handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof err);
  if (b->handle_ != nullptr) conf.release();  // the handle owns it now
  if (b->handle_ == nullptr) return MakeError("embedded_broker", err);
  b->cluster_ = rd_kafka_mock_cluster_new(b->handle_, brokers);
  if (b->cluster_ == nullptr) {
    return MakeError("embedded_broker", "cannot start librdkafka's mock cluster");
  }
  b->bootstrap_ = rd_kafka_mock_cluster_bootstraps(b->cluster_);
  return b;
}

EmbeddedBroker::~EmbeddedBroker() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
  if (handle_ != nullptr) rd_kafka_destroy(handle_);
}

Result<void> EmbeddedBroker::CreateTopic(const std::string& name, int partitions) {
  const rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
    return MakeError("embedded_broker", "cannot create topic " + name + ": " + rd_kafka_err2str(e));
  }
  return {};
}

Result<void> EmbeddedBroker::CreateTopicsFor(const Config& config, int partitions) {
  for (const std::string& topic : ConfigTopics(config)) TRIAGED_TRY(CreateTopic(topic, partitions));
  return {};
}

std::vector<std::string> ConfigTopics(const Config& config) {
  std::vector<std::string> topics = {config.inputs.spans_topic, config.inputs.feedback_topic};
  std::set<std::string> seen(topics.begin(), topics.end());
  auto add = [&](const std::string& t) {
    if (seen.insert(t).second) topics.push_back(t);
  };
  if (config.rules) {
    for (const DestinationSpec& d : config.rules->destinations) add(d.topic);
  }
  add(config.dead_letter_topic);
  return topics;
}

}  // namespace triaged
