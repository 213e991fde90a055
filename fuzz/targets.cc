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
    Check(NormalizedId(a.trace_id), "annotation trace id not normalized");
    if (a.score) Check(std::isfinite(*a.score), "a non-finite score");
  }
}

std::string_view View(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

const char* NoEnvironment(const char*) { return nullptr; }

}  // namespace

void DecodeSpansTarget(const uint8_t* data, size_t size) {
  for (SpanShape shape : {SpanShape::kAuto, SpanShape::kNative, SpanShape::kOtlpJson}) {
    CheckDecoded(DecodeSpans(View(data, size), shape));
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
      {"decode_spans", DecodeSpansTarget}, {"decode_feedback", DecodeFeedbackTarget},
      {"replay_line", ReplayLineTarget},   {"config", ConfigTarget},
      {"expression", ExpressionTarget},
  };
  return targets;
}

}  // namespace triaged::fuzz
