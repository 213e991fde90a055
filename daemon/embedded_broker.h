// The embedded broker: librdkafka's in-process mock cluster (`bootstrap_servers: embedded`, and
// `triaged broker`). It speaks the Kafka protocol on 127.0.0.1 ports, so kcat and other clients
// can use it, but it is not Kafka: it keeps messages in memory only, a few MB per partition,
// and has no transaction markers, SASL or TLS. For demos and fault injection; never the only
// proof that something works with Kafka.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rules/result.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace triaged {

struct Config;

// Partitions of every topic the embedded broker creates (inputs, destinations, dead letters).
constexpr int kEmbeddedPartitions = 4;

class EmbeddedBroker {
 public:
  // Starts a cluster of `brokers` brokers, each on an ephemeral 127.0.0.1 port.
  static Result<std::unique_ptr<EmbeddedBroker>> Start(int brokers = 1);
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // "127.0.0.1:PORT[,...]", for bootstrap.servers.
  const std::string& bootstrap() const { return bootstrap_; }

  // Creates a topic; an existing topic is left as it is.
  Result<void> CreateTopic(const std::string& name, int partitions);
  // The topics a config names: both inputs (co-partitioned), every destination, dead letters.
  Result<void> CreateTopicsFor(const Config& config, int partitions = kEmbeddedPartitions);

  // For fault injection (rd_kafka_mock_broker_set_down, push_request_errors, ...).
  rd_kafka_mock_cluster_t* cluster() const { return cluster_; }

 private:
  EmbeddedBroker() = default;
  rd_kafka_t* handle_ = nullptr;  // the client instance that owns the cluster
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
};

// The topics of `config` the daemon reads and writes, inputs first.
std::vector<std::string> ConfigTopics(const Config& config);

}  // namespace triaged
