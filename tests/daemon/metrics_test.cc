#include "daemon/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>

namespace triaged {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The value of one series, or nullopt if the family or the label set is absent.
std::optional<double> Value(const Metrics& metrics, const std::string& name,
                            const std::map<std::string, std::string>& labels = {}) {
  for (const prometheus::MetricFamily& family : metrics.shared_registry()->Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      std::map<std::string, std::string> got;
      for (const auto& l : m.label) got[l.name] = l.value;
      if (got != labels) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter: return m.counter.value;
        case prometheus::MetricType::Gauge: return m.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(m.histogram.sample_count);
        default: return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

// Every family the daemon exports besides process_* (DESIGN §6 and the others).
constexpr const char* kFamilies[] = {"triaged_events_consumed_total",
                                     "triaged_events_invalid_total",
                                     "triaged_annotations_total",
                                     "triaged_dead_lettered_total",
                                     "triaged_traces_open",
                                     "triaged_traces_evicted_total",
                                     "triaged_rule_matched_total",
                                     "triaged_rule_sampled_out_total",
                                     "triaged_rule_rate_limited_total",
                                     "triaged_routed_total",
                                     "triaged_produce_errors_total",
                                     "triaged_decision_latency_seconds",
                                     "triaged_consumer_lag",
                                     "triaged_config_reloads_total",
                                     "triaged_build_info",
                                     "triaged_route_ack_latency_seconds",
                                     "triaged_max_open_traces",
                                     "triaged_commit_stalled_seconds",
                                     "triaged_admin_refused_total",
                                     "triaged_events_repartitioned_total",
                                     "triaged_traces_without_spans_total",
                                     "triaged_trace_store_moves_total",
                                     "triaged_trace_store_unreadable_total",
                                     "triaged_trace_store_records",
                                     "triaged_trace_store_disk_bytes",
                                     "triaged_trace_store_restore_seconds",
                                     "triaged_trace_store_restored_records_total"};

RuleSet Rules(std::vector<std::string> names) {
  RuleSet rules;
  for (std::string& name : names) {
    RuleSpec rule;
    rule.name = std::move(name);
    rules.rules.push_back(std::move(rule));
  }
  return rules;
}

// prometheus-cpp leaves a family out of the exposition until it has a series; once it has one,
// it comes with HELP and TYPE.
TEST(MetricsTest, EveryFamilyHasHelpAndType) {
  Metrics metrics("1.2.3");
  metrics.EventConsumed("spans");
  metrics.EventInvalid("spans", "bad_json");
  metrics.AnnotationIngested("thumbs", "end_user");
  metrics.Routed("r", "d");
  metrics.ProduceError("d", "e");
  metrics.SetConsumerLag("t", 0, 1);
  metrics.SetCommitStalled("t", 0, 0);
  metrics.TraceStoreMoves("to_store", 1);
  metrics.TraceStoreUnreadable(1);
  metrics.SetTraceStore(1, 4096);
  metrics.TraceStoreRestored("changelog", 10, 0.5);
  RuleSet rules;
  rules.rules.emplace_back().name = "r";
  metrics.RuleTotals(rules);
  const std::string text = metrics.Serialize();
  for (const char* name : kFamilies) {
    EXPECT_THAT(text, HasSubstr(std::string("# HELP ") + name + " ")) << name;
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + name + " ")) << name;
  }
}

// A fresh registry, before any input: every family is written with HELP and TYPE, and a family
// without a known label value has no sample (none is made up).
TEST(MetricsTest, EveryFamilyHasHelpAndTypeFromTheFirstScrape) {
  Metrics metrics("1.2.3");
  const std::string text = metrics.Serialize();
  for (const char* name : kFamilies) {
    EXPECT_THAT(text, HasSubstr(std::string("# HELP ") + name + " ")) << name;
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + name + " ")) << name;
  }
  EXPECT_THAT(text, HasSubstr("# TYPE triaged_events_invalid_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE triaged_consumer_lag gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE triaged_trace_store_restore_seconds histogram\n"));
  for (const char* name :
       {"triaged_events_invalid_total", "triaged_annotations_total", "triaged_routed_total",
        "triaged_consumer_lag", "triaged_rule_matched_total", "triaged_trace_store_moves_total"}) {
    EXPECT_THAT(text, Not(HasSubstr(std::string("\n") + name + "{"))) << name;
    EXPECT_THAT(text, Not(HasSubstr(std::string("\n") + name + " "))) << name;
  }
  // Each family once, its HELP line right before its TYPE line.
  for (const prometheus::MetricFamily& family : metrics.Collect()) {
    const std::string help = "# HELP " + family.name + " ";
    const size_t at = text.find(help);
    ASSERT_NE(at, std::string::npos) << family.name;
    EXPECT_EQ(text.find(help, at + 1), std::string::npos) << family.name;
    const size_t type = text.find('\n', at) + 1;
    EXPECT_EQ(text.compare(type, 7 + family.name.size(), "# TYPE " + family.name), 0)
        << family.name;
  }
}

