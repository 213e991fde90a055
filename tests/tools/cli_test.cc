// The subcommands end to end, through the real binary: exit codes, error positions, replay
// output validated against the shipped JSON Schema, rule tests and explain.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/schema.h>

#include <cstdlib>
#include <set>
#include <tuple>

#include "daemon/version.h"
#include "tests/tools/cli_test_util.h"

namespace triaged {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::triaged::testing::Lines;
using ::triaged::testing::ReadFile;
using ::triaged::testing::RunTriaged;
using ::triaged::testing::SourcePath;
using ::triaged::testing::TempDir;

const std::string kRules = SourcePath("config/examples/rules.yaml");
const std::string kEvents = SourcePath("config/examples/events.jsonl");

// A small valid config; the error tests below break one line of it at a time.
const char* const kBaseConfig[] = {
    "schema_version: 1",                                                   // 1
    "destinations:",                                                       // 2
    "  support-review: {kind: queue, topic: annotations.support-review}",  // 3
    "  regressions: {kind: dataset, topic: datasets.regressions}",         // 4
    "rules:",                                                              // 5
    "  - name: thumbs-down",                                               // 6
    "    when: feedback.thumbs.label == \"down\"",                         // 7
    "    route_to: [support-review]",                                      // 8
    "  - name: slow",                                                      // 9
    "    when: trace.duration_ms > 5000",                                  // 10
    "    sample: 10%",                                                     // 11
    "    route_to: [regressions]",                                         // 12
};

std::string ConfigWith(int line, const std::string& replacement) {
  std::string text;
  int n = 0;
  for (const char* l : kBaseConfig) {
    ++n;
    text += (n == line ? replacement : std::string(l)) + "\n";
  }
  return text;
}

TEST(CliValidate, AcceptsTheExampleConfig) {
  const auto run = RunTriaged("validate -c " + kRules);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("ok"));
}

TEST(CliValidate, AcceptsTheBaseConfig) {
  TempDir dir;
  const std::string path = dir.Write("rules.yaml", ConfigWith(0, ""));
  const auto run = RunTriaged("validate -c " + path);
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

struct BrokenConfig {
  const char* name;
  int line;
  const char* replacement;
  const char* position;  // LINE:COL expected in the error
  const char* message;   // a substring of the message
};

class CliValidateBroken : public ::testing::TestWithParam<BrokenConfig> {};

TEST_P(CliValidateBroken, Exits78WithFileLineColumn) {
  const BrokenConfig& c = GetParam();
  TempDir dir;
  const std::string path = dir.Write("rules.yaml", ConfigWith(c.line, c.replacement));
  const auto run = RunTriaged("validate -c " + path);
  EXPECT_EQ(run.exit_code, 78) << run.err;
  EXPECT_THAT(run.err, HasSubstr(path + ":" + c.position + ": ")) << run.err;
  EXPECT_THAT(run.err, HasSubstr(c.message)) << run.err;
}

INSTANTIATE_TEST_SUITE_P(
    Faults, CliValidateBroken,
    ::testing::Values(
        BrokenConfig{"UnknownTopLevelKey", 1, "schema_version: 1\ndead_leter: {topic: x}", "2:1",
                     "dead_leter"},
        BrokenConfig{"TypoInRuleField", 10, "    wehn: trace.duration_ms > 5000", "10:5", "wehn"},
        BrokenConfig{"UnknownField", 10, "    when: trace.duraton_ms > 5000", "10:11",
                     "rule \"slow\""},
        BrokenConfig{"TypeMismatch", 10, "    when: trace.duration_ms > \"slow\"", "10:31",
                     "rule \"slow\""},
        BrokenConfig{"SyntaxError", 10, "    when: trace.duration_ms >", "10:30", "rule \"slow\""},
        BrokenConfig{"RateAboveOne", 11, "    sample: 1.5", "11:13", "sample"},
        BrokenConfig{"RateNegative", 11, "    sample: -0.1", "11:13", "sample"},
        BrokenConfig{"PercentAbove100", 11, "    sample: 150%", "11:13", "sample"},
        BrokenConfig{"UnknownDestination", 12, "    route_to: [regresions]", "12:16", "regresions"},
        BrokenConfig{"UnknownDestinationKey", 4,
                     "  regressions: {kind: dataset, topik: datasets.regressions}", "4:32",
                     "topik"}),
    [](const ::testing::TestParamInfo<BrokenConfig>& p) { return p.param.name; });

// A config that loads but is likely wrong: warnings on stderr, exit 0; --deny-warnings refuses it
// as an error (78), as a compiler's -Werror does.
const char kWarnedConfig[] = R"(destinations:
  q: {kind: queue, topic: t}
  unused: {kind: dataset, topic: u}
rules:
  - {name: a, when: feedback.thumbs.label == "down", route_to: [q]}
  - {name: b, when: 'feedback.thumbs.count > 1 or feedback.thumb.label == "up"', route_to: [q]}
)";

