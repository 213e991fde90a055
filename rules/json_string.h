// Writing a JSON string as RapidJSON's Writer writes it (default flags, UTF-8 in and out), but a
// word at a time: the bytes that need no escape are found eight at a time and copied in one
// piece. RapidJSON's Writer checks and copies each byte of a string shorter than 16 bytes, and
// resumes byte by byte after each escape; routed items are mostly such strings.
#pragma once

#include <rapidjson/stringbuffer.h>

#include <string_view>

namespace triaged {

// Appends `s` quoted and escaped to `out`: `"` and `\` with a backslash; \b \t \n \f \r; every
// other byte below 0x20 as \u00XX (upper-case hex); all else, non-ASCII bytes included, as it is.
void AppendJsonString(rapidjson::StringBuffer& out, std::string_view s);

}  // namespace triaged
