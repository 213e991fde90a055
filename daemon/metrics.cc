#include "daemon/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <type_traits>

namespace triaged {
namespace {

std::string S(std::string_view v) { return std::string(v); }

void Bump(prometheus::Counter& counter, uint64_t delta) {
  if (delta > 0) counter.Increment(static_cast<double>(delta));
}

}  // namespace

std::vector<double> Metrics::DecisionLatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,     2.5,    5,     10,   15,    20,   30,  45,   60};
}

// Fine below 100 ms, where a healthy broker acknowledges.
std::vector<double> Metrics::RouteAckLatencyBuckets() {
  return {0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
          0.05,   0.075, 0.1,   0.25,  0.5,   1,      2.5,  5,     10};
}

template <typename T>
prometheus::Family<T>& Metrics::Declare(const char* name, const char* help) {
  constexpr prometheus::MetricType type =
      std::is_same_v<T, prometheus::Counter> ? prometheus::MetricType::Counter
      : std::is_same_v<T, prometheus::Gauge> ? prometheus::MetricType::Gauge
                                             : prometheus::MetricType::Histogram;
  declared_.push_back(prometheus::MetricFamily{name, help, type, {}});
  return prometheus::detail::Builder<T>().Name(name).Help(help).Register(*registry_);
}

Metrics::Metrics(std::string_view version)
    : registry_(std::make_shared<prometheus::Registry>()),
      events_consumed_(Declare<prometheus::Counter>(
          "triaged_events_consumed_total", "Input messages consumed, by input topic role.")),
      events_invalid_(Declare<prometheus::Counter>(
          "triaged_events_invalid_total",
          "Input messages refused (by the decoder, the trace size, the annotation "
          "schemas, ...), by input and reason.")),
      annotations_(Declare<prometheus::Counter>(
          "triaged_annotations_total",
          "Annotations taken in from input messages, by name (declared in "
          "annotations:, else \"other\") and source.")),
      dead_lettered_(Declare<prometheus::Counter>("triaged_dead_lettered_total",
                                                  "Records written to the dead-letter topic.")),
      traces_open_(Declare<prometheus::Gauge>("triaged_traces_open",
                                              "Traces currently open (waiting for a decision).")),
      traces_evicted_(Declare<prometheus::Counter>(
          "triaged_traces_evicted_total",
          "Traces forgotten from memory, by reason (expired, capacity).")),
      events_repartitioned_(
          Declare<prometheus::Counter>("triaged_events_repartitioned_total",
                                       "Input messages whose events were re-produced to the "
                                       "repartition topic to reach their traces' engines, by "
                                       "input.")),
      traces_without_spans_(
          Declare<prometheus::Counter>("triaged_traces_without_spans_total",
                                       "Traces decided on feedback alone, with no span: many "
                                       "mean spans and feedback are not meeting.")),
      store_moves_(Declare<prometheus::Counter>(
          "triaged_trace_store_moves_total",
          "Closed traces moved by the trace store: to_store (out of memory "
          "after the hot window, or at capacity) and to_memory (brought back "
          "by a late event).")),
      store_unreadable_(Declare<prometheus::Counter>(
          "triaged_trace_store_unreadable_total",
          "Trace store records that could not be read back (treated as "
          "absent).")),
      store_records_(Declare<prometheus::Gauge>(
          "triaged_trace_store_records",
          "Closed traces held in the local trace stores of the partitions "
          "this process owns.")),
      store_bytes_(
          Declare<prometheus::Gauge>("triaged_trace_store_disk_bytes",
                                     "Disk used by the local trace stores (SST files and live "
                                     "write-ahead log), in bytes.")),
      store_restore_seconds_(
          Declare<prometheus::Histogram>("triaged_trace_store_restore_seconds",
                                         "Time a new owner took to restore a partition's trace "
                                         "store, by source (local, changelog).")),
      store_restored_records_(
          Declare<prometheus::Counter>("triaged_trace_store_restored_records_total",
                                       "Changelog records applied while restoring trace stores, "
                                       "by source (local: the tail only; changelog: all).")),
      rule_matched_(Declare<prometheus::Counter>("triaged_rule_matched_total",
                                                 "Traces a rule matched (once per trace).")),
      rule_sampled_out_(Declare<prometheus::Counter>(
          "triaged_rule_sampled_out_total", "Matched traces left out by the rule's sample rate.")),
      rule_rate_limited_(
          Declare<prometheus::Counter>("triaged_rule_rate_limited_total",
                                       "Evaluations denied by a rule or destination rate limit.")),
      routed_(Declare<prometheus::Counter>(
          "triaged_routed_total",
          "Routed items acknowledged by the broker, by rule and destination.")),
      produce_errors_(Declare<prometheus::Counter>(
          "triaged_produce_errors_total",
          "Routed items or dead letters the broker failed to accept.")),
      decision_latency_(Declare<prometheus::Histogram>(
          "triaged_decision_latency_seconds",
          "Delay between a trace's close deadline and its decision.")),
      route_ack_latency_(Declare<prometheus::Histogram>(
          "triaged_route_ack_latency_seconds",
          "Delay between a routing decision and the broker's acknowledgement of the item.")),
      consumer_lag_(Declare<prometheus::Gauge>(
          "triaged_consumer_lag",
          "Messages between the committed offset and the partition's end.")),
      commit_stalled_(
          Declare<prometheus::Gauge>("triaged_commit_stalled_seconds",
                                     "How long a partition's commit point has stood still while "
                                     "consumed input waits behind it (0 when it has not).")),
      config_reloads_(Declare<prometheus::Counter>(
          "triaged_config_reloads_total", "Configuration reloads, by result (success, failure).")),
      admin_refusals_(
          Declare<prometheus::Counter>("triaged_admin_refused_total",
                                       "Admin connections let go by the server's limits, by reason "
                                       "(tap_too_slow, too_many_connections).")),
      build_info_(Declare<prometheus::Gauge>(
          "triaged_build_info", "Always 1; the version label says which build is running.")),
      max_open_traces_family_(Declare<prometheus::Gauge>(
          "triaged_max_open_traces",
          "The configured bound on open traces (trace.max_open_traces).")),
      dead_lettered_total_(dead_lettered_.Add({})),
      traces_open_gauge_(traces_open_.Add({})),
      decision_latency_seconds_(decision_latency_.Add({}, DecisionLatencyBuckets())),
      route_ack_latency_seconds_(route_ack_latency_.Add({}, RouteAckLatencyBuckets())),
      max_open_traces_(max_open_traces_family_.Add({})),
      reloads_success_(config_reloads_.Add({{"result", "success"}})),
      reloads_failure_(config_reloads_.Add({{"result", "failure"}})),
      traces_without_spans_total_(traces_without_spans_.Add({})),
      consumed_spans_(events_consumed_.Add({{"input", "spans"}})),
      consumed_feedback_(events_consumed_.Add({{"input", "feedback"}})) {
  build_info_.Add({{"version", S(version)}}).Set(1);
  // Known label values start at zero so rate() works from the first scrape.
  traces_evicted_.Add({{"reason", "expired"}});
  traces_evicted_.Add({{"reason", "capacity"}});
  events_repartitioned_.Add({{"input", "spans"}});
  events_repartitioned_.Add({{"input", "feedback"}});
  // Exported from the first scrape (alerts and panels read it): a series that stays at zero.
  produce_errors_.Add({});
  admin_refusals_.Add({{"reason", "tap_too_slow"}});
  admin_refusals_.Add({{"reason", "too_many_connections"}});
}

