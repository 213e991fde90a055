#include "rules/trace_key.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace triaged {
namespace {

// The value of a lowercase hex digit, or -1. Uppercase is not packed: the key must give back
// the id exactly as it came.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool PackHalf(std::string_view digits, uint64_t& out) {
  uint64_t v = 0;
  for (char c : digits) {
    const int d = HexValue(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  out = v;
  return true;
}

void UnpackHalf(uint64_t v, char* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = kDigits[v & 0xf];
    v >>= 4;
  }
}

}  // namespace

const std::string TraceKey::kNoText;

TraceKey::TraceKey(std::string_view id) {
  if (id.size() == 32 && PackHalf(id.substr(0, 16), hi_) && PackHalf(id.substr(16), lo_)) {
    text_ = nullptr;
    return;
  }
  hi_ = lo_ = 0;
  if (!id.empty()) text_ = new std::string(id);
}

std::string TraceKey::str() const {
  if (!packed()) return *text_;
  std::string s(32, '0');
  UnpackHalf(hi_, s.data());
  UnpackHalf(lo_, s.data() + 16);
  return s;
}

uint64_t TraceKey::hash() const {
  if (!packed()) return XXH3_64bits(text_->data(), text_->size());
  const uint64_t words[2] = {hi_, lo_};
  return XXH3_64bits(words, sizeof words);
}

}  // namespace triaged
