// The record the repartition hop writes (DESIGN §1.4): the events of one trace out of one input
// message, already decoded, as compact JSON. Every field of Span and Annotation is carried, so
// the engine that reads the record sees exactly what decoding the original message gave —
// whatever shape (native, OTLP/JSON, OTLP protobuf, any feedback shape) it came in.
#pragma once

#include <string>
#include <string_view>

#include "rules/event.h"
#include "rules/result.h"

namespace triaged {

inline constexpr const char* kEventRecordSchema = "triaged.events/v1";

// `message` holds events of one trace (the caller splits a message by trace).
std::string EncodeEventRecord(const DecodedMessage& message);

// The events of a record written by EncodeEventRecord; a record that is not one is an Error
// with reason `invalid_event_record`.
Result<DecodedMessage> DecodeEventRecord(std::string_view record);

// Splits a decoded message into one message per trace id, in order of first appearance, each
// with its own event time. Annotations without a trace id come back in the group whose trace id
// is empty: span-only ones (joined later to the trace holding their span) and session-scoped
// ones (empty trace_id and span_id, non-empty session_id), which the caller routes by session.
std::vector<std::pair<std::string, DecodedMessage>> SplitByTrace(DecodedMessage message);

}  // namespace triaged
