// Turns one raw input message (from a topic, or a replay line) into decoded events or a
// dead-letter record. Shared by the daemon's Kafka pipeline and by `replay`, `test` and `explain`.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "rules/decode.h"
#include "rules/result.h"

namespace triaged {

// Where a message came from; a replayed bare line has no topic.
struct MessageOrigin {
  std::string topic;
  std::optional<int32_t> partition;
  std::optional<int64_t> offset;
  std::optional<int64_t> timestamp_ms;  // the Kafka message timestamp
  uint64_t line = 0;                    // 1-based line of a replayed file, 0 otherwise
  std::string key;                      // the Kafka key ("" for none)
};

// Decodes `payload` with the decoder its topic calls for (auto-detection for unknown topics).
// Feedback without a trace id is joined by `origin.key` when that is a trace id.
Result<DecodedMessage> DecodeInput(const InputsConfig& inputs, const MessageOrigin& origin,
                                   std::string_view payload);

// The dead-letter error for a message whose spans the engine refused because their trace would
// exceed trace.max_trace_bytes (shared by replay and the daemon).
Error TraceTooLargeError(size_t spans_rejected, size_t spans_total);

// The dead-letter error for span-only annotations (no trace id) whose span no trace held
// `searched` ("on partition 3", say) has (shared by replay and the daemon).
Error UnjoinedError(const std::vector<Annotation>& unjoined, const std::string& searched);

// A replay line: a bare event, or a `kcat -J` envelope whose payload is the message: as text in
// "payload", or as standard base64 in "payload_base64" (binary messages: OTLP protobuf, and the
// payloads our dead letters write that way).
struct ReplayLine {
  MessageOrigin origin;
  std::string payload;
  bool null_payload = false;  // a kcat envelope with "payload": null (a tombstone)
  // Set when the line cannot give its payload (payload_base64 that is not base64): the line is a
  // dead letter with this reason and message, and `payload` is empty.
  std::optional<Error> error;
};
ReplayLine ParseReplayLine(std::string_view line, uint64_t line_no);

// A dead-letter record: the original bytes, where they came from and why they were refused.
struct DeadLetter {
  std::string reason;
  std::string message;
  MessageOrigin origin;
  std::string_view payload;
  // More string fields, written after `line` (a refused routed item's id and destination).
  std::vector<std::pair<std::string, std::string>> extra = {};
};
// One JSON object (no newline): reason, message, topic, partition, offset, line, the extra
// fields, and the payload as a string when it is valid UTF-8, else as `payload_base64`. Within
// `max_bytes`: past it, only the payload's first bytes are kept, and `payload_truncated` gives
// its length and XXH64 (hex).
std::string DeadLetterToJson(const DeadLetter& record,
                             size_t max_bytes = std::numeric_limits<size_t>::max());

}  // namespace triaged
