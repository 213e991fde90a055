// The daemon's status documents: /v1/rules (every rule with its counters) and /v1/status (the
// status page's: the process, its inputs and outputs, the last routed items with the condition
// that routed them). Rebuilt by the pipeline once a second, read by the admin thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "daemon/metrics.h"
#include "rules/engine.h"

namespace triaged {

// Counters sampled over time, as per-second rates in fixed buckets: the status page's sparklines
// (an in-process ring, no external store). A bucket's rate is the counter's rise from the first
// sample in it to the first sample of the next (or the latest sample), over the time between.
class RateHistory {
 public:
  static constexpr int64_t kBucketNs = 10'000'000'000;  // 10 s
  static constexpr size_t kBuckets = 90;                // 15 minutes

  // The cumulative value of each series at `now_ns`; a series may come and go. A `now_ns`
  // before the latest sample's (the system clock stepped back) starts the history again.
  void Sample(int64_t now_ns, const std::map<std::string, uint64_t>& counts);
  // Each series' rate per second in the kBuckets buckets up to the latest sample's, oldest
  // first; nullopt where it has no data (before its first sample, or a gap).
  std::map<std::string, std::vector<std::optional<double>>> Rates() const;

 private:
  struct Point {
    int64_t at_ns;
    std::map<std::string, uint64_t> counts;
  };
  std::deque<Point> firsts_;  // the first sample of each bucket that had one, oldest first
  Point latest_{0, {}};
};

// A capped destination's limit and what this process may still route to it in the window.
struct DestinationBudget {
  double left = 0;      // tokens, over the partitions this process decides
  double capacity = 0;  // the same, full
};

// What the documents say about the process, gathered by the pipeline.
struct StatusFacts {
  bool exactly_once = false;
  bool broker_reachable = false;
  bool partitions_assigned = false;
  size_t partitions = 0;
  uint64_t traces_open = 0;
  int64_t consumer_lag = 0;
  int64_t now_ns = 0;  // system time of the facts: the history's clock
  // By destination name, for the destinations with a `limit`.
  std::map<std::string, DestinationBudget> budgets;
};

class StatusDocuments {
 public:
  // A routed item handed to the producer: kept among the last ones.
  void Routed(const Route& route);
  // Rebuilds both documents; `totals[i]` are the counts of `config.rules->rules[i]`.
  void Rebuild(const Config& config, const std::vector<RuleCounters>& totals,
               const StatusFacts& facts, const Metrics& metrics);

  std::string rules_json() const;
  // `with_recent` false: the `recent` routed items left out (an empty array).
  std::string status_json(bool with_recent = true) const;

  // Takes the rule names of `rules` (Rebuild does too), for has_rule().
  void SetRules(const RuleSet& rules);
  // Whether the rules last taken have a rule of that name.
  bool has_rule(std::string_view name) const;
  // The names of the rules last taken, sorted.
  std::vector<std::string> rule_names() const;

 private:
  struct Recent {
    int64_t routed_at_ns;
    std::string trace_id, rule, destination, trigger, priority, when;
  };
  static constexpr size_t kRecentItems = 25;
  static constexpr size_t kTopReasons = 5;
  RateHistory history_;        // "routed:DESTINATION" and "dead_letters"
  std::deque<Recent> recent_;  // newest last
  mutable std::mutex mu_;      // guards the documents
  std::string rules_json_ = "{}";
  std::string status_json_ = "{}";
  std::string status_json_without_recent_ = "{}";
  std::set<std::string, std::less<>> rule_names_;
};

}  // namespace triaged
