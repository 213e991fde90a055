// What the decoders share: rules/decode.cc (JSON: every shape) and rules/decode_otlp_proto.cc
// (OTLP's protobuf encoding). Errors, the checks on sizes and times, the attribute limit, and the
// post-processing every OTLP request goes through whatever its encoding, so that OTLP/JSON and
// OTLP protobuf make the same spans and annotations out of the same request.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rules/decode.h"
#include "rules/event.h"
#include "rules/result.h"

namespace triaged::decode {

Error Err(const char* reason, std::string message);

// too_large past limits.max_message_bytes.
Result<void> CheckSize(std::string_view bytes, const DecodeLimits& limits);

// A time from 2000-01-01 up to (not including) 2200-01-01: anything else is a broken clock or a
// unit mistake, refused so that it cannot move event time by centuries.
Result<void> CheckTimeRange(int64_t ns, const std::string& field);
// A span ends no earlier than it starts.
Result<void> CheckSpanTimes(const Span& span, const std::string& start_field,
                            const std::string& end_field);
// too_large once `attrs` holds more than limits.max_attributes.
Result<void> CheckAttributeCount(const Attributes& attrs, const DecodeLimits& limits,
                                 const std::string& field);

// OTLP's status code: 0 unset, 1 ok, 2 error; false for any other value.
bool StatusFromCode(int64_t code, SpanStatus& out);
// A status as a word, in any case: unset, ok, error, with or without OTLP's `STATUS_CODE_`
// prefix; false for any other.
bool StatusFromName(std::string_view name, SpanStatus& out);

// The name of the span event that carries an OTel GenAI evaluation (DESIGN §1.2).
inline constexpr std::string_view kEvaluationEvent = "gen_ai.evaluation.result";

// The annotation of an evaluation event of `span`, from the event's time and its (flattened)
// attributes; `where` names the event in error messages.
Result<void> EvaluationAnnotation(const Span& span, std::optional<int64_t> time,
                                  const Attributes& attrs, const std::string& where, Annotation& a);

// An OTLP span decoded: takes its resource's attributes and gets its canonical fields; Add also
// joins it to `msg`.
void FinishOtlpSpan(Span& span, const Attributes& resource);
void AddOtlpSpan(Span&& span, const Attributes& resource, DecodedMessage& msg);

// An OTLP request that carries nothing is dead-lettered (missing_field), never silently dropped.
Result<void> RequireEvents(const DecodedMessage& msg);

// Gives each event its share of the message's size and sets the message's event time.
void FinishMessage(std::string_view bytes, DecodedMessage& msg);

// Valid UTF-8 by the JSON parser's rules (RapidJSON's: no overlong forms, no surrogates,
// nothing past U+10FFFF); ASCII is checked eight bytes at a time.
bool ValidUtf8(std::string_view s);

// Shared by the JSON decoders (rules/decode.cc, rules/json_onepass.cc).

// ASCII lowercase.
std::string Lower(std::string_view s);

struct Mapping {
  std::string_view from;  // lowercase
  const char* to;
};
// What `text` maps to in `table`, compared case-insensitively; nullptr if it is not there.
const char* MapName(std::string_view text, std::initializer_list<Mapping> table);

// The first byte after a UTF-8 byte-order mark and JSON whitespace, or -1 if there is none.
int FirstSignificantByte(std::string_view bytes);

// RFC 3339. A timestamp without an offset is read as UTC: Python's isoformat() of a naive
// datetime (LangSmith, many SDKs) writes exactly that.
bool ParseTimeLenient(std::string_view text, int64_t& ns);

// A Kafka key that is a trace id: hex digits, 16 to 64 of them (OTel's are 32).
bool IsTraceIdKey(std::string_view key);

// The members only feedback has: an object with any of them is not a native span.
inline constexpr const char* kFeedbackMarkers[] = {"thumbs",
                                                   "gen_ai.evaluation.name",
                                                   "annotator_kind",
                                                   "result",
                                                   "score",
                                                   "label",
                                                   "explanation",
                                                   "source",
                                                   "key",
                                                   "run_id",
                                                   "feedback_source",
                                                   "traceId",
                                                   "dataType",
                                                   "value",
                                                   "comment",
                                                   "metadata",
                                                   "timestamp",
                                                   "timestamp_unix_nano",
                                                   "annotator",
                                                   "expected_output",
                                                   "correction",
                                                   "identifier"};

// An annotation's upstream ids (DESIGN §1.2) as one JSON object, {"name": "id", ...} in the
// order given; empty when there are none.
std::string UpstreamIdsJson(const std::vector<std::pair<const char*, std::string>>& ids);

}  // namespace triaged::decode
