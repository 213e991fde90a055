// The daemon's Prometheus metrics (DESIGN §6): one registry holding every `triaged_` family,
// small methods the pipeline calls to bump them, and the text exposition for /metrics.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/process_metrics.h"
#include "rules/engine.h"
#include "rules/ruleset.h"

namespace triaged {

// The probe owns every count the daemon keeps: it increments, exports (/metrics) and answers
// the status documents. Thread-safety: every method may be called from any thread.
// prometheus-cpp counters, gauges and histograms are atomic and families serialise their own
// child creation; the rule totals have their own mutex. In practice the pipeline thread bumps,
// and the admin thread calls Serialize().
class Metrics {
 public:
  // `version` goes into triaged_build_info{version}.
  explicit Metrics(std::string_view version);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Totals for the status document, counted by the methods below.
  uint64_t consumed() const { return consumed_.load(); }
  uint64_t routed() const { return routed_count_.load(); }
  uint64_t dead_lettered() const { return dead_lettered_count_.load(); }
  uint64_t produce_errors() const { return produce_error_count_.load(); }
  uint64_t routed_to(const std::string& destination) const;

  // Input messages read from a topic (`input` is "spans" or "feedback").
  void EventConsumed(std::string_view input, uint64_t count = 1);
  // Input messages refused by the decoder, by reason.
  void EventInvalid(std::string_view input, std::string_view reason);
  // One annotation taken in from an input message (DESIGN §6): `name` is a name declared in
  // `annotations:` or "other", `source` one of DESIGN §1.2's or "unknown" (AnnotationMetricName,
  // AnnotationMetricSource), so the series are bounded by the config.
  void AnnotationIngested(std::string_view name, std::string_view source);
  void DeadLettered(std::string_view reason = "unknown", uint64_t count = 1);
  // Dead letters by reason since the start (the status page's top reasons).
  std::map<std::string, uint64_t> dead_lettered_by_reason() const;
  void SetTracesOpen(uint64_t open);
  // The configured bound (trace.max_open_traces), so alerts can compare against it.
  void SetMaxOpenTraces(uint64_t max);
  void TraceEvicted(std::string_view reason, uint64_t count = 1);
  // Input messages of `input` whose events (all, or the traces not at home) were re-produced
  // to the repartition topic (DESIGN §1.4).
  void EventsRepartitioned(std::string_view input, uint64_t count = 1);
  // Traces decided on their feedback alone (no span ever reached their engine).
  void TracesWithoutSpans(uint64_t count);
  // The trace store (DESIGN §6): closed traces moved from memory to the store (`to_store`) and
  // brought back by a late event (`to_memory`); records that could not be read back.
  void TraceStoreMoves(std::string_view direction, uint64_t count);
  void TraceStoreUnreadable(uint64_t count);
  // What the local stores of the partitions this process owns hold: records and disk bytes.
  void SetTraceStore(uint64_t records, uint64_t disk_bytes);
  // One partition's store restored by its new owner, `from` "local" (only the changelog's tail
  // read) or "changelog" (rebuilt from the whole changelog).
  void TraceStoreRestored(std::string_view from, uint64_t records, double seconds);
  uint64_t repartitioned() const { return repartitioned_count_.load(); }
  uint64_t traces_without_spans() const { return without_spans_count_.load(); }
  // One routed item acknowledged by the broker.
  void Routed(std::string_view rule, std::string_view destination);
  // A record the broker did not take, by destination ("dead_letter", "decisions" and
  // "transaction" for those) and librdkafka's error name.
  void ProduceError(std::string_view destination, std::string_view error, uint64_t count = 1);
  // Time from a trace's close deadline to its decision, in seconds.
  void ObserveDecisionLatency(double seconds);
  void ObserveRouteAckLatency(double seconds);
  void SetConsumerLag(std::string_view topic, int32_t partition, int64_t lag);
  // How long the partition's commit point has stood still behind consumed input (0: it has not).
  void SetCommitStalled(std::string_view topic, int32_t partition, double seconds);
  void ConfigReload(bool success);
  // The admin server's totals: tap clients dropped for not reading, connections refused past
  // its limits (the counters follow them).
  void SyncAdminCounts(uint64_t tap_clients_dropped, uint64_t connections_refused);

  // Adds counts of `rule` (a partition engine's, since its last sync) to the process totals.
  void AddRuleCounts(const std::string& rule, const RuleCounters& delta);
  // The process totals of each rule of `rules`, in order (zero for a rule not counted yet);
  // every rule's series exists from here on, so rate() works from the first scrape.
  std::vector<RuleCounters> RuleTotals(const RuleSet& rules);

