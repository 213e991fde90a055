// Token bucket for `limit: {max: N, per: DURATION}`: starts full with N tokens and refills N
// tokens per `per`, continuously, on the caller's clock (so tests and replays are exact).
#pragma once

#include <cstdint>

#include "rules/ruleset.h"

namespace triaged {

class TokenBucket {
 public:
  explicit TokenBucket(const RateLimitSpec& spec) : spec_(spec), tokens_(static_cast<double>(spec.max)) {}

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

}  // namespace triaged
