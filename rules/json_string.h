// JSON strings a word at a time. JsonStringStops finds, eight bytes at a time, the bytes a
// string cannot hold as they are (`"`, `\`, below 0x20): the writer below and the one-pass
// decoder's reader (rules/json_onepass.h) both scan with it.
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

// Appends `s` quoted and escaped to `out`: `"` and `\` with a backslash; \b \t \n \f \r; every
// other byte below 0x20 as \u00XX (upper-case hex); all else, non-ASCII bytes included, as it is.
void AppendJsonString(rapidjson::StringBuffer& out, std::string_view s);

}  // namespace triaged
