// An in-memory KafkaClient for unit tests of the pipeline and the committers: topics of
// partitions of records, one group member that is assigned every partition of what it
// subscribes to, committed offsets, a producer whose delivery reports come on the next poll,
// and transactions whose records and offsets become visible only when committed. Faults are
// injected by setting the public knobs.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon/kafka.h"

namespace triaged::testing {

struct FakeRecord {
  std::optional<std::string> key;
  std::optional<std::string> value;
  Headers headers;
  std::string Header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
};

class FakeKafka final : public KafkaClient {
 public:
  explicit FakeKafka(KafkaListener& listener, bool transactional = false)
      : listener_(listener), transactional_(transactional) {}

  // --- test set-up and inspection
  void CreateTopic(const std::string& topic, int partitions) {
    topics_[topic].resize(static_cast<size_t>(partitions));
  }
  void Append(const std::string& topic, int32_t partition, std::optional<std::string> key,
              std::optional<std::string> value) {
    topics_.at(topic)
        .at(static_cast<size_t>(partition))
        .push_back({std::move(key), std::move(value), {}});
  }
  // Every visible record of a topic, partition by partition.
  std::vector<FakeRecord> Records(const std::string& topic) const {
    std::vector<FakeRecord> out;
    if (auto it = topics_.find(topic); it != topics_.end()) {
      for (const auto& partition : it->second)
        out.insert(out.end(), partition.begin(), partition.end());
    }
    return out;
  }
  const std::vector<FakeRecord>& RecordsOf(const std::string& topic, int32_t partition) const {
    return topics_.at(topic).at(static_cast<size_t>(partition));
  }
  int Partitions(const std::string& topic) const {
    auto it = topics_.find(topic);
    return it == topics_.end() ? 0 : static_cast<int>(it->second.size());
  }
  std::optional<int64_t> CommittedOffset(const std::string& topic, int32_t partition) const {
    auto it = committed_.find({topic, partition});
    return it == committed_.end() ? std::nullopt : std::optional<int64_t>(it->second);
  }
  // The group takes the partitions back (the listener sees OnRevoked on the next poll).
  void RevokeAtNextPoll() { revoke_ = true; }
  // What another member left in the cluster (its topics' records, its group's committed
  // offsets): this one takes over from there, as a new owner of its partitions does.
  void CopyClusterFrom(const FakeKafka& other) {
    topics_ = other.topics_;
    committed_ = other.committed_;
  }

  // The partition numbers (of every subscribed topic) the group assigns this member, as one of
  // several replicas; empty = all of them.
  std::set<int32_t> owned;

  // Fault knobs.
  std::map<std::string, rd_kafka_resp_err_t> refuse_produce;  // topic -> error at Produce
  std::map<std::string, rd_kafka_resp_err_t> fail_delivery;   // topic -> error in the report
  std::optional<TxnError> fail_next_commit;                   // CommitTransaction fails once
  bool reachable = true;
  bool fenced = false;

  // Counts, for assertions.
  int commits = 0;
  int transactions_committed = 0;
  int transactions_aborted = 0;
  int producers_replaced = 0;
  bool paused = false;
  bool closed = false;
  bool abandoned = false;
  // Delivery reports wait (a broker that does not answer) while this is set.
  bool hold_deliveries = false;

  // --- the group consumer
  Result<void> Subscribe(const std::vector<std::string>& topics) override {
    for (const std::string& t : topics) {
      if (topics_.count(t) == 0) return MakeError("subscribe", "unknown topic " + t);
    }
    subscribed_ = topics;
    assigned_ = false;
    return {};
  }

  bool Poll(milliseconds /*wait*/) override {
    DeliverReports();
    if (revoke_ && assigned_) {
      revoke_ = false;
      assigned_ = false;
      listener_.OnRevoked(Assignment());
      return false;
    }
    if (!assigned_ && !subscribed_.empty()) {
      assigned_ = true;
      TopicPartitions parts = Assignment();
      for (TopicPartition& tp : parts) {
        auto c = committed_.find({tp.topic, tp.partition});
        position_[{tp.topic, tp.partition}] = c == committed_.end() ? 0 : c->second;
      }
      listener_.OnAssigned(parts);
      return false;
    }
    if (!assigned_ || paused) return false;
    // The next unread record, round-robin over the assignment.
    const TopicPartitions parts = Assignment();
    for (size_t i = 0; i < parts.size(); ++i) {
      const TopicPartition& tp = parts[(next_ + i) % parts.size()];
      int64_t& pos = position_[{tp.topic, tp.partition}];
      const auto& records = topics_.at(tp.topic)[static_cast<size_t>(tp.partition)];
      if (pos >= static_cast<int64_t>(records.size())) continue;
      next_ = (next_ + i + 1) % parts.size();
      const FakeRecord& r = records[static_cast<size_t>(pos)];
      InputMessage m;
      m.topic = tp.topic;
      m.partition = tp.partition;
      m.offset = pos++;
      if (r.key) m.key = *r.key;
      if (r.value) m.payload = *r.value;
      listener_.OnMessage(m);
      return true;
    }
    return false;
  }

