#include "rules/routed_item.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/decode.h"
#include "rules/json_string.h"

namespace triaged {
namespace {

// The JSON writer, with what the size policy allows: strings longer than `cap` bytes are cut
// (ending with "…"), spans past the first `max_spans` are left out.
struct Writer : rapidjson::Writer<rapidjson::StringBuffer> {
  explicit Writer(rapidjson::StringBuffer& buf) : rapidjson::Writer<rapidjson::StringBuffer>(buf) {}
  // JSON written already, as one value: RawValue, but copied in one piece (RapidJSON's copies it
  // a byte at a time).
  void Raw(std::string_view json, rapidjson::Type type) {
    Prefix(type);
    std::memcpy(os_->Push(json.size()), json.data(), json.size());
    EndValue(true);
  }
  // String and Key as RapidJSON's, written by AppendJsonString.
  bool String(const char* s, rapidjson::SizeType n, bool /*copy*/ = false) {
    Prefix(rapidjson::kStringType);
    AppendJsonString(*os_, std::string_view(s, n));
    return EndValue(true);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool /*copy*/ = false) { return String(s, n); }
  bool Key(std::string_view s) {
    return String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  size_t cap = std::numeric_limits<size_t>::max();
  size_t max_spans = std::numeric_limits<size_t>::max();
};

constexpr std::string_view kEllipsis = "\u2026";

void String(Writer& w, std::string_view s) {
  if (s.size() > w.cap) {
    // Cut at a UTF-8 character boundary.
    size_t n = w.cap;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    std::string cut(s.substr(0, n));
    cut.append(kEllipsis);
    w.String(cut.data(), static_cast<rapidjson::SizeType>(cut.size()));
    return;
  }
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// An empty string is written as null.
void StringOrNull(Writer& w, std::string_view s) {
  if (s.empty())
    w.Null();
  else
    String(w, s);
}

void OptString(Writer& w, const std::optional<std::string>& s) {
  if (s)
    String(w, *s);
  else
    w.Null();
}

void OptString(Writer& w, const std::optional<std::string_view>& s) {
  if (s)
    String(w, *s);
  else
    w.Null();
}

// Integral values are written as integers (42, not 42.0); NaN and infinities, which JSON cannot
// carry, as null.
void Number(Writer& w, double v) {
  if (!std::isfinite(v)) {
    w.Null();
  } else if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    w.Int64(static_cast<int64_t>(v));
  } else {
    w.Double(v);
  }
}

void OptNumber(Writer& w, const std::optional<double>& v) {
  if (v)
    Number(w, *v);
  else
    w.Null();
}

void Time(Writer& w, const std::optional<int64_t>& ns) {
  if (ns)
    String(w, FormatRfc3339(*ns));
  else
    w.Null();
}

// An attribute list, from a span's packed bytes.
void Attrs(Writer& w, const PackedSpan::Attrs& attrs) {
  struct Out : PackedSpan::Attrs::Visitor {
    explicit Out(Writer& writer) : w(writer) {}
    Writer& w;
    void Key(std::string_view key) override { triaged::String(w, key); }
    void Null() override { w.Null(); }
    void Bool(bool b) override { w.Bool(b); }
    void Number(double n) override { triaged::Number(w, n); }
    void String(std::string_view s) override { triaged::String(w, s); }
    void StartArray() override { w.StartArray(); }
    void EndArray() override { w.EndArray(); }
  } out(w);
  w.StartObject();
  attrs.Visit(out);
  w.EndObject();
}

std::string_view StatusName(SpanStatus s) {
  switch (s) {
    case SpanStatus::kOk: return "ok";
    case SpanStatus::kError: return "error";
    case SpanStatus::kUnset: return "unset";
  }
  return "unset";
}

void WriteSpan(Writer& w, const PackedSpan::Fields& s) {
  w.StartObject();
  w.Key("span_id");
  String(w, s.span_id());
  w.Key("parent_span_id");
  StringOrNull(w, s.parent_span_id());
  w.Key("name");
  String(w, s.name);
  w.Key("kind");
  StringOrNull(w, s.kind);
  w.Key("status");
  String(w, StatusName(s.status));
  w.Key("status_message");
  StringOrNull(w, s.status_message);
  w.Key("start_time");
  Time(w, s.start_ns);
  w.Key("end_time");
  Time(w, s.end_ns);
  w.Key("duration_ms");
  OptNumber(w, s.duration_ms());
  std::optional<std::string_view> canonical[6];
  s.Canonical(canonical);
  w.Key("model");
  OptString(w, canonical[0]);
  w.Key("input");
  OptString(w, canonical[1]);
  w.Key("output");
  OptString(w, canonical[2]);
  w.Key("attributes");
  Attrs(w, s.attributes());
  w.EndObject();
}

void WriteTrace(Writer& w, const Trace& trace) {
  const TraceSummary& s = trace.summary();
  w.StartObject();
  w.Key("name");
  OptString(w, s.name);
  w.Key("duration_ms");
  OptNumber(w, s.duration_ms);
  w.Key("model");
  OptString(w, s.model);
  w.Key("status");
  String(w, s.error ? "error" : "ok");
  w.Key("error_count");
  w.Int64(s.error_count);
  w.Key("span_count");
  w.Int64(s.span_count);
  w.Key("input_tokens");
  OptNumber(w, s.input_tokens);
  w.Key("output_tokens");
  OptNumber(w, s.output_tokens);
  w.Key("total_tokens");
  OptNumber(w, s.total_tokens);
  w.Key("retry_count");
  Number(w, s.retry_count);
  w.Key("session_id");
  OptString(w, s.session_id);
  w.Key("user_id");
  OptString(w, s.user_id);
  w.Key("prompt_version");
  OptString(w, s.prompt_version);
  w.Key("attributes");
  Attrs(w, trace.root_attributes());
  w.Key("resource");
  Attrs(w, trace.resource());
  // Spans in start-time order (stable: arrival order among equals and untimed spans).
  thread_local std::vector<PackedSpan::Fields> spans;
  spans.clear();
  trace.ForEachSpan([](const PackedSpan::Fields& span) {
    spans.push_back(span);
    return true;
  });
  std::vector<size_t> order(spans.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& sa = spans[a].start_ns;
    const auto& sb = spans[b].start_ns;
    if (sa && sb) return *sa < *sb;
    return sa.has_value() && !sb.has_value();
  });
  w.Key("spans");
  w.StartArray();
  for (size_t k = 0; k < order.size() && k < w.max_spans; ++k) WriteSpan(w, spans[order[k]]);
  w.EndArray();
  w.EndObject();
}

// The decoder stores metadata as compact JSON text of an object, but an Annotation can be built
// by hand too: anything that does not parse as an object is written as {} so the document stays
// valid JSON whatever it carries.
void Metadata(Writer& w, const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    w.StartObject();
    w.EndObject();
    return;
  }
  d.Accept(w);
}

// The annotator, an object (as Metadata), or null when there is none.
void Annotator(Writer& w, const std::string& json) {
  rapidjson::Document d;
  if (!json.empty()) d.Parse(json.data(), json.size());
  if (json.empty() || d.HasParseError() || !d.IsObject()) {
    w.Null();
    return;
  }
  d.Accept(w);
}

// One feedback entry. `trace_id` is the trace the annotation applies to: its own, or (for a
// session-scoped annotation, which has none) the routed trace's.
void WriteAnnotation(Writer& w, const Annotation& a, std::string_view trace_id) {
  w.StartObject();
  w.Key("trace_id");
  String(w, a.trace_id.empty() ? trace_id : std::string_view(a.trace_id));
  w.Key("span_id");
  StringOrNull(w, a.span_id);
  w.Key("name");
  String(w, a.name);
  w.Key("score");
  OptNumber(w, a.score);
  w.Key("label");
  OptString(w, a.label);
  w.Key("explanation");
  OptString(w, a.explanation);
  w.Key("source");
  OptString(w, a.source);
  w.Key("metadata");
  Metadata(w, a.metadata_json);
  w.Key("timestamp");
  Time(w, a.timestamp_ns);
  w.Key("id");
  OptString(w, a.id);
  w.Key("session_id");
  StringOrNull(w, a.session_id);
  w.Key("annotator");
  Annotator(w, a.annotator_json);
  w.Key("expected_output");
  OptString(w, a.expected_output);
  w.Key("version");
  if (a.schema_version)
    w.Int64(*a.schema_version);
  else
    w.Null();
  w.EndObject();
}

// What the trace's feedback says about review (DESIGN §4 `annotation`, and the row fields of
// dataset items). "Latest" is by timestamp; an untimed annotation is older than any timed one,
// and on a tie the annotation added last wins (as for feedback.NAME in rules).
struct Review {
  const Annotation* human = nullptr;       // the latest annotation from source: human
  const Annotation* correction = nullptr;  // the latest with an expected_output, any source
  // The latest with a label, any source: the feedback_category of a dataset row. The engine
  // does not say which annotation made a rule match, so this stands for "the annotation that
  // triggered the route": for late feedback, the newest labeled feedback; on close, the newest
  // labeled feedback the trace has.
  const Annotation* labeled = nullptr;
};

bool NotOlder(const Annotation& a, const Annotation* best) {
  constexpr int64_t kUntimed = std::numeric_limits<int64_t>::min();
  return best == nullptr ||
         a.timestamp_ns.value_or(kUntimed) >= best->timestamp_ns.value_or(kUntimed);
}

Review ReviewOf(const std::vector<const Annotation*>& feedback) {
  Review r;
  for (const Annotation* a : feedback) {
    if (a->source == "human" && NotOlder(*a, r.human)) r.human = a;
    if (a->expected_output && NotOlder(*a, r.correction)) r.correction = a;
    if (a->label && NotOlder(*a, r.labeled)) r.labeled = a;
  }
  return r;
}

// The trace's feedback in arrival order, then (while the engine evaluates the trace) its
// session's, which applies to every trace of the session.
std::vector<const Annotation*> FeedbackOf(const Trace& trace) {
  std::vector<const Annotation*> out;
  const SessionView* session = trace.session();
  out.reserve(trace.annotations().size() + (session ? session->annotations.size() : 0));
  for (const Annotation& a : trace.annotations()) out.push_back(&a);
  if (session != nullptr) {
    for (const Annotation* a : session->annotations) {
      if (a != nullptr) out.push_back(a);
    }
  }
  return out;
}

const std::optional<std::string>& ExpectedOutput(const Review& r) {
  static const std::optional<std::string> kNone;
  return r.correction ? r.correction->expected_output : kNone;
}

}  // namespace

