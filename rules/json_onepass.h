// One-pass decoding of the JSON input shapes: one SAX walk (rapidjson::Reader) over an in-situ
// copy of the message, with no document, that builds the spans and annotations as it goes.
//
// Depth is bounded during the walk and UTF-8 validated by the reader (unless it is all ASCII).
// Attribute objects, OTLP's KeyValue lists and span events go straight into the Span being built;
// the top-level members of a native span or feedback record are kept as views into the buffer
// (small objects among them, such as `metadata`, as their compact JSON and their direct members).
// The walk only ever accepts: a message it would have to refuse, or that it cannot read exactly as
// the document path of rules/decode.cc does (duplicate members it cannot resolve, kvlistValue
// inside an array, a byte-order mark, ...), is left to that path, so that reasons and messages come
// from one place and a valid message never builds a document.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include <rapidjson/reader.h>

#include "rules/decode.h"
#include "rules/event.h"

namespace triaged::decode::onepass {

// What the caller decodes: DecodeSpans (auto, native, OTLP/JSON), DecodeFeedback, DecodeAny.
enum class Want { kSpans, kNativeSpan, kOtlpSpans, kFeedback, kAny };

// The message as the document path would decode it, when that succeeds and the walk can tell;
// nullopt to decode it with the document path. `fshape` and `key` are DecodeFeedbackKeyed's.
std::optional<DecodedMessage> Decode(std::string_view bytes, Want want, FeedbackShape fshape,
                                     std::string_view key, const DecodeLimits& limits);

// True when every byte is below 0x80 (so the text is valid UTF-8 as it is).
inline bool IsAscii(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t any = 0;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    any |= word;
  }
  for (; n > 0; ++p, --n) any |= static_cast<unsigned char>(*p);
  return (any & 0x8080808080808080ULL) == 0;
}

// One SAX walk of `buf` (`size` bytes and a NUL, decoded in place) with `handler`: iterative, so
// depth costs no stack, and UTF-8 validated unless the text is ASCII (most messages are, and
// the per-character check is what reading strings costs most).
template <typename Handler>
bool WalkInsitu(char* buf, size_t size, Handler& handler) {
  rapidjson::InsituStringStream is(buf);
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag;
  if (IsAscii(std::string_view(buf, size))) return !reader.Parse<kFlags>(is, handler).IsError();
  return !reader.Parse<kFlags | rapidjson::kParseValidateEncodingFlag>(is, handler).IsError();
}

}  // namespace triaged::decode::onepass