TEST(CliValidate, WarningsAndDenyWarnings) {
  TempDir dir;
  const std::string path = dir.Write("rules.yaml", kWarnedConfig);
  const auto run = RunTriaged("validate -c " + path);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr(": ok (2 rules, 2 destinations, config_version "));
  EXPECT_THAT(run.out, HasSubstr(", 2 warnings)\n"));
  EXPECT_EQ(run.err, path + ":3:3: warning: destination \"unused\" is not used by any rule\n" +
                         path + ":6:60: warning: feedback \"thumb\" is read only here; did you " +
                         "mean \"thumbs\"? (an `annotations:` section makes an undeclared name " +
                         "an error)\n");
  const auto denied = RunTriaged("validate --deny-warnings -c " + path);
  EXPECT_EQ(denied.exit_code, 78);
  EXPECT_EQ(denied.out, "");
  EXPECT_THAT(denied.err, HasSubstr(path + ": 2 warnings, refused by --deny-warnings\n"));
  // Without warnings --deny-warnings changes nothing.
  EXPECT_EQ(RunTriaged("validate --deny-warnings -c " + kRules).exit_code, 0);
}

// --output json: one document on stdout, the same exit codes as text.
TEST(CliValidate, OutputJson) {
  TempDir dir;
  const std::string path = dir.Write("rules.yaml", kWarnedConfig);
  const auto parse = [](const std::string& text) {
    rapidjson::Document doc;
    doc.Parse(text.c_str());
    EXPECT_FALSE(doc.HasParseError()) << text;
    return doc;
  };
  const auto warned = RunTriaged("validate --output json -c " + path);
  EXPECT_EQ(warned.exit_code, 0) << warned.err;
  EXPECT_EQ(warned.err, "");
  rapidjson::Document doc = parse(warned.out);
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(std::string(doc["config"].GetString()), path);
  EXPECT_TRUE(doc["ok"].GetBool());
  EXPECT_EQ(doc["rules"].GetUint64(), 2u);
  EXPECT_EQ(doc["destinations"].GetUint64(), 2u);
  EXPECT_EQ(std::string(doc["config_version"].GetString()).size(), 64u);
  EXPECT_EQ(doc["errors"].Size(), 0u);
  ASSERT_EQ(doc["warnings"].Size(), 2u);
  const auto& first = doc["warnings"][0];
  EXPECT_EQ(std::string(first["file"].GetString()), path);
  EXPECT_EQ(first["line"].GetInt(), 3);
  EXPECT_EQ(first["column"].GetInt(), 3);
  EXPECT_EQ(std::string(first["message"].GetString()),
            "destination \"unused\" is not used by any rule");

  const auto denied = RunTriaged("validate --output json --deny-warnings -c " + path);
  EXPECT_EQ(denied.exit_code, 78);
  EXPECT_FALSE(parse(denied.out)["ok"].GetBool());

  const std::string broken = dir.Write("broken.yaml", "mode: first-match\n");
  const auto failed = RunTriaged("validate --output json -c " + broken);
  EXPECT_EQ(failed.exit_code, 78);
  EXPECT_EQ(failed.err, "");
  rapidjson::Document bad = parse(failed.out);
  EXPECT_FALSE(bad["ok"].GetBool());
  EXPECT_TRUE(bad["rules"].IsNull());
  EXPECT_TRUE(bad["config_version"].IsNull());
  ASSERT_EQ(bad["errors"].Size(), 1u);
  EXPECT_EQ(bad["errors"][0]["line"].GetInt(), 1);
  EXPECT_EQ(bad["errors"][0]["column"].GetInt(), 7);
  EXPECT_THAT(bad["errors"][0]["message"].GetString(), HasSubstr("mode must be one of"));

  EXPECT_NE(RunTriaged("validate --output yaml -c " + path).exit_code, 0);
}

