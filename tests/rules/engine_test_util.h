// Test helpers for the decision engine: hand-written rule predicates (no expression compiler),
// event builders, a rule-set builder and a sink / observer that record what the engine did.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rules/engine.h"
#include "rules/event.h"
#include "rules/expr.h"
#include "rules/ruleset.h"
#include "rules/trace.h"

namespace triaged::testutil {

constexpr int64_t Sec(int64_t s) { return s * kNanosPerSecond; }
constexpr int64_t Ms(int64_t ms) { return ms * kNanosPerMilli; }

// A `when:` predicate written in C++.
class FnExpr : public CompiledExpr {
 public:
  explicit FnExpr(std::function<bool(const Trace&)> fn) : fn_(std::move(fn)) {}
  bool Matches(const Trace& trace) const override { return fn_(trace); }
  ExprValue Evaluate(const Trace& trace) const override {
    ExprValue v;
    v.kind = ExprValue::Kind::kBool;
    v.b = fn_(trace);
    return v;
  }
  bool Explain(const Trace& trace, std::vector<ExplainStep>& steps) const override {
    const bool r = fn_(trace);
    steps.push_back(ExplainStep{"<fn>", "", r});
    return r;
  }
  std::string_view type_name() const override { return "bool"; }

 private:
  std::function<bool(const Trace&)> fn_;
};

// A string-valued expression (for `sample_key:`); nullopt evaluates to a missing value.
class StringFnExpr : public CompiledExpr {
 public:
  explicit StringFnExpr(std::function<std::optional<std::string>(const Trace&)> fn)
      : fn_(std::move(fn)) {}
  bool Matches(const Trace&) const override { return false; }
  ExprValue Evaluate(const Trace& trace) const override {
    ExprValue v;
    if (auto s = fn_(trace)) {
      v.kind = ExprValue::Kind::kString;
      v.s = *s;
    }
    return v;
  }
  bool Explain(const Trace&, std::vector<ExplainStep>&) const override { return false; }
  std::string_view type_name() const override { return "string"; }

 private:
  std::function<std::optional<std::string>(const Trace&)> fn_;
};

inline std::shared_ptr<const CompiledExpr> When(std::function<bool(const Trace&)> fn) {
  return std::make_shared<FnExpr>(std::move(fn));
}
inline std::shared_ptr<const CompiledExpr> Always() {
  return When([](const Trace&) { return true; });
}
inline std::shared_ptr<const CompiledExpr> Never() {
  return When([](const Trace&) { return false; });
}
// Matches when the trace has an annotation `name` with label `label`.
inline std::shared_ptr<const CompiledExpr> FeedbackLabel(std::string name, std::string label) {
  return When([name = std::move(name), label = std::move(label)](const Trace& t) {
    const Annotation* a = t.LatestAnnotation(name);
    return a != nullptr && a->label == label;
  });
}
inline std::shared_ptr<const CompiledExpr> HasError() {
  return When([](const Trace& t) { return t.summary().error; });
}
inline std::shared_ptr<const CompiledExpr> SessionKey() {
  return std::make_shared<StringFnExpr>([](const Trace& t) -> std::optional<std::string> {
    const std::optional<std::string_view>& id = t.summary().session_id;
    return id ? std::optional<std::string>(*id) : std::nullopt;
  });
}

// Span / annotation / message builders.
inline Span MakeSpan(std::string trace_id, std::string span_id, std::string parent = "x",
                     std::optional<int64_t> start_ns = std::nullopt,
                     std::optional<int64_t> end_ns = std::nullopt, size_t bytes = 100) {
  Span s;
  s.trace_id = std::move(trace_id);
  s.span_id = std::move(span_id);
  s.parent_span_id = std::move(parent);
  s.name = "span-" + s.span_id;
  s.start_ns = start_ns;
  s.end_ns = end_ns;
  s.bytes = bytes;
  return s;
}
// A child span (has a parent, so it never triggers root_grace).
inline Span Child(std::string trace_id, std::string span_id, size_t bytes = 100) {
  return MakeSpan(std::move(trace_id), std::move(span_id), "parent", std::nullopt, std::nullopt,
                  bytes);
}
inline Span Root(std::string trace_id, int64_t start_ns, int64_t end_ns) {
  return MakeSpan(std::move(trace_id), "root", "", start_ns, end_ns);
}
inline Span ErrorSpan(std::string trace_id, std::string span_id) {
  Span s = Child(std::move(trace_id), std::move(span_id));
  s.status = SpanStatus::kError;
  return s;
}

inline Annotation MakeAnnotation(std::string trace_id, std::string name,
                                 std::optional<std::string> label,
                                 std::optional<double> score = std::nullopt,
                                 std::optional<int64_t> timestamp_ns = std::nullopt) {
  Annotation a;
  a.trace_id = std::move(trace_id);
  a.name = std::move(name);
  a.label = std::move(label);
  a.score = score;
  a.timestamp_ns = timestamp_ns;
  a.source = "end_user";
  a.bytes = 50;
  return a;
}
inline Annotation ThumbsDown(std::string trace_id) {
  return MakeAnnotation(std::move(trace_id), "thumbs", "down", 0.0);
}

inline DecodedMessage Msg(Span span) {
  DecodedMessage m;
  m.spans.push_back(std::move(span));
  return m;
}
inline DecodedMessage Msg(Annotation annotation) {
  DecodedMessage m;
  m.annotations.push_back(std::move(annotation));
  return m;
}

// Builds a RuleSet with named destinations and rules.
class RuleSetBuilder {
 public:
  RuleSetBuilder() { rs_ = std::make_shared<RuleSet>(); }

