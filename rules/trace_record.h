// The record the trace store keeps of a closed trace (DESIGN §6 "Trace store"): its spans and
// annotations (as an events record, rules/event_record.h, every field kept) and what the engine
// decided of it, so late feedback days later re-evaluates it with full context and still routes
// each (rule, destination) at most once. The same bytes go to the local store and, keyed by trace
// id, to the compacted changelog topic `<group_id>.traces`.
//
// Layout: one line of JSON (the decision state), '\n', the events record.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rules/event.h"
#include "rules/result.h"

namespace triaged {

inline constexpr const char* kTraceRecordSchema = "triaged.trace/v1";

struct TraceRecord {
  std::string trace_id;
  int64_t closed_ns = 0;   // when the trace closed (engine clock)
  int64_t expires_ns = 0;  // closed_ns + late_feedback_window: late events no longer find it
  bool has_span = false;
  std::vector<uint64_t> routed;  // hashes of (rule, destination) names routed
  std::vector<uint64_t> counted_match, counted_sampled_out;
  DecodedMessage events;  // spans and annotations, in arrival order
};

std::string EncodeTraceRecord(const TraceRecord& record);

// A record written by EncodeTraceRecord; anything else is an Error with reason
// `invalid_trace_record`.
// `with_events` false: the decision state only (the events are left empty).
Result<TraceRecord> DecodeTraceRecord(std::string_view bytes, bool with_events = true);

// Only the expiry, without decoding the events (restoring a store from the changelog).
Result<int64_t> TraceRecordExpiry(std::string_view bytes);

}  // namespace triaged