// The standard process collector's families, with values this process can check.
TEST(MetricsTest, ProcessMetricsArePresentWithPlausibleValues) {
  Metrics metrics("1.2.3");
  const std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  for (const char* name : {"process_resident_memory_bytes", "process_virtual_memory_bytes",
                           "process_open_fds", "process_max_fds", "process_start_time_seconds"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + name + " gauge\n")) << name;
  }
  auto value = [](const std::vector<prometheus::MetricFamily>& families,
                  const std::string& name) -> std::optional<double> {
    for (const prometheus::MetricFamily& f : families) {
      if (f.name != name || f.metric.size() != 1) continue;
      return f.type == prometheus::MetricType::Counter ? f.metric[0].counter.value
                                                       : f.metric[0].gauge.value;
    }
    return std::nullopt;
  };
  const std::vector<prometheus::MetricFamily> before = metrics.Collect();
  const std::optional<double> rss = value(before, "process_resident_memory_bytes");
  const std::optional<double> vsize = value(before, "process_virtual_memory_bytes");
  ASSERT_TRUE(rss && vsize);
  EXPECT_GT(*rss, 0);
  EXPECT_GE(*vsize, *rss);
  const std::optional<double> cpu = value(before, "process_cpu_seconds_total");
  ASSERT_TRUE(cpu);
  EXPECT_GE(*cpu, 0);
  const std::optional<double> start = value(before, "process_start_time_seconds");
  ASSERT_TRUE(start);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(*start, now + 1);
  EXPECT_GT(*start, now - 24 * 3600);
  const std::optional<double> fds = value(before, "process_open_fds");
  const std::optional<double> max_fds = value(before, "process_max_fds");
  ASSERT_TRUE(fds && max_fds);
  EXPECT_GE(*fds, 3);  // stdin, stdout, stderr at least
  EXPECT_GE(*max_fds, *fds);

  // Three more open files are three more descriptors.
  std::ifstream a("/proc/self/stat"), b("/proc/self/stat"), c("/proc/self/stat");
  ASSERT_TRUE(a && b && c);
  const std::optional<double> more = value(metrics.Collect(), "process_open_fds");
  ASSERT_TRUE(more);
  EXPECT_EQ(*more, *fds + 3);
}

TEST(MetricsTest, FamiliesListedAbove) {
  // kFamilies is the list the two tests above check: every declared family is in it.
  Metrics metrics("1.2.3");
  for (const prometheus::MetricFamily& family : metrics.Collect()) {
    if (family.name.starts_with("process_")) continue;
    EXPECT_NE(std::find(std::begin(kFamilies), std::end(kFamilies), family.name),
              std::end(kFamilies))
        << family.name;
  }
}

TEST(MetricsTest, BuildInfoIsOneWithVersion) {
  Metrics metrics("1.2.3");
  EXPECT_EQ(Value(metrics, "triaged_build_info", {{"version", "1.2.3"}}), 1.0);
  EXPECT_THAT(metrics.Serialize(), HasSubstr("triaged_build_info{version=\"1.2.3\"} 1"));
}

TEST(MetricsTest, KnownLabelValuesStartAtZero) {
  Metrics metrics("v");
  EXPECT_EQ(Value(metrics, "triaged_config_reloads_total", {{"result", "success"}}), 0.0);
  EXPECT_EQ(Value(metrics, "triaged_config_reloads_total", {{"result", "failure"}}), 0.0);
  EXPECT_EQ(Value(metrics, "triaged_traces_evicted_total", {{"reason", "expired"}}), 0.0);
  EXPECT_EQ(Value(metrics, "triaged_traces_evicted_total", {{"reason", "capacity"}}), 0.0);
  EXPECT_EQ(Value(metrics, "triaged_dead_lettered_total"), 0.0);
  EXPECT_EQ(Value(metrics, "triaged_produce_errors_total"), 0.0);
  EXPECT_EQ(Value(metrics, "triaged_events_repartitioned_total", {{"input", "spans"}}), 0.0);
  EXPECT_EQ(Value(metrics, "triaged_events_repartitioned_total", {{"input", "feedback"}}), 0.0);
  EXPECT_EQ(Value(metrics, "triaged_traces_without_spans_total"), 0.0);
}

