// YAML -> Config. Every key is checked against the schema of DESIGN §3; every problem becomes a
// ConfigError at the line and column of the original file, and all of them are reported.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "config/config.h"
#include "config/source_map.h"

namespace triaged {
namespace {

using config_internal::ExpandedText;
using config_internal::ExpandError;
using config_internal::LineIndex;
using config_internal::ScalarValueOffsetToSource;

// Optimal string alignment distance (Levenshtein plus adjacent transpositions, so `wehn` is one
// edit from `when`), or `limit + 1` as soon as it is known to be larger than `limit`. Three rows
// of the shorter string: a word far longer than any candidate costs nothing.
size_t EditDistance(std::string_view a, std::string_view b, size_t limit) {
  if (a.size() < b.size()) std::swap(a, b);
  if (a.size() - b.size() > limit) return limit + 1;
  std::vector<size_t> before(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    size_t row_min = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], before[j - 2] + 1);
      }
      row_min = std::min(row_min, cur[j]);
    }
    // No row has a smaller minimum than the one before it.
    if (row_min > limit) return limit + 1;
    std::swap(before, prev);
    std::swap(prev, cur);
  }
  return std::min(prev[b.size()], limit + 1);
}

// The closest candidate within two edits (and closer than the word's own length), or "".
std::string Suggest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = 3;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(word, c, best_d - 1);
    if (d < best_d && d < std::max(word.size(), c.size())) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string s = Suggest(word, candidates);
  return s.empty() ? "" : " (did you mean \"" + s + "\"?)";
}

// A key as messages quote it: whole, or past 64 bytes its start and its size, so that a hostile
// key does not fill the log.
std::string QuotedKey(const std::string& key) {
  constexpr size_t kShown = 64;
  if (key.size() <= kShown) return "\"" + key + "\"";
  size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return "\"" + key.substr(0, cut) + "...\" (" + std::to_string(key.size()) + " bytes)";
}

std::string JoinList(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  return out;
}

bool IsValidName(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

std::optional<double> ParseNumber(std::string_view text) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || !std::isfinite(v)) return std::nullopt;
  return v;
}

// How a location in the config is named in messages: `prefix` names the object (`rule "x": `),
// `path` the section within it (`limit`).
struct Where {
  std::string prefix;
  std::string path;
  std::string Key(std::string_view key) const {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  Where Sub(std::string_view key) const { return {prefix, Key(key)}; }
};

class Loader {
 public:
  Loader(std::string path, std::string_view original, const ExpandedText& expanded)
      : path_(std::move(path)),
        original_lines_(original),
        expanded_(expanded),
        expanded_lines_(expanded.text()) {}

  std::vector<ConfigError>& errors() { return errors_; }

  void ErrorAtOriginal(size_t offset, std::string message) {
    int line, column;
    original_lines_.LineColumnOf(offset, line, column);
    errors_.push_back({path_, line + 1, column + 1, std::move(message)});
  }
  void ErrorAtExpanded(size_t offset, std::string message) {
    ErrorAtOriginal(expanded_.ToOriginal(offset), std::move(message));
  }
  void Error(const YAML::Mark& mark, std::string message) {
    if (mark.is_null()) {
      errors_.push_back({path_, 0, 0, std::move(message)});
      return;
    }
    ErrorAtExpanded(MarkOffset(mark), std::move(message));
  }
  void Error(const YAML::Node& node, std::string message) {
    // An empty value (`when:`) has the mark of whatever token follows it, often on the next
    // line; the key is the better place to point at.
    if (node.IsNull() && null_value_key_mark_) {
      return Error(*null_value_key_mark_, std::move(message));
    }
    Error(node.Mark(), std::move(message));
  }

  size_t MarkOffset(const YAML::Mark& mark) const {
    return expanded_lines_.OffsetOf(mark.line, mark.column);
  }

  // An error inside a scalar's value, at byte `offset` of node.Scalar().
  void ErrorInScalar(const YAML::Node& node, size_t offset, std::string message) {
    if (node.Mark().is_null()) return Error(node, std::move(message));
    size_t pos =
        ScalarValueOffsetToSource(expanded_.text(), MarkOffset(node.Mark()), node.Scalar(), offset);
    ErrorAtExpanded(pos, std::move(message));
  }

  void Load(const YAML::Node& root, Config& config, RuleSet& rules);

 private:
  // What `report` reports is a warning, not an error.
  template <typename Report>
  void AsWarning(Report&& report) {
    const size_t before = errors_.size();
    report();
    for (size_t i = before; i < errors_.size(); ++i) errors_[i].warning = true;
  }
  // Warnings about a config that loads: destinations no rule routes to; without
  // `annotations:`, a feedback name read only once when a name within two edits is read
  // elsewhere (a likely typo, which `annotations:` would make an error).
  void Warnings(const RuleSet& rules);

  using KeyHandler = std::function<void(const std::string& key, const YAML::Node& key_node,
                                        const YAML::Node& value)>;

