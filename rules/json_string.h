// JSON strings a word at a time. JsonStringStops finds, eight bytes at a time (sixteen with SSE2,
// JsonStringStops16), the bytes a string cannot hold as they are (`"`, `\`, below 0x20): the
// writer below and the one-pass decoder's reader (rules/json_onepass.h) both scan with it.
//
// AppendJsonString writes a string as RapidJSON's Writer writes it (default flags, UTF-8 in and
// out), copying each word that needs no escape in one piece. RapidJSON's Writer checks and copies
// each byte of a string shorter than 16 bytes, and resumes byte by byte after each escape; routed
// items are mostly such strings.
#pragma once

#include <rapidjson/stringbuffer.h>

#include <bit>
#include <cstdint>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace triaged {

// The bytes of `w` (eight bytes of a string, loaded little-endian) that are `"`, `\` or below
// 0x20, each marked by its high bit; the lowest mark is exact (a borrow only ever marks a byte
// left of a true one), so `std::countr_zero(mask) / 8` is the first such byte. Bytes of 0x80 and
// above are never marked.
inline uint64_t JsonStringStops(uint64_t w) {
  static_assert(std::endian::native == std::endian::little);
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  const auto zero_byte = [](uint64_t v) { return (v - kOnes) & ~v & kHighs; };
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHighs;
  return below_space | zero_byte(w ^ (kOnes * '"')) | zero_byte(w ^ (kOnes * '\\'));
}

#if defined(__SSE2__)
// The same for the sixteen bytes of `x`: bit i of the mask is set when byte i is `"`, `\` or
// below 0x20 (every mark is exact).
inline uint32_t JsonStringStops16(__m128i x) {
  const __m128i quote = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
  const __m128i backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
  const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(x, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
  return static_cast<uint32_t>(
      _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)));
}
#endif

// Appends `s` quoted and escaped to `out`: `"` and `\` with a backslash; \b \t \n \f \r; every
// other byte below 0x20 as \u00XX (upper-case hex); all else, non-ASCII bytes included, as it is.
void AppendJsonString(rapidjson::StringBuffer& out, std::string_view s);

}  // namespace triaged
