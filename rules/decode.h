// Decoders for every input shape of DESIGN §1: spans (native, OTLP/JSON, OTLP protobuf) and
// feedback (native, Phoenix, Langfuse, LangSmith, OTel GenAI evaluation, thumbs). Never throw,
// never crash: a bad message is an Error whose `reason` is a short label for metrics and dead
// letters.
#pragma once

#include <string_view>

#include "rules/event.h"
#include "rules/result.h"

namespace triaged {

// Dead-letter reasons (Error::reason values) the decoders produce.
namespace reason {
inline constexpr const char* kInvalidJson = "invalid_json";
inline constexpr const char* kInvalidProtobuf = "invalid_protobuf";  // looks like OTLP protobuf
inline constexpr const char* kNotAnObject = "not_an_object";
inline constexpr const char* kUnknownShape = "unknown_shape";
inline constexpr const char* kMissingTraceId = "missing_trace_id";
inline constexpr const char* kMissingField = "missing_field";
inline constexpr const char* kWrongType = "wrong_type";
inline constexpr const char* kInvalidValue = "invalid_value";
inline constexpr const char* kTooLarge = "too_large";
inline constexpr const char* kTooDeep = "too_deep";
}  // namespace reason

enum class SpanShape { kAuto, kNative, kOtlpJson, kOtlpProto };
enum class FeedbackShape { kAuto, kNative, kPhoenix, kLangfuse, kLangSmith, kOtelGenAi, kThumbs };

struct DecodeLimits {
  size_t max_message_bytes = 16 * 1024 * 1024;
  int max_depth = 64;
  size_t max_attributes = 4096;  // per span (after flattening)
};

// A message from the spans topic. kAuto tells the encoding by the first bytes: JSON starts with
// `{` (or another JSON value), OTLP protobuf with 0x0a; anything else is invalid_json, saying it
// is neither.
Result<DecodedMessage> DecodeSpans(std::string_view bytes, SpanShape shape = SpanShape::kAuto,
                                   const DecodeLimits& limits = {});
// A message from the feedback topic. Feedback with no trace id takes its Kafka `key` when that
// is a trace id (16–64 hex digits); with neither but a span id it is a span-only annotation
// (empty trace_id), which the engine joins to the trace holding that span. Feedback naming
// only a session (a Langfuse `sessionId`, a native, thumbs or Phoenix `session_id`, with no trace
// or span id) is session-scoped: empty trace_id and span_id, `session_id` set, the key unused.
// A session id next to a trace or span id is not kept (the feedback is about that trace).
Result<DecodedMessage> DecodeFeedback(std::string_view bytes,
                                      FeedbackShape shape = FeedbackShape::kAuto,
                                      const DecodeLimits& limits = {});
Result<DecodedMessage> DecodeFeedbackKeyed(std::string_view bytes, std::string_view key,
                                           FeedbackShape shape = FeedbackShape::kAuto,
                                           const DecodeLimits& limits = {});
// A message of unknown origin (replay of bare lines): OTLP request (JSON or protobuf), native
// span, or any feedback.
Result<DecodedMessage> DecodeAny(std::string_view bytes, const DecodeLimits& limits = {});

// Normalizes a trace/span id: trims nothing, lowercases ASCII. Returns false if empty or not a
// string of printable ASCII of at most 128 bytes.
bool NormalizeId(std::string_view in, std::string& out);

// Parses an RFC 3339 timestamp (`2024-05-01T12:00:00.123456789Z`, or with `+02:00`) into unix
// nanoseconds.
bool ParseRfc3339(std::string_view text, int64_t& out_ns);
// Formats unix nanoseconds as RFC 3339 UTC with millisecond precision: `2024-05-01T12:00:00.123Z`.
std::string FormatRfc3339(int64_t ns);

}  // namespace triaged