  // Walks a mapping, reporting non-mapping nodes, non-string, duplicate and unknown keys, and
  // calling `handle` for each known key in file order. Returns false if `node` is not a mapping.
  bool ForEachKey(const YAML::Node& node, const Where& where, const std::vector<std::string>& keys,
                  const KeyHandler& handle) {
    if (!node.IsMap()) {
      Error(node,
            where.prefix + (where.path.empty() ? "the config" : where.path) + " must be a mapping");
      return false;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key_node = it->first;
      if (!key_node.IsScalar()) {
        Error(key_node, where.prefix + "keys must be strings");
        continue;
      }
      const std::string& key = key_node.Scalar();
      if (!seen.insert(key).second) {
        Error(key_node, where.prefix + "duplicate key " + QuotedKey(where.Key(key)));
        continue;
      }
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        std::string msg = where.prefix + "unknown key " + QuotedKey(where.Key(key));
        std::string suggestion = Suggest(key, keys);
        if (!suggestion.empty()) {
          msg += " (did you mean \"" + where.Key(suggestion) + "\"?)";
        } else {
          msg += " (expected one of: " + JoinList(keys) + ")";
        }
        Error(key_node, msg);
        continue;
      }
      const YAML::Node value = it->second;
      std::optional<YAML::Mark> saved = null_value_key_mark_;
      null_value_key_mark_ = value.IsNull() ? std::optional(key_node.Mark()) : std::nullopt;
      handle(key, key_node, value);
      null_value_key_mark_ = saved;
    }
    return true;
  }

  std::optional<std::string> String(const YAML::Node& node, const Where& where,
                                    std::string_view key, bool allow_empty = false) {
    if (!node.IsScalar()) {
      Error(node, where.prefix + where.Key(key) + " must be a string");
      return std::nullopt;
    }
    if (!allow_empty && node.Scalar().empty()) {
      Error(node, where.prefix + where.Key(key) + " must not be empty");
      return std::nullopt;
    }
    return node.Scalar();
  }