  // Every family: the declared ones (with HELP and TYPE even before their first series), any
  // other registered in registry(), then the process_* collector's.
  std::vector<prometheus::MetricFamily> Collect() const;
  // Prometheus text exposition format 0.0.4 of Collect().
  std::string Serialize() const;

  prometheus::Registry& registry() { return *registry_; }
  const std::shared_ptr<prometheus::Registry>& shared_registry() const { return registry_; }

  // Default decision-latency buckets, 1 ms .. 60 s.
  static std::vector<double> DecisionLatencyBuckets();
  static std::vector<double> RouteAckLatencyBuckets();

 private:
  // Registers a family in registry_ and remembers its name, help and type for Collect().
  template <typename T>
  prometheus::Family<T>& Declare(const char* name, const char* help);

  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<prometheus::MetricFamily> declared_;  // in registration order, without series
  ProcessMetrics process_;
  prometheus::Family<prometheus::Counter>& events_consumed_;
  prometheus::Family<prometheus::Counter>& events_invalid_;
  prometheus::Family<prometheus::Counter>& annotations_;
  prometheus::Family<prometheus::Counter>& dead_lettered_;
  prometheus::Family<prometheus::Gauge>& traces_open_;
  prometheus::Family<prometheus::Counter>& traces_evicted_;
  prometheus::Family<prometheus::Counter>& events_repartitioned_;
  prometheus::Family<prometheus::Counter>& traces_without_spans_;
  prometheus::Family<prometheus::Counter>& store_moves_;
  prometheus::Family<prometheus::Counter>& store_unreadable_;
  prometheus::Family<prometheus::Gauge>& store_records_;
  prometheus::Family<prometheus::Gauge>& store_bytes_;
  prometheus::Family<prometheus::Histogram>& store_restore_seconds_;
  prometheus::Family<prometheus::Counter>& store_restored_records_;
  prometheus::Family<prometheus::Counter>& rule_matched_;
  prometheus::Family<prometheus::Counter>& rule_sampled_out_;
  prometheus::Family<prometheus::Counter>& rule_rate_limited_;
  prometheus::Family<prometheus::Counter>& routed_;
  prometheus::Family<prometheus::Counter>& produce_errors_;
  prometheus::Family<prometheus::Histogram>& decision_latency_;
  prometheus::Family<prometheus::Histogram>& route_ack_latency_;
  prometheus::Family<prometheus::Gauge>& consumer_lag_;
  prometheus::Family<prometheus::Gauge>& commit_stalled_;
  prometheus::Family<prometheus::Counter>& config_reloads_;
  prometheus::Family<prometheus::Counter>& admin_refusals_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  prometheus::Family<prometheus::Gauge>& max_open_traces_family_;

  // Unlabelled children, created once.
  prometheus::Counter& dead_lettered_total_;
  prometheus::Gauge& traces_open_gauge_;
  prometheus::Histogram& decision_latency_seconds_;
  prometheus::Histogram& route_ack_latency_seconds_;
  prometheus::Gauge& max_open_traces_;
  prometheus::Counter& reloads_success_;
  prometheus::Counter& reloads_failure_;
  prometheus::Counter& traces_without_spans_total_;
  // The series bumped for every message or routed item, resolved once rather than looked up.
  prometheus::Counter& consumed_spans_;
  prometheus::Counter& consumed_feedback_;

  std::atomic<uint64_t> consumed_{0};
  std::atomic<uint64_t> routed_count_{0};
  std::atomic<uint64_t> dead_lettered_count_{0};
  std::atomic<uint64_t> produce_error_count_{0};
  std::atomic<uint64_t> repartitioned_count_{0};
  std::atomic<uint64_t> without_spans_count_{0};
  struct RoutedTo {
    uint64_t count = 0;
    std::map<std::string, prometheus::Counter*, std::less<>> by_rule;  // triaged_routed_total
  };
  mutable std::mutex reasons_mu_;
  std::map<std::string, uint64_t, std::less<>> dead_lettered_by_reason_;
  mutable std::mutex destinations_mu_;
  std::map<std::string, RoutedTo, std::less<>> routed_by_destination_;

  uint64_t taps_dropped_seen_ = 0;
  uint64_t connections_refused_seen_ = 0;
  mutable std::mutex rules_mu_;  // guards rule_totals_
  std::map<std::string, RuleCounters, std::less<>> rule_totals_;
};

}  // namespace triaged