TEST(CliValidate, OversizedFileIsAConfigError) {
  TempDir dir;
  const std::string path =
      dir.Write("rules.yaml", ConfigWith(0, "") + std::string(5 << 20, '#') + "\n");
  const auto run = RunTriaged("validate -c " + path);
  EXPECT_EQ(run.exit_code, 78) << run.err;
  EXPECT_THAT(run.err, HasSubstr(path + ": config file is larger than 4 MiB")) << run.err;
}

TEST(CliValidate, MissingFileIsAConfigError) {
  const auto run = RunTriaged("validate -c /nonexistent/rules.yaml");
  EXPECT_EQ(run.exit_code, 78);
  EXPECT_THAT(run.err, HasSubstr("/nonexistent/rules.yaml"));
}

// `-c -` reads the config from stdin (as kcat and the shell's tools take `-`); its errors are
// named <stdin>.
TEST(CliStdinConfig, ValidateAndReplayReadTheConfigFromStdin) {
  const auto validated = RunTriaged("validate -c - < " + kRules);
  EXPECT_EQ(validated.exit_code, 0) << validated.err;
  EXPECT_THAT(validated.out, StartsWith("<stdin>: ok ("));

  const auto from_file = RunTriaged("replay -q -c " + kRules + " " + kEvents);
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  ASSERT_FALSE(from_file.out.empty());
  const auto from_stdin = RunTriaged("replay -q -c - " + kEvents + " < " + kRules);
  EXPECT_EQ(from_stdin.exit_code, 0) << from_stdin.err;
  EXPECT_EQ(from_stdin.out, from_file.out);
}

TEST(CliStdinConfig, ErrorsNameStdinWithLineAndColumn) {
  TempDir dir;
  const std::string path =
      dir.Write("rules.yaml", ConfigWith(10, "    wehn: trace.duration_ms > 5000"));
  const auto run = RunTriaged("validate -c - < " + path);
  EXPECT_EQ(run.exit_code, 78) << run.err;
  EXPECT_THAT(run.err, HasSubstr("<stdin>:10:5: ")) << run.err;
}

TEST(CliStdinConfig, ConfigAndEventsBothFromStdinIsAUsageError) {
  for (const std::string args : {"replay -c -", "replay -c - -", "explain -c - - t-1"}) {
    const auto run = RunTriaged(args + " < " + kRules);
    EXPECT_EQ(run.exit_code, 64) << args << ": " << run.err;
    EXPECT_THAT(run.err, HasSubstr("-c - reads the config from stdin; name the event files"))
        << args;
    EXPECT_EQ(run.out, "") << args;
  }
}

TEST(CliStdinConfig, RunRefusesToWatchAConfigReadFromStdin) {
  const auto run = RunTriaged("run --watch -c - < " + kRules);
  EXPECT_EQ(run.exit_code, 64) << run.err;
  EXPECT_THAT(run.err, HasSubstr("--watch watches the config file"));
}

// Every routed item of the example corpus, validated against schemas/routed_item.v1.json.
TEST(CliReplay, OutputValidatesAgainstTheSchema) {
  const auto run = RunTriaged("replay -c " + kRules + " " + kEvents);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  rapidjson::Document schema_doc;
  schema_doc.Parse(ReadFile(SourcePath("schemas/routed_item.v1.json")).c_str());
  ASSERT_FALSE(schema_doc.HasParseError());
  rapidjson::SchemaDocument schema(schema_doc);
  const auto lines = Lines(run.out);
  ASSERT_GE(lines.size(), 5u);
  std::set<std::string> ids;
  for (const std::string& line : lines) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    ASSERT_FALSE(doc.HasParseError()) << line;
    rapidjson::SchemaValidator validator(schema);
    EXPECT_TRUE(doc.Accept(validator))
        << "invalid at " << validator.GetInvalidSchemaKeyword() << ": " << line;
    EXPECT_TRUE(ids.insert(doc["id"].GetString()).second) << "duplicate id: " << line;
  }
}

