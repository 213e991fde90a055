// `triaged test`: rule unit tests, like `vector test`. A test file is YAML:
//
//   tests:
//     - name: thumbs-down goes to support
//       events:                      # one input event each: a map (written as JSON) or a
//         - {trace_id: t1, thumbs: down}   # string (a raw line: malformed input, kcat envelopes)
//       expect:
//         routes:    [{rule: thumbs-down, destination: support-review}]
//         no_routes: [{rule: slow}]
//         exact: true                # nothing routed beyond `routes`
//         invalid: 0                 # refused input lines (default 0: any dead letter fails)
//       sample: keep                 # optional: keep | drop, or {RULE: keep | drop, ...}
//
// Route patterns may name `rule`, `destination`, `trace_id` and `trigger`; absent fields match
// anything. Each test replays its events through a fresh engine, exactly as `replay` does,
// except that `sample:` pins the sampling decision: `keep`, every rule keeps the trace; `drop`,
// every rule with a `sample` below 1 drops it; a map pins the rules it names.
#include <yaml-cpp/yaml.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <ostream>
#include <regex>
#include <sstream>

#include "daemon/command_util.h"
#include "rules/decode.h"
#include "tools/commands.h"
#include "tools/replay.h"

namespace triaged {
namespace {

struct RoutePattern {
  std::optional<std::string> rule, destination, trace_id, trigger;
  std::string ToString() const {
    std::string s = rule.value_or("*") + " -> " + destination.value_or("*");
    if (trace_id) s += " (trace " + *trace_id + ")";
    if (trigger) s += " [" + *trigger + "]";
    return s;
  }
};

struct RuleTest {
  std::string name;
  std::vector<std::string> events;
  std::vector<RoutePattern> routes, no_routes;
  bool exact = false;
  std::optional<uint64_t> invalid;             // unset: no input may be refused
  std::vector<Engine::SamplePin> sample_pins;  // by rule index; empty = as configured
};

struct Routed {
  std::string rule, destination, trace_id, trigger;
  std::string ToString() const {
    return rule + " -> " + destination + " (trace " + trace_id + ") [" + trigger + "]";
  }
};

bool Matches(const RoutePattern& p, const Routed& r) {
  return (!p.rule || *p.rule == r.rule) && (!p.destination || *p.destination == r.destination) &&
         (!p.trace_id || *p.trace_id == r.trace_id) && (!p.trigger || *p.trigger == r.trigger);
}

// A YAML syntax or shape problem, reported as FILE:LINE:COL.
struct TestFileError {
  YAML::Mark mark;
  std::string message;
};

bool IsJsonNumber(const std::string& s) {
  static const std::regex kNumber(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)");
  return std::regex_match(s, kNumber);
}

// Writes a YAML node as JSON. Plain scalars are typed as YAML 1.2's core schema would type them;
// quoted scalars are always strings.
void WriteJson(const YAML::Node& node, rapidjson::Writer<rapidjson::StringBuffer>& w) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: w.Null(); return;
    case YAML::NodeType::Sequence:
      w.StartArray();
      for (const YAML::Node& item : node) WriteJson(item, w);
      w.EndArray();
      return;
    case YAML::NodeType::Map:
      w.StartObject();
      for (const auto& kv : node) {
        const std::string key = kv.first.Scalar();
        w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
        WriteJson(kv.second, w);
      }
      w.EndObject();
      return;
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() != "!") {
        if (s == "null" || s == "~" || s == "Null" || s == "NULL") return (void)w.Null();
        if (s == "true" || s == "True" || s == "TRUE") return (void)w.Bool(true);
        if (s == "false" || s == "False" || s == "FALSE") return (void)w.Bool(false);
        if (IsJsonNumber(s)) {
          w.RawValue(s.data(), s.size(), rapidjson::kNumberType);
          return;
        }
      }
      w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      return;
    }
  }
}

std::string ToJson(const YAML::Node& node) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  WriteJson(node, w);
  return std::string(buf.GetString(), buf.GetSize());
}

void CheckKeys(const YAML::Node& map, std::initializer_list<const char*> allowed,
               std::vector<TestFileError>& errors) {
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      errors.push_back(
          {kv.first.Mark(), "unknown key \"" + key + "\" (expected one of: " + list + ")"});
    }
  }
}