  // A positive (or, with min 0, non-negative) integer.
  std::optional<uint64_t> Integer(const YAML::Node& node, const Where& where, std::string_view key,
                                  uint64_t min) {
    std::string what = where.prefix + where.Key(key) + " must be " +
                       (min > 0 ? "a positive integer" : "a non-negative integer");
    if (!node.IsScalar()) {
      Error(node, what);
      return std::nullopt;
    }
    const std::string& s = node.Scalar();
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < min) {
      Error(node, what + (ec == std::errc::result_out_of_range ? " (value too large)" : "") +
                      ", got \"" + s + "\"");
      return std::nullopt;
    }
    return v;
  }

  std::optional<int64_t> Duration(const YAML::Node& node, const Where& where, std::string_view key,
                                  bool allow_zero) {
    std::string name = where.prefix + where.Key(key);
    if (!node.IsScalar()) {
      Error(node, name + " must be a duration like 250ms, 10s, 5m, 1h or 2d");
      return std::nullopt;
    }
    const std::string& s = node.Scalar();
    int64_t ns = 0;
    if (!ParseDuration(s, ns)) {
      if (!s.empty() && ParseNumber(s).has_value() && s.find_first_of("eE") == std::string::npos) {
        Error(node, name + ": duration needs a unit (ms, s, m, h or d), got \"" + s + "\"");
      } else {
        Error(node, name + " must be a duration like 250ms, 10s, 5m, 1h or 2d, got \"" + s + "\"");
      }
      return std::nullopt;
    }
    if (ns == 0 && !allow_zero) {
      Error(node, name + " must be greater than zero");
      return std::nullopt;
    }
    return ns;
  }

  // A rule expression (`when:`, `sample_key:`, `filter:`): compiled against the config's
  // `annotations:`, its text stored in `text`; null after reporting an error. Errors in a
  // top-level expression are led by its key (`filter: ...`), a rule's by the rule.
  std::shared_ptr<const CompiledExpr> Expression(const YAML::Node& node, const Where& where,
                                                 std::string_view key, ExprKind kind,
                                                 const RuleSet& rules, std::string& text) {
    auto source = String(node, where, key);
    if (!source) return nullptr;
    std::vector<FeedbackRead> reads;
    auto compiled = CompileExpression(*source, kind, &rules.annotations, &reads);
    for (FeedbackRead& read : reads) feedback_reads_.push_back({std::move(read), node});
    if (!compiled.ok()) {
      const ExprError& err = compiled.error();
      const std::string lead = where.prefix.empty() ? std::string(key) + ": " : where.prefix;
      ErrorInScalar(node, std::min(err.offset, source->size()), lead + err.message);
      return nullptr;
    }
    text = *source;
    return *std::move(compiled);
  }

  std::optional<uint64_t> Size(const YAML::Node& node, const Where& where, std::string_view key) {
    std::string name = where.prefix + where.Key(key);
    uint64_t bytes = 0;
    if (!node.IsScalar() || !ParseSize(node.Scalar(), bytes)) {
      Error(node, name + " must be a size like 4MiB, 512KiB, 1GiB or a number of bytes" +
                      (node.IsScalar() ? ", got \"" + node.Scalar() + "\"" : ""));
      return std::nullopt;
    }
    if (bytes == 0) {
      Error(node, name + " must be greater than zero");
      return std::nullopt;
    }
    return bytes;
  }

  // One of `options`; returns its index.
  std::optional<size_t> Enum(const YAML::Node& node, const Where& where, std::string_view key,
                             const std::vector<std::string>& options) {
    std::string name = where.prefix + where.Key(key);
    if (!node.IsScalar()) {
      Error(node, name + " must be one of " + JoinList(options));
      return std::nullopt;
    }
    const std::string& s = node.Scalar();
    auto it = std::find(options.begin(), options.end(), s);
    if (it == options.end()) {
      Error(node, name + " must be one of " + JoinList(options) + ", got \"" + s + "\"" +
                      DidYouMean(s, options));
      return std::nullopt;
    }
    return static_cast<size_t>(it - options.begin());
  }

  std::optional<RateLimitSpec> Limit(const YAML::Node& node, const Where& where) {
    RateLimitSpec spec;
    bool ok = true, has_max = false, has_per = false;
    bool is_map = ForEachKey(node, where, {"max", "per"},
                             [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
                               if (key == "max") {
                                 has_max = true;
                                 auto m = Integer(v, where, key, 1);
                                 if (m)
                                   spec.max = *m;
                                 else
                                   ok = false;
                               } else {
                                 has_per = true;
                                 auto p = Duration(v, where, key, false);
                                 if (p)
                                   spec.per_ns = *p;
                                 else
                                   ok = false;
                               }
                             });
    if (!is_map) return std::nullopt;
    if (!has_max) Error(node, where.prefix + where.path + ": missing required key \"max\"");
    if (!has_per) Error(node, where.prefix + where.path + ": missing required key \"per\"");
    if (!ok || !has_max || !has_per) return std::nullopt;
    return spec;
  }

  int LineOfMark(const YAML::Mark& mark) const {
    int line, column;
    original_lines_.LineColumnOf(expanded_.ToOriginal(MarkOffset(mark)), line, column);
    return line + 1;
  }

  // `sample:` is a rate in 0..1 or a percentage string `N%` with N in 0..100.
  std::optional<double> SampleRate(const YAML::Node& node, const Where& where) {
    const std::string range = where.prefix + "sample must be between 0 and 1";
    if (!node.IsScalar()) {
      Error(node, where.prefix + "sample must be a number between 0 and 1 or a percentage");
      return std::nullopt;
    }
    std::string_view s = node.Scalar();
    bool percent = !s.empty() && s.back() == '%';
    if (percent) s.remove_suffix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    std::optional<double> v = ParseNumber(s);
    if (!v) {
      Error(node, where.prefix + "sample must be a number between 0 and 1 or a percentage " +
                      "like \"10%\", got \"" + node.Scalar() + "\"");
      return std::nullopt;
    }
    double rate = percent ? *v / 100.0 : *v;
    if (!(rate >= 0.0 && rate <= 1.0)) {
      Error(node, range);
      return std::nullopt;
    }
    return rate;
  }

  void LoadKafka(const YAML::Node& node, KafkaConfig& kafka);
  void LoadInputs(const YAML::Node& node, InputsConfig& inputs);
  void LoadTrace(const YAML::Node& node, TraceSettings& trace, Config& config);
  void LoadDestinations(const YAML::Node& node, std::vector<DestinationSpec>& out);
  void LoadAnnotations(const YAML::Node& node, AnnotationSchemas& out);
  void LoadAnnotation(const std::string& name, const YAML::Node& node, AnnotationSchema& out);
  std::optional<bool> Bool(const YAML::Node& node, const Where& where, std::string_view key);
  std::optional<double> Number(const YAML::Node& node, const Where& where, std::string_view key);
  void LoadRules(const YAML::Node& node, RuleSet& rules);
  void LoadRule(const YAML::Node& node, size_t index, RuleSet& rules,
                std::map<std::string, YAML::Mark>& names);
  void LoadAdmin(const YAML::Node& node, std::string& listen, std::string& token_file);

  std::string path_;
  LineIndex original_lines_;
  const ExpandedText& expanded_;
  LineIndex expanded_lines_;
  std::vector<ConfigError> errors_;           // and warnings
  std::vector<YAML::Node> destination_keys_;  // the name of each of rules.destinations
  struct Read {
    FeedbackRead read;
    YAML::Node scalar;  // the expression it is in
  };
  std::vector<Read> feedback_reads_;
  std::optional<YAML::Mark> null_value_key_mark_;  // while handling a key with an empty value
};