TEST(MetricsTest, LabelledBumps) {
  Metrics metrics("v");
  metrics.EventConsumed("spans");
  metrics.EventConsumed("spans", 4);
  metrics.EventConsumed("feedback");
  metrics.EventInvalid("spans", "bad_json");
  metrics.EventInvalid("spans", "bad_json");
  metrics.EventInvalid("feedback", "missing_trace_id");
  metrics.DeadLettered();
  metrics.SetTracesOpen(17);
  metrics.TraceEvicted("capacity");
  metrics.Routed("errors", "review");
  metrics.Routed("errors", "review");
  metrics.Routed("errors", "dataset");
  metrics.ProduceError("review", "MSG_SIZE_TOO_LARGE", 2);
  metrics.ObserveDecisionLatency(0.2);
  metrics.ObserveDecisionLatency(-1);  // clamped, still counted
  metrics.SetConsumerLag("llm.spans", 3, 120);
  metrics.ConfigReload(true);
  metrics.ConfigReload(false);
  metrics.ConfigReload(false);

  EXPECT_EQ(Value(metrics, "triaged_events_consumed_total", {{"input", "spans"}}), 5.0);
  EXPECT_EQ(Value(metrics, "triaged_events_consumed_total", {{"input", "feedback"}}), 1.0);
  EXPECT_EQ(
      Value(metrics, "triaged_events_invalid_total", {{"input", "spans"}, {"reason", "bad_json"}}),
      2.0);
  EXPECT_EQ(Value(metrics, "triaged_events_invalid_total",
                  {{"input", "feedback"}, {"reason", "missing_trace_id"}}),
            1.0);
  EXPECT_EQ(Value(metrics, "triaged_dead_lettered_total"), 1.0);
  EXPECT_EQ(Value(metrics, "triaged_traces_open"), 17.0);
  EXPECT_EQ(Value(metrics, "triaged_traces_evicted_total", {{"reason", "capacity"}}), 1.0);
  EXPECT_EQ(Value(metrics, "triaged_routed_total", {{"rule", "errors"}, {"destination", "review"}}),
            2.0);
  EXPECT_EQ(
      Value(metrics, "triaged_routed_total", {{"rule", "errors"}, {"destination", "dataset"}}),
      1.0);
  EXPECT_EQ(Value(metrics, "triaged_produce_errors_total",
                  {{"destination", "review"}, {"error", "MSG_SIZE_TOO_LARGE"}}),
            2.0);
  EXPECT_EQ(Value(metrics, "triaged_decision_latency_seconds"), 2.0);
  EXPECT_EQ(Value(metrics, "triaged_consumer_lag", {{"topic", "llm.spans"}, {"partition", "3"}}),
            120.0);
  EXPECT_EQ(Value(metrics, "triaged_config_reloads_total", {{"result", "success"}}), 1.0);
  EXPECT_EQ(Value(metrics, "triaged_config_reloads_total", {{"result", "failure"}}), 2.0);

  const std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr("triaged_decision_latency_seconds_bucket{le=\"0.001\"} 1"));
  EXPECT_THAT(text, HasSubstr("triaged_decision_latency_seconds_bucket{le=\"60\"} 2"));
  EXPECT_THAT(text, HasSubstr("triaged_decision_latency_seconds_bucket{le=\"+Inf\"} 2"));
}

TEST(MetricsTest, AnnotationsAreCountedByNameAndSource) {
  Metrics metrics("v");
  metrics.AnnotationIngested("thumbs", "end_user");
  metrics.AnnotationIngested("thumbs", "end_user");
  metrics.AnnotationIngested("thumbs", "human");
  metrics.AnnotationIngested("other", "unknown");
  EXPECT_EQ(
      Value(metrics, "triaged_annotations_total", {{"name", "thumbs"}, {"source", "end_user"}}),
      2.0);
  EXPECT_EQ(Value(metrics, "triaged_annotations_total", {{"name", "thumbs"}, {"source", "human"}}),
            1.0);
  EXPECT_EQ(Value(metrics, "triaged_annotations_total", {{"name", "other"}, {"source", "unknown"}}),
            1.0);
  EXPECT_THAT(metrics.Serialize(),
              HasSubstr("triaged_annotations_total{name=\"thumbs\",source=\"end_user\"} 2"));
}

TEST(MetricsTest, RouteAckLatencyIsResolvedBelowAHundredMilliseconds) {
  Metrics metrics("test");
  metrics.ObserveRouteAckLatency(0.0004);
  metrics.ObserveRouteAckLatency(0.004);
  metrics.ObserveRouteAckLatency(0.04);
  metrics.ObserveRouteAckLatency(-1);  // clock trouble counts as instant, never negative
  const std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr("triaged_route_ack_latency_seconds_bucket{le=\"0.0005\"} 2"));
  EXPECT_THAT(text, HasSubstr("triaged_route_ack_latency_seconds_bucket{le=\"0.005\"} 3"));
  EXPECT_THAT(text, HasSubstr("triaged_route_ack_latency_seconds_bucket{le=\"0.05\"} 4"));
  EXPECT_THAT(text, HasSubstr("triaged_route_ack_latency_seconds_count 4"));
}

