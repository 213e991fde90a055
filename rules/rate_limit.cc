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

}  // namespace triaged
