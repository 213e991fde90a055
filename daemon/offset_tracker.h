// At-least-once offset bookkeeping for one partition number of each input topic
// (DESIGN §6): the committable offset never passes the first event of an undecided trace, nor
// the first event of a decided trace whose routed items the broker has not acknowledged yet,
// nor a dead-lettered message whose dead letter is unacknowledged. Pure: no Kafka, no clock.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "rules/trace_key.h"

namespace triaged {

// The pinned offsets of one input, a multiset whose least element is read at each commit.
// Offsets are consumed in order, so pins nearly always arrive in order too: they are kept as
// runs of (offset, count) in a deque sorted by offset, an insert at the back and the least at
// the front are O(1) and an erase is a binary search. A pin that arrives out of order (a
// re-read after a seek) is inserted in its place. An erased run stays until it reaches an end
// or the erased runs outnumber the others (one pin held for minutes while millions of messages
// pass must not keep a run for each).
class OffsetPins {
 public:
  void insert(int64_t offset);
  // Removes one pin at `offset`, if there is one.
  void erase(int64_t offset);
  bool empty() const { return live_ == 0; }
  // The least pinned offset; not empty().
  int64_t min() const { return runs_.front().offset; }
  size_t size() const { return live_; }
  size_t runs() const { return runs_.size(); }  // its memory: pinned and not yet dropped

 private:
  struct Run {
    int64_t offset;
    uint32_t count;  // 0: erased, dropped when it reaches the front
  };
  std::deque<Run> runs_;
  size_t live_ = 0;       // pins
  size_t live_runs_ = 0;  // runs with a count; the others are dropped when they outnumber them
};

class PartitionOffsets {
 public:
  static constexpr int kInputs = 3;  // 0 = spans, 1 = feedback, 2 = the repartition topic

  // A message at `offset` of `input` was consumed; it carried events of `trace_ids` (none for a
  // message that was refused).
  void Consumed(int input, int64_t offset, const std::vector<TraceKey>& trace_ids);
  // The engine evaluated the trace (at close, or again on a late event).
  void Decided(const TraceKey& trace_id);
  // A routed item of the trace was handed to the producer; Release the ticket on its delivery
  // report.
  uint64_t Hold(const TraceKey& trace_id);
  // A record about the message at `offset` (a dead letter) was handed to the producer.
  uint64_t HoldOffset(int input, int64_t offset);
  // A delivery report. A failed delivery keeps its hold: nothing past it is ever committed, so
  // a restart re-reads and re-routes it.
  void Release(uint64_t ticket, bool delivered);

  // The offset to commit for `input` (Kafka semantics: the next message to read), or nullopt
  // before the first message. Never moves backwards.
  std::optional<int64_t> Committable(int input) const;

  // Partition revoked: forget everything; the new owner starts from the committed offset.
  void Reset();

  size_t undecided() const;
  size_t holds() const { return trace_tickets_.size() + offset_tickets_.size(); }
  size_t failed() const { return failed_; }

 private:
  struct TraceState {
    std::optional<int64_t> first[kInputs];  // pinned offsets
    bool undecided = false;
    uint64_t holds = 0;
  };
  void MaybeRelease(const TraceKey& trace_id);

  absl::flat_hash_map<TraceKey, TraceState, TraceKeyHash> traces_;
  OffsetPins pins_[kInputs];
  std::optional<int64_t> next_[kInputs];
  mutable std::optional<int64_t> last_[kInputs];
  absl::flat_hash_map<uint64_t, TraceKey> trace_tickets_;
  absl::flat_hash_map<uint64_t, std::pair<int, int64_t>> offset_tickets_;
  uint64_t next_ticket_ = 1;
  size_t failed_ = 0;
};

}  // namespace triaged
