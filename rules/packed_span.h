// A span at rest: every field of a Span in one allocation, a few bytes of framing per field.
// Open traces hold their spans packed (a decoded Span spends ~4x its JSON on string headers,
// optionals and small allocations). Rules and routed items read them in place (Peek); they
// are unpacked only for a trace store record.
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
  // Attribute keys repeat from span to span, so the first kTableKeys distinct keys of up to
  // kTableKeyLength bytes are kept once, in a table for the life of the process, and a span
  // holds a key's number; other keys are held in the span. Both read back the same.
  static constexpr uint32_t kTableKeys = 16384;
  static constexpr size_t kTableKeyLength = 128;

  // The trace id is not kept: the trace that holds the span knows it.
  explicit PackedSpan(const Span& span);

  // The span as it was packed, with `trace_id` as its trace id.
  Span Unpack(const std::string& trace_id) const;
  // The same into `span`, reusing the storage of its strings and vectors: unpacking one span
  // after another into the same Span allocates next to nothing.
  void UnpackInto(const std::string& trace_id, Span& span) const;

  // A packed attribute list (a span's attributes or resource), read in place.
  class Attrs {
   public:
    // Receives the attributes as they are walked: Key, then the value (an array as StartArray,
    // its items, EndArray).
    struct Visitor {
      virtual ~Visitor() = default;
      virtual void Key(std::string_view key) = 0;
      virtual void Null() = 0;
      virtual void Bool(bool b) = 0;
      virtual void Number(double n) = 0;
      virtual void String(std::string_view s) = 0;
      virtual void StartArray() = 0;
      virtual void EndArray() = 0;
    };
    size_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    void Visit(Visitor& visitor) const;
    // The first value for `key` (as FindAttr finds it) unpacked into `out`; false when there
    // is none.
    bool Find(std::string_view key, AttrValue& out) const;

   private:
    friend class PackedSpan;
    const char* data_ = nullptr;
    uint64_t count_ = 0;
  };

  // Every field of the span without unpacking it: the strings are views into the packed bytes,
  // valid while the PackedSpan lives (moving it keeps them valid). The canonical fields and the
  // attribute lists are read from the bytes when asked for: any_span reads a field or two of
  // every span.
  struct Fields {
    SpanStatus status = SpanStatus::kUnset;
    bool root = false;  // no parent span id
    std::string_view name, status_message, kind;
    std::optional<int64_t> start_ns, end_ns;
    std::optional<double> input_tokens, output_tokens, retry_count;

    std::optional<double> duration_ms() const {
      if (!start_ns || !end_ns) return std::nullopt;
      return static_cast<double>(*end_ns - *start_ns) / 1e6;
    }
    // Span ids are held as 8 bytes when they are 16 lowercase hex digits: these views are into
    // this Fields (valid while it lives) or into the packed bytes.
    std::string_view span_id() const;
    std::string_view parent_span_id() const;
    // model, input, output, session_id, user_id, prompt_version: k = 0 to 5.
    std::optional<std::string_view> canonical(size_t k) const;
    // All six in one read.
    void Canonical(std::optional<std::string_view> (&out)[6]) const;
    Attrs attributes() const;
    Attrs resource() const;

   private:
    friend class PackedSpan;
    const char* ids_ = nullptr;    // the span id, then the parent's
    const char* lists_ = nullptr;  // the canonical fields' codes
    mutable char id_text_[2][16];
  };
  Fields Peek() const;
  // Only the start time (cheaper than Peek: the attributes are not walked).
  std::optional<int64_t> start_ns() const;

  size_t size() const { return size_; }

 private:
  // The attribute list whose count is at `at`.
  static Attrs ListAt(const char* at);

  std::unique_ptr<char[]> data_;
  uint32_t size_ = 0;
};

}  // namespace triaged
