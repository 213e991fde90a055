#include "rules/rate_limit.h"

#include <algorithm>

namespace triaged {
namespace {

double Capacity(const RateLimitSpec& spec, int32_t partitions) {
  return std::max(static_cast<double>(spec.max) / static_cast<double>(std::max(partitions, 1)),
                  1.0);
}

}  // namespace

std::string_view LimitKindName(LimitKind kind) {
  return kind == LimitKind::kRule ? "rule" : "destination";
}

TokenBucket::TokenBucket(const RateLimitSpec& spec, int32_t partitions)
    : spec_(spec),
      partitions_(std::max(partitions, 1)),
      capacity_(Capacity(spec, partitions)),
      tokens_(capacity_) {}

void TokenBucket::Refill(int64_t now_ns) {
  if (!started_) {
    started_ = true;
    last_ns_ = now_ns;
    return;
  }
  if (now_ns <= last_ns_ || spec_.per_ns <= 0) return;
  // max/P tokens per `per`: the share of the rate, whatever the floor on the capacity.
  const double elapsed = static_cast<double>(now_ns - last_ns_);
  const double per_share = static_cast<double>(spec_.per_ns) * static_cast<double>(partitions_);
  tokens_ = std::min(capacity_, tokens_ + elapsed * static_cast<double>(spec_.max) / per_share);
  last_ns_ = now_ns;
}

double TokenBucket::TokensAt(int64_t now_ns) const {
  TokenBucket copy = *this;
  copy.Refill(now_ns);
  return copy.tokens_;
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
  capacity_ = Capacity(spec, partitions_);
  tokens_ = std::min(tokens_, capacity_);
}

void TokenBucket::Restore(double tokens, int64_t at_ns) {
  tokens_ = tokens >= 0 ? std::min(tokens, capacity_) : 0.0;  // NaN: empty
  last_ns_ = at_ns;
  started_ = true;
}

const TokenBucket* RateLimits::FindDestination(int32_t partition, const std::string& name) const {
  auto shares = partitions_.find(partition);
  if (shares == partitions_.end()) return nullptr;
  auto it = shares->second.destinations.find(name);
  return it == shares->second.destinations.end() ? nullptr : &it->second;
}

TokenBucket& RateLimits::Bucket(int32_t partition, int32_t partitions, LimitKind kind,
                                const std::string& name, const RateLimitSpec& spec) {
  Shares* found = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    found = &partitions_[partition];  // a node of the map: it stays where it is
  }
  Shares& shares = *found;
  auto& buckets = kind == LimitKind::kRule ? shares.rules : shares.destinations;
  return buckets.try_emplace(name, spec, partitions).first->second;
}

void RateLimits::Reconfigure(const RuleSet& rules) {
  for (auto& [partition, shares] : partitions_) {
    std::unordered_map<std::string, TokenBucket> kept_rules, kept_destinations;
    for (const RuleSpec& rule : rules.rules) {
      auto it = shares.rules.find(rule.name);
      if (it == shares.rules.end() || !rule.limit) continue;
      it->second.Reconfigure(*rule.limit);
      kept_rules.emplace(rule.name, it->second);
    }
    for (const DestinationSpec& dest : rules.destinations) {
      auto it = shares.destinations.find(dest.name);
      if (it == shares.destinations.end() || !dest.limit) continue;
      it->second.Reconfigure(*dest.limit);
      kept_destinations.emplace(dest.name, it->second);
    }
    shares.rules = std::move(kept_rules);
    shares.destinations = std::move(kept_destinations);
  }
}

void RateLimits::Forget(int32_t partition) { partitions_.erase(partition); }

bool RateLimits::Restore(const RuleSet& rules, int32_t partitions, const BucketState& state) {
  TokenBucket* bucket = nullptr;
  if (state.kind == LimitKind::kRule) {
    for (const RuleSpec& rule : rules.rules) {
      if (rule.name == state.name && rule.limit) bucket = &Rule(state.partition, partitions, rule);
    }
  } else {
    for (const DestinationSpec& dest : rules.destinations) {
      if (dest.name == state.name && dest.limit) {
        bucket = &Destination(state.partition, partitions, dest);
      }
    }
  }
  if (bucket == nullptr) return false;
  bucket->Restore(state.tokens, state.at_ns);
  return true;
}

size_t RateLimits::size() const {
  size_t n = 0;
  for (const auto& [partition, shares] : partitions_) {
    n += shares.rules.size() + shares.destinations.size();
  }
  return n;
}

}  // namespace triaged
