#include "rules/json_string.h"

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
  // Every byte as \u00XX and the quotes, and room to store a whole word past the last byte.
  const size_t reserved = 2 + s.size() * 6 + 8;
  char* const start = out.Push(reserved);
  char* o = start;
  *o++ = '"';
  const char* p = s.data();
  const char* const end = p + s.size();
  while (p < end) {
    // A word of the string (the last one padded with spaces), stored whole when it needs no
    // escape; else written a byte at a time.
    const size_t take = end - p >= 8 ? 8 : static_cast<size_t>(end - p);
    uint64_t w = kSpaces;
    std::memcpy(&w, p, take);
    if (JsonStringStops(w) == 0) {
      std::memcpy(o, &w, 8);
      o += take;
      p += take;
      continue;
    }
    for (const char* stop = p + take; p < stop; ++p) {
      const auto c = static_cast<unsigned char>(*p);
      if (c < 0x20 || c == '"' || c == '\\') {
        o = Escape(c, o);
      } else {
        *o++ = static_cast<char>(c);
      }
    }
  }
  *o++ = '"';
  out.Pop(reserved - static_cast<size_t>(o - start));
}

}  // namespace triaged