std::optional<std::string> OptionalString(const YAML::Node& map, const char* key,
                                          std::vector<TestFileError>& errors) {
  const YAML::Node v = map[key];
  if (!v) return std::nullopt;
  if (!v.IsScalar()) {
    errors.push_back({v.Mark(), std::string(key) + " must be a string"});
    return std::nullopt;
  }
  return v.Scalar();
}

std::vector<RoutePattern> ParsePatterns(const YAML::Node& list,
                                        std::vector<TestFileError>& errors) {
  std::vector<RoutePattern> out;
  if (!list) return out;
  if (!list.IsSequence()) {
    errors.push_back({list.Mark(), "expected a list of {rule, destination, trace_id, trigger}"});
    return out;
  }
  for (const YAML::Node& item : list) {
    if (!item.IsMap()) {
      errors.push_back({item.Mark(), "expected a map {rule, destination, trace_id, trigger}"});
      continue;
    }
    CheckKeys(item, {"rule", "destination", "trace_id", "trigger"}, errors);
    RoutePattern p;
    p.rule = OptionalString(item, "rule", errors);
    p.destination = OptionalString(item, "destination", errors);
    p.trace_id = OptionalString(item, "trace_id", errors);
    if (p.trace_id) {
      std::string normalized;
      if (NormalizeId(*p.trace_id, normalized)) p.trace_id = normalized;
    }
    p.trigger = OptionalString(item, "trigger", errors);
    if (p.trigger && *p.trigger != "close" && *p.trigger != "late_feedback") {
      errors.push_back({item["trigger"].Mark(), "trigger must be close or late_feedback"});
    }
    out.push_back(std::move(p));
  }
  return out;
}

// `sample: keep | drop` or `sample: {RULE: keep | drop}`: the pins, by rule index.
std::vector<Engine::SamplePin> ParseSamplePins(const YAML::Node& node, const RuleSet& rules,
                                               const std::string& test_name,
                                               std::vector<TestFileError>& errors) {
  using Pin = Engine::SamplePin;
  std::vector<Pin> pins;
  if (!node) return pins;
  auto parse = [&](const YAML::Node& v, Pin& pin) {
    if (v.IsScalar() && (v.Scalar() == "keep" || v.Scalar() == "drop")) {
      pin = v.Scalar() == "keep" ? Pin::kKeep : Pin::kDrop;
      return true;
    }
    errors.push_back({v.Mark(), "test \"" + test_name + "\": sample must be keep or drop"});
    return false;
  };
  pins.assign(rules.rules.size(), Pin::kNone);
  if (node.IsMap()) {
    for (const auto& kv : node) {
      const std::string name = kv.first.Scalar();
      const auto rule = std::find_if(rules.rules.begin(), rules.rules.end(),
                                     [&](const RuleSpec& r) { return r.name == name; });
      if (rule == rules.rules.end()) {
        errors.push_back(
            {kv.first.Mark(), "test \"" + test_name + "\": sample: unknown rule \"" + name + "\""});
        continue;
      }
      parse(kv.second, pins[static_cast<size_t>(rule - rules.rules.begin())]);
    }
    return pins;
  }
  Pin pin = Pin::kNone;
  if (!parse(node, pin)) return {};
  for (size_t r = 0; r < rules.rules.size(); ++r) {
    // `drop` leaves alone the rules that do not sample: they route what they match.
    if (pin == Pin::kKeep || rules.rules[r].sample_rate < 1.0) pins[r] = pin;
  }
  return pins;
}

