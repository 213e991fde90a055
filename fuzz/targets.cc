#include "fuzz/targets.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "config/config.h"
#include "daemon/ingest.h"
#include "rules/decode.h"
#include "rules/expr.h"
#include "rules/trace.h"

namespace triaged::fuzz {
namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

bool NormalizedId(const std::string& id) {
  if (id.empty()) return false;
  for (char c : id) {
    if (c >= 'A' && c <= 'Z') return false;  // ids are lowercased on input
  }
  return true;
}

// What every successful decode promises: ids present and lowercase, numbers finite.
void CheckDecoded(const Result<DecodedMessage>& r) {
  if (!r.ok()) {
    Check(!r.error().reason.empty(), "an error without a reason");
    return;
  }
  Check(!r->spans.empty() || !r->annotations.empty(), "an empty decode result");
  for (const Span& s : r->spans) {
    Check(NormalizedId(s.trace_id), "span trace id not normalized");
    Check(NormalizedId(s.span_id), "span id not normalized");
  }
  for (const Annotation& a : r->annotations) {
    // A span-only annotation (no trace id) names its span instead; a session-scoped one
    // (neither) names its session, and only then is a session id kept.
    const bool session_scoped = a.trace_id.empty() && a.span_id.empty();
    if (session_scoped) {
      Check(!a.session_id.empty(), "an annotation with no trace, span or session id");
    } else {
      Check(a.trace_id.empty() ? NormalizedId(a.span_id) : NormalizedId(a.trace_id),
            "annotation trace id not normalized");
    }
    Check(session_scoped || a.session_id.empty(), "a session id on trace-scoped feedback");
    Check(a.annotator_json.empty() || a.annotator_json.front() == '{', "annotator not an object");
    if (a.score) Check(std::isfinite(*a.score), "a non-finite score");
  }
}

std::string_view View(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

const char* NoEnvironment(const char*) { return nullptr; }

bool LowercaseHex(const std::string& id, size_t size) {
  if (id.size() != size) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Where auto-detection must take the protobuf path: 0x0a, then (after whitespace) a byte no JSON
// value starts with.
bool StartsAsProtobufOnly(std::string_view bytes) {
  if (bytes.empty() || bytes[0] != '\x0a') return false;
  const size_t i = bytes.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos &&
         std::string_view("{[\"-0123456789tfn").find(bytes[i]) == std::string_view::npos;
}

}  // namespace

void DecodeSpansTarget(const uint8_t* data, size_t size) {
  for (SpanShape shape :
       {SpanShape::kAuto, SpanShape::kNative, SpanShape::kOtlpJson, SpanShape::kOtlpProto}) {
    CheckDecoded(DecodeSpans(View(data, size), shape));
  }
}

void DecodeOtlpProtoTarget(const uint8_t* data, size_t size) {
  const std::string_view bytes = View(data, size);
  const Result<DecodedMessage> pinned = DecodeSpans(bytes, SpanShape::kOtlpProto);
  CheckDecoded(pinned);
  const Result<DecodedMessage> detected = DecodeSpans(bytes);
  CheckDecoded(detected);
  CheckDecoded(DecodeAny(bytes));
  if (!pinned.ok()) return;
  size_t total = 0;
  for (const Span& s : pinned->spans) {
    Check(LowercaseHex(s.trace_id, 32), "a protobuf trace id that is not 32 lowercase hex digits");
    Check(LowercaseHex(s.span_id, 16), "a protobuf span id that is not 16 lowercase hex digits");
    Check(s.parent_span_id.empty() || LowercaseHex(s.parent_span_id, 16), "a bad parent span id");
    total += s.bytes;
  }
  for (const Annotation& a : pinned->annotations) total += a.bytes;
  Check(total == size, "the events' bytes do not add up to the message");
  if (StartsAsProtobufOnly(bytes)) {
    Check(detected.ok() && detected->spans == pinned->spans &&
              detected->annotations.size() == pinned->annotations.size(),
          "auto-detection decodes a protobuf request differently from format: otlp_proto");
  }
}

void DecodeFeedbackTarget(const uint8_t* data, size_t size) {
  for (FeedbackShape shape : {FeedbackShape::kAuto, FeedbackShape::kNative, FeedbackShape::kPhoenix,
                              FeedbackShape::kLangfuse, FeedbackShape::kLangSmith,
                              FeedbackShape::kOtelGenAi, FeedbackShape::kThumbs}) {
    CheckDecoded(DecodeFeedback(View(data, size), shape));
  }
}

void ReplayLineTarget(const uint8_t* data, size_t size) {
  const ReplayLine line = ParseReplayLine(View(data, size), 1);
  if (line.error) {
    Check(!line.error->reason.empty() && !line.error->message.empty(), "a line error unexplained");
    Check(line.payload.empty(), "a line error with a payload");
    return;
  }
  if (!line.null_payload) CheckDecoded(DecodeAny(line.payload));
}

void ConfigTarget(const uint8_t* data, size_t size) {
  const auto r = LoadConfigString(std::string(View(data, size)), "fuzz.yaml", NoEnvironment);
  Check(r.ok() ? *r != nullptr : !r.error().empty(), "a config neither loaded nor refused");
  if (r.ok()) return;
  for (const ConfigError& e : r.error()) {
    Check(e.line >= 0 && e.column >= 0 && !e.message.empty(), "an error without a place");
  }
}

void ExpressionTarget(const uint8_t* data, size_t size) {
  const std::string_view text = View(data, size);
  for (ExprKind kind : {ExprKind::kBoolean, ExprKind::kString, ExprKind::kAny}) {
    const auto r = CompileExpression(text, kind);
    Check(!r.ok() || *r != nullptr, "an expression compiled to nothing");
    if (!r.ok()) continue;
    // Evaluate on an empty trace and on one with a span and an annotation.
    Trace empty("t0");
    (void)(*r)->Evaluate(empty);
    Trace full("t1");
    Span s;
    s.trace_id = "t1";
    s.span_id = "s1";
    s.name = "llm";
    s.start_ns = 1;
    s.end_ns = 1'000'000'001;
    full.AddSpan(std::move(s));
    Annotation a;
    a.trace_id = "t1";
    a.name = "thumbs";
    a.score = 0;
    a.label = "down";
    full.AddAnnotation(std::move(a));
    (void)(*r)->Evaluate(full);
  }
}

const std::vector<Target>& Targets() {
  static const std::vector<Target> targets = {
      {"decode_spans", DecodeSpansTarget},
      {"decode_otlp_proto", DecodeOtlpProtoTarget},
      {"decode_feedback", DecodeFeedbackTarget},
      {"replay_line", ReplayLineTarget},
      {"config", ConfigTarget},
      {"expression", ExpressionTarget},
  };
  return targets;
}

}  // namespace triaged::fuzz