  RuleSetBuilder& Dest(std::string name, std::optional<RateLimitSpec> limit = std::nullopt) {
    DestinationSpec d;
    d.name = name;
    d.topic = "topic." + name;
    d.limit = limit;
    rs_->destinations.push_back(std::move(d));
    return *this;
  }
  // Adds a rule routing to `dests` (destination names, which must have been added).
  RuleSpec& Rule(std::string name, std::shared_ptr<const CompiledExpr> when,
                 const std::vector<std::string>& dests) {
    RuleSpec r;
    r.name = std::move(name);
    r.when = std::move(when);
    for (const std::string& d : dests) r.destinations.push_back(DestIndex(d));
    rs_->rules.push_back(std::move(r));
    return rs_->rules.back();
  }
  RuleSetBuilder& Mode(RoutingMode mode) {
    rs_->mode = mode;
    return *this;
  }
  RuleSetBuilder& Filter(std::shared_ptr<const CompiledExpr> filter) {
    rs_->filter_text = "test filter";
    rs_->filter = std::move(filter);
    return *this;
  }
  TraceSettings& trace() { return rs_->trace; }
  std::shared_ptr<const RuleSet> Build() { return rs_; }

 private:
  size_t DestIndex(const std::string& name) const {
    for (size_t i = 0; i < rs_->destinations.size(); ++i) {
      if (rs_->destinations[i].name == name) return i;
    }
    return SIZE_MAX;
  }
  std::shared_ptr<RuleSet> rs_;
};

// A copy of what the sink saw (the item's pointers are only valid during the call).
struct Routed {
  std::string trace_id;
  std::string rule;
  std::string destination;
  Trigger trigger = Trigger::kClose;
  int64_t routed_at_ns = 0;
  size_t span_count = 0;
  size_t annotation_count = 0;
  std::string config_version;

  friend bool operator==(const Routed&, const Routed&) = default;
};

// An outbox that the engine fills directly; items() reads the routes as plain records.
class RecordingOutbox : public Outbox {
 public:
  std::vector<Routed> items() const {
    std::vector<Routed> out;
    for (const Route& r : routes) {
      out.push_back(Routed{r.trace_id, r.rule->name, r.destination->name, r.trigger, r.routed_at_ns,
                           r.span_count, r.annotation_count, r.rules->config_version});
    }
    return out;
  }
  // "trace/rule/destination" strings, in routing order; clears the record.
  std::vector<std::string> Take() {
    std::vector<std::string> out;
    for (const Route& r : routes) {
      out.push_back(r.trace_id + "/" + r.rule->name + "/" + r.destination->name);
    }
    clear();
    return out;
  }
};

class RecordingObserver : public EngineObserver {
 public:
  struct Close {
    std::string trace_id;
    CloseReason reason;
    int64_t now_ns;
    size_t span_count;
  };
  struct Evaluation {
    std::string trace_id;
    Trigger trigger;
    int64_t now_ns;
    std::vector<RuleVerdict> verdicts;
  };
  struct Evict {
    std::string trace_id;
    std::string reason;
    int64_t now_ns;
  };
  void OnClose(const Trace& trace, CloseReason reason, int64_t now_ns) override {
    closes.push_back(Close{trace.id(), reason, now_ns, trace.spans().size()});
  }
  void OnEvaluation(const Trace& trace, Trigger trigger, int64_t now_ns,
                    const std::vector<RuleVerdict>& verdicts) override {
    evaluations.push_back(Evaluation{trace.id(), trigger, now_ns, verdicts});
  }
  void OnEvict(const Trace& trace, std::string_view reason, int64_t now_ns) override {
    evicts.push_back(Evict{trace.id(), std::string(reason), now_ns});
  }
  std::vector<Close> closes;
  std::vector<Evaluation> evaluations;
  std::vector<Evict> evicts;
};

}  // namespace triaged::testutil