void Loader::Load(const YAML::Node& root, Config& config, RuleSet& rules) {
  if (!root.IsDefined() || root.IsNull()) return;  // an empty file: all defaults, no rules
  YAML::Node destinations, rule_list, annotations, filter;
  bool have_destinations = false, have_rules = false, have_annotations = false, have_filter = false;
  const Where top{};
  ForEachKey(root, top,
             {"schema_version", "kafka", "inputs", "trace", "destinations", "annotations",
              "dead_letter", "admin", "threads", "mode", "max_item_bytes", "filter", "rules"},
             [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
               if (key == "schema_version") {
                 if (!value.IsScalar() || value.Scalar() != "1") {
                   Error(value, "schema_version must be 1" +
                                    (value.IsScalar() ? ", got \"" + value.Scalar() + "\"" : ""));
                 }
               } else if (key == "kafka") {
                 LoadKafka(value, config.kafka);
               } else if (key == "inputs") {
                 LoadInputs(value, config.inputs);
               } else if (key == "trace") {
                 LoadTrace(value, rules.trace, config);
               } else if (key == "destinations") {
                 destinations = value;
                 have_destinations = true;
               } else if (key == "annotations") {
                 annotations = value;
                 have_annotations = true;
               } else if (key == "dead_letter") {
                 Where w{"", "dead_letter"};
                 ForEachKey(value, w, {"topic"},
                            [&](const std::string& k, const YAML::Node&, const YAML::Node& v) {
                              if (auto s = String(v, w, k)) config.dead_letter_topic = *s;
                            });
               } else if (key == "admin") {
                 LoadAdmin(value, config.admin_listen, config.admin_token_file);
               } else if (key == "threads") {
                 if (auto n = Integer(value, top, key, 0)) {
                   if (*n > kMaxThreads) {
                     Error(value, "threads must be at most " + std::to_string(kMaxThreads));
                   } else {
                     config.threads = static_cast<int>(*n);
                   }
                 }
               } else if (key == "max_item_bytes") {
                 if (auto n = Size(value, top, key)) {
                   if (*n < 4096) {
                     Error(value, "max_item_bytes must be at least 4KiB");
                   } else {
                     rules.max_item_bytes = *n;
                   }
                 }
               } else if (key == "mode") {
                 if (auto m = Enum(value, top, key, {"fan_out", "first_match"})) {
                   rules.mode = *m == 0 ? RoutingMode::kFanOut : RoutingMode::kFirstMatch;
                 }
               } else if (key == "filter") {
                 filter = value;
                 have_filter = true;
               } else if (key == "rules") {
                 rule_list = value;
                 have_rules = true;
               }
             });
  config.inputs.repartition_topic = config.kafka.group_id + ".repartition";
  // Destinations and annotations first, whatever their place in the file: rules refer to them.
  if (have_destinations) LoadDestinations(destinations, rules.destinations);
  if (have_annotations) LoadAnnotations(annotations, rules.annotations);
  if (have_filter) {
    rules.filter = Expression(filter, top, "filter", ExprKind::kBoolean, rules, rules.filter_text);
  }
  if (have_rules) LoadRules(rule_list, rules);
  Warnings(rules);
}

void Loader::Warnings(const RuleSet& rules) {
  std::vector<bool> used(rules.destinations.size(), false);
  for (const RuleSpec& rule : rules.rules) {
    for (size_t d : rule.destinations) {
      if (d < used.size()) used[d] = true;
    }
  }
  for (size_t d = 0; d < used.size() && d < destination_keys_.size(); ++d) {
    if (used[d]) continue;
    AsWarning([&] {
      Error(destination_keys_[d],
            "destination \"" + rules.destinations[d].name + "\" is not used by any rule");
    });
  }
  if (rules.annotations.declared) return;
  std::map<std::string, size_t> reads;
  for (const Read& r : feedback_reads_) ++reads[r.read.name];
  for (const Read& r : feedback_reads_) {
    if (reads[r.read.name] != 1) continue;
    std::vector<std::string> others;
    for (const auto& [name, count] : reads) {
      if (name != r.read.name) others.push_back(name);
    }
    const std::string hint = SuggestClosest(r.read.name, others);
    if (hint.empty()) continue;
    AsWarning([&] {
      ErrorInScalar(r.scalar, r.read.offset,
                    "feedback \"" + r.read.name + "\" is read only here" + hint +
                        " (an `annotations:` section makes an undeclared name an error)");
    });
  }
}

void Loader::LoadKafka(const YAML::Node& node, KafkaConfig& kafka) {
  const Where w{"", "kafka"};
  ForEachKey(
      node, w,
      {"bootstrap_servers", "group_id", "guarantee", "properties", "shutdown_timeout",
       "commit_stall_timeout"},
      [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
        if (key == "bootstrap_servers") {
          if (auto s = String(v, w, key)) kafka.bootstrap_servers = *s;
        } else if (key == "group_id") {
          if (auto s = String(v, w, key)) kafka.group_id = *s;
        } else if (key == "commit_stall_timeout") {
          if (auto d = Duration(v, w, key, false)) kafka.commit_stall_timeout_ns = *d;
        } else if (key == "shutdown_timeout") {
          if (auto d = Duration(v, w, key, false)) kafka.shutdown_timeout_ns = *d;
        } else if (key == "guarantee") {
          if (auto g = Enum(v, w, key, {"at_least_once", "exactly_once"})) {
            kafka.guarantee = *g == 0 ? Guarantee::kAtLeastOnce : Guarantee::kExactlyOnce;
          }
        } else if (key == "properties") {
          if (v.IsNull()) return;
          if (!v.IsMap()) {
            Error(v, "kafka.properties must be a mapping of librdkafka property names to values");
            return;
          }
          for (auto it = v.begin(); it != v.end(); ++it) {
            const YAML::Node prop = it->first;
            const YAML::Node prop_value = it->second;
            if (!prop.IsScalar() || prop.Scalar().empty()) {
              Error(prop, "kafka.properties: keys must be property names");
              continue;
            }
            const std::string name = prop.Scalar();
            if (!prop_value.IsScalar()) {
              Error(prop_value, "kafka.properties: value of \"" + name + "\" must be a scalar");
              continue;
            }
            if (!kafka.properties.emplace(name, prop_value.Scalar()).second) {
              Error(prop, "kafka.properties: duplicate key \"" + name + "\"");
            }
          }
        }
      });
}

