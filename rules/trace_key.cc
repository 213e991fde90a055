#include "rules/trace_key.h"

#include <array>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace triaged {
namespace {

// The 64-bit value of 16 lowercase hex digits, eight bytes at a time and without a branch per
// byte; false when any byte is not one. Uppercase is not packed: the key must give back the id
// exactly as it came.
uint32_t PackEight(const char* p, bool& ok) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  uint64_t w;
  std::memcpy(&w, p, 8);
  // Each byte (all below 0x80, checked below, so no sum carries into the next): at least `lo`
  // when the high bit of b + 0x80 - lo is set, above `hi` when that of b + 0x7f - hi is.
  const auto in = [w](uint64_t lo, uint64_t hi) {
    return (w + (0x80 - lo) * kOnes) & ~(w + (0x7f - hi) * kOnes) & kHigh;
  };
  ok &= (w & kHigh) == 0 && (in('0', '9') | in('a', 'f')) == kHigh;
  // Each digit's value: its low four bits, plus 9 for a letter (bit 6 set).
  uint64_t v = (w & 0x0f * kOnes) + ((w >> 6) & kOnes) * 9;
  // The first digit is the lowest byte and the most significant nibble: pairs, then quads.
  v = ((v << 4) & 0x00f000f000f000f0ULL) | ((v >> 8) & 0x000f000f000f000fULL);
  v = ((v << 8) & 0x0000ff000000ff00ULL) | ((v >> 16) & 0x000000ff000000ffULL);
  return static_cast<uint32_t>(((v << 16) & 0xffff0000ULL) | ((v >> 32) & 0xffffULL));
}

}  // namespace

bool PackHex16(std::string_view digits, uint64_t& out) {
  if (digits.size() != 16) return false;
  bool ok = true;
  const uint64_t hi = PackEight(digits.data(), ok);
  out = hi << 32 | PackEight(digits.data() + 8, ok);
  return ok;
}

void UnpackHex16(uint64_t v, char* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = kDigits[v & 0xf];
    v >>= 4;
  }
}

const std::string TraceKey::kNoText;

TraceKey::TraceKey(std::string_view id) {
  if (id.size() == 32 && PackHex16(id.substr(0, 16), hi_) && PackHex16(id.substr(16), lo_)) {
    text_ = nullptr;
    return;
  }
  hi_ = lo_ = 0;
  if (!id.empty()) text_ = new std::string(id);
}

std::string TraceKey::str() const {
  if (!packed()) return *text_;
  std::string s(32, '0');
  UnpackHex16(hi_, s.data());
  UnpackHex16(lo_, s.data() + 16);
  return s;
}

uint64_t TraceKey::hash() const {
  if (!packed()) return XXH3_64bits(text_->data(), text_->size());
  const uint64_t words[2] = {hi_, lo_};
  return XXH3_64bits(words, sizeof words);
}

}  // namespace triaged
