#include "rules/trace.h"

#include <algorithm>
#include <limits>

namespace triaged {
namespace {

// Earliest start first; spans without a start time sort last, in arrival order.
int64_t SortStart(const std::optional<int64_t>& start_ns) {
  return start_ns ? *start_ns : std::numeric_limits<int64_t>::max();
}

// The fold's error count saturates (a trace of 2^28 spans is far past any max_trace_bytes).
constexpr uint32_t kMaxErrorCount = (1u << 28) - 1;

template <typename T>
std::optional<T> If(bool has, T v) {
  return has ? std::optional<T>(v) : std::nullopt;
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
  const int32_t index = static_cast<int32_t>(packed_.size());
  const int64_t start = SortStart(span.start_ns);
  SpanFold& f = fold_;
  if (span.status == SpanStatus::kError && f.error_count < kMaxErrorCount) ++f.error_count;
  if (span.start_ns && (!f.has_start || *span.start_ns < f.start_ns)) {
    f.start_ns = *span.start_ns;
    f.has_start = 1;
  }
  if (span.end_ns && (!f.has_end || *span.end_ns > f.end_ns)) {
    f.end_ns = *span.end_ns;
    f.has_end = 1;
  }
  if (span.input_tokens) {
    f.input_tokens += *span.input_tokens;
    f.has_input_tokens = 1;
  }
  if (span.output_tokens) {
    f.output_tokens += *span.output_tokens;
    f.has_output_tokens = 1;
  }
  if (span.retry_count) f.retry_count += *span.retry_count;
  if (span.is_root() && (f.root < 0 || start < SortStart(packed_[f.root].start_ns()))) {
    f.root = index;
  }
  const std::optional<std::string>* canonical[] = {&span.model,   &span.input,
                                                   &span.output,  &span.session_id,
                                                   &span.user_id, &span.prompt_version};
  for (size_t k = 0; k < std::size(canonical); ++k) {
    if (!*canonical[k]) continue;
    if (f.first[k] < 0 || start < SortStart(packed_[f.first[k]].start_ns())) f.first[k] = index;
  }
  packed_.emplace_back(span);
  Release();
  return true;
}

void Trace::AddAnnotation(Annotation annotation) {
  bytes_ += annotation.bytes;
  annotations_.push_back(std::move(annotation));
  summary_.reset();
}

std::vector<Span> Trace::spans() const {
  std::vector<Span> spans;
  spans.reserve(packed_.size());
  for (const PackedSpan& p : packed_) spans.push_back(p.Unpack(id_));
  return spans;
}

void Trace::Release() const { summary_.reset(); }

PackedSpan::Attrs Trace::root_attributes() const {
  if (fold_.root < 0) return {};
  return packed_[fold_.root].Peek().attributes();
}

PackedSpan::Attrs Trace::resource() const {
  if (fold_.root >= 0) return packed_[fold_.root].Peek().resource();
  for (const PackedSpan& p : packed_) {
    const PackedSpan::Attrs resource = p.Peek().resource();
    if (!resource.empty()) return resource;
  }
  return {};
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
  const SpanFold& f = fold_;
  TraceSummary s;
  s.span_count = static_cast<int64_t>(packed_.size());
  s.error_count = f.error_count;
  s.error = f.error_count > 0;
  s.start_ns = If<int64_t>(f.has_start, f.start_ns);
  s.end_ns = If<int64_t>(f.has_end, f.end_ns);
  if (s.start_ns && s.end_ns) {
    s.duration_ms = static_cast<double>(*s.end_ns - *s.start_ns) / 1e6;
  }
  s.input_tokens = If(f.has_input_tokens, f.input_tokens);
  s.output_tokens = If(f.has_output_tokens, f.output_tokens);
  if (s.input_tokens || s.output_tokens) {
    s.total_tokens = s.input_tokens.value_or(0) + s.output_tokens.value_or(0);
  }
  s.retry_count = f.retry_count;
  s.root_index = f.root;

  // Canonical string fields: the root's if it has them, else the earliest-starting span's
  // (the root has none of those: the fold's span for such a field is another one). The spans
  // are read once each.
  using Canonical = std::optional<std::string_view>[6];
  int32_t read_index[7];
  Canonical read[7];
  size_t reads = 0;
  auto read_of = [&](int32_t index, const PackedSpan::Fields& span) -> const Canonical& {
    read_index[reads] = index;
    span.Canonical(read[reads]);
    return read[reads++];
  };
  auto canonical_of = [&](int32_t index) -> const Canonical& {
    for (size_t k = 0; k < reads; ++k) {
      if (read_index[k] == index) return read[k];
    }
    return read_of(index, packed_[index].Peek());
  };
  std::optional<std::string_view>* fields[] = {&s.model,      &s.input,   &s.output,
                                               &s.session_id, &s.user_id, &s.prompt_version};
  const Canonical* root = nullptr;
  if (f.root >= 0) {
    const PackedSpan::Fields span = packed_[f.root].Peek();
    s.name = span.name;
    root = &read_of(f.root, span);
  }
  for (size_t k = 0; k < std::size(fields); ++k) {
    if (root != nullptr && (*root)[k]) {
      *fields[k] = (*root)[k];
    } else if (f.first[k] >= 0) {
      *fields[k] = canonical_of(f.first[k])[k];
    }
  }

  s.feedback_count = static_cast<int64_t>(annotations_.size());
  for (const Annotation& a : annotations_) {
    if (!a.score) continue;
    if (!s.min_score || *a.score < *s.min_score) s.min_score = a.score;
    if (!s.max_score || *a.score > *s.max_score) s.max_score = a.score;
  }
  summary_ = std::make_unique<TraceSummary>(std::move(s));
}

}  // namespace triaged
