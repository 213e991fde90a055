// The daemon's Kafka client layer: RAII handles for librdkafka objects, the client settings
// (ours, then the user's `kafka.properties`), creating the group consumer, the producer and the
// decisions reader, and the topic checks made at start (partition counts, missing outputs).
#pragma once

#include <librdkafka/rdkafka.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
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
};
}  // namespace kafka_detail

using KafkaHandle = std::unique_ptr<rd_kafka_t, kafka_detail::Destroy>;
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, kafka_detail::Destroy>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, kafka_detail::Destroy>;
using KafkaError = std::unique_ptr<rd_kafka_error_t, kafka_detail::Destroy>;
using KafkaMetadata = std::unique_ptr<const rd_kafka_metadata_t, kafka_detail::Destroy>;
using KafkaMessage = std::unique_ptr<rd_kafka_message_t, kafka_detail::Destroy>;
using GroupMetadata =
    std::unique_ptr<rd_kafka_consumer_group_metadata_t, kafka_detail::Destroy>;

inline PartitionList NewPartitionList(int size = 8) {
  return PartitionList(rd_kafka_topic_partition_list_new(size));
}

// Client settings shared by every client; `kafka.properties` are applied last, so they win.
Result<KafkaConf> BaseConf(const std::string& bootstrap);
Result<void> SetProperty(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);
Result<void> ApplyUserProperties(rd_kafka_conf_t* conf, const Config& config);

// The callbacks a client reports to; `opaque` is passed back to each.
struct ClientCallbacks {
  void* opaque = nullptr;
  void (*error)(rd_kafka_t*, int, const char*, void*) = nullptr;
  void (*rebalance)(rd_kafka_t*, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t*,
                    void*) = nullptr;
  void (*delivery)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr;
};

// The group consumer. Offsets are stored and committed by hand. The range assignor gives
// partition p of both co-partitioned topics to the same member, which joining traces requires;
// cooperative-sticky does not promise that.
Result<KafkaHandle> NewGroupConsumer(const Config& config, const std::string& bootstrap,
                                     const std::string& instance_id,
                                     const ClientCallbacks& callbacks);

// The producer: idempotent, so retries never duplicate a routed item within a session;
// transactional when `transactional_id` is not empty (it then fences an earlier producer with
// that id and aborts what it left open). `max_queued` receives queue.buffering.max.messages.
Result<KafkaHandle> NewProducer(const Config& config, const std::string& bootstrap,
                                const std::string& transactional_id,
                                const ClientCallbacks& callbacks, int& max_queued);

// A plain consumer (no group membership) that reads decision records on assignment.
Result<KafkaHandle> NewDecisionsReader(const Config& config, const std::string& bootstrap);

// The partition count of `topic`, asking for up to 15 s in 1 s steps and serving the client's
// callbacks in between; `stop()` true gives up early (a failed authentication, say).
Result<int> PartitionCount(rd_kafka_t* client, const std::string& topic,
                           const std::function<bool()>& stop);

// The topics of `wanted` the cluster does not have (empty when the cluster cannot be asked).
std::vector<std::string> MissingTopics(rd_kafka_t* client, const std::vector<std::string>& wanted);

// True when the cluster answers a metadata request within `timeout_ms`.
bool ClusterAnswers(rd_kafka_t* client, int timeout_ms);

}  // namespace triaged
