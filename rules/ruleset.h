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

enum class RoutingMode { kFanOut, kFirstMatch };

struct TraceSettings {
  int64_t decision_wait_ns = 10 * kNanosPerSecond;
  int64_t root_grace_ns = 2 * kNanosPerSecond;
  int64_t max_wait_ns = 5 * 60 * kNanosPerSecond;
  int64_t late_feedback_window_ns = 3600 * kNanosPerSecond;
  uint64_t max_open_traces = 200000;
  uint64_t max_trace_bytes = 4 * 1024 * 1024;
};

struct RuleSet {
  std::vector<DestinationSpec> destinations;
  std::vector<RuleSpec> rules;
  RoutingMode mode = RoutingMode::kFanOut;
  TraceSettings trace;
  uint64_t max_item_bytes = 900 * 1024;  // a routed item's size bound (DESIGN §4 Size)
  std::string config_version;            // sha256 of the config file, hex
};

}  // namespace triaged
