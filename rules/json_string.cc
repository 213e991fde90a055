#include "rules/json_string.h"

#include <bit>
#include <cstdint>
#include <cstring>

namespace triaged {
namespace {

constexpr uint64_t kSpaces = 0x2020202020202020ULL;

// The escape of each byte below 0x20 (after the backslash), as RapidJSON's Writer has it: 'u'
// for \u00XX.
constexpr char kControl[32] = {'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n',
                               'u', 'f', 'r', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
                               'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u'};
constexpr char kHex[] = "0123456789ABCDEF";

char* Escape(unsigned char c, char* o) {
  *o++ = '\\';
  if (c == '"' || c == '\\') {
    *o++ = static_cast<char>(c);
  } else if (kControl[c] != 'u') {
    *o++ = kControl[c];
  } else {
    *o++ = 'u';
    *o++ = '0';
    *o++ = '0';
    *o++ = kHex[c >> 4];
    *o++ = kHex[c & 0xF];
  }
  return o;
}

}  // namespace

void AppendJsonString(rapidjson::StringBuffer& out, std::string_view s) {
  // Every byte as \u00XX and the quotes, and room to store a whole piece past the last byte.
  const size_t reserved = 2 + s.size() * 6 + 16;
  char* const start = out.Push(reserved);
  char* o = start;
  *o++ = '"';
  const char* p = s.data();
  const char* const end = p + s.size();
  // Each piece of the string is stored whole; the output then takes its bytes up to the first
  // that needs an escape, and that byte escaped.
#if defined(__SSE2__)
  while (end - p >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const uint32_t stops = JsonStringStops16(x);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), x);
    if (stops == 0) {
      o += 16;
      p += 16;
      continue;
    }
    const auto plain = static_cast<size_t>(std::countr_zero(stops));
    o = Escape(static_cast<unsigned char>(p[plain]), o + plain);
    p += plain + 1;
  }
#endif
  while (p < end) {
    // A word of the string, the last one padded with spaces (which need no escape).
    const size_t take = end - p >= 8 ? 8 : static_cast<size_t>(end - p);
    uint64_t w = kSpaces;
    std::memcpy(&w, p, take);
    const uint64_t stops = JsonStringStops(w);
    std::memcpy(o, &w, 8);
    if (stops == 0) {
      o += take;
      p += take;
      continue;
    }
    const auto plain = static_cast<size_t>(std::countr_zero(stops)) / 8;
    o = Escape(static_cast<unsigned char>(p[plain]), o + plain);
    p += plain + 1;
  }
  *o++ = '"';
  out.Pop(reserved - static_cast<size_t>(o - start));
}

}  // namespace triaged
