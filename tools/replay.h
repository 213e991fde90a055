// Offline driver: feeds replay lines through decoding and the engine on event time. Used by
// `triaged replay`, `test` and `explain`, so all three decide exactly as the daemon would.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "daemon/ingest.h"
#include "rules/engine.h"

namespace triaged {

struct ReplayStats {
  uint64_t lines = 0;
  uint64_t messages = 0;  // decoded successfully
  uint64_t spans = 0;
  uint64_t annotations = 0;
  uint64_t invalid = 0;  // dead-lettered
  std::map<std::string, uint64_t> invalid_by_reason;
  uint64_t routed_items = 0;
};

class Replayer {
 public:
  using RouteFn = std::function<void(const Route&)>;
  using DeadLetterFn = std::function<void(const DeadLetter&)>;

  // `on_route` (may be empty) sees every routed item, in routing order; with `documents` false
  // the routes carry no serialized document (callers that only look at who was routed).
  // `limit_partitions`: the join partitions of the deployment to predict; every limit is split
  // over them as the daemon splits it (DESIGN §2.3), each trace spending its partition's share.
  explicit Replayer(std::shared_ptr<const Config> config, RouteFn on_route = {},
                    bool documents = true, int32_t limit_partitions = 1);
  ~Replayer();
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;
  // With `trace.store`, a replay keeps closed traces in a temporary store of its own; why it
  // could not, if it could not (the replay then keeps them in memory).
  const std::string& store_error() const { return store_error_; }

  void set_dead_letter_fn(DeadLetterFn fn) { dead_letter_ = std::move(fn); }
  Engine& engine() { return engine_; }

  // One line of input (no trailing newline). Blank lines are skipped.
  void Line(std::string_view line, uint64_t line_no);
  // End of input: every open trace closes.
  void Finish();

  const ReplayStats& stats() const { return stats_; }

 private:
  void Reject(const std::string& reason, const std::string& message, const MessageOrigin& origin,
              std::string_view payload);
  // Hands what the engine decided to `on_route_` and empties the outbox.
  void Drain();

  std::shared_ptr<const Config> config_;
  RouteFn on_route_;
  Outbox outbox_;
  Engine engine_;
  DeadLetterFn dead_letter_;
  ReplayStats stats_;
  std::unique_ptr<TraceStore> store_;
  std::string store_dir_, store_error_;
};

// Writes the per-rule summary table of a replay (matched, sampled out, rate limited, routed,
// then inputs and invalid inputs by reason).
std::string FormatReplaySummary(const Engine& engine, const ReplayStats& stats);
// The same as one line of JSON (`replay --summary json`): {"rules": [{name, matched,
// sampled_out, rate_limited, routed}...], "inputs": {lines, messages, spans, annotations,
// invalid, invalid_by_reason}, "traces": {opened, closed, late_evaluations, evicted_capacity,
// stored, revived}, "routed_items"}.
std::string FormatReplaySummaryJson(const Engine& engine, const ReplayStats& stats);

}  // namespace triaged