TEST(MetricsTest, DecisionLatencyBucketsAreIncreasingFromOneMsToAMinute) {
  const std::vector<double> buckets = Metrics::DecisionLatencyBuckets();
  ASSERT_FALSE(buckets.empty());
  EXPECT_DOUBLE_EQ(buckets.front(), 0.001);
  EXPECT_DOUBLE_EQ(buckets.back(), 60);
  EXPECT_TRUE(std::is_sorted(buckets.begin(), buckets.end()));
}

TEST(MetricsTest, RuleCountsAddUpAndAreReadBackInRuleOrder) {
  Metrics metrics("v");
  const RuleSet rules = Rules({"errors", "slow"});
  // A rule with nothing yet still has its series.
  EXPECT_EQ(metrics.RuleTotals(rules).size(), 2u);
  EXPECT_EQ(Value(metrics, "triaged_rule_matched_total", {{"rule", "slow"}}), 0.0);
  // Two partitions' engines report for the same rule.
  metrics.AddRuleCounts("errors", {.matched = 3, .sampled_out = 1, .rate_limited = 0, .routed = 2});
  metrics.AddRuleCounts("errors", {.matched = 7, .sampled_out = 0, .rate_limited = 4, .routed = 1});
  metrics.AddRuleCounts("slow", {.matched = 2, .sampled_out = 2, .rate_limited = 0, .routed = 0});
  EXPECT_EQ(Value(metrics, "triaged_rule_matched_total", {{"rule", "errors"}}), 10.0);
  EXPECT_EQ(Value(metrics, "triaged_rule_sampled_out_total", {{"rule", "errors"}}), 1.0);
  EXPECT_EQ(Value(metrics, "triaged_rule_rate_limited_total", {{"rule", "errors"}}), 4.0);
  EXPECT_EQ(Value(metrics, "triaged_rule_sampled_out_total", {{"rule", "slow"}}), 2.0);
  const std::vector<RuleCounters> totals = metrics.RuleTotals(Rules({"slow", "errors", "new"}));
  ASSERT_EQ(totals.size(), 3u);
  EXPECT_EQ(totals[0].matched, 2u);
  EXPECT_EQ(totals[1].matched, 10u);
  EXPECT_EQ(totals[1].routed, 3u);
  EXPECT_EQ(totals[2].matched, 0u);
}

TEST(MetricsTest, ARuleRemovedByAReloadKeepsItsSeriesAndComesBackWithItsTotal) {
  Metrics metrics("v");
  metrics.AddRuleCounts("slow", {.matched = 7});
  metrics.RuleTotals(Rules({"errors"}));  // "slow" removed
  EXPECT_EQ(Value(metrics, "triaged_rule_matched_total", {{"rule", "slow"}}), 7.0);
  metrics.AddRuleCounts("slow", {.matched = 2});  // back, counting again
  EXPECT_EQ(metrics.RuleTotals(Rules({"slow"}))[0].matched, 9u);
}

TEST(MetricsTest, AdminRefusalsFollowTheServersTotals) {
  Metrics metrics("v");
  EXPECT_EQ(Value(metrics, "triaged_admin_refused_total", {{"reason", "tap_too_slow"}}), 0.0);
  metrics.SyncAdminCounts(2, 5);
  metrics.SyncAdminCounts(3, 5);
  EXPECT_EQ(Value(metrics, "triaged_admin_refused_total", {{"reason", "tap_too_slow"}}), 3.0);
  EXPECT_EQ(Value(metrics, "triaged_admin_refused_total", {{"reason", "too_many_connections"}}),
            5.0);
}

TEST(MetricsTest, StatusTotalsFollowTheBumps) {
  Metrics metrics("v");
  metrics.EventConsumed("spans", 3);
  metrics.Routed("r", "review");
  metrics.Routed("r", "review");
  metrics.Routed("r", "dataset");
  metrics.DeadLettered();
  metrics.ProduceError("review", "MSG_TIMED_OUT", 2);
  EXPECT_EQ(metrics.consumed(), 3u);
  EXPECT_EQ(metrics.routed(), 3u);
  EXPECT_EQ(metrics.routed_to("review"), 2u);
  EXPECT_EQ(metrics.routed_to("nowhere"), 0u);
  EXPECT_EQ(metrics.dead_lettered(), 1u);
  EXPECT_EQ(metrics.produce_errors(), 2u);
}

}  // namespace
}  // namespace triaged
