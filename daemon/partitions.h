// The partitions this process owns: for each partition number, the engine deciding the traces
// that live there (of the co-partitioned inputs, or of the repartition topic), the offset
// bookkeeping of that number's partition of each input, and what an earlier process already
// dead-lettered (exactly-once). Also the offsets last committed, and the list of offsets that
// are safe to commit now. No I/O.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/clock.h"
#include "daemon/kafka.h"
#include "daemon/offset_tracker.h"
#include "rules/engine.h"

namespace triaged {

// The topics consumed: the two inputs, and the repartition topic the daemon writes itself
// (DESIGN §1.4; not subscribed with `repartition: never`).
enum Input : int { kSpansInput = 0, kFeedbackInput = 1, kRepartitionInput = 2 };
inline constexpr int kInputs = 3;
inline constexpr int kAllInputs[kInputs] = {kSpansInput, kFeedbackInput, kRepartitionInput};
const char* InputName(int input);
const std::string& InputTopic(const InputsConfig& inputs, int input);
// The input a topic is (kSpansInput for a topic that is none of them).
int InputOf(const InputsConfig& inputs, std::string_view topic);

struct Partition {
  // `limit_partitions`: the partitions the engines join on, each owning its share of every
  // limit (DESIGN §2.3); this engine spends partition `id`'s.
  Partition(int32_t id, std::shared_ptr<const RuleSet> rules, std::shared_ptr<EngineGroup> group,
            uint64_t gen, int32_t limit_partitions = 1)
      : number(id),
        engine(std::move(rules), std::move(group), LimitScope{limit_partitions, id}),
        generation(gen) {}
  int32_t number;
  Engine engine;
  PartitionOffsets offsets;
  // Tells a delivery report of a partition this process owned before apart from one of now.
  uint64_t generation;
  int64_t next_offset[kInputs] = {-1, -1, -1};  // for consumer lag
  // The group assigned this number's partition of each input to this process.
  bool assigned[kInputs] = {false, false, false};
  // The commit point last seen, by input, and since when it has not moved.
  std::optional<int64_t> commit_point[kInputs];
  SteadyTime commit_point_since[kInputs] = {};
  // Exactly-once: input offsets an earlier process already dead-lettered (from the decisions
  // topic), by input; forgotten once the committed offset passes them.
  std::set<int64_t> dead_lettered[kInputs];
  // Engine counts already added to the process's totals.
  std::map<std::string, RuleCounters> synced_rules;
  EngineCounters synced_engine;
};

class PartitionTable {
 public:
  explicit PartitionTable(std::shared_ptr<EngineGroup> group) : group_(std::move(group)) {}

  // The partitions the engines join on (the repartition topic's, or the inputs' with
  // `repartition: never`): every limit is split in that many shares. Set before the first
  // partition is created.
  void set_limit_partitions(int32_t partitions) { limit_partitions_ = partitions; }
  int32_t limit_partitions() const { return limit_partitions_; }

  // The partition, created (with `rules`) if this process did not own it.
  Partition& At(int32_t number, const std::shared_ptr<const RuleSet>& rules);
  // The partition of an assigned topic-partition, created if needed, marked assigned for its
  // input.
  Partition& Assign(const InputsConfig& inputs, const TopicPartition& tp,
                    const std::shared_ptr<const RuleSet>& rules);
  Partition* Find(int32_t number);
  bool Owns(int32_t number) const { return partitions_.count(number) > 0; }
  void Erase(int32_t number);
  // Drops every partition's state and the committed offsets; returns the numbers it held.
  std::vector<int32_t> Clear();

  std::map<int32_t, std::unique_ptr<Partition>>& all() { return partitions_; }
  size_t size() const { return partitions_.size(); }

  // The offsets that are safe to commit (of `only`, when given); with `changed_only`, only those
  // that differ from the last commit.
  TopicPartitions Committable(const InputsConfig& inputs, const std::set<int32_t>* only,
                              bool changed_only) const;
  // A commit of `offsets` succeeded.
  void Committed(const InputsConfig& inputs, const TopicPartitions& offsets);

 private:
  std::shared_ptr<EngineGroup> group_;
  std::map<int32_t, std::unique_ptr<Partition>> partitions_;
  std::map<std::pair<int, int32_t>, int64_t> committed_;  // (input, partition) -> offset
  uint64_t generation_ = 0;
  int32_t limit_partitions_ = 1;
};

}  // namespace triaged
