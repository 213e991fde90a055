// A trace id as the engine's tables hold it: the 32 lowercase hex characters of a W3C / OTel
// trace id packed into 16 bytes, any other id kept as its text. Copies of a packed key never
// allocate, and it hashes and compares as two words; the text form of the id is for the edges.
// A key is three words: the engine holds one per trace in its table, its timers and its queues.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace triaged {

class TraceKey {
 public:
  TraceKey() = default;
  TraceKey(std::string_view id);  // NOLINT(google-explicit-constructor): ids convert freely
  TraceKey(const std::string& id) : TraceKey(std::string_view(id)) {}  // NOLINT
  TraceKey(const char* id) : TraceKey(std::string_view(id)) {}         // NOLINT
  TraceKey(const TraceKey& other)
      : hi_(other.hi_),
        lo_(other.lo_),
        text_(other.owns_text() ? new std::string(*other.text_) : other.text_) {}
  TraceKey(TraceKey&& other) noexcept : hi_(other.hi_), lo_(other.lo_), text_(other.text_) {
    other.text_ = &kNoText;
  }
  TraceKey& operator=(TraceKey other) noexcept {
    std::swap(hi_, other.hi_);
    std::swap(lo_, other.lo_);
    std::swap(text_, other.text_);
    return *this;
  }
  ~TraceKey() {
    if (owns_text()) delete text_;
  }

  // The id as it was given.
  std::string str() const;
  bool packed() const { return text_ == nullptr; }
  uint64_t hash() const;

  friend bool operator==(const TraceKey& a, const TraceKey& b) {
    if (a.packed() || b.packed()) return a.text_ == b.text_ && a.hi_ == b.hi_ && a.lo_ == b.lo_;
    return *a.text_ == *b.text_;
  }
  // Any strict order (packed keys first), for sorting and deduplicating.
  friend bool operator<(const TraceKey& a, const TraceKey& b) {
    if (a.packed() != b.packed()) return a.packed();
    if (!a.packed()) return *a.text_ < *b.text_;
    if (a.hi_ != b.hi_) return a.hi_ < b.hi_;
    return a.lo_ < b.lo_;
  }

 private:
  // The text of a key that owns none: the empty id, and what a move leaves behind.
  static const std::string kNoText;
  bool owns_text() const { return text_ != nullptr && text_ != &kNoText; }

  uint64_t hi_ = 0, lo_ = 0;  // packed: the id's first and last 16 hex digits
  // Null for a packed key; else any id that is not 32 lowercase hex digits, owned unless it is
  // kNoText.
  const std::string* text_ = &kNoText;
};

// 16 lowercase hex digits (half a trace id, or a span id) as a 64-bit value, the first digit
// most significant; false when any byte is not one (uppercase included: the text must come back
// exactly). And back: the 16 digits of `v` into out[0..15].
bool PackHex16(std::string_view digits, uint64_t& out);
void UnpackHex16(uint64_t v, char* out);

struct TraceKeyHash {
  size_t operator()(const TraceKey& key) const { return static_cast<size_t>(key.hash()); }
};

}  // namespace triaged