  Result<void> Commit(const TopicPartitions& offsets, bool /*sync*/, milliseconds) override {
    if (!reachable) return MakeError("commit", "no answer from the broker in time");
    ++commits;
    for (const TopicPartition& tp : offsets) committed_[{tp.topic, tp.partition}] = tp.offset;
    return {};
  }
  Result<TopicPartitions> Committed(const TopicPartitions& partitions) override {
    TopicPartitions out = partitions;
    for (TopicPartition& tp : out) {
      auto it = committed_.find({tp.topic, tp.partition});
      tp.offset = it == committed_.end() ? RD_KAFKA_OFFSET_INVALID : it->second;
    }
    return out;
  }
  Result<void> Seek(const TopicPartitions& offsets) override {
    for (const TopicPartition& tp : offsets) {
      position_[{tp.topic, tp.partition}] = tp.offset < 0 ? 0 : tp.offset;
    }
    return {};
  }
  void PauseAssigned(bool pause) override { paused = pause; }
  std::optional<std::pair<int64_t, int64_t>> Watermarks(const std::string& topic,
                                                        int32_t partition) override {
    auto it = topics_.find(topic);
    if (it == topics_.end()) return std::nullopt;
    return std::pair<int64_t, int64_t>{
        0, static_cast<int64_t>(it->second.at(static_cast<size_t>(partition)).size())};
  }
  bool Fenced() override { return fenced; }
  Result<void> ReplaceConsumer() override {
    fenced = false;
    assigned_ = false;
    return {};
  }
  bool CloseConsumer(milliseconds) override {
    closed = reachable;
    return closed;
  }
  // As librdkafka's purge: what is still queued is reported as purged.
  void Abandon() override {
    abandoned = true;
    std::deque<Pending> pending = std::move(pending_);
    pending_.clear();
    for (Pending& p : pending) {
      listener_.OnDelivery(p.opaque, RD_KAFKA_RESP_ERR__PURGE_QUEUE, p.topic);
    }
  }

  // --- metadata
  Result<int> PartitionCount(const std::string& topic, const std::function<bool()>&) override {
    auto it = topics_.find(topic);
    if (it == topics_.end()) return MakeError("metadata", "Broker: Unknown topic or partition");
    return static_cast<int>(it->second.size());
  }
  std::vector<std::string> MissingTopics(const std::vector<std::string>& wanted) override {
    std::vector<std::string> missing;
    for (const std::string& t : wanted) {
      if (topics_.count(t) == 0) missing.push_back(t);
    }
    return missing;
  }
  bool ClusterAnswers(milliseconds) override { return reachable; }