// A reviewer's LangSmith correction reaches the routed item: the review summary, the feedback
// entry and the dataset row's columns, all valid against the shipped schema.
TEST(CliReplay, AHumanCorrectionIsAnnotatedWithItsExpectedOutput) {
  TempDir dir;
  const std::string rules = dir.Write("rules.yaml", R"(schema_version: 1
destinations:
  review: {kind: queue, topic: annotations.review}
  golden: {kind: dataset, topic: datasets.golden}
rules:
  - name: corrected
    when: feedback.correctness.score == 0
    route_to: [review, golden]
)");
  const std::string events = dir.Write(
      "events.jsonl",
      R"({"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736","span_id":"00f067aa0ba902b7","name":"chat",)"
      R"("start_time_unix_nano":1793527200000000000,"end_time_unix_nano":1793527201000000000,)"
      R"("input":"Where is order 10442?","output":"It was cancelled."})"
      "\n"
      R"({"id":"2a0e4f9c-1d8b-4b3e-9a6f-7c5d3e1b0a92","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",)"
      R"("run_id":"00f067aa0ba902b7","key":"correctness","score":0,"value":"wrong",)"
      R"("comment":"the order ships tomorrow","correction":{"output":"Order 10442 ships tomorrow."},)"
      R"("feedback_source":{"type":"app","user_id":"5f1c9a7e","user_name":"Dana"},)"
      R"("created_at":"2026-11-01T10:00:05"})"
      "\n");
  const auto run = RunTriaged("replay -q -c " + rules + " " + events);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  rapidjson::Document schema_doc;
  schema_doc.Parse(ReadFile(SourcePath("schemas/routed_item.v1.json")).c_str());
  ASSERT_FALSE(schema_doc.HasParseError());
  rapidjson::SchemaDocument schema(schema_doc);
  const auto lines = Lines(run.out);
  ASSERT_EQ(lines.size(), 2u) << run.out;
  std::set<std::string> kinds;
  for (const std::string& line : lines) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    ASSERT_TRUE(doc.IsObject()) << line;
    rapidjson::SchemaValidator validator(schema);
    EXPECT_TRUE(doc.Accept(validator))
        << "invalid at " << validator.GetInvalidSchemaKeyword() << ": " << line;
    const auto& summary = doc["annotation"];
    EXPECT_STREQ(summary["status"].GetString(), "annotated") << line;
    EXPECT_STREQ(summary["expected_output"].GetString(), "Order 10442 ships tomorrow.") << line;
    EXPECT_STREQ(summary["label"].GetString(), "wrong") << line;
    EXPECT_STREQ(summary["explanation"].GetString(), "the order ships tomorrow") << line;
    const auto& fb = doc["feedback"][0];
    EXPECT_STREQ(fb["id"].GetString(), "2a0e4f9c-1d8b-4b3e-9a6f-7c5d3e1b0a92") << line;
    EXPECT_STREQ(fb["annotator"]["user_name"].GetString(), "Dana") << line;
    EXPECT_STREQ(fb["expected_output"].GetString(), "Order 10442 ships tomorrow.") << line;
    const std::string kind = doc["kind"].GetString();
    kinds.insert(kind);
    if (kind == "dataset") {
      EXPECT_STREQ(doc["input"].GetString(), "Where is order 10442?") << line;
      EXPECT_STREQ(doc["output"].GetString(), "It was cancelled.") << line;
      EXPECT_STREQ(doc["expected_output"].GetString(), "Order 10442 ships tomorrow.") << line;
      EXPECT_STREQ(doc["annotation_status"].GetString(), "annotated") << line;
      EXPECT_STREQ(doc["feedback_category"].GetString(), "wrong") << line;
    } else {
      EXPECT_FALSE(doc.HasMember("annotation_status")) << line;
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"queue", "dataset"}));
}

TEST(CliReplay, IsDeterministic) {
  const auto a = RunTriaged("replay -q -c " + kRules + " " + kEvents);
  const auto b = RunTriaged("replay -q -c " + kRules + " - < " + kEvents);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_TRUE(a.err.empty()) << a.err;
}

// (trace, rule, destination, trigger) of routed items.
using RouteSet = std::multiset<std::tuple<std::string, std::string, std::string, std::string>>;