void Loader::LoadInputs(const YAML::Node& node, InputsConfig& inputs) {
  const Where w{"", "inputs"};
  ForEachKey(
      node, w, {"spans", "feedback", "repartition", "repartition_partitions"},
      [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
        if (key == "repartition") {
          if (auto m = Enum(v, w, key, {"auto", "always", "never"})) {
            inputs.repartition = static_cast<Repartition>(*m);
          }
          return;
        }
        if (key == "repartition_partitions") {
          if (auto n = Integer(v, w, key, 1)) {
            if (*n > 100000) {
              Error(v, w.prefix + w.Key(key) + " must be at most 100000");
            } else {
              inputs.repartition_partitions = static_cast<int32_t>(*n);
            }
          }
          return;
        }
        Where sub = w.Sub(key);
        bool spans = key == "spans";
        ForEachKey(
            v, sub, {"topic", "format"},
            [&](const std::string& k, const YAML::Node&, const YAML::Node& value) {
              if (k == "topic") {
                if (auto s = String(value, sub, k)) {
                  (spans ? inputs.spans_topic : inputs.feedback_topic) = *s;
                }
              } else if (spans) {
                if (auto f = Enum(value, sub, k, {"auto", "native", "otlp_json", "otlp_proto"})) {
                  inputs.spans_format = static_cast<SpanShape>(*f);
                }
              } else if (auto f = Enum(value, sub, k,
                                       {"auto", "native", "phoenix", "langfuse", "langsmith",
                                        "otel_genai", "thumbs"})) {
                inputs.feedback_format = static_cast<FeedbackShape>(*f);
              }
            });
      });
}

void Loader::LoadTrace(const YAML::Node& node, TraceSettings& trace, Config& config) {
  const Where w{"", "trace"};
  ForEachKey(node, w,
             {"decision_wait", "root_grace", "max_wait", "late_feedback_window", "max_open_traces",
              "max_trace_bytes", "hot_window", "store"},
             [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
               if (key == "decision_wait") {
                 if (auto d = Duration(v, w, key, false)) trace.decision_wait_ns = *d;
               } else if (key == "root_grace") {
                 if (auto d = Duration(v, w, key, true)) trace.root_grace_ns = *d;
               } else if (key == "max_wait") {
                 if (auto d = Duration(v, w, key, false)) trace.max_wait_ns = *d;
               } else if (key == "late_feedback_window") {
                 if (auto d = Duration(v, w, key, true)) trace.late_feedback_window_ns = *d;
               } else if (key == "max_open_traces") {
                 if (auto n = Integer(v, w, key, 1)) trace.max_open_traces = *n;
               } else if (key == "max_trace_bytes") {
                 if (auto n = Size(v, w, key)) trace.max_trace_bytes = *n;
               } else if (key == "hot_window") {
                 if (auto d = Duration(v, w, key, true)) trace.hot_window_ns = *d;
               } else if (key == "store") {
                 if (v.IsNull()) return;
                 const Where sw = w.Sub("store");
                 ForEachKey(v, sw, {"path"},
                            [&](const std::string& k, const YAML::Node&, const YAML::Node& pv) {
                              if (auto s = String(pv, sw, k)) {
                                if (s->empty()) {
                                  Error(pv, "trace.store.path must name a directory");
                                } else {
                                  config.trace_store_path = *s;
                                }
                              }
                            });
               }
             });
}

void Loader::LoadDestinations(const YAML::Node& node, std::vector<DestinationSpec>& out) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    Error(node, "destinations must be a mapping of destination names to {kind, topic}");
    return;
  }
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key_node = it->first;
    const YAML::Node value = it->second;
    if (!key_node.IsScalar() || !IsValidName(key_node.Scalar())) {
      Error(key_node, "destination names may contain only letters, digits, '_', '.' and '-'");
      continue;
    }
    const std::string& name = key_node.Scalar();
    if (!seen.insert(name).second) {
      Error(key_node, "duplicate destination \"" + name + "\"");
      continue;
    }
    DestinationSpec spec;
    spec.name = name;
    const Where w{"destination \"" + name + "\": ", ""};
    bool has_kind = false, has_topic = false;
    bool is_map =
        ForEachKey(value, w, {"kind", "topic", "limit"},
                   [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
                     if (key == "kind") {
                       has_kind = true;
                       if (auto k = Enum(v, w, key, {"queue", "dataset"})) {
                         spec.kind = *k == 0 ? DestinationKind::kQueue : DestinationKind::kDataset;
                       }
                     } else if (key == "topic") {
                       has_topic = true;
                       if (auto s = String(v, w, key)) spec.topic = *s;
                     } else if (key == "limit") {
                       spec.limit = Limit(v, w.Sub("limit"));
                     }
                   });
    if (!is_map) continue;
    if (!has_kind) Error(value, w.prefix + "missing required key \"kind\" (queue or dataset)");
    if (!has_topic) Error(value, w.prefix + "missing required key \"topic\"");
    out.push_back(std::move(spec));
    destination_keys_.push_back(key_node);
  }
}