uint64_t Metrics::routed_to(const std::string& destination) const {
  std::lock_guard lock(destinations_mu_);
  auto it = routed_by_destination_.find(destination);
  return it == routed_by_destination_.end() ? 0 : it->second.count;
}

void Metrics::EventConsumed(std::string_view input, uint64_t count) {
  consumed_ += count;
  Bump(input == "spans"      ? consumed_spans_
       : input == "feedback" ? consumed_feedback_
                             : events_consumed_.Add({{"input", S(input)}}),
       count);
}

void Metrics::EventInvalid(std::string_view input, std::string_view reason) {
  events_invalid_.Add({{"input", S(input)}, {"reason", S(reason)}}).Increment();
}

void Metrics::AnnotationIngested(std::string_view name, std::string_view source) {
  annotations_.Add({{"name", S(name)}, {"source", S(source)}}).Increment();
}

void Metrics::DeadLettered(std::string_view reason, uint64_t count) {
  dead_lettered_count_ += count;
  Bump(dead_lettered_total_, count);
  std::lock_guard lock(reasons_mu_);
  auto it = dead_lettered_by_reason_.find(reason);
  if (it == dead_lettered_by_reason_.end()) {
    it = dead_lettered_by_reason_.emplace(std::string(reason), 0).first;
  }
  it->second += count;
}