// The routes of replay's output, one routed item a line.
RouteSet RoutesOf(const std::string& out) {
  RouteSet got;
  for (const std::string& line : Lines(out)) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    EXPECT_TRUE(doc.IsObject()) << line;
    if (!doc.IsObject()) continue;
    got.emplace(doc["trace_id"].GetString(), doc["rule"].GetString(),
                doc["destination"].GetString(), doc["trigger"].GetString());
  }
  return got;
}

// The exact routes the example rules imply for the example corpus.
const RouteSet kExampleRoutes =
#include "tests/tools/example_routes.inc"
    ;

TEST(CliReplay, RoutesExactlyTheExpectedSet) {
  const auto run = RunTriaged("replay -q -c " + kRules + " " + kEvents);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(RoutesOf(run.out), kExampleRoutes);
}

// Spans with impossible times are dead-lettered as invalid_value and do not move replay's
// event-time clock: the example corpus routes exactly as it does without them.
TEST(CliReplay, ImpossibleTimesAreInvalidAndDoNotMoveTheClock) {
  const std::vector<std::string> events = Lines(ReadFile(kEvents));
  ASSERT_GT(events.size(), 4u);
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i == 3) {
      text += R"({"trace_id":"f00d","span_id":"a1","name":"far future",)"
              R"("start_time_unix_nano":9223372036854775806,)"
              R"("end_time_unix_nano":9223372036854775807})"
              "\n";
      text += R"({"trace_id":"f00e","span_id":"a2","name":"backwards",)"
              R"("start_time":"2024-05-01T12:00:05Z","end_time":"2024-05-01T12:00:00Z"})"
              "\n";
      text += R"({"trace_id":"f00f","name":"thumbs","score":0,)"
              R"("timestamp":"2250-01-01T00:00:00Z"})"
              "\n";
    }
    text += events[i] + "\n";
  }
  TempDir dir;
  const std::string input = dir.Write("events.jsonl", text);
  const std::string dlq = dir.path() + "/dlq.jsonl";
  const auto run = RunTriaged("replay -c " + kRules + " " + input + " --dead-letter " + dlq);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(RoutesOf(run.out), kExampleRoutes);
  std::multiset<std::string> messages;
  for (const std::string& r : Lines(ReadFile(dlq))) {
    rapidjson::Document doc;
    doc.Parse(r.c_str());
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("reason") && doc["reason"].IsString()) << r;
    if (std::string(doc["reason"].GetString()) == "invalid_value") {
      messages.insert(doc["message"].GetString());
    }
  }
  // The corpus's own invalid value, and the three lines added.
  EXPECT_EQ(messages, (std::multiset<std::string>{
                          "thumbs must be \"up\" or \"down\"", "end_time is before start_time",
                          "start_time_unix_nano is not between 2000-01-01 and 2200-01-01",
                          "timestamp is not between 2000-01-01 and 2200-01-01"}));
  EXPECT_THAT(run.err, HasSubstr("invalid_value: 4"));
}

TEST(CliReplay, DeadLettersEveryMalformedLineAndKeepsGoing) {
  TempDir dir;
  const std::string dlq = dir.path() + "/dlq.jsonl";
  const auto run = RunTriaged("replay -c " + kRules + " " + kEvents + " --dead-letter " + dlq);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto records = Lines(ReadFile(dlq));
  EXPECT_EQ(records.size(), 7u);
  std::multiset<std::string> reasons;
  for (const std::string& r : records) {
    rapidjson::Document doc;
    doc.Parse(r.c_str());
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("reason") && doc["reason"].IsString()) << r;
    ASSERT_TRUE(doc.HasMember("line")) << r;
    ASSERT_TRUE(doc.HasMember("payload") || doc.HasMember("payload_base64")) << r;
    reasons.insert(doc["reason"].GetString());
  }
  EXPECT_EQ(reasons.count("invalid_json"), 2u);
  // The Phoenix annotation naming only its span joins the trace holding that span.
  EXPECT_EQ(reasons.count("missing_trace_id"), 1u);
  EXPECT_EQ(reasons.count("empty_payload"), 1u);
  EXPECT_THAT(run.err, HasSubstr("7 invalid"));
}