// `annotations:` (DESIGN §1.5): the feedback names a deployment expects, each with its type,
// and `strict`. A present section, even an empty one, turns the checks on.
void Loader::LoadAnnotations(const YAML::Node& node, AnnotationSchemas& out) {
  out.declared = true;
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    Error(node, "annotations must be a mapping of feedback names to {type, ...} (and strict)");
    return;
  }
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key_node = it->first;
    const YAML::Node value = it->second;
    if (!key_node.IsScalar() || key_node.Scalar().empty()) {
      Error(key_node, "annotations: keys must be feedback names");
      continue;
    }
    const std::string& name = key_node.Scalar();
    if (!seen.insert(name).second) {
      Error(key_node, "duplicate key " + QuotedKey("annotations." + name));
      continue;
    }
    std::optional<YAML::Mark> saved = null_value_key_mark_;
    null_value_key_mark_ = value.IsNull() ? std::optional(key_node.Mark()) : std::nullopt;
    if (name == "strict") {
      if (auto b = Bool(value, Where{"", "annotations"}, "strict")) out.strict = *b;
    } else if (!value.IsMap()) {
      // Most likely a misspelt `strict: true`, else an entry written without its braces.
      const std::string hint = Suggest(name, {"strict"});
      Error(value.IsNull() ? key_node : value,
            "annotations." + name + " must be a mapping like {type: categorical, values: [...]}" +
                (hint.empty() ? "" : " (did you mean \"annotations.strict\"?)"));
    } else {
      AnnotationSchema schema;
      schema.name = name;
      LoadAnnotation(name, value, schema);
      out.schemas.push_back(std::move(schema));
    }
    null_value_key_mark_ = saved;
  }
}

void Loader::LoadAnnotation(const std::string& name, const YAML::Node& node,
                            AnnotationSchema& out) {
  const Where w{"", "annotations." + name};
  std::optional<AnnotationSchema::Type> type;
  // Keys that only some types take, with where they were, to check once the type is known.
  std::vector<std::pair<std::string, YAML::Node>> typed;
  bool has_values = false;
  ForEachKey(node, w, {"type", "values", "min", "max", "version", "correction"},
             [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& v) {
               if (key == "type") {
                 if (auto t = Enum(v, w, key, {"categorical", "score", "text"})) {
                   type = static_cast<AnnotationSchema::Type>(*t);
                 }
                 return;
               }
               if (key == "version") {
                 if (auto n = Integer(v, w, key, 0)) {
                   if (*n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                     Error(v, w.Key(key) + " is too large");
                   } else {
                     out.version = static_cast<int64_t>(*n);
                   }
                 }
                 return;
               }
               typed.emplace_back(key, key_node);
               if (key == "values") {
                 has_values = true;
                 if (!v.IsSequence() || v.size() == 0) {
                   Error(v, w.Key(key) + " must be a non-empty list of labels");
                   return;
                 }
                 for (size_t i = 0; i < v.size(); ++i) {
                   const YAML::Node item = v[i];
                   if (!item.IsScalar() || item.Scalar().empty()) {
                     Error(item, w.Key(key) + " entries must be non-empty labels");
                     continue;
                   }
                   if (std::find(out.values.begin(), out.values.end(), item.Scalar()) !=
                       out.values.end()) {
                     Error(item, w.Key(key) + ": \"" + item.Scalar() + "\" is listed twice");
                     continue;
                   }
                   out.values.push_back(item.Scalar());
                 }
               } else if (key == "min") {
                 out.min = Number(v, w, key);
               } else if (key == "max") {
                 out.max = Number(v, w, key);
               } else if (key == "correction") {
                 if (auto b = Bool(v, w, key)) out.correction = *b;
               }
             });
  if (!node.IsMap()) return;
  if (!type) {
    if (!node["type"]) {
      Error(node, w.Key("type") + " is required: categorical, score or text");
    }
    return;  // a bad type was reported where it is
  }
  out.type = *type;
  for (const auto& [key, key_node] : typed) {
    const bool fits = key == "values"       ? out.type == AnnotationSchema::Type::kCategorical
                      : key == "correction" ? out.type != AnnotationSchema::Type::kScore
                                            : out.type == AnnotationSchema::Type::kScore;
    if (!fits) {
      Error(key_node, w.Key(key) + (key == "values"       ? " applies to type: categorical only"
                                    : key == "correction" ? " applies to types categorical and text"
                                                          : " applies to type: score only"));
    }
  }
  if (out.type == AnnotationSchema::Type::kCategorical && !has_values) {
    Error(node, w.Key("values") + " is required for type: categorical (the allowed labels)");
  }
  if (out.min && out.max && *out.min > *out.max) {
    Error(node["min"], w.Key("min") + " must not be greater than " + w.Key("max"));
  }
}