std::vector<RuleTest> ParseTestFile(const YAML::Node& root, const RuleSet& rules,
                                    std::vector<TestFileError>& errors) {
  std::vector<RuleTest> tests;
  if (!root.IsMap() || !root["tests"] || !root["tests"].IsSequence()) {
    errors.push_back({root.Mark(), "a test file is a map with a `tests:` list"});
    return tests;
  }
  CheckKeys(root, {"tests"}, errors);
  for (const YAML::Node& t : root["tests"]) {
    if (!t.IsMap()) {
      errors.push_back({t.Mark(), "each test is a map {name, events, expect}"});
      continue;
    }
    CheckKeys(t, {"name", "events", "expect", "sample"}, errors);
    RuleTest test;
    test.name = OptionalString(t, "name", errors).value_or("");
    if (test.name.empty()) errors.push_back({t.Mark(), "a test needs a name"});
    const YAML::Node events = t["events"];
    if (!events || !events.IsSequence()) {
      errors.push_back({t.Mark(), "test \"" + test.name + "\": events must be a list"});
    } else {
      for (const YAML::Node& e : events) {
        test.events.push_back(e.IsScalar() ? e.Scalar() : ToJson(e));
      }
    }
    test.sample_pins = ParseSamplePins(t["sample"], rules, test.name, errors);
    const YAML::Node expect = t["expect"];
    if (!expect || !expect.IsMap()) {
      errors.push_back({t.Mark(), "test \"" + test.name + "\": expect must be a map"});
    } else {
      CheckKeys(expect, {"routes", "no_routes", "exact", "invalid"}, errors);
      test.routes = ParsePatterns(expect["routes"], errors);
      test.no_routes = ParsePatterns(expect["no_routes"], errors);
      for (const auto* patterns : {&test.routes, &test.no_routes}) {
        for (const RoutePattern& p : *patterns) {
          const bool known_rule =
              !p.rule || std::any_of(rules.rules.begin(), rules.rules.end(),
                                     [&](const RuleSpec& r) { return r.name == *p.rule; });
          const bool known_dest =
              !p.destination ||
              std::any_of(rules.destinations.begin(), rules.destinations.end(),
                          [&](const DestinationSpec& d) { return d.name == *p.destination; });
          if (!known_rule) {
            errors.push_back(
                {expect.Mark(), "test \"" + test.name + "\": unknown rule \"" + *p.rule + "\""});
          }
          if (!known_dest) {
            errors.push_back({expect.Mark(), "test \"" + test.name + "\": unknown destination \"" +
                                                 *p.destination + "\""});
          }
        }
      }
      try {
        if (expect["exact"]) test.exact = expect["exact"].as<bool>();
        if (expect["invalid"]) test.invalid = expect["invalid"].as<uint64_t>();
      } catch (const YAML::Exception& e) {
        errors.push_back({e.mark, "test \"" + test.name + "\": exact is a bool, invalid a count"});
      }
    }
    tests.push_back(std::move(test));
  }
  return tests;
}

// Runs one test; returns the failure descriptions (empty = passed).
std::vector<std::string> RunOne(const RuleTest& test, const std::shared_ptr<const Config>& config) {
  std::vector<Routed> routed;
  Replayer replayer(
      config,
      [&routed](const Route& r) {
        routed.push_back(
            {r.rule->name, r.destination->name, r.trace_id, std::string(TriggerName(r.trigger))});
      },
      /*documents=*/false);
  replayer.engine().set_sample_pins(test.sample_pins);
  uint64_t n = 0;
  for (const std::string& event : test.events) replayer.Line(event, ++n);
  replayer.Finish();
  std::vector<std::string> failures;
  for (const RoutePattern& p : test.routes) {
    if (std::none_of(routed.begin(), routed.end(),
                     [&](const Routed& r) { return Matches(p, r); })) {
      failures.push_back("expected a route " + p.ToString() + ", got none");
    }
  }
  for (const RoutePattern& p : test.no_routes) {
    for (const Routed& r : routed) {
      if (Matches(p, r)) failures.push_back("unexpected route " + r.ToString());
    }
  }
  if (test.exact) {
    for (const Routed& r : routed) {
      if (std::none_of(test.routes.begin(), test.routes.end(),
                       [&](const RoutePattern& p) { return Matches(p, r); })) {
        failures.push_back("route not in the expected set: " + r.ToString());
      }
    }
  }
  if (test.invalid.value_or(0) != replayer.stats().invalid) {
    std::string reasons;
    for (const auto& [reason, count] : replayer.stats().invalid_by_reason) {
      reasons += (reasons.empty() ? "" : ", ") + reason + ": " + std::to_string(count);
    }
    failures.push_back("expected " + std::to_string(test.invalid.value_or(0)) +
                       " invalid inputs, got " + std::to_string(replayer.stats().invalid) +
                       (reasons.empty() ? "" : " (" + reasons + ")") +
                       (test.invalid ? "" : "; write `invalid: N` under expect if they are meant"));
  }
  if (!failures.empty()) {
    std::string got = "routed:";
    if (routed.empty()) got += " nothing";
    for (const Routed& r : routed) got += "\n      " + r.ToString();
    failures.push_back(got);
  }
  return failures;
}

