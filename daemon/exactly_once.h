// Pieces of `guarantee: exactly_once` (DESIGN §6). Routed items, dead letters, a decision record
// per routed (trace, rule, destination) and the input offsets are committed in one Kafka
// transaction (KIP-447: the offsets carry the consumer group's metadata). The decision records
// live in the compacted topic `<group_id>.decisions`, partition p for input partition p; whoever
// is assigned partition p reads them first, so a pair routed by an earlier process — whose input
// offsets were not committed past it because an older trace was still open — is never routed
// again. Beside them, the state of each rate-limit bucket a routed item took a token from
// (DESIGN §2.3), so the next owner of the partition goes on spending the same share.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rules/engine.h"
#include "rules/result.h"

typedef struct rd_kafka_s rd_kafka_t;

namespace triaged {

struct Config;

std::string DecisionsTopic(const Config& config);

// Retention of decision records: as long as an input event of their trace may be read again
// (max_wait), late feedback may come (late_feedback_window) or a limit's bucket takes to
// refill (its `per`), with an hour to spare.
int64_t DecisionsRetentionMs(const Config& config);

// The value of a decision record: a routed item (keyed by its id), or a message sent to the
// dead-letter topic (keyed "dead-letter/<topic>/<partition>/<offset>").
std::string DecisionRecord(const Route& route);
std::string DeadLetterDecisionKey(std::string_view topic, int32_t partition, int64_t offset);
std::string DeadLetterDecisionRecord(std::string_view topic, int32_t partition, int64_t offset);

// A bucket's state after a routed item took a token from it, keyed
// "bucket/<partition>/<rule|destination>/<name>": compaction keeps the latest of each bucket.
std::string BucketDecisionKey(const BucketState& bucket);
std::string BucketDecisionRecord(const BucketState& bucket);

struct Decision {
  std::string trace_id, rule, destination;  // a routed item
  std::string dead_letter_topic;            // or a dead letter: the input message's place
  int64_t dead_letter_offset = -1;
  std::optional<BucketState> bucket;  // or a rate-limit bucket's state
};
Result<Decision> ParseDecisionRecord(std::string_view value);

// This process's stable name on this host, "<group_id>-<host>-<slot>", the slot being the
// lowest one free: an flock on a file in $TMPDIR held for the life of the process. A restarted
// instance takes its predecessor's name, replicas on one host get different ones. It is the
// consumer's group.instance.id (static membership: a restart takes its partitions back without
// waiting for the session timeout) and, for exactly-once, the producer's transactional.id
// (initializing transactions aborts what the predecessor left open at once, instead of after
// transaction.timeout.ms). `group.instance.id` / `transactional.id` in kafka.properties win.
class InstanceId {
 public:
  static Result<InstanceId> Choose(const Config& config);
  InstanceId(InstanceId&& other) noexcept;
  InstanceId& operator=(InstanceId&& other) noexcept;
  InstanceId(const InstanceId&) = delete;
  InstanceId& operator=(const InstanceId&) = delete;
  ~InstanceId();
  const std::string& id() const { return id_; }

 private:
  InstanceId() = default;
  std::string id_;
  int lock_fd_ = -1;
};

// Creates `topic` with `partitions` partitions and `configs` unless it exists; returns its
// partition count. `admin` is any client handle.
Result<int> EnsureTopic(rd_kafka_t* admin, const std::string& topic, int partitions,
                        const std::vector<std::pair<std::string, std::string>>& configs);

// Creates the decisions topic (compact,delete; `partitions` partitions) unless it exists, and
// checks an existing one has at least `partitions` partitions. `admin` is any client handle.
Result<void> EnsureDecisionsTopic(rd_kafka_t* admin, const std::string& topic, int partitions,
                                  int64_t retention_ms);

// Reads the committed records of `topic` from each (partition, offset) to the partition's end,
// handing each to `sink` (`value` empty for a tombstone). `what` names the topic in errors.
using RecordSink = std::function<void(int32_t partition, int64_t offset, std::string_view key,
                                      std::optional<std::string_view> value)>;
Result<uint64_t> ReadRecords(rd_kafka_t* reader, const std::string& topic,
                             const std::vector<std::pair<int32_t, int64_t>>& from,
                             const RecordSink& sink, int timeout_ms, const char* what);

// Reads the committed decision records of `partitions` from the beginning to their end.
using DecisionSink = std::function<void(int32_t partition, const Decision&)>;
Result<uint64_t> ReadDecisions(rd_kafka_t* reader, const std::string& topic,
                               const std::vector<int32_t>& partitions, const DecisionSink& sink,
                               int timeout_ms);

}  // namespace triaged
