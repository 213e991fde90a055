#include "daemon/offset_tracker.h"

#include <algorithm>

namespace triaged {

namespace {

template <typename Runs>
auto RunAt(Runs& runs, int64_t offset) {
  return std::lower_bound(runs.begin(), runs.end(), offset,
                          [](const auto& run, int64_t o) { return run.offset < o; });
}

}  // namespace

void OffsetPins::insert(int64_t offset) {
  ++live_;
  if (runs_.empty() || runs_.back().offset < offset) {
    runs_.push_back({offset, 1});
    ++live_runs_;
    return;
  }
  auto at = RunAt(runs_, offset);
  if (at != runs_.end() && at->offset == offset) {
    if (at->count++ == 0) ++live_runs_;
  } else {
    runs_.insert(at, {offset, 1});
    ++live_runs_;
  }
}

void OffsetPins::erase(int64_t offset) {
  auto at = RunAt(runs_, offset);
  if (at == runs_.end() || at->offset != offset || at->count == 0) return;
  --live_;
  if (--at->count > 0) return;
  --live_runs_;
  while (!runs_.empty() && runs_.front().count == 0) runs_.pop_front();
  while (!runs_.empty() && runs_.back().count == 0) runs_.pop_back();
  if (runs_.size() > 2 * live_runs_ + 64) {
    runs_.erase(
        std::remove_if(runs_.begin(), runs_.end(), [](const Run& r) { return r.count == 0; }),
        runs_.end());
  }
}

void PartitionOffsets::Consumed(int input, int64_t offset, const std::vector<TraceKey>& trace_ids) {
  next_[input] = std::max(next_[input].value_or(offset + 1), offset + 1);
  for (const TraceKey& id : trace_ids) {
    TraceState& st = traces_[id];
    st.undecided = true;
    // The first event since the trace (re)opened pins; later ones are behind that pin anyway.
    if (!st.first[input]) {
      st.first[input] = offset;
      pins_[input].insert(offset);
    }
  }
}

void PartitionOffsets::Decided(const TraceKey& trace_id) {
  auto it = traces_.find(trace_id);
  if (it == traces_.end()) return;
  it->second.undecided = false;
  MaybeRelease(trace_id);
}

uint64_t PartitionOffsets::Hold(const TraceKey& trace_id) {
  ++traces_[trace_id].holds;
  const uint64_t ticket = next_ticket_++;
  trace_tickets_.emplace(ticket, trace_id);
  return ticket;
}

uint64_t PartitionOffsets::HoldOffset(int input, int64_t offset) {
  pins_[input].insert(offset);
  const uint64_t ticket = next_ticket_++;
  offset_tickets_.emplace(ticket, std::make_pair(input, offset));
  return ticket;
}

void PartitionOffsets::Release(uint64_t ticket, bool delivered) {
  if (!delivered) {
    ++failed_;
    return;
  }
  if (auto it = trace_tickets_.find(ticket); it != trace_tickets_.end()) {
    const TraceKey id = std::move(it->second);
    trace_tickets_.erase(it);
    auto st = traces_.find(id);
    if (st != traces_.end() && st->second.holds > 0) --st->second.holds;
    MaybeRelease(id);
    return;
  }
  if (auto it = offset_tickets_.find(ticket); it != offset_tickets_.end()) {
    pins_[it->second.first].erase(it->second.second);
    offset_tickets_.erase(it);
  }
}

void PartitionOffsets::MaybeRelease(const TraceKey& trace_id) {
  auto it = traces_.find(trace_id);
  if (it == traces_.end() || it->second.undecided || it->second.holds > 0) return;
  for (int input = 0; input < kInputs; ++input) {
    if (!it->second.first[input]) continue;
    pins_[input].erase(*it->second.first[input]);
  }
  traces_.erase(it);
}

std::optional<int64_t> PartitionOffsets::Committable(int input) const {
  if (!next_[input]) return std::nullopt;
  int64_t at = *next_[input];
  if (!pins_[input].empty()) at = std::min(at, pins_[input].min());
  if (last_[input]) at = std::max(at, *last_[input]);
  last_[input] = at;
  return at;
}

void PartitionOffsets::Reset() { *this = PartitionOffsets(); }

size_t PartitionOffsets::undecided() const {
  return static_cast<size_t>(std::count_if(traces_.begin(), traces_.end(),
                                           [](const auto& kv) { return kv.second.undecided; }));
}

}  // namespace triaged
