// A span at rest: every field of a Span in one allocation, a few bytes of framing per field.
// Open traces hold their spans packed (a decoded Span spends ~4x its JSON on string headers,
// optionals and small allocations) and unpack them only to be evaluated or serialized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "rules/event.h"

namespace triaged {

class PackedSpan {
 public:
  // The trace id is not kept: the trace that holds the span knows it.
  explicit PackedSpan(const Span& span);

  // The span as it was packed, with `trace_id` as its trace id.
  Span Unpack(const std::string& trace_id) const;

  size_t size() const { return size_; }

 private:
  std::unique_ptr<char[]> data_;
  uint32_t size_ = 0;
};

}  // namespace triaged