std::optional<bool> Loader::Bool(const YAML::Node& node, const Where& where, std::string_view key) {
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  Error(node, where.prefix + where.Key(key) + " must be true or false" +
                  (node.IsScalar() ? ", got \"" + node.Scalar() + "\"" : ""));
  return std::nullopt;
}

std::optional<double> Loader::Number(const YAML::Node& node, const Where& where,
                                     std::string_view key) {
  if (node.IsScalar()) {
    if (std::optional<double> v = ParseNumber(node.Scalar())) return v;
  }
  Error(node, where.prefix + where.Key(key) + " must be a number" +
                  (node.IsScalar() ? ", got \"" + node.Scalar() + "\"" : ""));
  return std::nullopt;
}

void Loader::LoadRules(const YAML::Node& node, RuleSet& rules) {
  if (node.IsNull()) return;
  if (!node.IsSequence()) {
    Error(node, "rules must be a list");
    return;
  }
  std::map<std::string, YAML::Mark> names;
  for (size_t i = 0; i < node.size(); ++i) LoadRule(node[i], i, rules, names);
}

void Loader::LoadRule(const YAML::Node& node, size_t index, RuleSet& rules,
                      std::map<std::string, YAML::Mark>& names) {
  RuleSpec rule;
  Where w{"rule #" + std::to_string(index + 1) + ": ", ""};
  if (!node.IsMap()) {
    Error(node, w.prefix + "a rule must be a mapping with name, when and route_to");
    return;
  }
  // The name comes first so that every other message can carry it.
  YAML::Node name_node;
  bool has_name = false;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    if (key.IsScalar() && key.Scalar() == "name") {
      name_node = it->second;
      has_name = true;
      break;
    }
  }
  if (has_name && name_node.IsScalar() && IsValidName(name_node.Scalar())) {
    rule.name = name_node.Scalar();
    w.prefix = "rule \"" + rule.name + "\": ";
  }

  std::vector<std::string> destination_names;
  for (const DestinationSpec& d : rules.destinations) destination_names.push_back(d.name);

  bool has_when = false, has_route = false;
  ForEachKey(node, w,
             {"name", "description", "when", "route_to", "priority", "sample", "sample_key",
              "sample_salt", "limit"},
             [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
               if (key == "name") {
                 if (!v.IsScalar() || !IsValidName(v.Scalar())) {
                   Error(v, w.prefix + "name must be made of letters, digits, '_', '.' and '-'" +
                                (v.IsScalar() ? ", got \"" + v.Scalar() + "\"" : ""));
                   return;
                 }
                 auto [it, inserted] = names.emplace(v.Scalar(), v.Mark());
                 if (!inserted) {
                   Error(v, "duplicate rule name \"" + v.Scalar() + "\" (first defined at line " +
                                std::to_string(LineOfMark(it->second)) + ")");
                 }
               } else if (key == "description") {
                 String(v, w, key, /*allow_empty=*/true);
               } else if (key == "when") {
                 has_when = true;
                 rule.when = Expression(v, w, key, ExprKind::kBoolean, rules, rule.when_text);
               } else if (key == "sample_key") {
                 if (auto compiled =
                         Expression(v, w, key, ExprKind::kString, rules, rule.sample_key_text)) {
                   rule.sample_key = std::move(compiled);
                 }
               } else if (key == "route_to") {
                 has_route = true;
                 if (!v.IsSequence() || v.size() == 0) {
                   Error(v, w.prefix + "route_to must be a non-empty list of destination names");
                   return;
                 }
                 for (size_t i = 0; i < v.size(); ++i) {
                   YAML::Node item = v[i];
                   if (!item.IsScalar()) {
                     Error(item, w.prefix + "route_to entries must be destination names");
                     continue;
                   }
                   const std::string& dest = item.Scalar();
                   auto found = std::find(destination_names.begin(), destination_names.end(), dest);
                   if (found == destination_names.end()) {
                     Error(item, w.prefix + "unknown destination \"" + dest + "\"" +
                                     DidYouMean(dest, destination_names));
                     continue;
                   }
                   size_t idx = static_cast<size_t>(found - destination_names.begin());
                   if (std::find(rule.destinations.begin(), rule.destinations.end(), idx) !=
                       rule.destinations.end()) {
                     Error(item, w.prefix + "destination \"" + dest + "\" is listed twice");
                     continue;
                   }
                   rule.destinations.push_back(idx);
                 }
               } else if (key == "priority") {
                 // Free text (low, normal, high, urgent, p1, ...): queues order by their own
                 // scheme.
                 if (auto p = String(v, w, key)) rule.priority = *p;
               } else if (key == "sample") {
                 if (auto rate = SampleRate(v, w)) rule.sample_rate = *rate;
               } else if (key == "sample_salt") {
                 if (auto s = String(v, w, key, /*allow_empty=*/true)) rule.sample_salt = *s;
               } else if (key == "limit") {
                 rule.limit = Limit(v, w.Sub("limit"));
               }
             });
  if (!has_name) Error(node, w.prefix + "missing required key \"name\"");
  if (!has_when) Error(node, w.prefix + "missing required key \"when\"");
  if (!has_route) Error(node, w.prefix + "missing required key \"route_to\"");
  rules.rules.push_back(std::move(rule));
}

