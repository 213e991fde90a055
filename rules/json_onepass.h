// One-pass decoding of the JSON input shapes: one SAX walk (rapidjson::Reader) over an in-situ
// copy of the message, with no document, that builds the spans and annotations as it goes.
//
// Depth is bounded during the walk and UTF-8 validated by the reader. Attribute objects, OTLP's
// KeyValue lists and span events go straight into the Span being built; the top-level members of
// a native span or feedback record are kept as views into the buffer (small objects among them,
// such as `metadata`, as their compact JSON and their direct members). The walk only ever
// accepts: a message it would have to refuse, or that it cannot read exactly as the document
// path of rules/decode.cc does (duplicate members it cannot resolve, kvlistValue inside an
// array, a byte-order mark, ...), is left to that path, so that reasons and messages come from
// one place and a valid message never builds a document.
#pragma once

#include <optional>
#include <string_view>

#include "rules/decode.h"
#include "rules/event.h"

namespace triaged::decode::onepass {

// What the caller decodes: DecodeSpans (auto, native, OTLP/JSON), DecodeFeedback, DecodeAny.
enum class Want { kSpans, kNativeSpan, kOtlpSpans, kFeedback, kAny };

// The message as the document path would decode it, when that succeeds and the walk can tell;
// nullopt to decode it with the document path. `fshape` and `key` are DecodeFeedbackKeyed's.
std::optional<DecodedMessage> Decode(std::string_view bytes, Want want, FeedbackShape fshape,
                                     std::string_view key, const DecodeLimits& limits);

}  // namespace triaged::decode::onepass