TEST(CliReplay, SummaryNamesEveryRule) {
  const auto run = RunTriaged("replay -c " + kRules + " " + kEvents);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  for (const char* rule : {"thumbs-down", "low-faithfulness", "slow", "errors"}) {
    EXPECT_THAT(run.err, HasSubstr(rule));
  }
  EXPECT_THAT(run.err, HasSubstr("sampled_out"));
}

// --summary json: the summary as one JSON line, last on stderr, with what the table shows.
TEST(CliReplay, SummaryJson) {
  const auto text = RunTriaged("replay -c " + kRules + " " + kEvents);
  const auto run = RunTriaged("replay --summary json -c " + kRules + " " + kEvents);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, text.out);  // the routed items are the same
  const std::vector<std::string> err_lines = Lines(run.err);
  ASSERT_FALSE(err_lines.empty());
  rapidjson::Document doc;
  doc.Parse(err_lines.back().c_str());
  ASSERT_FALSE(doc.HasParseError()) << err_lines.back();
  EXPECT_EQ(doc["routed_items"].GetUint64(), Lines(run.out).size());
  ASSERT_EQ(doc["rules"].Size(), 8u);
  EXPECT_EQ(std::string(doc["rules"][0]["name"].GetString()), "thumbs-down");
  uint64_t routed = 0;
  for (const auto& rule : doc["rules"].GetArray()) {
    routed += rule["routed"].GetUint64();
    // Each rule's row of the text table carries the same numbers.
    const std::string name = rule["name"].GetString();
    EXPECT_THAT(text.err,
                ::testing::ContainsRegex(name + " +" + std::to_string(rule["matched"].GetUint64()) +
                                         " +" + std::to_string(rule["sampled_out"].GetUint64()) +
                                         " +" + std::to_string(rule["rate_limited"].GetUint64()) +
                                         " +" + std::to_string(rule["routed"].GetUint64()) + "\n"));
  }
  EXPECT_EQ(routed, doc["routed_items"].GetUint64());
  const auto& inputs = doc["inputs"];
  EXPECT_EQ(inputs["lines"].GetUint64(), Lines(ReadFile(kEvents)).size());
  uint64_t by_reason = 0;
  for (const auto& m : inputs["invalid_by_reason"].GetObject()) by_reason += m.value.GetUint64();
  EXPECT_GT(inputs["invalid"].GetUint64(), 0u);
  EXPECT_EQ(by_reason, inputs["invalid"].GetUint64());
  EXPECT_EQ(doc["traces"]["opened"].GetUint64(), doc["traces"]["closed"].GetUint64());
  EXPECT_THAT(text.err, HasSubstr("traces: " + std::to_string(doc["traces"]["opened"].GetUint64()) +
                                  " opened"));
}

TEST(CliReplay, MissingInputFileFails) {
  const auto run = RunTriaged("replay -c " + kRules + " /nonexistent/events.jsonl");
  EXPECT_EQ(run.exit_code, 66);
  EXPECT_THAT(run.err, HasSubstr("/nonexistent/events.jsonl"));
}

TEST(CliTest, ExampleTestsPass) {
  const auto run =
      RunTriaged("test -c " + kRules + " " + SourcePath("config/examples/rules.tests.yaml"));
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr(" passed, 0 failed"));
}

TEST(CliTest, FailingExpectationExitsOne) {
  TempDir dir;
  const std::string tests = dir.Write("tests.yaml", R"(tests:
  - name: a thumbs-up is not routed
    events:
      - {trace_id: abc, thumbs: up}
    expect:
      routes: [{rule: thumbs-down}]
  - name: a thumbs-down is routed
    events:
      - {trace_id: abd, thumbs: down}
    expect:
      routes: [{rule: thumbs-down, destination: support-review}, {rule: thumbs-down, destination: regressions}]
      exact: true
)");
  const auto run = RunTriaged("test -c " + kRules + " " + tests);
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("test a thumbs-up is not routed ... FAILED"));
  EXPECT_THAT(run.out, HasSubstr("1 passed, 1 failed"));
}

