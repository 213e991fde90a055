#include "rules/trace_key.h"

#include <array>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace triaged {
namespace {

// The value of each lowercase hex digit, 0xff for every other byte. Uppercase is not packed:
// the key must give back the id exactly as it came.
constexpr auto kHexValue = [] {
  std::array<uint8_t, 256> t{};
  t.fill(0xff);
  for (int c = '0'; c <= '9'; ++c) t[c] = static_cast<uint8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[c] = static_cast<uint8_t>(c - 'a' + 10);
  return t;
}();

bool PackHalf(std::string_view digits, uint64_t& out) {
  uint64_t v = 0;
  uint8_t bad = 0;
  for (char c : digits) {
    const uint8_t d = kHexValue[static_cast<uint8_t>(c)];
    bad |= d;  // 0xff has the high bit; no digit has
    v = (v << 4) | (d & 0xf);
  }
  out = v;
  return (bad & 0x80) == 0;
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
