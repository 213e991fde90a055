// A trace id as the engine's tables hold it: the 32 lowercase hex characters of a W3C / OTel
// trace id packed into 16 bytes, any other id kept as its text. Copies of a packed key never
// allocate, and it hashes and compares as two words; the text form of the id is for the edges.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace triaged {

class TraceKey {
 public:
  TraceKey() = default;
  TraceKey(std::string_view id);  // NOLINT(google-explicit-constructor): ids convert freely
  TraceKey(const std::string& id) : TraceKey(std::string_view(id)) {}  // NOLINT
  TraceKey(const char* id) : TraceKey(std::string_view(id)) {}         // NOLINT

  // The id as it was given.
  std::string str() const;
  bool packed() const { return packed_; }
  uint64_t hash() const;

  friend bool operator==(const TraceKey& a, const TraceKey& b) {
    return a.packed_ == b.packed_ && a.hi_ == b.hi_ && a.lo_ == b.lo_ && a.text_ == b.text_;
  }
  // Any strict order (packed keys first), for sorting and deduplicating.
  friend bool operator<(const TraceKey& a, const TraceKey& b) {
    if (a.packed_ != b.packed_) return a.packed_;
    if (a.hi_ != b.hi_) return a.hi_ < b.hi_;
    if (a.lo_ != b.lo_) return a.lo_ < b.lo_;
    return a.text_ < b.text_;
  }

 private:
  uint64_t hi_ = 0, lo_ = 0;  // packed: the id's first and last 16 hex digits
  bool packed_ = false;
  std::string text_;  // any id that is not 32 lowercase hex digits
};

struct TraceKeyHash {
  size_t operator()(const TraceKey& key) const { return static_cast<size_t>(key.hash()); }
};

}  // namespace triaged
