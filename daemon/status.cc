#include "daemon/status.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "daemon/version.h"
#include "rules/decode.h"

namespace triaged {

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
    w.EndObject();
  }
  w.EndArray();
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