void Loader::LoadAdmin(const YAML::Node& node, std::string& listen, std::string& token_file) {
  const Where w{"", "admin"};
  ForEachKey(node, w, {"listen", "token_file"},
             [&](const std::string& key, const YAML::Node&, const YAML::Node& v) {
               auto s = String(v, w, key, /*allow_empty=*/key == "token_file");
               if (!s) return;
               if (key == "token_file") {
                 token_file = *s;  // read when the admin server starts; empty: none
                 return;
               }
               // HOST:PORT, with an IPv6 host in brackets.
               size_t colon = s->rfind(':');
               bool ok = colon != std::string::npos && colon > 0 && colon + 1 < s->size();
               if (ok && (*s)[0] == '[') ok = (*s)[colon - 1] == ']';
               if (ok && (*s)[0] != '[') ok = s->find(':') == colon;
               unsigned port = 0;
               if (ok) {
                 const char* b = s->data() + colon + 1;
                 const char* e = s->data() + s->size();
                 auto [ptr, ec] = std::from_chars(b, e, port);
                 ok = ec == std::errc() && ptr == e && port <= 65535;
               }
               if (!ok) {
                 Error(v,
                       "admin.listen must be HOST:PORT (e.g. 127.0.0.1:9464), got \"" + *s + "\"");
                 return;
               }
               listen = *s;
             });
}

bool ErrorLess(const ConfigError& a, const ConfigError& b) {
  return a.line != b.line ? a.line < b.line : a.column < b.column;
}

// yaml-cpp 0.7 loops forever, allocating, on a few malformed inputs (a tag or an anchor before a
// stray ',' at the top level: `!t ,`). A well-formed stream yields at most a few events per
// byte, so a first pass counts events and refuses the text where they run past that.
class EventBudget : public YAML::EventHandler {
 public:
  struct Exceeded {
    YAML::Mark mark;
  };
  explicit EventBudget(size_t bytes) : left_(4 * bytes + 64) {}

  void OnDocumentStart(const YAML::Mark& mark) override { Spend(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Spend(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Spend(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Spend(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Spend(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Spend(mark);
  }
  void OnMapEnd() override {}

 private:
  void Spend(const YAML::Mark& mark) {
    if (left_-- == 0) throw Exceeded{mark};
  }
  size_t left_;
};

// Throws YAML::ParserException for a syntax error, as YAML::LoadAll would.
std::optional<YAML::Mark> ParserStalls(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  EventBudget budget(text.size());
  try {
    while (parser.HandleNextDocument(budget)) {
    }
  } catch (const EventBudget::Exceeded& e) {
    return e.mark;
  }
  return std::nullopt;
}

}  // namespace

Result<std::shared_ptr<const Config>, std::vector<ConfigError>> LoadConfigString(
    const std::string& text, const std::string& path, EnvLookup getenv_fn) {
  std::vector<ExpandError> expand_errors;
  ExpandedText expanded = ExpandedText::Expand(text, getenv_fn, expand_errors);
  Loader loader(path, text, expanded);
  for (ExpandError& e : expand_errors) loader.ErrorAtOriginal(e.offset, std::move(e.message));

  auto config = std::make_shared<Config>();
  config->path = path;
  auto rules = std::make_shared<RuleSet>();
  rules->config_version = Sha256Hex(text);
  try {
    if (std::optional<YAML::Mark> stall = ParserStalls(expanded.text())) {
      loader.Error(*stall, "YAML syntax error: the parser cannot get past this point");
    } else {
      std::vector<YAML::Node> docs = YAML::LoadAll(expanded.text());
      if (docs.size() > 1) {
        loader.Error(docs[1], "a config file must hold a single YAML document");
      }
      if (!docs.empty()) loader.Load(docs[0], *config, *rules);
    }
  } catch (const YAML::Exception& e) {
    loader.Error(e.mark, "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    loader.Error(YAML::Mark::null_mark(), std::string("cannot parse: ") + e.what());
  }

  std::vector<ConfigError>& errors = loader.errors();
  std::stable_sort(errors.begin(), errors.end(), ErrorLess);
  auto first_warning = std::stable_partition(errors.begin(), errors.end(),
                                             [](const ConfigError& e) { return !e.warning; });
  if (first_warning != errors.begin()) {
    errors.erase(first_warning, errors.end());
    return std::move(errors);
  }
  config->warnings = std::move(errors);
  config->rules = std::move(rules);
  return config;
}

}  // namespace triaged
