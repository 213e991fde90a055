#include "daemon/offset_tracker.h"

#include <algorithm>

namespace triaged {

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
    auto& pins = pins_[it->second.first];
    if (auto pin = pins.find(it->second.second); pin != pins.end()) pins.erase(pin);
    offset_tickets_.erase(it);
  }
}

void PartitionOffsets::MaybeRelease(const TraceKey& trace_id) {
  auto it = traces_.find(trace_id);
  if (it == traces_.end() || it->second.undecided || it->second.holds > 0) return;
  for (int input = 0; input < kInputs; ++input) {
    if (!it->second.first[input]) continue;
    auto& pins = pins_[input];
    if (auto pin = pins.find(*it->second.first[input]); pin != pins.end()) pins.erase(pin);
  }
  traces_.erase(it);
}

std::optional<int64_t> PartitionOffsets::Committable(int input) const {
  if (!next_[input]) return std::nullopt;
  int64_t at = *next_[input];
  if (!pins_[input].empty()) at = std::min(at, *pins_[input].begin());
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
