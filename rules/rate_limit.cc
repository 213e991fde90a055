#include "rules/rate_limit.h"

#include <algorithm>

namespace triaged {

void TokenBucket::Refill(int64_t now_ns) {
  if (!started_) {
    started_ = true;
    last_ns_ = now_ns;
    return;
  }
  if (now_ns <= last_ns_ || spec_.per_ns <= 0) return;
  const double capacity = static_cast<double>(spec_.max);
  const double elapsed = static_cast<double>(now_ns - last_ns_);
  tokens_ = std::min(capacity, tokens_ + elapsed * capacity / static_cast<double>(spec_.per_ns));
  last_ns_ = now_ns;
}

bool TokenBucket::TryTake(int64_t now_ns) {
  Refill(now_ns);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

bool TokenBucket::Available(int64_t now_ns) {
  Refill(now_ns);
  return tokens_ >= 1.0;
}

void TokenBucket::Reconfigure(const RateLimitSpec& spec) {
  spec_ = spec;
  tokens_ = std::min(tokens_, static_cast<double>(spec.max));
}

void RateLimits::Reconfigure(const RuleSet& rules) {
  std::unordered_map<std::string, TokenBucket> kept_rules, kept_destinations;
  for (const RuleSpec& rule : rules.rules) {
    auto it = rules_.find(rule.name);
    if (it == rules_.end() || !rule.limit) continue;
    it->second.Reconfigure(*rule.limit);
    kept_rules.emplace(rule.name, it->second);
  }
  for (const DestinationSpec& dest : rules.destinations) {
    auto it = destinations_.find(dest.name);
    if (it == destinations_.end() || !dest.limit) continue;
    it->second.Reconfigure(*dest.limit);
    kept_destinations.emplace(dest.name, it->second);
  }
  rules_ = std::move(kept_rules);
  destinations_ = std::move(kept_destinations);
}

}  // namespace triaged
