// OTLP's protobuf encoding (DESIGN §1.1 otlp_proto): an ExportTraceServiceRequest, as the
// OpenTelemetry Collector's Kafka exporter writes it by default, turned into the same spans and
// annotations the OTLP/JSON decoder makes of the same request. Used by rules/decode.cc.
#pragma once

#include <string_view>

#include "rules/decode.h"
#include "rules/event.h"
#include "rules/result.h"

namespace triaged::decode {

// The request in `bytes`, or an Error: invalid_protobuf when the bytes are not a well-formed
// ExportTraceServiceRequest (saying where), too_deep past limits.max_depth, and otherwise the
// reasons and checks of the OTLP/JSON decoder (too_large past limits.max_message_bytes, ...).
Result<DecodedMessage> DecodeOtlpProto(std::string_view bytes, const DecodeLimits& limits);

// Only the first of DecodeOtlpProto's checks: the size, the wire format and the nesting. Bytes
// that pass are protobuf, whatever their content then turns out to be.
Result<void> CheckOtlpProtoWire(std::string_view bytes, const DecodeLimits& limits);

}  // namespace triaged::decode