// The same slow trace, routed by the 10% rule or not, as `sample:` pins it; `drop` leaves the
// rules that do not sample alone.
TEST(CliTest, SampleKeepAndDropPinTheSampledRules) {
  TempDir dir;
  const std::string span = R"(      - {trace_id: t-slow, span_id: a1, name: chat, status: error,
         start_time: "2026-11-01T10:00:00Z", end_time: "2026-11-01T10:00:09Z"}
)";
  const std::string tests = dir.Write(
      "tests.yaml",
      "tests:\n"
      "  - name: kept\n    sample: keep\n    events:\n" +
          span +
          "    expect:\n      routes: [{rule: slow}, {rule: errors}]\n      exact: true\n"
          "  - name: dropped\n    sample: drop\n    events:\n" +
          span +
          "    expect:\n      routes: [{rule: errors}]\n      exact: true\n"
          "  - name: kept, but expected dropped\n    sample: {slow: keep}\n    events:\n" +
          span + "    expect:\n      no_routes: [{rule: slow}]\n");
  const auto run = RunTriaged("test -c " + kRules + " " + tests);
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("test kept ... ok"));
  EXPECT_THAT(run.out, HasSubstr("test dropped ... ok"));
  EXPECT_THAT(run.out, HasSubstr("test kept, but expected dropped ... FAILED"));
  EXPECT_THAT(run.out, HasSubstr("unexpected route slow -> regressions"));
  EXPECT_THAT(run.out, HasSubstr("2 passed, 1 failed"));
}

TEST(CliTest, SampleNamingAnUnknownRuleOrValueExits78) {
  TempDir dir;
  const std::string tests = dir.Write("tests.yaml", R"(tests:
  - name: typo
    sample: {slwo: keep, slow: maybe}
    events: []
    expect: {}
)");
  const auto run = RunTriaged("test -c " + kRules + " " + tests);
  EXPECT_EQ(run.exit_code, 78) << run.out << run.err;
  EXPECT_THAT(run.err, HasSubstr(tests + ":3:14: test \"typo\": sample: unknown rule \"slwo\""));
  EXPECT_THAT(run.err, HasSubstr(tests + ":3:32: test \"typo\": sample must be keep or drop"));
}

// A test that does not say `invalid:` fails when an input is refused: an event the engine would
// dead-letter is a broken test, not a pass.
TEST(CliTest, AnUnexpectedDeadLetterFailsTheTest) {
  TempDir dir;
  const std::string tests = dir.Write("tests.yaml", R"(tests:
  - name: a span without a trace id
    events:
      - {span_id: abc, name: chat, start_time_unix_nano: 1}
      - {trace_id: t-ok, thumbs: down}
    expect:
      routes: [{rule: thumbs-down}]
  - name: the same, declared
    events:
      - {span_id: abc, name: chat, start_time_unix_nano: 1}
      - {trace_id: t-ok, thumbs: down}
    expect:
      routes: [{rule: thumbs-down}]
      invalid: 1
)");
  const auto run = RunTriaged("test -c " + kRules + " " + tests);
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_THAT(run.out, HasSubstr("test a span without a trace id ... FAILED"));
  EXPECT_THAT(run.out, HasSubstr("expected 0 invalid inputs, got 1"));
  EXPECT_THAT(run.out, HasSubstr("write `invalid: N` under expect if they are meant"));
  EXPECT_THAT(run.out, HasSubstr("test the same, declared ... ok"));
}

TEST(CliTest, MalformedTestFileExits78WithPosition) {
  TempDir dir;
  const std::string tests = dir.Write("tests.yaml", R"(tests:
  - name: typo
    events: []
    expect:
      rotues: []
)");
  const auto run = RunTriaged("test -c " + kRules + " " + tests);
  EXPECT_EQ(run.exit_code, 78);
  EXPECT_THAT(run.err, HasSubstr(tests + ":5:7: unknown key \"rotues\""));
}

TEST(CliExplain, ShowsEachRuleVerdictAndValues) {
  const auto run =
      RunTriaged("explain -c " + kRules + " " + kEvents + " 7F3A9C2E41B04D5A8E6F1C2B3D4E5F01");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("trace 7f3a9c2e41b04d5a8e6f1c2b3d4e5f01 closed"));
  EXPECT_THAT(run.out, HasSubstr("rule thumbs-down: routed -> support-review"));
  EXPECT_THAT(run.out, HasSubstr("\"down\""));
  EXPECT_THAT(run.out, HasSubstr("rule slow: no_match"));
}