  // --- the producer
  Result<void> StartProducer() override { return {}; }
  rd_kafka_resp_err_t Produce(const OutputRecord& record, void* opaque) override {
    if (auto it = refuse_produce.find(record.topic); it != refuse_produce.end()) return it->second;
    auto topic = topics_.find(record.topic);
    if (topic == topics_.end()) return RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    const size_t n = topic->second.size();
    const size_t partition = record.partition >= 0 ? static_cast<size_t>(record.partition)
                                                   : std::hash<std::string_view>{}(record.key) % n;
    Pending p{record.topic, partition,
              FakeRecord{std::string(record.key),
                         record.tombstone ? std::nullopt
                                          : std::optional<std::string>(std::string(record.value)),
                         record.headers},
              opaque, RD_KAFKA_RESP_ERR_NO_ERROR};
    if (auto f = fail_delivery.find(record.topic); f != fail_delivery.end()) p.err = f->second;
    pending_.push_back(std::move(p));
    return RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  void PollProducer(milliseconds) override { DeliverReports(); }
  void Flush(milliseconds) override { DeliverReports(); }
  int InFlight() override { return static_cast<int>(pending_.size()); }
  bool ProducerFailed() override { return false; }

  // --- transactions
  TxnResult BeginTransaction() override {
    if (in_txn_) return TxnError{"a transaction is already open", false, false};
    in_txn_ = true;
    return {};
  }
  TxnResult SendOffsetsToTransaction(const TopicPartitions& offsets, milliseconds) override {
    txn_offsets_ = offsets;
    return {};
  }
  TxnResult CommitTransaction(milliseconds) override {
    if (fail_next_commit) {
      TxnError e = *fail_next_commit;
      fail_next_commit.reset();
      return e;
    }
    for (auto& [topic, partition, record] : txn_records_) {
      topics_.at(topic)[partition].push_back(std::move(record));
    }
    for (const TopicPartition& tp : txn_offsets_) committed_[{tp.topic, tp.partition}] = tp.offset;
    txn_records_.clear();
    txn_offsets_.clear();
    in_txn_ = false;
    ++transactions_committed;
    return {};
  }
  TxnResult AbortTransaction(milliseconds) override {
    txn_records_.clear();
    txn_offsets_.clear();
    in_txn_ = false;
    ++transactions_aborted;
    return {};
  }
  Result<void> ReplaceProducer() override {
    pending_.clear();
    txn_records_.clear();
    in_txn_ = false;
    ++producers_replaced;
    return {};
  }

  Result<int> EnsureRepartitionTopic(const std::string& topic, int partitions, int64_t) override {
    if (topics_.count(topic) == 0) CreateTopic(topic, partitions);
    return static_cast<int>(topics_.at(topic).size());
  }

  // --- the trace store's changelog
  Result<int> EnsureChangelogTopic(const std::string& topic, int partitions) override {
    if (topics_.count(topic) == 0) CreateTopic(topic, partitions);
    return static_cast<int>(topics_.at(topic).size());
  }
  Result<std::pair<int64_t, int64_t>> ChangelogWatermarks(const std::string& topic,
                                                          int32_t partition) override {
    return std::pair<int64_t, int64_t>{
        0, static_cast<int64_t>(topics_.at(topic).at(static_cast<size_t>(partition)).size())};
  }
  Result<uint64_t> ReadChangelog(const std::string& topic, int32_t partition, int64_t from,
                                 const ChangelogSink& sink) override {
    const auto& records = topics_.at(topic).at(static_cast<size_t>(partition));
    uint64_t n = 0;
    for (size_t i = static_cast<size_t>(std::max<int64_t>(from, 0)); i < records.size(); ++i) {
      std::optional<std::string_view> value;
      if (records[i].value) value = *records[i].value;
      sink(static_cast<int64_t>(i), records[i].key.value_or(""), value);
      ++n;
    }
    return n;
  }

  // --- the decisions topic
  Result<void> EnsureDecisionsTopic(const std::string& topic, int partitions, int64_t) override {
    if (topics_.count(topic) == 0) CreateTopic(topic, partitions);
    return {};
  }
  Result<uint64_t> ReadDecisions(const std::string& topic, const std::vector<int32_t>& partitions,
                                 const DecisionSink& sink) override {
    uint64_t n = 0;
    for (int32_t p : partitions) {
      for (const FakeRecord& r : topics_.at(topic).at(static_cast<size_t>(p))) {
        Result<Decision> d = ParseDecisionRecord(r.value.value_or(""));
        if (!d.ok()) continue;
        sink(p, d.value());
        ++n;
      }
    }
    return n;
  }

 private:
  struct Pending {
    std::string topic;
    size_t partition;
    FakeRecord record;
    void* opaque;
    rd_kafka_resp_err_t err;
  };

  TopicPartitions Assignment() const {
    TopicPartitions parts;
    for (const std::string& t : subscribed_) {
      for (size_t p = 0; p < topics_.at(t).size(); ++p) {
        if (!owned.empty() && owned.count(static_cast<int32_t>(p)) == 0) continue;
        parts.push_back({t, static_cast<int32_t>(p), RD_KAFKA_OFFSET_INVALID});
      }
    }
    return parts;
  }

  // Delivery reports of everything produced: a delivered record is appended to its topic (or,
  // inside a transaction, to what the transaction makes visible when it commits).
  void DeliverReports() {
    if (hold_deliveries) return;
    std::deque<Pending> pending = std::move(pending_);
    pending_.clear();
    for (Pending& p : pending) {
      if (p.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (transactional_) {
          txn_records_.emplace_back(p.topic, p.partition, p.record);
        } else {
          topics_.at(p.topic)[p.partition].push_back(p.record);
        }
      }
      listener_.OnDelivery(p.opaque, p.err, p.topic);
    }
  }

  KafkaListener& listener_;
  bool transactional_;
  std::map<std::string, std::vector<std::vector<FakeRecord>>> topics_;
  std::map<std::pair<std::string, int32_t>, int64_t> committed_;
  std::map<std::pair<std::string, int32_t>, int64_t> position_;
  std::vector<std::string> subscribed_;
  bool assigned_ = false;
  bool revoke_ = false;
  size_t next_ = 0;
  std::deque<Pending> pending_;
  bool in_txn_ = false;
  std::vector<std::tuple<std::string, size_t, FakeRecord>> txn_records_;
  TopicPartitions txn_offsets_;
};

}  // namespace triaged::testing
