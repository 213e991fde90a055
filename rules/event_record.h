// The record the repartition hop writes (DESIGN §1.4), and the trace store keeps of a closed
// trace's events: the events of one trace out of one input message, already decoded. Every field
// of Span and Annotation is carried, so the engine that reads the record sees exactly what
// decoding the original message gave — whatever shape (native, OTLP/JSON, OTLP protobuf, any
// feedback shape) it came in.
//
// `triaged.events/v2` is binary (its layout is in event_record.cc): the hop writes and reads
// one per event, so it costs no JSON on either side. The JSON records of v1 (`{"schema":
// "triaged.events/v1", ...}`), which earlier versions wrote to the repartition topic and the
// changelog, are still read.
#pragma once

#include <string>
#include <string_view>

#include "rules/event.h"
#include "rules/result.h"

namespace triaged {

// `message` holds events of one trace (the caller splits a message by trace).
std::string EncodeEventRecord(const DecodedMessage& message);

// The events of a record written by EncodeEventRecord (v2) or by an earlier version (v1); a
// record that is not one is an Error with reason `invalid_event_record`. Strings must be valid
// UTF-8, metadata and annotator JSON objects, numbers finite.
Result<DecodedMessage> DecodeEventRecord(std::string_view record);

// Splits a decoded message into one message per trace id, in order of first appearance, each
// with its own event time. Annotations without a trace id come back in the group whose trace id
// is empty: span-only ones (joined later to the trace holding their span) and session-scoped
// ones (empty trace_id and span_id, non-empty session_id), which the caller routes by session.
std::vector<std::pair<std::string, DecodedMessage>> SplitByTrace(DecodedMessage message);

}  // namespace triaged