std::map<std::string, uint64_t> Metrics::dead_lettered_by_reason() const {
  std::lock_guard lock(reasons_mu_);
  return {dead_lettered_by_reason_.begin(), dead_lettered_by_reason_.end()};
}

void Metrics::SetTracesOpen(uint64_t open) { traces_open_gauge_.Set(static_cast<double>(open)); }

void Metrics::SetMaxOpenTraces(uint64_t max) { max_open_traces_.Set(static_cast<double>(max)); }

void Metrics::TraceEvicted(std::string_view reason, uint64_t count) {
  Bump(traces_evicted_.Add({{"reason", S(reason)}}), count);
}

void Metrics::EventsRepartitioned(std::string_view input, uint64_t count) {
  repartitioned_count_ += count;
  Bump(events_repartitioned_.Add({{"input", S(input)}}), count);
}

void Metrics::TracesWithoutSpans(uint64_t count) {
  without_spans_count_ += count;
  Bump(traces_without_spans_total_, count);
}

void Metrics::TraceStoreMoves(std::string_view direction, uint64_t count) {
  Bump(store_moves_.Add({{"direction", S(direction)}}), count);
}

void Metrics::TraceStoreUnreadable(uint64_t count) { Bump(store_unreadable_.Add({}), count); }

void Metrics::SetTraceStore(uint64_t records, uint64_t disk_bytes) {
  store_records_.Add({}).Set(static_cast<double>(records));
  store_bytes_.Add({}).Set(static_cast<double>(disk_bytes));
}

void Metrics::TraceStoreRestored(std::string_view from, uint64_t records, double seconds) {
  store_restore_seconds_
      .Add({{"from", S(from)}},
           prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                                                   60, 120, 300})
      .Observe(seconds);
  Bump(store_restored_records_.Add({{"from", S(from)}}), records);
}

void Metrics::Routed(std::string_view rule, std::string_view destination) {
  ++routed_count_;
  std::lock_guard lock(destinations_mu_);
  auto it = routed_by_destination_.find(destination);
  if (it == routed_by_destination_.end())
    it = routed_by_destination_.emplace(S(destination), RoutedTo{}).first;
  ++it->second.count;
  auto series = it->second.by_rule.find(rule);
  if (series == it->second.by_rule.end()) {
    prometheus::Counter* c = &routed_.Add({{"rule", S(rule)}, {"destination", S(destination)}});
    series = it->second.by_rule.emplace(S(rule), c).first;
  }
  series->second->Increment();
}

void Metrics::ProduceError(std::string_view destination, std::string_view error, uint64_t count) {
  produce_error_count_ += count;
  Bump(produce_errors_.Add({{"destination", S(destination)}, {"error", S(error)}}), count);
}

