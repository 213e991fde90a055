#include "daemon/kafka_client.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "daemon/kafka_errors.h"

namespace triaged {

Result<void> SetProperty(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    return MakeError("invalid_setting", key + ": " + Redact(err));
  }
  return {};
}

Result<KafkaConf> BaseConf(const std::string& bootstrap) {
  KafkaConf conf(rd_kafka_conf_new());
  LogKafkaClientAsJson(conf.get());
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"bootstrap.servers", bootstrap},
                                   {"client.id", "triaged"}}) {
    if (Result<void> set = SetProperty(conf.get(), key, value); !set.ok()) return set.error();
  }
  return conf;
}

Result<void> ApplyUserProperties(rd_kafka_conf_t* conf, const Config& config) {
  for (const auto& [key, value] : config.kafka.properties) {
    if (Result<void> set = SetProperty(conf, key, value); !set.ok()) return set;
  }
  return {};
}

namespace {

// `settings` in order, then the user's properties.
Result<KafkaConf> ConfWith(const Config& config, const std::string& bootstrap,
                           const std::vector<std::pair<std::string, std::string>>& settings) {
  Result<KafkaConf> conf = BaseConf(bootstrap);
  if (!conf.ok()) return conf;
  for (const auto& [key, value] : settings) {
    if (Result<void> set = SetProperty(conf->get(), key, value); !set.ok()) return set.error();
  }
  if (Result<void> user = ApplyUserProperties(conf->get(), config); !user.ok()) {
    return user.error();
  }
  return conf;
}

Result<KafkaHandle> NewClient(rd_kafka_type_t type, KafkaConf conf, const char* what) {
  char err[512];
  rd_kafka_t* client = rd_kafka_new(type, conf.release(), err, sizeof err);
  if (client == nullptr) return MakeError("client", std::string("cannot create ") + what + ": " + err);
  return KafkaHandle(client);
}

void SetCallbacks(rd_kafka_conf_t* conf, const ClientCallbacks& callbacks) {
  if (callbacks.rebalance != nullptr) rd_kafka_conf_set_rebalance_cb(conf, callbacks.rebalance);
  if (callbacks.error != nullptr) rd_kafka_conf_set_error_cb(conf, callbacks.error);
  if (callbacks.delivery != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, callbacks.delivery);
  rd_kafka_conf_set_opaque(conf, callbacks.opaque);
}

}  // namespace

Result<KafkaHandle> NewGroupConsumer(const Config& config, const std::string& bootstrap,
                                     const std::string& instance_id,
                                     const ClientCallbacks& callbacks) {
  Result<KafkaConf> conf = ConfWith(config, bootstrap,
                                    {{"group.id", config.kafka.group_id},
                                     // Inputs written in transactions are read once committed.
                                     {"isolation.level", "read_committed"},
                                     {"enable.auto.commit", "false"},
                                     {"enable.auto.offset.store", "false"},
                                     {"auto.offset.reset", "earliest"},
                                     {"partition.assignment.strategy", "range"},
                                     {"group.instance.id", instance_id}});
  if (!conf.ok()) return MakeError("settings", "invalid consumer settings: " + conf.error().message);
  SetCallbacks(conf->get(), callbacks);
  Result<KafkaHandle> consumer = NewClient(RD_KAFKA_CONSUMER, std::move(conf.value()), "consumer");
  if (consumer.ok()) rd_kafka_poll_set_consumer(consumer->get());
  return consumer;
}

