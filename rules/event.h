// The normalized input events: spans and annotations (feedback), whatever shape they came in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace triaged {

// An attribute value: null, bool, number, string or array of values. Integers are held as
// doubles (the rule language has one number type); OTLP kvlistValue is flattened into dotted
// keys by the decoder, so values never nest objects.
struct AttrValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray };
  Kind kind = Kind::kNull;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<AttrValue> items;

  static AttrValue Null() { return {}; }
  static AttrValue Bool(bool v) {
    AttrValue a;
    a.kind = Kind::kBool;
    a.b = v;
    return a;
  }
  static AttrValue Number(double v) {
    AttrValue a;
    a.kind = Kind::kNumber;
    a.n = v;
    return a;
  }
  static AttrValue String(std::string v) {
    AttrValue a;
    a.kind = Kind::kString;
    a.s = std::move(v);
    return a;
  }
  static AttrValue Array(std::vector<AttrValue> v) {
    AttrValue a;
    a.kind = Kind::kArray;
    a.items = std::move(v);
    return a;
  }
  friend bool operator==(const AttrValue&, const AttrValue&) = default;
};

// A flat attribute map in input order. Small maps are the norm, so a vector beats a hash map.
using Attributes = std::vector<std::pair<std::string, AttrValue>>;

// First value for `key`, or nullptr.
const AttrValue* FindAttr(const Attributes& attrs, std::string_view key);

enum class SpanStatus { kUnset, kOk, kError };

struct Span {
  std::string trace_id;        // lowercase
  std::string span_id;         // lowercase
  std::string parent_span_id;  // lowercase; empty for a root span
  std::string name;
  std::optional<int64_t> start_ns;  // unix nanoseconds
  std::optional<int64_t> end_ns;
  SpanStatus status = SpanStatus::kUnset;
  std::string status_message;
  Attributes attributes;
  Attributes resource;  // OTLP resource attributes (empty for native spans)

  // Canonical fields (DESIGN §1.1), filled by the decoder from native fields and attributes.
  std::string kind;  // LLM, TOOL, ... or the native `kind`; empty when unknown
  std::optional<std::string> model, input, output, session_id, user_id, prompt_version;
  std::optional<double> input_tokens, output_tokens, retry_count;

  size_t bytes = 0;  // encoded size attributed to this span, for max_trace_bytes

  bool is_root() const { return parent_span_id.empty(); }
  std::optional<double> duration_ms() const {
    if (!start_ns || !end_ns) return std::nullopt;
    return static_cast<double>(*end_ns - *start_ns) / 1e6;
  }
  friend bool operator==(const Span&, const Span&) = default;
};

// Fills the canonical fields of `span` from its attributes (first name present wins).
// Native `input`/`output`/`kind` already set by the decoder take precedence.
void ApplyCanonicalMapping(Span& span);

// One piece of feedback about a trace or span (DESIGN §1.2).
struct Annotation {
  std::string trace_id;  // lowercase
  std::string span_id;   // lowercase; empty = the whole trace
  std::string name;
  std::optional<double> score;
  std::optional<std::string> label;
  std::optional<std::string> explanation;
  std::optional<std::string> source;  // end_user | llm_judge | human | code | support
  std::string metadata_json = "{}";   // a JSON object, re-serialized compactly
  std::optional<int64_t> timestamp_ns;
  // Session-scoped feedback (a Langfuse session score, a native record with `session_id` and no
  // trace id): applies to every trace of the session (DESIGN §1.2, §2.1 `session.*`).
  std::string session_id;
  std::optional<std::string> id;               // the upstream id (Phoenix, Langfuse, LangSmith)
  std::string annotator_json;                  // a JSON object of user/queue/config ids; "" = none
  std::optional<std::string> expected_output;  // a correction
  // The version of the declared annotation schema the annotation was checked against (§1.5).
  std::optional<int64_t> schema_version;
  size_t bytes = 0;
  friend bool operator==(const Annotation&, const Annotation&) = default;
};

// Everything one input message carried. An OTLP request may carry spans of several traces and
// annotations (span events named gen_ai.evaluation.result).
struct DecodedMessage {
  std::vector<Span> spans;
  std::vector<Annotation> annotations;
  // The message's own event time: the latest span end (else start) or annotation timestamp.
  std::optional<int64_t> event_time_ns;
  // Span-only annotations re-produced by the daemon: how many partitions were already searched
  // for their span (DESIGN §1.4).
  int32_t span_lookups = 0;
};

// Moves the message's event time to the event's when that is later: a span's end (else its
// start), an annotation's timestamp.
void AddEventTime(DecodedMessage& msg, const Span& span);
void AddEventTime(DecodedMessage& msg, const Annotation& annotation);

}  // namespace triaged
