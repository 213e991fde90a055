#include "rules/trace.h"

#include <algorithm>
#include <limits>

namespace triaged {
namespace {

const Attributes kEmptyAttributes;

// Earliest start first; spans without a start time sort last, in arrival order.
int64_t SortStart(const PackedSpan::Fields& s) {
  return s.start_ns ? *s.start_ns : std::numeric_limits<int64_t>::max();
}

void AddOptional(std::optional<double>& sum, const std::optional<double>& v) {
  if (v) sum = sum.value_or(0) + *v;
}

}  // namespace

uint64_t SpanIdHash(std::string_view span_id) { return std::hash<std::string_view>{}(span_id); }

bool Trace::HasSpan(std::string_view span_id) const {
  return std::binary_search(span_id_hashes_.begin(), span_id_hashes_.end(), SpanIdHash(span_id));
}

bool Trace::AddSpan(Span span) {
  const uint64_t hash = SpanIdHash(span.span_id);
  auto at = std::lower_bound(span_id_hashes_.begin(), span_id_hashes_.end(), hash);
  if (at != span_id_hashes_.end() && *at == hash) return false;
  span_id_hashes_.insert(at, hash);
  bytes_ += span.bytes;
  packed_.emplace_back(span);
  Release();
  return true;
}

void Trace::AddAnnotation(Annotation annotation) {
  bytes_ += annotation.bytes;
  annotations_.push_back(std::move(annotation));
  summary_.reset();
}

const std::vector<Span>& Trace::spans() const {
  if (!unpacked_) {
    spans_.reserve(packed_.size());
    for (const PackedSpan& p : packed_) spans_.push_back(p.Unpack(id_));
    unpacked_ = true;
  }
  return spans_;
}

void Trace::Release() const {
  std::vector<Span>().swap(spans_);
  unpacked_ = packed_.empty();
  summary_.reset();
}

const Attributes& Trace::root_attributes() const {
  const TraceSummary& summary = this->summary();
  return summary.root_index >= 0 ? spans()[summary.root_index].attributes : kEmptyAttributes;
}

const Attributes& Trace::resource() const {
  const TraceSummary& summary = this->summary();
  if (summary.root_index >= 0) return spans()[summary.root_index].resource;
  for (const Span& s : spans()) {
    if (!s.resource.empty()) return s.resource;
  }
  return kEmptyAttributes;
}

const Annotation* Trace::LatestAnnotation(std::string_view name) const {
  const Annotation* best = nullptr;
  for (const Annotation& a : annotations_) {
    if (a.name != name) continue;
    if (best == nullptr || a.timestamp_ns.value_or(std::numeric_limits<int64_t>::min()) >=
                               best->timestamp_ns.value_or(std::numeric_limits<int64_t>::min())) {
      best = &a;
    }
  }
  return best;
}

const Annotation* SessionView::Latest(std::string_view name) const {
  const Annotation* best = nullptr;
  for (const Annotation* a : annotations) {
    if (a->name != name) continue;
    if (best == nullptr || a->timestamp_ns.value_or(std::numeric_limits<int64_t>::min()) >=
                               best->timestamp_ns.value_or(std::numeric_limits<int64_t>::min())) {
      best = a;
    }
  }
  return best;
}

int64_t SessionView::Count(std::string_view name) const {
  return std::count_if(annotations.begin(), annotations.end(),
                       [&](const Annotation* a) { return a->name == name; });
}

int64_t Trace::AnnotationCount(std::string_view name) const {
  return std::count_if(annotations_.begin(), annotations_.end(),
                       [&](const Annotation& a) { return a.name == name; });
}

void Trace::Recompute() const {
  thread_local std::vector<PackedSpan::Fields> spans;
  spans.clear();
  spans.reserve(packed_.size());
  for (const PackedSpan& p : packed_) spans.push_back(p.Peek());
  TraceSummary s;
  s.span_count = static_cast<int64_t>(spans.size());

  // The root: a span without a parent; with several, the earliest-starting one.
  for (size_t i = 0; i < spans.size(); ++i) {
    const PackedSpan::Fields& span = spans[i];
    if (span.status == SpanStatus::kError) ++s.error_count;
    if (span.start_ns && (!s.start_ns || *span.start_ns < *s.start_ns)) s.start_ns = span.start_ns;
    if (span.end_ns && (!s.end_ns || *span.end_ns > *s.end_ns)) s.end_ns = span.end_ns;
    if (span.root && (s.root_index < 0 || SortStart(span) < SortStart(spans[s.root_index]))) {
      s.root_index = static_cast<int64_t>(i);
    }
    AddOptional(s.input_tokens, span.input_tokens);
    AddOptional(s.output_tokens, span.output_tokens);
    if (span.retry_count) s.retry_count += *span.retry_count;
  }
  s.error = s.error_count > 0;
  if (s.start_ns && s.end_ns) {
    s.duration_ms = static_cast<double>(*s.end_ns - *s.start_ns) / 1e6;
  }
  if (s.input_tokens || s.output_tokens) {
    s.total_tokens = s.input_tokens.value_or(0) + s.output_tokens.value_or(0);
  }

  // Canonical string fields: the root's if it has them, else the earliest-starting span's
  // (the first to arrive among those starting together; untimed spans last).
  std::optional<std::string_view>* fields[] = {&s.model,      &s.input,   &s.output,
                                               &s.session_id, &s.user_id, &s.prompt_version};
  for (size_t f = 0; f < std::size(fields); ++f) {
    if (s.root_index >= 0 && spans[s.root_index].canonical[f]) {
      *fields[f] = spans[s.root_index].canonical[f];
      continue;
    }
    int64_t best = -1;
    for (size_t i = 0; i < spans.size(); ++i) {
      if (static_cast<int64_t>(i) == s.root_index || !spans[i].canonical[f]) continue;
      if (best < 0 || SortStart(spans[i]) < SortStart(spans[best])) best = static_cast<int64_t>(i);
    }
    if (best >= 0) *fields[f] = spans[best].canonical[f];
  }
  if (s.root_index >= 0) s.name = spans[s.root_index].name;

  s.feedback_count = static_cast<int64_t>(annotations_.size());
  for (const Annotation& a : annotations_) {
    if (!a.score) continue;
    if (!s.min_score || *a.score < *s.min_score) s.min_score = a.score;
    if (!s.max_score || *a.score > *s.max_score) s.max_score = a.score;
  }
  summary_ = std::make_unique<TraceSummary>(std::move(s));
}

}  // namespace triaged
