// What the pipeline asks of Kafka, as an interface: the group consumer of the inputs, the
// producer of routed items and dead letters (with transactions for exactly-once), and the
// decisions topic. LibrdkafkaClient (kafka_client.h) is the real one; tests use a fake.
// Events (messages, rebalances, delivery reports, client errors) reach a KafkaListener from
// inside the polls, on the caller's thread.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/exactly_once.h"
#include "rules/result.h"

namespace triaged {

using std::chrono::milliseconds;

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = RD_KAFKA_OFFSET_INVALID;  // Kafka semantics: the next message to read
  friend bool operator==(const TopicPartition&, const TopicPartition&) = default;
};
using TopicPartitions = std::vector<TopicPartition>;

// A consumed message (or a consumer error, `err` set); its views are valid during the call.
struct InputMessage {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string_view error_text;
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> payload;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// A message to produce. `partition` -1 lets the partitioner choose.
struct OutputRecord {
  const std::string& topic;
  std::string_view key;
  std::string_view value;
  const Headers& headers;
  int32_t partition = -1;
  bool tombstone = false;  // no value at all (a delete in a compacted topic), not an empty one
  // The value stays as it is until the record's delivery report: the client need not copy it.
  bool value_held = false;
};

// The outcome of a transaction call: ok, or an error and what it allows.
struct TxnError {
  std::string message;
  bool fatal = false;
  bool retriable = false;
};
using TxnResult = Result<void, TxnError>;

class KafkaListener {
 public:
  virtual ~KafkaListener() = default;
  virtual void OnMessage(const InputMessage& message) = 0;
  // The group assigned or revoked these partitions; the client assigns or unassigns after.
  virtual void OnAssigned(const TopicPartitions& partitions) = 0;
  virtual void OnRevoked(const TopicPartitions& partitions) = 0;
  // A produced message's delivery report; `opaque` is what Produce was given.
  virtual void OnDelivery(void* opaque, rd_kafka_resp_err_t err, std::string_view topic) = 0;
  virtual void OnClientError(rd_kafka_resp_err_t err, std::string_view reason, bool producer) = 0;
};

class KafkaClient {
 public:
  virtual ~KafkaClient() = default;

  // --- the group consumer
  virtual Result<void> Subscribe(const std::vector<std::string>& topics) = 0;
  // Waits up to `wait` for a message and hands it to the listener; serves rebalances and errors
  // meanwhile. True when a message (or a consumer error) was handed over.
  virtual bool Poll(milliseconds wait) = 0;
  // `sync`: waits for the broker's answer, at most `timeout`.
  virtual Result<void> Commit(const TopicPartitions& offsets, bool sync,
                              milliseconds timeout = std::chrono::seconds(60)) = 0;
  // The committed offsets of `partitions` (offset < 0: none).
  virtual Result<TopicPartitions> Committed(const TopicPartitions& partitions) = 0;
  virtual Result<void> Seek(const TopicPartitions& offsets) = 0;
  virtual void PauseAssigned(bool pause) = 0;
  // Low and high watermarks last seen, if any.
  virtual std::optional<std::pair<int64_t, int64_t>> Watermarks(const std::string& topic,
                                                                int32_t partition) = 0;
  // The group fenced this member (FENCED_INSTANCE_ID: another join with our instance id).
  virtual bool Fenced() = 0;
  // A new consumer in place of a fenced one (which is dropped without leaving the group).
  virtual Result<void> ReplaceConsumer() = 0;
  // Leaves the group, waiting at most `timeout` for the broker; false if it did not answer.
  virtual bool CloseConsumer(milliseconds timeout) = 0;
  // Shutdown past its deadline, just before the process exits: drops what the producer still
  // holds and lets go of every client without waiting for the broker; what was not committed
  // is read again after a restart. The client is unusable afterwards.
  virtual void Abandon() = 0;

  // --- metadata
  // `stop()` true gives up early (a failed authentication, say).
  virtual Result<int> PartitionCount(const std::string& topic,
                                     const std::function<bool()>& stop) = 0;
  virtual std::vector<std::string> MissingTopics(const std::vector<std::string>& wanted) = 0;
  virtual bool ClusterAnswers(milliseconds timeout) = 0;

  // --- the producer
  // Creates the producer (transactional when the client was made with a transactional id, which
  // initializes transactions and fences an earlier producer with that id).
  virtual Result<void> StartProducer() = 0;
  // RD_KAFKA_RESP_ERR__QUEUE_FULL: serve PollProducer and try again.
  virtual rd_kafka_resp_err_t Produce(const OutputRecord& record, void* opaque) = 0;
  virtual void PollProducer(milliseconds wait) = 0;
  virtual void Flush(milliseconds timeout) = 0;
  virtual int InFlight() = 0;
  // The producer cannot deliver anything any more.
  virtual bool ProducerFailed() = 0;
  int max_queued() const { return max_queued_; }  // queue.buffering.max.messages

  // --- transactions (a transactional producer)
  virtual TxnResult BeginTransaction() = 0;
  virtual TxnResult SendOffsetsToTransaction(const TopicPartitions& offsets,
                                             milliseconds timeout) = 0;
  virtual TxnResult CommitTransaction(milliseconds timeout) = 0;
  virtual TxnResult AbortTransaction(milliseconds timeout) = 0;
  // Drops what the producer holds and makes a new one (which fences the old for good).
  virtual Result<void> ReplaceProducer() = 0;

  // --- the repartition topic (DESIGN §1.4)
  // Creates it (`partitions` partitions, deleted after `retention_ms`) unless it exists;
  // returns its partition count.
  virtual Result<int> EnsureRepartitionTopic(const std::string& topic, int partitions,
                                             int64_t retention_ms) = 0;

  // --- the trace store's changelog (DESIGN §6): compacted, one partition per join partition
  // Creates it unless it exists; returns its partition count.
  virtual Result<int> EnsureChangelogTopic(const std::string& topic, int partitions) = 0;
  // The partition's [low, high) offsets, asked of the broker.
  virtual Result<std::pair<int64_t, int64_t>> ChangelogWatermarks(const std::string& topic,
                                                                  int32_t partition) = 0;
  // Reads the partition's committed records from `from` to its end (value empty: a delete).
  using ChangelogSink = std::function<void(int64_t offset, std::string_view key,
                                           std::optional<std::string_view> value)>;
  virtual Result<uint64_t> ReadChangelog(const std::string& topic, int32_t partition, int64_t from,
                                         const ChangelogSink& sink) = 0;

  // --- the decisions topic (exactly-once)
  virtual Result<void> EnsureDecisionsTopic(const std::string& topic, int partitions,
                                            int64_t retention_ms) = 0;
  virtual Result<uint64_t> ReadDecisions(const std::string& topic,
                                         const std::vector<int32_t>& partitions,
                                         const DecisionSink& sink) = 0;

 protected:
  int max_queued_ = 100'000;
};

}  // namespace triaged
