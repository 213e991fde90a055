#include "daemon/partitions.h"

namespace triaged {

const char* InputName(int input) {
  return input == kSpansInput ? "spans" : input == kFeedbackInput ? "feedback" : "repartition";
}

const std::string& InputTopic(const InputsConfig& inputs, int input) {
  return input == kSpansInput      ? inputs.spans_topic
         : input == kFeedbackInput ? inputs.feedback_topic
                                   : inputs.repartition_topic;
}

int InputOf(const InputsConfig& inputs, std::string_view topic) {
  if (topic == inputs.feedback_topic) return kFeedbackInput;
  if (topic == inputs.repartition_topic) return kRepartitionInput;
  return kSpansInput;
}

Partition& PartitionTable::At(int32_t number, const std::shared_ptr<const RuleSet>& rules) {
  auto& slot = partitions_[number];
  if (!slot) {
    slot = std::make_unique<Partition>(number, rules, group_, ++generation_, limit_partitions_);
  }
  return *slot;
}

Partition& PartitionTable::Assign(const InputsConfig& inputs, const TopicPartition& tp,
                                  const std::shared_ptr<const RuleSet>& rules) {
  Partition& p = At(tp.partition, rules);
  p.assigned[InputOf(inputs, tp.topic)] = true;
  return p;
}

Partition* PartitionTable::Find(int32_t number) {
  auto it = partitions_.find(number);
  return it == partitions_.end() ? nullptr : it->second.get();
}

void PartitionTable::Erase(int32_t number) {
  partitions_.erase(number);
  for (int input : kAllInputs) committed_.erase({input, number});
}

std::vector<int32_t> PartitionTable::Clear() {
  std::vector<int32_t> numbers;
  for (const auto& [number, p] : partitions_) numbers.push_back(number);
  partitions_.clear();
  committed_.clear();
  return numbers;
}

TopicPartitions PartitionTable::Committable(const InputsConfig& inputs,
                                            const std::set<int32_t>* only,
                                            bool changed_only) const {
  TopicPartitions list;
  for (const auto& [number, p] : partitions_) {
    if (only != nullptr && only->count(number) == 0) continue;
    for (int input : kAllInputs) {
      const std::optional<int64_t> at = p->offsets.Committable(input);
      if (!at) continue;
      if (changed_only) {
        auto it = committed_.find({input, number});
        if (it != committed_.end() && it->second == *at) continue;
      }
      list.push_back({InputTopic(inputs, input), number, *at});
    }
  }
  return list;
}

void PartitionTable::Committed(const InputsConfig& inputs, const TopicPartitions& offsets) {
  for (const TopicPartition& o : offsets) {
    const int input = InputOf(inputs, o.topic);
    committed_[{input, o.partition}] = o.offset;
    if (Partition* p = Find(o.partition)) {
      std::set<int64_t>& done = p->dead_lettered[input];
      done.erase(done.begin(), done.lower_bound(o.offset));
    }
  }
}

}  // namespace triaged
