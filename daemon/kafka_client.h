// The daemon's Kafka client layer on librdkafka: RAII handles, the client settings (ours, then
// the user's `kafka.properties`), creating the group consumer, the producer and the decisions
// reader, the topic checks made at start, and LibrdkafkaClient, the KafkaClient the daemon runs
// on.
#pragma once

#include <librdkafka/rdkafka.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/kafka.h"
#include "rules/result.h"

namespace triaged {

namespace kafka_detail {
struct Destroy {
  void operator()(rd_kafka_t* h) const { rd_kafka_destroy(h); }
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
  void operator()(rd_kafka_consumer_group_metadata_t* g) const {
    rd_kafka_consumer_group_metadata_destroy(g);
  }
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
  void operator()(rd_kafka_headers_t* h) const { rd_kafka_headers_destroy(h); }
};
}  // namespace kafka_detail

using KafkaHandle = std::unique_ptr<rd_kafka_t, kafka_detail::Destroy>;
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, kafka_detail::Destroy>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, kafka_detail::Destroy>;
using KafkaError = std::unique_ptr<rd_kafka_error_t, kafka_detail::Destroy>;
using KafkaMetadata = std::unique_ptr<const rd_kafka_metadata_t, kafka_detail::Destroy>;
using KafkaMessage = std::unique_ptr<rd_kafka_message_t, kafka_detail::Destroy>;
using KafkaTopic = std::unique_ptr<rd_kafka_topic_t, kafka_detail::Destroy>;
using KafkaNewTopic = std::unique_ptr<rd_kafka_NewTopic_t, kafka_detail::Destroy>;
using KafkaQueue = std::unique_ptr<rd_kafka_queue_t, kafka_detail::Destroy>;
using KafkaEvent = std::unique_ptr<rd_kafka_event_t, kafka_detail::Destroy>;
using KafkaHeaders = std::unique_ptr<rd_kafka_headers_t, kafka_detail::Destroy>;
using GroupMetadata = std::unique_ptr<rd_kafka_consumer_group_metadata_t, kafka_detail::Destroy>;

inline PartitionList NewPartitionList(int size = 8) {
  return PartitionList(rd_kafka_topic_partition_list_new(size));
}

// Client settings shared by every client; `kafka.properties` are applied last, so they win.
Result<KafkaConf> BaseConf(const std::string& bootstrap);
Result<void> SetProperty(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);
Result<void> ApplyUserProperties(rd_kafka_conf_t* conf, const Config& config);

class LibrdkafkaClient final : public KafkaClient {
 public:
  // Creates the group consumer; the producer comes with StartProducer(). A non-empty
  // `transactional_id` makes the producer transactional.
  static Result<std::unique_ptr<LibrdkafkaClient>> Connect(const Config& config,
                                                           const std::string& bootstrap,
                                                           const std::string& instance_id,
                                                           const std::string& transactional_id,
                                                           KafkaListener& listener);
  Result<void> StartProducer() override;
  ~LibrdkafkaClient() override;

  Result<void> Subscribe(const std::vector<std::string>& topics) override;
  bool Poll(milliseconds wait) override;
  Result<void> Commit(const TopicPartitions& offsets, bool sync, milliseconds timeout) override;
  Result<TopicPartitions> Committed(const TopicPartitions& partitions) override;
  Result<void> Seek(const TopicPartitions& offsets) override;
  void PauseAssigned(bool pause) override;
  std::optional<std::pair<int64_t, int64_t>> Watermarks(const std::string& topic,
                                                        int32_t partition) override;
  bool Fenced() override;
  Result<void> ReplaceConsumer() override;
  bool CloseConsumer(milliseconds timeout) override;
  void Abandon() override;
  Result<int> PartitionCount(const std::string& topic, const std::function<bool()>& stop) override;
  std::vector<std::string> MissingTopics(const std::vector<std::string>& wanted) override;
  bool ClusterAnswers(milliseconds timeout) override;
  rd_kafka_resp_err_t Produce(const OutputRecord& record, void* opaque) override;
  void PollProducer(milliseconds wait) override;
  void Flush(milliseconds timeout) override;
  int InFlight() override;
  bool ProducerFailed() override;
  TxnResult BeginTransaction() override;
  TxnResult SendOffsetsToTransaction(const TopicPartitions& offsets, milliseconds timeout) override;
  TxnResult CommitTransaction(milliseconds timeout) override;
  TxnResult AbortTransaction(milliseconds timeout) override;
  Result<void> ReplaceProducer() override;
  Result<int> EnsureRepartitionTopic(const std::string& topic, int partitions,
                                     int64_t retention_ms) override;
  Result<void> EnsureDecisionsTopic(const std::string& topic, int partitions,
                                    int64_t retention_ms) override;
  Result<uint64_t> ReadDecisions(const std::string& topic, const std::vector<int32_t>& partitions,
                                 const DecisionSink& sink) override;
  Result<int> EnsureChangelogTopic(const std::string& topic, int partitions) override;
  Result<std::pair<int64_t, int64_t>> ChangelogWatermarks(const std::string& topic,
                                                          int32_t partition) override;
  Result<uint64_t> ReadChangelog(const std::string& topic, int32_t partition, int64_t from,
                                 const ChangelogSink& sink) override;

 private:
  LibrdkafkaClient(const Config& config, std::string bootstrap, std::string instance_id,
                   std::string transactional_id, KafkaListener& listener);
  Result<void> NewConsumer();

  static void OnConsumerError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void OnProducerError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque);
  static void OnDeliveryReport(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);

  const Config& config_;
  std::string bootstrap_;
  std::string instance_id_;
  std::string transactional_id_;
  KafkaListener& listener_;
  KafkaHandle consumer_;
  KafkaHandle producer_;
  KafkaHandle decisions_reader_;
};

}  // namespace triaged