Result<KafkaHandle> NewProducer(const Config& config, const std::string& bootstrap,
                                const std::string& transactional_id,
                                const ClientCallbacks& callbacks, int& max_queued) {
  Result<KafkaConf> conf =
      ConfWith(config, bootstrap, {{"enable.idempotence", "true"}, {"linger.ms", "5"}});
  if (conf.ok() && !transactional_id.empty()) {
    if (Result<void> set = SetProperty(conf->get(), "transactional.id", transactional_id);
        !set.ok()) {
      conf = set.error();
    }
  }
  if (!conf.ok()) return MakeError("settings", "invalid producer settings: " + conf.error().message);
  char value[64];
  size_t value_size = sizeof value;
  if (rd_kafka_conf_get(conf->get(), "queue.buffering.max.messages", value, &value_size) ==
      RD_KAFKA_CONF_OK) {
    max_queued = std::max(10, std::atoi(value));
  }
  SetCallbacks(conf->get(), callbacks);
  Result<KafkaHandle> producer = NewClient(RD_KAFKA_PRODUCER, std::move(conf.value()), "producer");
  if (!producer.ok() || transactional_id.empty()) return producer;
  if (KafkaError e{rd_kafka_init_transactions(producer->get(), 60000)}) {
    return MakeError("transactions", "cannot initialize transactions for " + transactional_id +
                                         ": " + rd_kafka_error_string(e.get()));
  }
  return producer;
}

Result<KafkaHandle> NewDecisionsReader(const Config& config, const std::string& bootstrap) {
  Result<KafkaConf> conf = ConfWith(config, bootstrap,
                                    {{"group.id", config.kafka.group_id + ".decisions-reader"},
                                     {"enable.auto.commit", "false"},
                                     {"enable.partition.eof", "true"},
                                     {"isolation.level", "read_committed"}});
  if (!conf.ok()) return MakeError("settings", "invalid consumer settings: " + conf.error().message);
  Result<KafkaHandle> reader =
      NewClient(RD_KAFKA_CONSUMER, std::move(conf.value()), "the decisions reader");
  if (reader.ok()) rd_kafka_poll_set_consumer(reader->get());
  return reader;
}

Result<int> PartitionCount(rd_kafka_t* client, const std::string& topic,
                           const std::function<bool()>& stop) {
  std::unique_ptr<rd_kafka_topic_t, kafka_detail::Destroy> t(
      rd_kafka_topic_new(client, topic.c_str(), nullptr));
  // Up to 15 s in 1 s steps, serving the client's errors in between: a failed authentication
  // stops it at once with the reason.
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
  KafkaMetadata md;
  for (int attempt = 0; attempt < 15 && !stop(); ++attempt) {
    const rd_kafka_metadata_t* raw = nullptr;
    e = rd_kafka_metadata(client, 0, t.get(), &raw, 1000);
    md.reset(raw);
    if (e != RD_KAFKA_RESP_ERR__TIMED_OUT && e != RD_KAFKA_RESP_ERR__TRANSPORT) break;
    KafkaMessage served(rd_kafka_consumer_poll(client, 0));
  }
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
      md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    return md->topics[0].partition_cnt;
  }
  const std::string why = e != RD_KAFKA_RESP_ERR_NO_ERROR || !md
                              ? rd_kafka_err2str(e)
                              : rd_kafka_err2str(md->topics[0].err);
  return MakeError("metadata", why);
}

std::vector<std::string> MissingTopics(rd_kafka_t* client,
                                       const std::vector<std::string>& wanted) {
  const rd_kafka_metadata_t* raw = nullptr;
  if (rd_kafka_metadata(client, 1, nullptr, &raw, 15000) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  KafkaMetadata md(raw);
  std::set<std::string> existing;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) existing.insert(md->topics[i].topic);
  }
  std::vector<std::string> missing;
  for (const std::string& topic : wanted) {
    if (existing.count(topic) == 0) missing.push_back(topic);
  }
  return missing;
}

bool ClusterAnswers(rd_kafka_t* client, int timeout_ms) {
  const rd_kafka_metadata_t* raw = nullptr;
  const bool ok = rd_kafka_metadata(client, 0, nullptr, &raw, timeout_ms) ==
                  RD_KAFKA_RESP_ERR_NO_ERROR;
  KafkaMetadata md(raw);
  return ok;
}

}  // namespace triaged