void Metrics::ObserveDecisionLatency(double seconds) {
  decision_latency_seconds_.Observe(seconds < 0 ? 0 : seconds);
}

void Metrics::ObserveRouteAckLatency(double seconds) {
  route_ack_latency_seconds_.Observe(seconds < 0 ? 0 : seconds);
}

void Metrics::SetConsumerLag(std::string_view topic, int32_t partition, int64_t lag) {
  consumer_lag_.Add({{"topic", S(topic)}, {"partition", std::to_string(partition)}})
      .Set(static_cast<double>(lag < 0 ? 0 : lag));
}

void Metrics::SetCommitStalled(std::string_view topic, int32_t partition, double seconds) {
  commit_stalled_.Add({{"topic", S(topic)}, {"partition", std::to_string(partition)}})
      .Set(seconds < 0 ? 0 : seconds);
}

void Metrics::SyncAdminCounts(uint64_t tap_clients_dropped, uint64_t connections_refused) {
  Bump(admin_refusals_.Add({{"reason", "tap_too_slow"}}),
       tap_clients_dropped - std::min(tap_clients_dropped, taps_dropped_seen_));
  Bump(admin_refusals_.Add({{"reason", "too_many_connections"}}),
       connections_refused - std::min(connections_refused, connections_refused_seen_));
  taps_dropped_seen_ = tap_clients_dropped;
  connections_refused_seen_ = connections_refused;
}

void Metrics::ConfigReload(bool success) {
  (success ? reloads_success_ : reloads_failure_).Increment();
}

void Metrics::AddRuleCounts(const std::string& rule, const RuleCounters& delta) {
  const prometheus::Labels labels{{"rule", rule}};
  Bump(rule_matched_.Add(labels), delta.matched);
  Bump(rule_sampled_out_.Add(labels), delta.sampled_out);
  Bump(rule_rate_limited_.Add(labels), delta.rate_limited);
  std::lock_guard lock(rules_mu_);
  RuleCounters& total = rule_totals_[rule];
  total.matched += delta.matched;
  total.sampled_out += delta.sampled_out;
  total.rate_limited += delta.rate_limited;
  total.routed += delta.routed;
}

std::vector<RuleCounters> Metrics::RuleTotals(const RuleSet& rules) {
  std::vector<RuleCounters> totals;
  std::lock_guard lock(rules_mu_);
  for (const RuleSpec& r : rules.rules) {
    const prometheus::Labels labels{{"rule", r.name}};
    rule_matched_.Add(labels);
    rule_sampled_out_.Add(labels);
    rule_rate_limited_.Add(labels);
    auto it = rule_totals_.find(r.name);
    totals.push_back(it == rule_totals_.end() ? RuleCounters{} : it->second);
  }
  return totals;
}

std::vector<prometheus::MetricFamily> Metrics::Collect() const {
  // prometheus-cpp leaves out a family without series; every declared one is written, with its
  // HELP and TYPE and no sample, until its first series.
  std::vector<prometheus::MetricFamily> collected = registry_->Collect();
  std::vector<prometheus::MetricFamily> families;
  families.reserve(declared_.size() + collected.size());
  for (const prometheus::MetricFamily& declared : declared_) {
    auto it =
        std::find_if(collected.begin(), collected.end(),
                     [&](const prometheus::MetricFamily& f) { return f.name == declared.name; });
    if (it == collected.end()) {
      families.push_back(declared);
    } else {
      families.push_back(std::move(*it));
      collected.erase(it);
    }
  }
  for (prometheus::MetricFamily& other : collected) families.push_back(std::move(other));
  for (prometheus::MetricFamily& process : process_.Collect()) {
    families.push_back(std::move(process));
  }
  return families;
}

std::string Metrics::Serialize() const { return prometheus::TextSerializer().Serialize(Collect()); }

}  // namespace triaged
