// A span at rest: every field of a Span in one allocation, a few bytes of framing per field.
// Open traces hold their spans packed (a decoded Span spends ~4x its JSON on string headers,
// optionals and small allocations) and unpack them only to be evaluated or serialized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rules/event.h"

namespace triaged {

class PackedSpan {
 public:
  // The trace id is not kept: the trace that holds the span knows it.
  explicit PackedSpan(const Span& span);

  // The span as it was packed, with `trace_id` as its trace id.
  Span Unpack(const std::string& trace_id) const;
  // The same into `span`, reusing the storage of its strings and vectors: unpacking one span
  // after another into the same Span allocates next to nothing.
  void UnpackInto(const std::string& trace_id, Span& span) const;

  // What the trace summary reads of a span, without unpacking it: the strings are views into
  // the packed bytes, valid while the PackedSpan lives (moving it keeps them valid).
  struct Fields {
    SpanStatus status = SpanStatus::kUnset;
    bool root = false;
    std::optional<int64_t> start_ns, end_ns;
    std::optional<double> input_tokens, output_tokens, retry_count;
    std::string_view name;
    // model, input, output, session_id, user_id, prompt_version, in that order.
    std::optional<std::string_view> canonical[6];
  };
  Fields Peek() const;

  size_t size() const { return size_; }

 private:
  std::unique_ptr<char[]> data_;
  uint32_t size_ = 0;
};

}  // namespace triaged