// With a `filter:`, explain shows it first, and a trace it holds back is `filtered_out` for
// every rule; a rule test sees the same.
TEST(CliExplain, ShowsTheFilterAndFilteredOutRules) {
  TempDir dir;
  const std::string rules =
      dir.Write("rules.yaml",
                ReadFile(kRules) + "filter: trace.id != \"7f3a9c2e41b04d5a8e6f1c2b3d4e5f01\"\n");
  const auto run =
      RunTriaged("explain -c " + rules + " " + kEvents + " 7f3a9c2e41b04d5a8e6f1c2b3d4e5f01");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("  filter: failed, no rule sees the trace\n"
                                 "    trace.id != \"7f3a9c2e41b04d5a8e6f1c2b3d4e5f01\"\n"));
  EXPECT_THAT(run.out, HasSubstr("rule thumbs-down: filtered_out"));
  EXPECT_THAT(run.out, Not(HasSubstr("routed ->")));

  const std::string tests = dir.Write("tests.yaml", R"(tests:
  - name: filtered
    events:
      - {trace_id: 7f3a9c2e41b04d5a8e6f1c2b3d4e5f01, thumbs: down}
    expect:
      no_routes: [{rule: thumbs-down}]
  - name: passes the filter
    events:
      - {trace_id: abd, thumbs: down}
    expect:
      routes: [{rule: thumbs-down}]
)");
  const auto test = RunTriaged("test -c " + rules + " " + tests);
  EXPECT_EQ(test.exit_code, 0) << test.out << test.err;
  EXPECT_THAT(test.out, HasSubstr("2 passed, 0 failed"));
}

TEST(CliExplain, WithoutEventsAndTraceIdIsAUsageError) {
  const auto one = RunTriaged("explain -c " + kRules + " " + kEvents);
  EXPECT_EQ(one.exit_code, 64);
  EXPECT_EQ(one.err, "explain: expected EVENTS... TRACE_ID\n");
  // None at all: CLI11's missing required argument.
  EXPECT_EQ(RunTriaged("explain -c " + kRules).exit_code, 106);
}

TEST(CliTest, HelpAndVersionExitZero) {
  const auto help = RunTriaged("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("explain"));
  EXPECT_THAT(help.out, HasSubstr("schema"));
  EXPECT_EQ(RunTriaged("generate --help").exit_code, 0);
  const auto version = RunTriaged("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out, std::string(kTriagedVersion) + "\n");
}

// `triaged schema` prints schemas/config.v1.json as it is (tests/docs/config_schema_test.py
// validates the repository's configs against it).
TEST(CliTest, SchemaPrintsTheConfigSchema) {
  const auto schema = RunTriaged("schema");
  EXPECT_EQ(schema.exit_code, 0);
  EXPECT_EQ(schema.out, ReadFile(SourcePath("schemas/config.v1.json")));
  EXPECT_THAT(schema.out,
              HasSubstr("\"$schema\": \"https://json-schema.org/draft/2020-12/schema\""));
  EXPECT_EQ(schema.err, "");
}

// --log-level (or TRIAGED_LOG_LEVEL) drops the log lines below it; generate logs "generated" at
// info on its way out.
TEST(CliTest, LogLevelDropsLinesBelowIt) {
  const std::string generate = "generate --events 5 --start 2026-11-01T10:00:00Z -o -";
  EXPECT_THAT(RunTriaged(generate).err, HasSubstr("\"msg\":\"generated\""));
  const auto warn = RunTriaged("--log-level warn " + generate);
  EXPECT_EQ(warn.exit_code, 0) << warn.err;
  EXPECT_EQ(warn.err, "");
  EXPECT_FALSE(warn.out.empty());
  ::setenv("TRIAGED_LOG_LEVEL", "error", 1);
  const auto from_env = RunTriaged(generate);
  ::unsetenv("TRIAGED_LOG_LEVEL");
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_EQ(from_env.err, "");
  const auto loud = RunTriaged("--log-level loud " + generate);
  EXPECT_EQ(loud.exit_code, 64);
  EXPECT_THAT(loud.err, HasSubstr("--log-level: loud not in {trace,debug,info,warn,error}"));
}

TEST(CliExplain, UnknownTraceExitsOne) {
  const auto run = RunTriaged("explain -c " + kRules + " " + kEvents + " feedfacefeedface");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("does not occur"));
}

}  // namespace
}  // namespace triaged
