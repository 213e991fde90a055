// The trace view: the spans and annotations joined under one trace id, and the derived fields
// the rule language reads (DESIGN §2.1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <memory>

#include "rules/event.h"
#include "rules/packed_span.h"

namespace triaged {

// Derived trace-level fields. Recomputed whenever a span or annotation is added.
struct TraceSummary {
  // The string fields are views into the trace's packed spans, valid while the trace lives:
  // the summary is computed without unpacking them.
  std::optional<std::string_view> name;  // root span name
  bool error = false;
  int64_t error_count = 0;
  int64_t span_count = 0;
  std::optional<double> duration_ms;  // latest end - earliest start
  std::optional<int64_t> start_ns, end_ns;
  std::optional<std::string_view> model, input, output, session_id, user_id, prompt_version;
  std::optional<double> input_tokens, output_tokens, total_tokens;
  double retry_count = 0;
  int64_t root_index = -1;  // index into spans of the root span, or -1

  // Feedback aggregates over all annotations.
  int64_t feedback_count = 0;
  std::optional<double> min_score, max_score;
};

// The hash a trace keeps of each of its span ids (to drop repeated spans and find a span).
uint64_t SpanIdHash(std::string_view span_id);

// What the rule language reads of a trace's session (DESIGN §2.1 `session.*`): the
// session-scoped feedback and how many traces of the session were seen. Set by the engine for
// the length of an evaluation.
struct SessionView {
  std::vector<const Annotation*> annotations;  // session-scoped, in arrival order
  int64_t trace_count = 0;
  // The latest annotation named `name` (by timestamp; on a tie, the one added last), or null.
  const Annotation* Latest(std::string_view name) const;
  int64_t Count(std::string_view name) const;
};

class Trace {
 public:
  explicit Trace(std::string id) : id_(std::move(id)) {}

  const std::string& id() const { return id_; }
  // The spans unpacked, in arrival order (a copy: the trace holds them packed).
  std::vector<Span> spans() const;
  const std::vector<Annotation>& annotations() const { return annotations_; }
  size_t span_count() const { return packed_.size(); }
  // Calls `fn(const PackedSpan::Fields&)` for each span in arrival order until it returns
  // false. The spans are read in place, not unpacked; the views `fn` gets are valid while the
  // trace lives.
  template <typename Fn>
  void ForEachSpan(Fn&& fn) const {
    for (const PackedSpan& packed : packed_) {
      const PackedSpan::Fields span = packed.Peek();
      if (!fn(span)) return;
    }
  }
  // Computed on first use after a change or a Release() from what AddSpan folded in, so it
  // reads a few spans (the root and the earliest-starting span of each canonical field) and
  // not every span of the trace.
  const TraceSummary& summary() const {
    if (!summary_) Recompute();
    return *summary_;
  }
  // Frees the summary (it comes back on the next use): an open trace at rest costs its packed
  // spans, its annotations and a few words.
  void Release() const;

  // Adds a span; a second span with the same span id (a retried export) is ignored and false
  // is returned.
  bool AddSpan(Span span);
  void AddAnnotation(Annotation annotation);

  // The root span's attributes (empty when there is no root span); its resource, or without a
  // root the first span's with a resource.
  PackedSpan::Attrs root_attributes() const;
  PackedSpan::Attrs resource() const;

  // The latest annotation named `name` (by timestamp; on a tie, the one added last), or null.
  const Annotation* LatestAnnotation(std::string_view name) const;
  int64_t AnnotationCount(std::string_view name) const;

  // The trace's session while the engine evaluates it; null otherwise (or without a session).
  const SessionView* session() const { return session_; }
  void set_session(const SessionView* session) const { session_ = session; }

  size_t bytes() const { return bytes_; }
  // The hashes of the trace's span ids (SpanIdHash), sorted.
  const std::vector<uint64_t>& span_id_hashes() const { return span_id_hashes_; }
  bool HasSpan(std::string_view span_id) const;

 private:
  void Recompute() const;

  // The summary's span fields, folded over the spans in arrival order by AddSpan.
  struct SpanFold {
    // The earliest start and latest end, and the sums of the spans that have them.
    int64_t start_ns = 0, end_ns = 0;
    double input_tokens = 0, output_tokens = 0, retry_count = 0;
    // Which of start_ns, end_ns, input_tokens and output_tokens any span had.
    uint32_t has_start : 1 = 0, has_end : 1 = 0, has_input_tokens : 1 = 0,
                         has_output_tokens : 1 = 0, error_count : 28 = 0;
    int32_t root = -1;  // the earliest-starting span without a parent
    // For each canonical field, the earliest-starting span that has it (the first to arrive
    // among those starting together; untimed spans last).
    int32_t first[6] = {-1, -1, -1, -1, -1, -1};
  };

  std::string id_;
  std::vector<PackedSpan> packed_;
  SpanFold fold_;
  std::vector<Annotation> annotations_;
  std::vector<uint64_t> span_id_hashes_;  // sorted
  mutable std::unique_ptr<TraceSummary> summary_;
  mutable const SessionView* session_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace triaged
