// Token bucket for `limit: {max: N, per: DURATION}`: starts full with N tokens and refills N
// tokens per `per`, continuously, on the caller's clock (so tests and replays are exact).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "rules/ruleset.h"

namespace triaged {

class TokenBucket {
 public:
  explicit TokenBucket(const RateLimitSpec& spec)
      : spec_(spec), tokens_(static_cast<double>(spec.max)) {}

  // Takes one token at `now_ns` if one is available.
  bool TryTake(int64_t now_ns);

  // Whether TryTake(now_ns) would succeed, without taking the token.
  bool Available(int64_t now_ns);

  // Keeps the current fill when a reload changes the limit (clamped to the new capacity).
  void Reconfigure(const RateLimitSpec& spec);

  double tokens() const { return tokens_; }

 private:
  void Refill(int64_t now_ns);

  RateLimitSpec spec_;
  double tokens_;
  int64_t last_ns_ = 0;
  bool started_ = false;
};

// The buckets of every limited rule and destination, by name. One set serves every engine of a
// process (one engine per partition in the daemon), so a limit caps the process, not each
// partition.
class RateLimits {
 public:
  TokenBucket& Rule(const RuleSpec& rule) {
    return rules_.try_emplace(rule.name, *rule.limit).first->second;
  }
  TokenBucket& Destination(const DestinationSpec& dest) {
    return destinations_.try_emplace(dest.name, *dest.limit).first->second;
  }
  // After a reload: buckets of limits that stay keep their fill (clamped to the new capacity);
  // buckets of removed or unlimited rules and destinations are dropped.
  void Reconfigure(const RuleSet& rules);

 private:
  std::unordered_map<std::string, TokenBucket> rules_, destinations_;
};

}  // namespace triaged
