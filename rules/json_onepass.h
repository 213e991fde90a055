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

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include <rapidjson/reader.h>

#include "rules/decode.h"
#include "rules/event.h"
#include "rules/json_string.h"

namespace triaged::decode::onepass {

// The in-situ stream of a walk, knowing where its buffer ends so that the reader can scan strings
// a word at a time (below) without reading past it.
struct InsituStream : rapidjson::InsituStringStream {
  InsituStream(char* buf, size_t size) : rapidjson::InsituStringStream(buf), end(buf + size + 1) {}
  const char* end;  // one past the NUL
};

}  // namespace triaged::decode::onepass

namespace rapidjson {

template <>
struct StreamTraits<triaged::decode::onepass::InsituStream> {
  enum { copyOptimization = 1 };
};

// The reader's scan of a string's plain bytes, on the walk's stream: sixteen bytes at a time with
// SSE2 (eight without it, and within the buffer's last sixteen) up to the first `"`, `\` or byte
// below 0x20, moving them down over the escapes read so far, and on past each two-character
// escape (`\"`, `\n`, ...: a kcat envelope's payload is full of them). It stops at the closing
// quote, a `\u` escape, anything the reader must refuse, and the last eight bytes of the buffer;
// the reader goes on from there exactly as it would have from the string's start. RapidJSON
// scans with SSE2 only, and Debian's 1.1.0 does it wrongly (CMakeLists.txt); by default its
// reader checks and copies each byte. The reader calls it only when it does not validate UTF-8
// (ASCII text: WalkInsitu).
template <>
template <>
inline void Reader::ScanCopyUnescapedString(triaged::decode::onepass::InsituStream& is,
                                            triaged::decode::onepass::InsituStream& os) {
  // What each character after a backslash stands for, as the reader has it; 0 for `u` and for
  // what it refuses.
  static constexpr auto kEscaped = [] {
    std::array<char, 256> e{};
    e['"'] = '"';
    e['\\'] = '\\';
    e['/'] = '/';
    e['b'] = '\b';
    e['f'] = '\f';
    e['n'] = '\n';
    e['r'] = '\r';
    e['t'] = '\t';
    return e;
  }();
  (void)os;  // the same stream
  char* p = is.src_;
  char* q = is.dst_;  // q <= p: the bytes from q are read and free to overwrite
  // Past the plain bytes: the two-character escape at p read (true), or the stop that ends the
  // scan (false). p[1] is at most the NUL that ends the buffer.
  const auto escape = [&p, &q] {
    const char escaped = *p == '\\' ? kEscaped[static_cast<unsigned char>(p[1])] : 0;
    if (escaped == 0) return false;
    *q++ = escaped;
    p += 2;
    return true;
  };
#if defined(__SSE2__)
  while (is.end - p >= 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const uint32_t stops = triaged::JsonStringStops16(x);
    if (stops == 0) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q), x);
      p += 16;
      q += 16;
      continue;
    }
    const auto plain = static_cast<size_t>(std::countr_zero(stops));
    if (q + 16 <= p + plain) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q), x);  // over read bytes only
    } else if (q != p) {
      for (size_t i = 0; i < plain; ++i) q[i] = p[i];
    }
    p += plain;
    q += plain;
    if (!escape()) break;
  }
  if (is.end - p >= 16) {  // the scan stopped
    is.src_ = p;
    is.dst_ = q;
    return;
  }
#endif
  while (is.end - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    const uint64_t stops = triaged::JsonStringStops(w);
    if (stops == 0) {
      std::memcpy(q, &w, 8);
      p += 8;
      q += 8;
      continue;
    }
    const size_t plain = static_cast<size_t>(std::countr_zero(stops)) / 8;
    if (p - q >= 8) {
      std::memcpy(q, &w, 8);  // ends at or before p
    } else if (q != p) {
      for (size_t i = 0; i < plain; ++i) q[i] = p[i];
    }
    p += plain;
    q += plain;
    if (!escape()) break;
  }
  is.src_ = p;
  is.dst_ = q;
}

// The reader's skip of whitespace between tokens, on the walk's stream: inline, and out at once
// when there is none (compact JSON has none).
template <>
inline void SkipWhitespace(triaged::decode::onepass::InsituStream& is) {
  char* p = is.src_;
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') ++p;
  is.src_ = p;
}

}  // namespace rapidjson

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
// the per-character check is what reading strings costs most; ASCII strings are scanned a word
// at a time). The reader is kept per thread and handler type, so that its stack (a few bytes a
// level, and the walk bounds the depth) is allocated once and not at each message.
template <typename Handler>
bool WalkInsitu(char* buf, size_t size, Handler& handler) {
  InsituStream is(buf, size);
  thread_local rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag;
  if (IsAscii(std::string_view(buf, size))) return !reader.Parse<kFlags>(is, handler).IsError();
  return !reader.Parse<kFlags | rapidjson::kParseValidateEncodingFlag>(is, handler).IsError();
}

}  // namespace triaged::decode::onepass
