// The compiled, immutable routing configuration the engine runs: destinations, rules, trace
// timing. Built by config/ from YAML; shared between threads as shared_ptr<const RuleSet>.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rules/expr.h"

namespace triaged {

constexpr int64_t kNanosPerMilli = 1'000'000;
constexpr int64_t kNanosPerSecond = 1'000'000'000;

struct RateLimitSpec {
  uint64_t max = 0;  // tokens (routed traces) per `per_ns`
  int64_t per_ns = 0;
};

enum class DestinationKind { kQueue, kDataset };
std::string_view DestinationKindName(DestinationKind kind);

struct DestinationSpec {
  std::string name;
  DestinationKind kind = DestinationKind::kQueue;
  std::string topic;
  std::optional<RateLimitSpec> limit;
};

struct RuleSpec {
  std::string name;
  std::string when_text;
  std::shared_ptr<const CompiledExpr> when;
  std::vector<size_t> destinations;  // indexes into RuleSet::destinations
  std::string priority = "normal";
  double sample_rate = 1.0;
  std::string sample_key_text = "trace.id";
  std::shared_ptr<const CompiledExpr> sample_key;  // null = trace.id
  std::optional<std::string> sample_salt;
  std::optional<RateLimitSpec> limit;
};

// One declared feedback name (DESIGN §1.5 `annotations:`).
struct AnnotationSchema {
  enum class Type { kCategorical, kScore, kText };
  std::string name;
  Type type = Type::kText;
  std::vector<std::string> values;  // kCategorical: the allowed labels
  std::optional<double> min, max;   // kScore: the allowed range
  std::optional<int64_t> version;
  // The annotation's string value (label, else explanation) is a correction: it becomes its
  // expected_output (DESIGN §1.2 "a string value named in config").
  bool correction = false;
};

struct AnnotationSchemas {
  bool declared = false;  // the config has an `annotations:` section
  bool strict = false;    // feedback with an undeclared name is dead-lettered
  std::vector<AnnotationSchema> schemas;
  const AnnotationSchema* Find(std::string_view name) const {
    for (const AnnotationSchema& s : schemas) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
};

enum class RoutingMode { kFanOut, kFirstMatch };

struct TraceSettings {
  int64_t decision_wait_ns = 10 * kNanosPerSecond;
  int64_t root_grace_ns = 2 * kNanosPerSecond;
  int64_t max_wait_ns = 5 * 60 * kNanosPerSecond;
  int64_t late_feedback_window_ns = 3600 * kNanosPerSecond;
  // With a trace store: how long a closed trace stays in memory before it lives on disk only.
  int64_t hot_window_ns = 5 * 60 * kNanosPerSecond;
  uint64_t max_open_traces = 200000;
  uint64_t max_trace_bytes = 4 * 1024 * 1024;
};

struct RuleSet {
  std::vector<DestinationSpec> destinations;
  std::vector<RuleSpec> rules;
  // `filter:`, evaluated before every rule: a trace it does not match matches no rule. Null:
  // every trace is seen by the rules.
  std::string filter_text;
  std::shared_ptr<const CompiledExpr> filter;
  RoutingMode mode = RoutingMode::kFanOut;
  AnnotationSchemas annotations;
  TraceSettings trace;
  uint64_t max_item_bytes = 900 * 1024;  // a routed item's size bound (DESIGN §4 Size)
  std::string config_version;            // sha256 of the config file, hex
};

}  // namespace triaged