std::string_view TriggerName(Trigger trigger) {
  return trigger == Trigger::kClose ? "close" : "late_feedback";
}

std::string RoutedItemId(std::string_view trace_id, std::string_view rule,
                         std::string_view destination) {
  std::string key;
  key.reserve(trace_id.size() + rule.size() + destination.size() + 2);
  key.append(trace_id).push_back('\0');
  key.append(rule).push_back('\0');
  key.append(destination);
  uint64_t h = XXH64(key.data(), key.size(), 0);
  std::string id(16, '0');
  for (size_t i = 16; i-- > 0; h >>= 4) id[i] = "0123456789abcdef"[h & 0xf];
  return id;
}

namespace {

// Writes the part `write` writes: copied from `cache` (written there on first use) when there is
// a cache, else straight to `w`.
template <typename Part>
void Shared(Writer& w, std::string* cache, rapidjson::Type type, const Part& write) {
  if (cache == nullptr) {
    write(w);
    return;
  }
  if (cache->empty()) {
    rapidjson::StringBuffer buf;
    Writer whole(buf);
    write(whole);
    cache->assign(buf.GetString(), buf.GetSize());
  }
  w.Raw(*cache, type);
}

// The document with `w`'s limits; `bytes_before` (when not 0) is the size of the document
// without them, written as the truncation marker. `body` is shared only by documents without
// limits.
std::string Write(const RoutedItem& item, size_t cap, size_t max_spans, size_t bytes_before,
                  RoutedItemBody* body) {
  if (cap != std::numeric_limits<size_t>::max() || max_spans != std::numeric_limits<size_t>::max())
    body = nullptr;
  const Trace& trace = *item.trace;
  const RuleSpec& rule = *item.rule;
  const DestinationSpec& dest = *item.destination;
  const bool has_context = trace.span_count() != 0;
  const std::vector<const Annotation*> feedback = FeedbackOf(trace);
  const Review review = ReviewOf(feedback);
  const char* status = review.human ? "annotated" : "pending";
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.cap = cap;
  w.max_spans = max_spans;
  w.StartObject();
  w.Key("schema");
  String(w, kRoutedItemSchema);
  w.Key("id");
  String(w, RoutedItemId(trace.id(), rule.name, dest.name));
  w.Key("trace_id");
  String(w, trace.id());
  w.Key("destination");
  String(w, dest.name);
  w.Key("kind");
  String(w, DestinationKindName(dest.kind));
  w.Key("rule");
  String(w, rule.name);
  w.Key("priority");
  String(w, rule.priority);
  // Written as a double, so 1 reads 1.0 as in DESIGN §4. The config loader keeps it within
  // [0, 1]; null only guards against a hand-built NaN.
  w.Key("sample_rate");
  if (std::isfinite(rule.sample_rate))
    w.Double(rule.sample_rate);
  else
    w.Null();
  w.Key("trigger");
  String(w, TriggerName(item.trigger));
  w.Key("routed_at");
  String(w, FormatRfc3339(item.routed_at_ns));
  w.Key("config_version");
  String(w, item.config_version);
  w.Key("input");
  OptString(w, has_context ? trace.summary().input : std::nullopt);
  w.Key("output");
  OptString(w, has_context ? trace.summary().output : std::nullopt);
  if (dest.kind == DestinationKind::kDataset) {
    // A dataset row: its columns at the top level too (DESIGN §4).
    w.Key("expected_output");
    OptString(w, ExpectedOutput(review));
    w.Key("annotation_status");
    String(w, status);
    w.Key("feedback_category");
    OptString(w, review.labeled ? review.labeled->label : std::nullopt);
  }
  w.Key("trace");
  if (has_context)
    Shared(w, body ? &body->trace : nullptr, rapidjson::kObjectType,
           [&](Writer& to) { WriteTrace(to, trace); });
  else
    w.Null();
  if (!has_context) {
    w.Key("context");
    String(w, "missing");
  }
  w.Key("feedback");
  Shared(w, body ? &body->feedback : nullptr, rapidjson::kArrayType, [&](Writer& to) {
    to.StartArray();
    for (const Annotation* a : feedback) WriteAnnotation(to, *a, trace.id());
    to.EndArray();
  });
  w.Key("annotation");
  w.StartObject();
  w.Key("status");
  String(w, status);
  w.Key("score");
  OptNumber(w, review.human ? review.human->score : std::nullopt);
  w.Key("label");
  OptString(w, review.human ? review.human->label : std::nullopt);
  w.Key("explanation");
  OptString(w, review.human ? review.human->explanation : std::nullopt);
  w.Key("expected_output");
  OptString(w, ExpectedOutput(review));
  w.EndObject();
  if (bytes_before > 0) {
    w.Key("truncated");
    w.StartObject();
    w.Key("bytes_before");
    w.Uint64(bytes_before);
    w.EndObject();
  }
  if (has_context && trace.span_count() > max_spans) {
    w.Key("spans_omitted");
    w.Uint64(trace.span_count() - max_spans);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// The largest value in [lo, hi] for which `fits` holds, `fits` being monotone; lo if none.
template <typename Fits>
size_t Largest(size_t lo, size_t hi, const Fits& fits) {
  while (lo < hi) {
    const size_t mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace

std::string SerializeRoutedItem(const RoutedItem& item, size_t max_bytes, RoutedItemBody* body) {
  constexpr size_t kAll = std::numeric_limits<size_t>::max();
  std::string whole = Write(item, kAll, kAll, 0, body);
  if (whole.size() <= max_bytes) return whole;
  // DESIGN §4 Size: the largest strings are cut first, to the longest length that fits...
  const size_t before = whole.size();
  auto size_with = [&](size_t cap, size_t spans) {
    return Write(item, cap, spans, before, nullptr).size();
  };
  if (size_with(kMinStringCut, kAll) <= max_bytes) {
    const size_t cap =
        Largest(kMinStringCut, before, [&](size_t c) { return size_with(c, kAll) <= max_bytes; });
    return Write(item, cap, kAll, before, nullptr);
  }
  // ...then spans past the first ones are left out.
  const size_t spans = Largest(0, item.trace->span_count(),
                               [&](size_t n) { return size_with(kMinStringCut, n) <= max_bytes; });
  return Write(item, kMinStringCut, spans, before, nullptr);
}

}  // namespace triaged
