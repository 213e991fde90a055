// Token buckets for `limit: {max: N, per: DURATION}`, split over the partitions the engines join
// on (DESIGN §2.3): each of P partitions owns 1/P of every limit, so a deployment routes what
// one process would whatever the number of replicas. Buckets refill continuously on the
// caller's clock (so tests and replays are exact).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "rules/ruleset.h"

namespace triaged {

// Which share of the limits an engine spends: P = `partitions` (the partitions the engines join
// on), and the engine's own partition, or -1 for "the partition of each trace", that is
// Murmur2Partition(trace id, P) as the daemon places traces (replay of a whole deployment).
struct LimitScope {
  int32_t partitions = 1;
  int32_t partition = -1;
};

// One partition's share of a limit: refills max/per/P tokens per nanosecond (fractions kept)
// and holds at most max(max/P, 1). The floor of one token keeps a partition whose share is
// below one able to route at all; it is why P partitions together may burst to max + P rather
// than max.
class TokenBucket {
 public:
  // Full: starts with its capacity.
  explicit TokenBucket(const RateLimitSpec& spec, int32_t partitions = 1);

  // Takes one token at `now_ns` if one is available.
  bool TryTake(int64_t now_ns);

  // Whether TryTake(now_ns) would succeed, without taking the token.
  bool Available(int64_t now_ns);

  // Keeps the current fill when a reload changes the limit (clamped to the new capacity).
  void Reconfigure(const RateLimitSpec& spec);

  // Puts the bucket back to a fill it had at `at_ns` (its state handed over with a partition),
  // clamped to the capacity.
  void Restore(double tokens, int64_t at_ns);

  double tokens() const { return tokens_; }
  double capacity() const { return capacity_; }
  // The tokens it would hold at `now_ns`, refilled, without refilling it.
  double TokensAt(int64_t now_ns) const;
  // The bucket's clock: when it last refilled (0 before its first use).
  int64_t at_ns() const { return last_ns_; }

 private:
  void Refill(int64_t now_ns);

  RateLimitSpec spec_;
  int32_t partitions_;
  double capacity_;
  double tokens_;
  int64_t last_ns_ = 0;
  bool started_ = false;
};

enum class LimitKind { kRule, kDestination };
std::string_view LimitKindName(LimitKind kind);

// A bucket's state, for handing a partition's buckets to its next owner (exactly-once).
struct BucketState {
  int32_t partition = 0;
  LimitKind kind = LimitKind::kRule;
  std::string name;  // of the rule or destination
  double tokens = 0;
  int64_t at_ns = 0;
};

// The buckets of every limited rule and destination, by partition and name. One set serves
// every engine of a process; each engine spends the buckets of the partitions it decides.
class RateLimits {
 public:
  TokenBucket& Rule(int32_t partition, int32_t partitions, const RuleSpec& rule) {
    return Bucket(partition, partitions, LimitKind::kRule, rule.name, *rule.limit);
  }
  TokenBucket& Destination(int32_t partition, int32_t partitions, const DestinationSpec& dest) {
    return Bucket(partition, partitions, LimitKind::kDestination, dest.name, *dest.limit);
  }
  // Single-partition shorthands (P = 1).
  TokenBucket& Rule(const RuleSpec& rule) { return Rule(0, 1, rule); }
  TokenBucket& Destination(const DestinationSpec& dest) { return Destination(0, 1, dest); }

  // After a reload: buckets of limits that stay keep their fill (clamped to the new capacity);
  // buckets of removed or unlimited rules and destinations are dropped.
  void Reconfigure(const RuleSet& rules);

  // Drops the buckets of `partition`: they start full when next used.
  void Forget(int32_t partition);

  // Sets a bucket to a handed-over state, for the limit of that name in `rules` (P =
  // `partitions`). False, and nothing changes, when `rules` has no such limit any more.
  bool Restore(const RuleSet& rules, int32_t partitions, const BucketState& state);

  // Buckets held, over every partition.
  size_t size() const;

  // The bucket of destination `name` in `partition`, or null while it has not been used (it
  // would start full).
  const TokenBucket* FindDestination(int32_t partition, const std::string& name) const;

 private:
  struct Shares {
    std::unordered_map<std::string, TokenBucket> rules, destinations;
  };
  TokenBucket& Bucket(int32_t partition, int32_t partitions, LimitKind kind,
                      const std::string& name, const RateLimitSpec& spec);

  // Engines of different partitions take their buckets from several threads at once: the
  // table of partitions is locked while a partition's shares are found (or made); each share
  // is then used only by its own partition's engine. The other members run between batches.
  std::mutex mu_;
  std::unordered_map<int32_t, Shares> partitions_;  // by partition
};

}  // namespace triaged
