#include "daemon/status.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>

#include "daemon/version.h"
#include "rules/decode.h"

namespace triaged {
namespace {

constexpr char kRoutedSeries[] = "routed:";
constexpr char kDeadLetterSeries[] = "dead_letters";

// The rates of `series` (an empty array when the history has none).
void WriteRates(rapidjson::Writer<rapidjson::StringBuffer>& w,
                const std::map<std::string, std::vector<std::optional<double>>>& history,
                const std::string& series) {
  w.StartArray();
  auto rates = history.find(series);
  if (rates == history.end()) return static_cast<void>(w.EndArray());
  for (const std::optional<double>& r : rates->second) {
    if (r) {
      w.Double(std::round(*r * 1000) / 1000);
    } else {
      w.Null();
    }
  }
  w.EndArray();
}

}  // namespace

void RateHistory::Sample(int64_t now_ns, const std::map<std::string, uint64_t>& counts) {
  if (now_ns < latest_.at_ns) firsts_.clear();  // the clock stepped back: start again
  if (firsts_.empty() || now_ns / kBucketNs != firsts_.back().at_ns / kBucketNs) {
    firsts_.push_back({now_ns, counts});
    while (firsts_.size() > 1 &&
           firsts_.front().at_ns / kBucketNs + static_cast<int64_t>(kBuckets) <=
               now_ns / kBucketNs) {
      firsts_.pop_front();
    }
  }
  latest_ = {now_ns, counts};
}

std::map<std::string, std::vector<std::optional<double>>> RateHistory::Rates() const {
  std::map<std::string, std::vector<std::optional<double>>> out;
  if (firsts_.empty()) return out;
  const int64_t last_bucket = latest_.at_ns / kBucketNs;
  const int64_t first_bucket = last_bucket - static_cast<int64_t>(kBuckets) + 1;
  for (const auto& [series, count] : latest_.counts) {
    out[series].assign(kBuckets, std::nullopt);
  }
  for (size_t i = 0; i < firsts_.size(); ++i) {
    const Point& from = firsts_[i];
    const Point& to = i + 1 < firsts_.size() ? firsts_[i + 1] : latest_;
    const int64_t bucket = from.at_ns / kBucketNs;
    if (bucket < first_bucket || to.at_ns <= from.at_ns) continue;
    const double seconds = static_cast<double>(to.at_ns - from.at_ns) / 1e9;
    for (const auto& [series, before] : from.counts) {
      auto after = to.counts.find(series);
      auto rates = out.find(series);
      if (after == to.counts.end() || rates == out.end() || after->second < before) continue;
      rates->second[static_cast<size_t>(bucket - first_bucket)] =
          static_cast<double>(after->second - before) / seconds;
    }
  }
  return out;
}

void StatusDocuments::Routed(const Route& route) {
  recent_.push_back({route.routed_at_ns, route.trace_id, route.rule->name, route.destination->name,
                     std::string(TriggerName(route.trigger)), route.rule->priority,
                     route.rule->when_text});
  if (recent_.size() > kRecentItems) recent_.pop_front();
}

void StatusDocuments::Rebuild(const Config& config, const std::vector<RuleCounters>& totals,
                              const StatusFacts& facts, const Metrics& metrics) {
  const RuleSet& rules = *config.rules;
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("config_version");
  w.String(rules.config_version.c_str());
  w.Key("mode");
  w.String(rules.mode == RoutingMode::kFirstMatch ? "first_match" : "fan_out");
  w.Key("traces_open");
  w.Uint64(facts.traces_open);
  w.Key("filter");  // null: no `filter:`
  if (rules.filter) {
    w.String(rules.filter_text.c_str());
  } else {
    w.Null();
  }
  w.Key("rules");
  w.StartArray();
  for (size_t i = 0; i < rules.rules.size(); ++i) {
    const RuleSpec& r = rules.rules[i];
    const RuleCounters counts = i < totals.size() ? totals[i] : RuleCounters{};
    w.StartObject();
    w.Key("name");
    w.String(r.name.c_str());
    w.Key("when");
    w.String(r.when_text.c_str());
    w.Key("route_to");
    w.StartArray();
    for (size_t d : r.destinations) w.String(rules.destinations[d].name.c_str());
    w.EndArray();
    w.Key("priority");
    w.String(r.priority.c_str());
    w.Key("sample");
    w.Double(r.sample_rate);
    w.Key("matched");
    w.Uint64(counts.matched);
    w.Key("sampled_out");
    w.Uint64(counts.sampled_out);
    w.Key("rate_limited");
    w.Uint64(counts.rate_limited);
    w.Key("routed");
    w.Uint64(counts.routed);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::string rules_doc(buf.GetString(), buf.GetSize());

  std::map<std::string, uint64_t> counts;
  for (const DestinationSpec& d : rules.destinations) {
    counts[kRoutedSeries + d.name] = metrics.routed_to(d.name);
  }
  counts[kDeadLetterSeries] = metrics.dead_lettered();
  history_.Sample(facts.now_ns, counts);
  const auto rates = history_.Rates();

  buf.Clear();
  w.Reset(buf);
  w.StartObject();
  w.Key("version");
  w.String(kTriagedVersion);
  w.Key("config_version");
  w.String(rules.config_version.c_str());
  w.Key("group_id");
  w.String(config.kafka.group_id.c_str());
  w.Key("guarantee");
  w.String(facts.exactly_once ? "exactly_once" : "at_least_once");
  w.Key("ready");
  w.StartObject();
  w.Key("broker_reachable");
  w.Bool(facts.broker_reachable);
  w.Key("partitions_assigned");
  w.Bool(facts.partitions_assigned);
  w.EndObject();
  w.Key("partitions");
  w.Uint64(facts.partitions);
  w.Key("events_consumed");
  w.Uint64(metrics.consumed());
  w.Key("dead_lettered");
  w.Uint64(metrics.dead_lettered());
  w.Key("routed");
  w.Uint64(metrics.routed());
  w.Key("produce_errors");
  w.Uint64(metrics.produce_errors());
  w.Key("events_repartitioned");
  w.Uint64(metrics.repartitioned());
  w.Key("traces_without_spans");
  w.Uint64(metrics.traces_without_spans());
  w.Key("traces_open");
  w.Uint64(facts.traces_open);
  w.Key("max_open_traces");
  w.Uint64(rules.trace.max_open_traces);
  w.Key("consumer_lag");
  w.Int64(facts.consumer_lag);
  w.Key("inputs");
  w.StartObject();
  w.Key("spans");
  w.String(config.inputs.spans_topic.c_str());
  w.Key("feedback");
  w.String(config.inputs.feedback_topic.c_str());
  w.Key("repartition");
  w.String(config.inputs.repartition == Repartition::kAuto     ? "auto"
           : config.inputs.repartition == Repartition::kAlways ? "always"
                                                               : "never");
  w.EndObject();
  w.Key("destinations");
  w.StartArray();
  for (const DestinationSpec& d : rules.destinations) {
    w.StartObject();
    w.Key("name");
    w.String(d.name.c_str());
    w.Key("kind");
    w.String(std::string(DestinationKindName(d.kind)).c_str());
    w.Key("topic");
    w.String(d.topic.c_str());
    w.Key("routed");
    w.Uint64(metrics.routed_to(d.name));
    w.Key("routed_per_second");  // RateHistory's buckets, oldest first
    WriteRates(w, rates, kRoutedSeries + d.name);
    w.Key("limit");  // null: not capped
    auto budget = facts.budgets.find(d.name);
    if (!d.limit || budget == facts.budgets.end()) {
      w.Null();
    } else {
      w.StartObject();
      w.Key("max");
      w.Uint64(d.limit->max);
      w.Key("per_seconds");
      w.Double(static_cast<double>(d.limit->per_ns) / 1e9);
      w.Key("budget_left");  // this process's share: the partitions it decides
      w.Uint64(static_cast<uint64_t>(std::max(0.0, std::floor(budget->second.left))));
      w.Key("budget");
      w.Uint64(static_cast<uint64_t>(std::floor(budget->second.capacity)));
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("history");
  w.StartObject();
  w.Key("bucket_seconds");
  w.Int64(RateHistory::kBucketNs / 1'000'000'000);
  w.Key("dead_letters_per_second");
  WriteRates(w, rates, kDeadLetterSeries);
  w.EndObject();
  w.Key("dead_letter_reasons");  // the most frequent first, at most kTopReasons
  {
    std::vector<std::pair<std::string, uint64_t>> reasons;
    for (const auto& [reason, n] : metrics.dead_lettered_by_reason())
      reasons.emplace_back(reason, n);
    std::stable_sort(reasons.begin(), reasons.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (reasons.size() > kTopReasons) reasons.resize(kTopReasons);
    w.StartArray();
    for (const auto& [reason, n] : reasons) {
      w.StartObject();
      w.Key("reason");
      w.String(reason.c_str());
      w.Key("count");
      w.Uint64(n);
      w.EndObject();
    }
    w.EndArray();
  }
  // The items come last: the document without them is what is written so far, and an empty
  // array.
  std::string without_recent(buf.GetString(), buf.GetSize());
  without_recent += ",\"recent\":[]}";
  w.Key("recent");
  w.StartArray();
  for (auto it = recent_.rbegin(); it != recent_.rend(); ++it) {
    w.StartObject();
    w.Key("routed_at");
    w.String(FormatRfc3339(it->routed_at_ns).c_str());
    w.Key("trace_id");
    w.String(it->trace_id.c_str());
    w.Key("rule");
    w.String(it->rule.c_str());
    w.Key("destination");
    w.String(it->destination.c_str());
    w.Key("trigger");
    w.String(it->trigger.c_str());
    w.Key("priority");
    w.String(it->priority.c_str());
    w.Key("reason");
    w.String(it->when.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  SetRules(rules);
  std::lock_guard lock(mu_);
  rules_json_ = std::move(rules_doc);
  status_json_.assign(buf.GetString(), buf.GetSize());
  status_json_without_recent_ = std::move(without_recent);
}

void StatusDocuments::SetRules(const RuleSet& rules) {
  std::set<std::string, std::less<>> names;
  for (const RuleSpec& r : rules.rules) names.insert(r.name);
  std::lock_guard lock(mu_);
  rule_names_ = std::move(names);
}

bool StatusDocuments::has_rule(std::string_view name) const {
  std::lock_guard lock(mu_);
  return rule_names_.find(name) != rule_names_.end();
}

std::vector<std::string> StatusDocuments::rule_names() const {
  std::lock_guard lock(mu_);
  return {rule_names_.begin(), rule_names_.end()};
}

std::string StatusDocuments::rules_json() const {
  std::lock_guard lock(mu_);
  return rules_json_;
}

std::string StatusDocuments::status_json(bool with_recent) const {
  std::lock_guard lock(mu_);
  return with_recent ? status_json_ : status_json_without_recent_;
}

}  // namespace triaged
