// The trace view: the spans and annotations joined under one trace id, and the derived fields
// the rule language reads (DESIGN §2.1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "rules/event.h"

namespace triaged {

// Derived trace-level fields. Recomputed whenever a span or annotation is added.
struct TraceSummary {
  std::optional<std::string> name;  // root span name
  bool error = false;
  int64_t error_count = 0;
  int64_t span_count = 0;
  std::optional<double> duration_ms;  // latest end - earliest start
  std::optional<int64_t> start_ns, end_ns;
  std::optional<std::string> model, input, output, session_id, user_id, prompt_version;
  std::optional<double> input_tokens, output_tokens, total_tokens;
  double retry_count = 0;
  int64_t root_index = -1;  // index into spans of the root span, or -1

  // Feedback aggregates over all annotations.
  int64_t feedback_count = 0;
  std::optional<double> min_score, max_score;
};

class Trace {
 public:
  explicit Trace(std::string id) : id_(std::move(id)) {}

  const std::string& id() const { return id_; }
  const std::vector<Span>& spans() const { return spans_; }
  const std::vector<Annotation>& annotations() const { return annotations_; }
  // Recomputed lazily: adding N spans costs O(N), not O(N^2).
  const TraceSummary& summary() const {
    if (dirty_) Recompute();
    return summary_;
  }

  // Adds a span; a second span with the same span id (a retried export) is ignored and false
  // is returned.
  bool AddSpan(Span span);
  void AddAnnotation(Annotation annotation);

  // Root span attributes / resource attributes (empty when there is no root span).
  const Attributes& root_attributes() const;
  const Attributes& resource() const;

  // The latest annotation named `name` (by timestamp; on a tie, the one added last), or null.
  const Annotation* LatestAnnotation(std::string_view name) const;
  int64_t AnnotationCount(std::string_view name) const;

  size_t bytes() const { return bytes_; }

 private:
  void Recompute() const;

  std::string id_;
  std::vector<Span> spans_;
  std::vector<Annotation> annotations_;
  std::unordered_set<size_t> span_id_hashes_;
  mutable TraceSummary summary_;
  mutable bool dirty_ = false;
  size_t bytes_ = 0;
};

}  // namespace triaged