// One test's outcome.
struct CaseResult {
  std::string name;
  std::vector<std::string> failures;  // empty: passed
  double seconds = 0;
};
struct FileResult {
  std::string file;
  std::vector<CaseResult> cases;
};

// Text for XML content and attribute values: markup escaped, and the control characters XML 1.0
// cannot carry written as \xNN.
std::string XmlEscaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r') {
          static const char kHex[] = "0123456789abcdef";
          out += "\\x";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Seconds(double seconds) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(6);
  s << seconds;
  return s.str();
}

// The JUnit XML report (the schema Jenkins, GitLab and GitHub's reporters read): one testsuite
// per test file, one testcase per test, a <failure> with every unmet expectation.
void WriteJunit(const std::vector<FileResult>& files, std::ostream& out) {
  struct Totals {
    uint64_t tests = 0, failures = 0;
    double seconds = 0;
    void Add(const CaseResult& c) {
      ++tests;
      failures += c.failures.empty() ? 0 : 1;
      seconds += c.seconds;
    }
  };
  Totals all;
  for (const FileResult& f : files) {
    for (const CaseResult& c : f.cases) all.Add(c);
  }
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<testsuites name=\"triaged test\" tests=\"" << all.tests << "\" failures=\""
      << all.failures << "\" errors=\"0\" time=\"" << Seconds(all.seconds) << "\">\n";
  for (const FileResult& f : files) {
    Totals suite;
    for (const CaseResult& c : f.cases) suite.Add(c);
    const std::string file = XmlEscaped(f.file);
    out << "  <testsuite name=\"" << file << "\" tests=\"" << suite.tests << "\" failures=\""
        << suite.failures << "\" errors=\"0\" skipped=\"0\" time=\"" << Seconds(suite.seconds)
        << "\">\n";
    for (const CaseResult& c : f.cases) {
      out << "    <testcase name=\"" << XmlEscaped(c.name) << "\" classname=\"" << file
          << "\" time=\"" << Seconds(c.seconds) << "\"";
      if (c.failures.empty()) {
        out << "/>\n";
        continue;
      }
      std::string text;
      for (const std::string& failure : c.failures) text += failure + "\n";
      out << ">\n      <failure message=\"" << XmlEscaped(c.failures.front())
          << "\" type=\"expectation\">" << XmlEscaped(text) << "</failure>\n    </testcase>\n";
    }
    out << "  </testsuite>\n";
  }
  out << "</testsuites>\n";
}

}  // namespace

int RunTests(const TestOptions& options, std::ostream& out, std::ostream& err) {
  std::shared_ptr<const Config> config = LoadConfigOrReport(options.config_path, err);
  if (!config) return kExitConfig;
  if (options.test_files.empty()) {
    err << "test: no test files given\n";
    return kExitUsage;
  }
  std::vector<FileResult> results;
  uint64_t passed = 0, failed = 0;
  for (const std::string& file : options.test_files) {
    std::vector<TestFileError> errors;
    std::vector<RuleTest> tests;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      err << file << ": cannot read test file\n";
      return kExitNoInput;
    }
    try {
      tests = ParseTestFile(YAML::Load(in), *config->rules, errors);
    } catch (const YAML::Exception& e) {
      errors.push_back({e.mark, e.msg});
    }
    if (!errors.empty()) {
      for (const TestFileError& e : errors) {
        err << file << ":" << e.mark.line + 1 << ":" << e.mark.column + 1 << ": " << e.message
            << "\n";
      }
      return kExitConfig;
    }
    FileResult& result = results.emplace_back();
    result.file = file;
    for (const RuleTest& test : tests) {
      const auto start = std::chrono::steady_clock::now();
      CaseResult& c = result.cases.emplace_back();
      c.name = test.name;
      c.failures = RunOne(test, config);
      c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (c.failures.empty()) {
        ++passed;
        if (!options.junit) out << "test " << test.name << " ... ok\n";
      } else {
        ++failed;
        if (options.junit) continue;
        out << "test " << test.name << " ... FAILED\n";
        for (const std::string& f : c.failures) out << "    " << f << "\n";
      }
    }
  }
  if (options.junit) {
    WriteJunit(results, out);
  } else {
    out << passed << " passed, " << failed << " failed\n";
  }
  return failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace triaged
