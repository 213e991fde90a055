#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "config/source_map.h"

namespace triaged {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// Injected environment: tests set entries here; everything else is unset.
std::map<std::string, std::string>& TestEnv() {
  static std::map<std::string, std::string> env;
  return env;
}
const char* TestGetenv(const char* name) {
  auto it = TestEnv().find(name);
  return it == TestEnv().end() ? nullptr : it->second.c_str();
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { TestEnv().clear(); }

  static std::vector<std::string> Errors(const std::string& text) {
    auto r = LoadConfigString(text, "rules.yaml", &TestGetenv);
    std::vector<std::string> out;
    if (!r.ok()) {
      for (const ConfigError& e : r.error()) out.push_back(e.ToString());
    }
    return out;
  }
  static std::shared_ptr<const Config> LoadOk(const std::string& text) {
    return Loaded(LoadConfigString(text, "rules.yaml", &TestGetenv));
  }
  // The loaded config, or null after reporting every error as a test failure.
  static std::shared_ptr<const Config> Loaded(
      const Result<std::shared_ptr<const Config>, std::vector<ConfigError>>& r) {
    if (r.ok()) return *r;
    for (const ConfigError& e : r.error()) ADD_FAILURE() << e.ToString();
    return nullptr;
  }
};

// The example of DESIGN §3, verbatim.
const char kDesignExample[] = R"(schema_version: 1
kafka:
  bootstrap_servers: ${KAFKA_BOOTSTRAP:-embedded}   # "embedded" starts the built-in broker
  group_id: triaged
  guarantee: at_least_once                          # or exactly_once
  properties: {}                                     # passed to librdkafka as-is (SASL, TLS, ...)
inputs:
  spans:    {topic: llm.spans, format: auto}
  feedback: {topic: llm.feedback}
trace:
  decision_wait: 10s
  root_grace: 2s
  max_wait: 5m
  late_feedback_window: 1h
  max_open_traces: 200000
  max_trace_bytes: 4MiB
destinations:
  support-review: {kind: queue,   topic: annotations.support-review}
  regressions:    {kind: dataset, topic: datasets.regressions}
dead_letter: {topic: triaged.dead-letter}
admin: {listen: 127.0.0.1:9464}
rules:
  - name: thumbs-down
    when: feedback.thumbs.label == "down"
    route_to: [support-review, regressions]
    priority: high
  - name: low-faithfulness
    when: feedback.faithfulness.score < 0.5 and feedback.faithfulness.source == "llm_judge"
    sample: 25%
    route_to: [support-review]
    limit: {max: 500, per: 1h}
  - name: slow
    when: trace.duration_ms > 5000
    sample: 10%
    route_to: [regressions]
  - name: errors
    when: trace.error or trace.retry_count > 0
    route_to: [support-review]
)";

// ---------------------------------------------------------------------------------------------
// SHA-256

TEST(Sha256Test, Fips180Vectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// ---------------------------------------------------------------------------------------------
// Durations and sizes

TEST(ParseTest, Durations) {
  int64_t ns = 0;
  EXPECT_TRUE(ParseDuration("250ms", ns));
  EXPECT_EQ(ns, 250 * kNanosPerMilli);
  EXPECT_TRUE(ParseDuration("10s", ns));
  EXPECT_EQ(ns, 10 * kNanosPerSecond);
  EXPECT_TRUE(ParseDuration("5m", ns));
  EXPECT_EQ(ns, 300 * kNanosPerSecond);
  EXPECT_TRUE(ParseDuration("1h", ns));
  EXPECT_EQ(ns, 3600 * kNanosPerSecond);
  EXPECT_TRUE(ParseDuration("2d", ns));
  EXPECT_EQ(ns, 2 * 86400 * kNanosPerSecond);
  EXPECT_TRUE(ParseDuration("1.5s", ns));
  EXPECT_EQ(ns, 1500 * kNanosPerMilli);
  EXPECT_TRUE(ParseDuration("1h30m", ns));
  EXPECT_EQ(ns, 5400 * kNanosPerSecond);
  EXPECT_TRUE(ParseDuration("0s", ns));
  EXPECT_EQ(ns, 0);
  for (const char* bad : {"", "10", "-1s", "10 s", "s", "1.s", "10sec", "1w", "1.5", "10S",
                          "99999999999999999999s", "200000d"}) {
    EXPECT_FALSE(ParseDuration(bad, ns)) << bad;
  }
}

TEST(ParseTest, Sizes) {
  uint64_t bytes = 0;
  EXPECT_TRUE(ParseSize("4MiB", bytes));
  EXPECT_EQ(bytes, 4u << 20);
  EXPECT_TRUE(ParseSize("512KiB", bytes));
  EXPECT_EQ(bytes, 512u << 10);
  EXPECT_TRUE(ParseSize("1GiB", bytes));
  EXPECT_EQ(bytes, 1u << 30);
  EXPECT_TRUE(ParseSize("100", bytes));
  EXPECT_EQ(bytes, 100u);
  EXPECT_TRUE(ParseSize("100B", bytes));
  EXPECT_EQ(bytes, 100u);
  for (const char* bad : {"", "-1", "4MB", "4 MiB", "MiB", "1.5MiB", "4mib", "99999999999999999999",
                          "17179869184GiB"}) {
    EXPECT_FALSE(ParseSize(bad, bytes)) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// Whole configs

TEST_F(ConfigTest, DesignExampleLoads) {
  auto config = LoadOk(kDesignExample);
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->path, "rules.yaml");
  EXPECT_EQ(config->kafka.bootstrap_servers, "embedded");
  EXPECT_EQ(config->kafka.group_id, "triaged");
  EXPECT_EQ(config->kafka.guarantee, Guarantee::kAtLeastOnce);
  EXPECT_TRUE(config->kafka.properties.empty());
  EXPECT_EQ(config->inputs.spans_topic, "llm.spans");
  EXPECT_EQ(config->inputs.spans_format, SpanShape::kAuto);
  EXPECT_EQ(config->inputs.feedback_topic, "llm.feedback");
  EXPECT_EQ(config->inputs.feedback_format, FeedbackShape::kAuto);
  EXPECT_EQ(config->dead_letter_topic, "triaged.dead-letter");
  EXPECT_EQ(config->admin_listen, "127.0.0.1:9464");

  const RuleSet& rs = *config->rules;
  EXPECT_EQ(rs.config_version, Sha256Hex(kDesignExample));
  EXPECT_EQ(rs.mode, RoutingMode::kFanOut);
  EXPECT_EQ(rs.trace.decision_wait_ns, 10 * kNanosPerSecond);
  EXPECT_EQ(rs.trace.root_grace_ns, 2 * kNanosPerSecond);
  EXPECT_EQ(rs.trace.max_wait_ns, 300 * kNanosPerSecond);
  EXPECT_EQ(rs.trace.late_feedback_window_ns, 3600 * kNanosPerSecond);
  EXPECT_EQ(rs.trace.max_open_traces, 200000u);
  EXPECT_EQ(rs.trace.max_trace_bytes, 4u * 1024 * 1024);

  ASSERT_EQ(rs.destinations.size(), 2u);
  EXPECT_EQ(rs.destinations[0].name, "support-review");
  EXPECT_EQ(rs.destinations[0].kind, DestinationKind::kQueue);
  EXPECT_EQ(rs.destinations[0].topic, "annotations.support-review");
  EXPECT_FALSE(rs.destinations[0].limit.has_value());
  EXPECT_EQ(rs.destinations[1].name, "regressions");
  EXPECT_EQ(rs.destinations[1].kind, DestinationKind::kDataset);
  EXPECT_EQ(rs.destinations[1].topic, "datasets.regressions");

  ASSERT_EQ(rs.rules.size(), 4u);
  const RuleSpec& thumbs = rs.rules[0];
  EXPECT_EQ(thumbs.name, "thumbs-down");
  EXPECT_EQ(thumbs.when_text, "feedback.thumbs.label == \"down\"");
  EXPECT_NE(thumbs.when, nullptr);
  EXPECT_THAT(thumbs.destinations, ElementsAre(0u, 1u));
  EXPECT_EQ(thumbs.priority, "high");
  EXPECT_EQ(thumbs.sample_rate, 1.0);
  EXPECT_EQ(thumbs.sample_key_text, "trace.id");
  EXPECT_EQ(thumbs.sample_key, nullptr);
  EXPECT_FALSE(thumbs.sample_salt.has_value());
  EXPECT_FALSE(thumbs.limit.has_value());

  const RuleSpec& faith = rs.rules[1];
  EXPECT_EQ(faith.name, "low-faithfulness");
  EXPECT_DOUBLE_EQ(faith.sample_rate, 0.25);
  EXPECT_THAT(faith.destinations, ElementsAre(0u));
  EXPECT_EQ(faith.priority, "normal");
  ASSERT_TRUE(faith.limit.has_value());
  EXPECT_EQ(faith.limit->max, 500u);
  EXPECT_EQ(faith.limit->per_ns, 3600 * kNanosPerSecond);

  EXPECT_EQ(rs.rules[2].name, "slow");
  EXPECT_DOUBLE_EQ(rs.rules[2].sample_rate, 0.1);
  EXPECT_THAT(rs.rules[2].destinations, ElementsAre(1u));
  EXPECT_EQ(rs.rules[3].name, "errors");
  EXPECT_EQ(rs.rules[3].when_text, "trace.error or trace.retry_count > 0");
}

TEST_F(ConfigTest, DesignExampleTakesBootstrapFromEnvironment) {
  TestEnv()["KAFKA_BOOTSTRAP"] = "kafka-1:9092,kafka-2:9092";
  auto config = LoadOk(kDesignExample);
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->kafka.bootstrap_servers, "kafka-1:9092,kafka-2:9092");
  // The version is the hash of the file as written, not as expanded.
  EXPECT_EQ(config->rules->config_version, Sha256Hex(kDesignExample));
}

TEST_F(ConfigTest, EmptyConfigGivesDefaults) {
  for (const char* text : {"", "# nothing here\n", "schema_version: 1\n"}) {
    auto config = LoadOk(text);
    ASSERT_NE(config, nullptr) << text;
    EXPECT_EQ(config->kafka.bootstrap_servers, "embedded");
    EXPECT_EQ(config->kafka.group_id, "triaged");
    EXPECT_EQ(config->kafka.guarantee, Guarantee::kAtLeastOnce);
    EXPECT_EQ(config->inputs.spans_topic, "llm.spans");
    EXPECT_EQ(config->inputs.feedback_topic, "llm.feedback");
    EXPECT_EQ(config->dead_letter_topic, "triaged.dead-letter");
    EXPECT_EQ(config->admin_listen, "127.0.0.1:9464");
    const RuleSet& rs = *config->rules;
    EXPECT_EQ(rs.mode, RoutingMode::kFanOut);
    EXPECT_EQ(rs.trace.decision_wait_ns, 10 * kNanosPerSecond);
    EXPECT_EQ(rs.trace.max_open_traces, 200000u);
    EXPECT_TRUE(rs.rules.empty());
    EXPECT_TRUE(rs.destinations.empty());
    EXPECT_EQ(rs.config_version, Sha256Hex(text));
  }
}

TEST_F(ConfigTest, RuleDefaults) {
  auto config = LoadOk(R"(destinations:
  q: {kind: queue, topic: t}
rules:
  - name: r
    when: trace.error
    route_to: [q]
)");
  ASSERT_NE(config, nullptr);
  const RuleSpec& r = config->rules->rules.at(0);
  EXPECT_EQ(r.priority, "normal");
  EXPECT_EQ(r.sample_rate, 1.0);
  EXPECT_EQ(r.sample_key_text, "trace.id");
  EXPECT_EQ(r.sample_key, nullptr);
  EXPECT_FALSE(r.sample_salt.has_value());
  EXPECT_FALSE(r.limit.has_value());
}

TEST_F(ConfigTest, AllOptionalFields) {
  auto config = LoadOk(R"(mode: first_match
kafka:
  guarantee: exactly_once
  properties:
    security.protocol: SASL_SSL
    enable.idempotence: true
    queue.buffering.max.ms: 5
inputs:
  spans: {topic: s, format: otlp_json}
  feedback: {topic: f, format: langfuse}
admin: {listen: "[::1]:0"}
destinations:
  q:
    kind: queue
    topic: annotations.q
    limit: {max: 100, per: 1m}
rules:
  - name: sess.sample_1
    description: Review whole sessions.
    when: trace.error
    route_to: [q]
    priority: urgent
    sample: 0.05
    sample_key: trace.session_id
    sample_salt: sessions
    limit:
      max: 10
      per: 250ms
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->kafka.guarantee, Guarantee::kExactlyOnce);
  EXPECT_EQ(config->kafka.properties.at("security.protocol"), "SASL_SSL");
  EXPECT_EQ(config->kafka.properties.at("enable.idempotence"), "true");
  EXPECT_EQ(config->kafka.properties.at("queue.buffering.max.ms"), "5");
  EXPECT_EQ(config->inputs.spans_format, SpanShape::kOtlpJson);
  EXPECT_EQ(config->inputs.feedback_format, FeedbackShape::kLangfuse);
  EXPECT_EQ(config->admin_listen, "[::1]:0");
  const RuleSet& rs = *config->rules;
  EXPECT_EQ(rs.mode, RoutingMode::kFirstMatch);
  ASSERT_TRUE(rs.destinations.at(0).limit.has_value());
  EXPECT_EQ(rs.destinations[0].limit->max, 100u);
  EXPECT_EQ(rs.destinations[0].limit->per_ns, 60 * kNanosPerSecond);
  const RuleSpec& r = rs.rules.at(0);
  EXPECT_EQ(r.name, "sess.sample_1");
  EXPECT_EQ(r.priority, "urgent");
  EXPECT_DOUBLE_EQ(r.sample_rate, 0.05);
  EXPECT_EQ(r.sample_key_text, "trace.session_id");
  EXPECT_NE(r.sample_key, nullptr);
  EXPECT_EQ(r.sample_salt, "sessions");
  ASSERT_TRUE(r.limit.has_value());
  EXPECT_EQ(r.limit->max, 10u);
  EXPECT_EQ(r.limit->per_ns, 250 * kNanosPerMilli);
}

TEST_F(ConfigTest, Modes) {
  EXPECT_EQ(LoadOk("mode: fan_out\n")->rules->mode, RoutingMode::kFanOut);
  EXPECT_EQ(LoadOk("mode: first_match\n")->rules->mode, RoutingMode::kFirstMatch);
  EXPECT_THAT(Errors("mode: first-match\n"),
              ElementsAre("rules.yaml:1:7: mode must be one of fan_out, first_match, got "
                          "\"first-match\" (did you mean \"first_match\"?)"));
}

TEST_F(ConfigTest, InputFormats) {
  const std::pair<const char*, SpanShape> spans[] = {{"auto", SpanShape::kAuto},
                                                     {"native", SpanShape::kNative},
                                                     {"otlp_json", SpanShape::kOtlpJson},
                                                     {"otlp_proto", SpanShape::kOtlpProto}};
  for (const auto& [name, shape] : spans) {
    auto config = LoadOk(std::string("inputs: {spans: {format: ") + name + "}}\n");
    ASSERT_NE(config, nullptr);
    EXPECT_EQ(config->inputs.spans_format, shape) << name;
    EXPECT_EQ(config->inputs.spans_topic, "llm.spans");
  }
  const std::pair<const char*, FeedbackShape> feedback[] = {
      {"auto", FeedbackShape::kAuto},           {"native", FeedbackShape::kNative},
      {"phoenix", FeedbackShape::kPhoenix},     {"langfuse", FeedbackShape::kLangfuse},
      {"langsmith", FeedbackShape::kLangSmith}, {"otel_genai", FeedbackShape::kOtelGenAi},
      {"thumbs", FeedbackShape::kThumbs}};
  for (const auto& [name, shape] : feedback) {
    auto config = LoadOk(std::string("inputs: {feedback: {format: ") + name + "}}\n");
    ASSERT_NE(config, nullptr);
    EXPECT_EQ(config->inputs.feedback_format, shape) << name;
  }
  EXPECT_THAT(Errors("inputs:\n  spans: {format: otlp}\n"),
              ElementsAre("rules.yaml:2:19: inputs.spans.format must be one of auto, native, "
                          "otlp_json, otlp_proto, got \"otlp\""));
  EXPECT_THAT(Errors("inputs:\n  feedback:\n    format: phoenix_json\n"),
              ElementsAre(StartsWith("rules.yaml:3:13: inputs.feedback.format must be one of "
                                     "auto, native, phoenix,")));
}

TEST_F(ConfigTest, Repartition) {
  auto defaults = LoadOk("kafka: {group_id: team-a}\n");
  ASSERT_NE(defaults, nullptr);
  EXPECT_EQ(defaults->inputs.repartition, Repartition::kAuto);
  EXPECT_EQ(defaults->inputs.repartition_partitions, 0);
  EXPECT_EQ(defaults->inputs.repartition_topic, "team-a.repartition");
  const std::pair<const char*, Repartition> modes[] = {{"auto", Repartition::kAuto},
                                                       {"always", Repartition::kAlways},
                                                       {"never", Repartition::kNever}};
  for (const auto& [name, mode] : modes) {
    auto config =
        LoadOk(std::string("inputs: {repartition: ") + name + ", repartition_partitions: 12}\n");
    ASSERT_NE(config, nullptr);
    EXPECT_EQ(config->inputs.repartition, mode) << name;
    EXPECT_EQ(config->inputs.repartition_partitions, 12);
  }
  EXPECT_THAT(Errors("inputs:\n  repartition: sometimes\n"),
              ElementsAre("rules.yaml:2:16: inputs.repartition must be one of auto, always, "
                          "never, got \"sometimes\""));
  EXPECT_THAT(Errors("inputs:\n  repartition_partitions: 0\n"),
              ElementsAre(StartsWith("rules.yaml:2:27: inputs.repartition_partitions must be a "
                                     "positive integer")));
  EXPECT_THAT(Errors("inputs:\n  repartitions: always\n"),
              ElementsAre(HasSubstr("(did you mean \"inputs.repartition\"?)")));
}

TEST_F(ConfigTest, ThreadsDefaultToTheCoresAndAreBounded) {
  auto defaults = LoadOk("kafka: {group_id: team-a}\n");
  ASSERT_NE(defaults, nullptr);
  EXPECT_EQ(defaults->threads, 0);  // one fewer than the cores available
  auto four = LoadOk("threads: 4\n");
  ASSERT_NE(four, nullptr);
  EXPECT_EQ(four->threads, 4);
  EXPECT_THAT(Errors("kafka: {group_id: a}\nthreads: -1\n"),
              ElementsAre("rules.yaml:2:10: threads must be a non-negative integer, got \"-1\""));
  EXPECT_THAT(Errors("threads: 257\n"),
              ElementsAre("rules.yaml:1:10: threads must be at most 256"));
  EXPECT_THAT(Errors("thread: 2\n"), ElementsAre(HasSubstr("(did you mean \"threads\"?)")));
}

// ---------------------------------------------------------------------------------------------
// Environment expansion

TEST_F(ConfigTest, EnvSetUnsetDefaultAndDollar) {
  TestEnv()["GROUP"] = "team-a";
  TestEnv()["EMPTY"] = "";
  auto config = LoadOk(R"(kafka:
  group_id: ${GROUP}
  bootstrap_servers: ${BROKERS:-localhost:9092}
  properties:
    sasl.password: "pa$$word"
    client.id: ${EMPTY:-fallback}
    client.rack: x${GROUP}y
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->kafka.group_id, "team-a");
  EXPECT_EQ(config->kafka.bootstrap_servers, "localhost:9092");
  EXPECT_EQ(config->kafka.properties.at("sasl.password"), "pa$word");
  EXPECT_EQ(config->kafka.properties.at("client.id"), "fallback");
  EXPECT_EQ(config->kafka.properties.at("client.rack"), "xteam-ay");
}

// The shell's other forms: `-` without `:` keeps an empty value; `?` fails with the message.
TEST_F(ConfigTest, EnvDefaultWithoutColonAndRequiredWithMessage) {
  TestEnv()["GROUP"] = "team-a";
  TestEnv()["EMPTY"] = "";
  auto config = LoadOk(R"(kafka:
  group_id: ${GROUP:?set GROUP to the team's consumer group}
  bootstrap_servers: ${BROKERS-localhost:9092}
  properties:
    client.id: x${EMPTY-fallback}y
    client.rack: ${GROUP?}
)");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->kafka.group_id, "team-a");
  EXPECT_EQ(config->kafka.bootstrap_servers, "localhost:9092");
  EXPECT_EQ(config->kafka.properties.at("client.id"), "xy");
  EXPECT_EQ(config->kafka.properties.at("client.rack"), "team-a");

  EXPECT_THAT(Errors("kafka:\n  group_id: g-${TEAM:?set TEAM to the team's name}\n"),
              ElementsAre("rules.yaml:2:15: environment variable TEAM is not set: set TEAM to "
                          "the team's name"));
  EXPECT_THAT(Errors("kafka:\n  group_id: g-${EMPTY:?needed}\n"),
              ElementsAre("rules.yaml:2:15: environment variable EMPTY is empty: needed"));
  EXPECT_THAT(Errors("kafka:\n  group_id: g-${TEAM?}\n"),
              ElementsAre("rules.yaml:2:15: environment variable TEAM is not set"));
  // Without `:`, an empty value is a value.
  EXPECT_THAT(Errors("kafka:\n  group_id: g${EMPTY?needed}\n"), ElementsAre());
  EXPECT_THAT(Errors("kafka:\n  group_id: g-${TEAM:}\n"),
              ElementsAre(StartsWith("rules.yaml:2:15: malformed environment reference")));
}

TEST_F(ConfigTest, EnvUnsetIsAnErrorAtItsPosition) {
  EXPECT_THAT(Errors("kafka:\n  group_id: g-${TEAM}\n"),
              ElementsAre("rules.yaml:2:15: environment variable TEAM is not set"));
}

TEST_F(ConfigTest, EnvMalformedReference) {
  EXPECT_THAT(Errors("kafka:\n  group_id: ${TEAM\n"),
              ElementsAre(StartsWith("rules.yaml:2:13: malformed environment reference")));
}

TEST_F(ConfigTest, EnvInCommentsIsNotExpanded) {
  EXPECT_NE(LoadOk("kafka:  # set ${NOT_SET} to override\n  group_id: g\n"), nullptr);
}

TEST_F(ConfigTest, ErrorsAfterExpansionPointAtTheOriginalColumn) {
  TestEnv()["LONG"] = "a-much-longer-value-than-the-reference";
  // The unknown key sits after an expansion on the same line; its column is that of the
  // original text.
  EXPECT_THAT(Errors("kafka: {group_id: ${LONG}, gruop_id: x}\n"),
              ElementsAre("rules.yaml:1:28: unknown key \"kafka.gruop_id\" (did you mean "
                          "\"kafka.group_id\"?)"));
  // A bad value produced by an expansion is reported at the `${`.
  TestEnv()["WAIT"] = "10";
  EXPECT_THAT(Errors("trace:\n  decision_wait: ${WAIT}\n"),
              ElementsAre("rules.yaml:2:18: trace.decision_wait: duration needs a unit (ms, s, "
                          "m, h or d), got \"10\""));
}

// ---------------------------------------------------------------------------------------------
// Unknown keys

TEST_F(ConfigTest, UnknownTopLevelKey) {
  EXPECT_THAT(Errors("schema_version: 1\nkafak:\n  group_id: x\n"),
              ElementsAre("rules.yaml:2:1: unknown key \"kafak\" (did you mean \"kafka\"?)"));
}

TEST_F(ConfigTest, UnknownNestedKey) {
  EXPECT_THAT(Errors("trace:\n  decision_wait: 10s\n  decison_wait: 5s\n"),
              ElementsAre("rules.yaml:3:3: unknown key \"trace.decison_wait\" (did you "
                          "mean \"trace.decision_wait\"?)"));
  EXPECT_THAT(Errors("inputs:\n  spans: {topic: a, fromat: auto}\n"),
              ElementsAre("rules.yaml:2:21: unknown key \"inputs.spans.fromat\" "
                          "(did you mean \"inputs.spans.format\"?)"));
}

TEST_F(ConfigTest, UnknownKeyWithoutSuggestionListsTheValidOnes) {
  EXPECT_THAT(Errors("admin:\n  port: 80\n"),
              ElementsAre("rules.yaml:2:3: unknown key \"admin.port\" (expected one of: "
                          "listen, token_file)"));
}

TEST_F(ConfigTest, TypoInRuleField) {
  EXPECT_THAT(Errors(R"(destinations:
  q: {kind: queue, topic: t}
rules:
  - name: r1
    wehn: trace.error
    route_to: [q]
)"),
              ElementsAre("rules.yaml:4:5: rule \"r1\": missing required key \"when\"",
                          "rules.yaml:5:5: rule \"r1\": unknown key \"wehn\" (did you mean "
                          "\"when\"?)"));
}

TEST_F(ConfigTest, SuggestionsReachTwoEditsAndNoFurther) {
  EXPECT_THAT(Errors("trace:\n  max_open_tarces_: 5\n"),
              ElementsAre("rules.yaml:2:3: unknown key \"trace.max_open_tarces_\" (did you "
                          "mean \"trace.max_open_traces\"?)"));
  EXPECT_THAT(Errors("trace:\n  max_open_traces___: 5\n"),
              ElementsAre(StartsWith("rules.yaml:2:3: unknown key \"trace.max_open_traces___\" "
                                     "(expected one of: ")));
}

// Runs `body` in a child process that may map at most `headroom` more bytes than the test has
// now; the child's exit code is the answer (0 for success), so a bad_alloc, a crash or a wrong
// result fails the test with the child's stderr.
template <typename F>
[[noreturn]] void ExitWithBoundedMemory(size_t headroom, F body) {
  size_t pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t limit = static_cast<rlim_t>(pages) * 4096 + headroom;
  const rlimit rl{limit, limit};
  setrlimit(RLIMIT_AS, &rl);
  std::exit(body());
}

template <typename F>
void InBoundedMemory(size_t headroom, F body) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "an address-space limit does not work with AddressSanitizer";
#endif
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(ExitWithBoundedMemory(headroom, body), ::testing::ExitedWithCode(0), "");
}

TEST_F(ConfigTest, HugeUnknownKeyIsReportedQuicklyInBoundedMemory) {
  // A 5 MB key: "did you mean" must not build an edit-distance table of it, and the message
  // must not carry it whole.
  InBoundedMemory(size_t{256} << 20, [] {
    const std::string key(5'000'000, 'x');
    const auto start = std::chrono::steady_clock::now();
    // An explicit key (`? KEY`): yaml-cpp refuses implicit keys past 1024 bytes itself.
    const std::vector<std::string> errors = Errors("? " + key + "\n: 1\n");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string want = "rules.yaml:1:3: unknown key \"" + std::string(64, 'x') +
                             "...\" (5000000 bytes) (expected one of: schema_version, kafka, "
                             "inputs, trace, destinations, annotations, dead_letter, "
                             "admin, threads, mode, max_item_bytes, filter, rules)";
    if (errors.size() != 1 || errors[0] != want) {
      for (const std::string& e : errors) std::fprintf(stderr, "%.300s\n", e.c_str());
      return 1;
    }
    std::fprintf(stderr, "reported in %.3f s\n", seconds);
    return seconds < 5 ? 0 : 2;
  });
}

TEST_F(ConfigTest, DuplicateKey) {
  EXPECT_THAT(Errors("kafka:\n  group_id: a\n  group_id: b\n"),
              ElementsAre("rules.yaml:3:3: duplicate key \"kafka.group_id\""));
}

// ---------------------------------------------------------------------------------------------
// Expressions: errors point into the expression text

const char kDest[] = "destinations:\n  q: {kind: queue, topic: t}\nrules:\n";

TEST_F(ConfigTest, ExpressionErrorInPlainScalar) {
  auto errors = Errors(std::string(kDest) +
                       "  - name: slow\n"
                       "    when: trace.error or trace.duraton_ms > 5000\n"
                       "    route_to: [q]\n");
  ASSERT_EQ(errors.size(), 1u);
  // `when: ` starts at column 5; the value at 11; `trace.duraton_ms` at offset 15.
  EXPECT_THAT(errors[0], StartsWith("rules.yaml:5:26: rule \"slow\": "));
  EXPECT_THAT(errors[0], HasSubstr("duraton_ms"));
}

TEST_F(ConfigTest, FilterIsABooleanExpressionSeenBeforeEveryRule) {
  auto config = LoadOk(std::string("filter: trace.resource[\"env\"] == \"prod\"\n") + kDest +
                       "  - {name: r, when: trace.error, route_to: [q]}\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->rules->filter_text, "trace.resource[\"env\"] == \"prod\"");
  EXPECT_NE(config->rules->filter, nullptr);
  EXPECT_EQ(LoadOk(kDest)->rules->filter, nullptr);

  // Errors point into the filter's text, as in `when`; a filter may come after the rules.
  auto errors = Errors(std::string(kDest) + "  - {name: r, when: trace.error, route_to: [q]}\n" +
                       "filter: trace.error and trace.nope\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], StartsWith("rules.yaml:5:25: filter: "));
  EXPECT_THAT(errors[0], HasSubstr("trace.nope"));
  EXPECT_THAT(Errors("filter: trace.name\n"), ElementsAre(StartsWith("rules.yaml:1:9: filter: ")));
  EXPECT_THAT(Errors("filter: \"\"\n"), ElementsAre(StartsWith("rules.yaml:1:9: filter ")));
}

// Warnings: the config loads, with what is likely a mistake listed in file order. Of two names
// each read once and within two edits, either may be the typo: both are named.
TEST_F(ConfigTest, WarningsForUnusedDestinationsAndFeedbackNamesLikeAnother) {
  const auto warnings = [](const std::string& text) {
    std::vector<std::string> out;
    auto config = Loaded(LoadConfigString(text, "rules.yaml", &TestGetenv));
    if (config == nullptr) return out;
    for (const ConfigError& w : config->warnings) {
      EXPECT_TRUE(w.warning);
      out.push_back(w.ToString());
    }
    return out;
  };
  const std::string dests =
      "destinations:\n  q: {kind: queue, topic: t}\n  spare: {kind: queue, topic: s}\n";
  EXPECT_THAT(warnings(dests + "rules:\n"
                               "  - {name: a, when: feedback.thumbs.label == \"down\", route_to: "
                               "[q]}\n"
                               "  - {name: b, when: feedback.thumb.score < 1, route_to: [q]}\n"),
              ElementsAre("rules.yaml:3:3: warning: destination \"spare\" is not used by any rule",
                          "rules.yaml:5:30: warning: feedback \"thumbs\" is read only here; did "
                          "you mean \"thumb\"? (an `annotations:` section makes an undeclared name "
                          "an error)",
                          "rules.yaml:6:30: warning: feedback \"thumb\" is read only here; did you "
                          "mean \"thumbs\"? (an `annotations:` section makes an undeclared name an "
                          "error)"));
  // A name read twice, or one like no other, is no warning; neither is a used destination.
  EXPECT_THAT(warnings(dests + "rules:\n"
                               "  - {name: a, when: feedback.thumb.label == \"down\", route_to: "
                               "[q, spare]}\n"
                               "  - {name: b, when: feedback.thumb.score < 1 or "
                               "feedback.faithfulness.score < 0.5, route_to: [q]}\n"),
              IsEmpty());
  // With `annotations:` an undeclared name is an error instead, and no warning is needed.
  EXPECT_THAT(warnings("annotations:\n  thumbs: {type: categorical, values: [up, down]}\n"
                       "  thumb: {type: score}\n" +
                       dests +
                       "rules:\n"
                       "  - {name: a, when: feedback.thumbs.label == \"down\", route_to: [q, "
                       "spare]}\n"
                       "  - {name: b, when: feedback.thumb.score < 1, route_to: [q]}\n"),
              IsEmpty());
  // A config with an error reports the error only.
  EXPECT_THAT(Errors(dests + "mode: first-match\n"), ElementsAre(HasSubstr("mode must be one of")));
}

TEST_F(ConfigTest, ExpressionErrorInQuotedScalars) {
  auto single = Errors(std::string(kDest) +
                       "  - name: q1\n"
                       "    when: 'trace.name == ''x'' or trace.nope'\n"
                       "    route_to: [q]\n");
  ASSERT_EQ(single.size(), 1u);
  // Value `trace.name == 'x' or trace.nope`: offset 21; the source has an opening quote and two
  // doubled quotes before it: column 11 + 1 + 21 + 2 = 35.
  EXPECT_THAT(single[0], StartsWith("rules.yaml:5:35: rule \"q1\": "));
  EXPECT_THAT(single[0], HasSubstr("trace.nope"));

  auto dbl = Errors(std::string(kDest) +
                    "  - name: q2\n"
                    "    when: \"trace.name == \\\"a\\tb\\\" or trace.nope\"\n"
                    "    route_to: [q]\n");
  ASSERT_EQ(dbl.size(), 1u);
  // Source: "trace.name == \"a\tb\" or trace.nope" -- three escapes, each one byte longer in
  // the source than in the value. Value offset 23 -> column 11 + 1 + 23 + 3 = 38.
  EXPECT_THAT(dbl[0], StartsWith("rules.yaml:5:38: rule \"q2\": "));
  EXPECT_THAT(dbl[0], HasSubstr("trace.nope"));
}

TEST_F(ConfigTest, ExpressionErrorInBlockScalars) {
  auto literal = Errors(std::string(kDest) +
                        "  - name: b1\n"
                        "    when: |\n"
                        "      trace.error\n"
                        "        or trace.nope > 1\n"
                        "    route_to: [q]\n");
  ASSERT_EQ(literal.size(), 1u);
  EXPECT_THAT(literal[0], StartsWith("rules.yaml:7:12: rule \"b1\": "));
  EXPECT_THAT(literal[0], HasSubstr("trace.nope"));

  auto folded = Errors(std::string(kDest) +
                       "  - name: b2\n"
                       "    when: >-\n"
                       "      trace.error or\n"
                       "      trace.retry_count > 0 or\n"
                       "      trace.nope\n"
                       "    route_to: [q]\n");
  ASSERT_EQ(folded.size(), 1u);
  EXPECT_THAT(folded[0], StartsWith("rules.yaml:8:7: rule \"b2\": "));
  EXPECT_THAT(folded[0], HasSubstr("trace.nope"));
}

TEST_F(ConfigTest, ExpressionErrorInMultiLinePlainScalar) {
  auto errors = Errors(std::string(kDest) +
                       "  - name: m\n"
                       "    when: trace.error or\n"
                       "      trace.nope\n"
                       "    route_to: [q]\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], StartsWith("rules.yaml:6:7: rule \"m\": "));
}

TEST_F(ConfigTest, ExpressionErrorAfterEnvExpansion) {
  TestEnv()["FIELD"] = "trace.duration_ms_with_a_long_name";
  auto errors = Errors(std::string(kDest) +
                       "  - name: e\n"
                       "    when: ${FIELD} > 1 or trace.nope\n"
                       "    route_to: [q]\n");
  ASSERT_EQ(errors.size(), 1u);
  // The first failing field is the expanded one: reported at its `${`.
  EXPECT_THAT(errors[0], StartsWith("rules.yaml:5:11: rule \"e\": "));
}

TEST_F(ConfigTest, ExpressionTooLongIsAnErrorInsideIt) {
  // 100,000 terms of `trace.error or `: the token past the limit is the `trace` of term 25,000.
  std::string when;
  for (int i = 0; i < 100000; ++i) when += i == 0 ? "trace.error" : " or trace.error";
  auto errors =
      Errors(std::string(kDest) + "  - name: big\n    when: " + when + "\n    route_to: [q]\n");
  ASSERT_EQ(errors.size(), 1u);
  const size_t column = 11 + kMaxExpressionTokens / 4 * std::string(" or trace.error").size();
  EXPECT_EQ(errors[0], "rules.yaml:5:" + std::to_string(column) +
                           ": rule \"big\": expression too long (more than " +
                           std::to_string(kMaxExpressionTokens) +
                           " tokens); split it into several rules");
}

TEST_F(ConfigTest, EmptyOrMissingWhen) {
  auto empty = Errors(std::string(kDest) + "  - name: e\n    when: \"\"\n    route_to: [q]\n");
  EXPECT_THAT(empty, ElementsAre("rules.yaml:5:11: rule \"e\": when must not be empty"));
  EXPECT_THAT(Errors(std::string(kDest) + "  - name: e\n    when:\n    route_to: [q]\n"),
              ElementsAre("rules.yaml:5:5: rule \"e\": when must be a string"));
}

TEST_F(ConfigTest, BadSampleKeyExpression) {
  auto errors = Errors(std::string(kDest) +
                       "  - name: s\n"
                       "    when: trace.error\n"
                       "    sample_key: trace.sesion_id\n"
                       "    route_to: [q]\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], StartsWith("rules.yaml:6:17: rule \"s\": "));
}

// ---------------------------------------------------------------------------------------------
// Rules

TEST_F(ConfigTest, UnknownDestination) {
  EXPECT_THAT(Errors(R"(destinations:
  support-review: {kind: queue, topic: t}
  regressions: {kind: dataset, topic: d}
rules:
  - name: r
    when: trace.error
    route_to: [support-review, regresions, nowhere]
)"),
              ElementsAre("rules.yaml:7:32: rule \"r\": unknown destination \"regresions\" (did "
                          "you mean \"regressions\"?)",
                          "rules.yaml:7:44: rule \"r\": unknown destination \"nowhere\""));
}

TEST_F(ConfigTest, RouteToMustBeANonEmptyList) {
  EXPECT_THAT(Errors(std::string(kDest) + "  - {name: r, when: trace.error, route_to: []}\n"),
              ElementsAre("rules.yaml:4:44: rule \"r\": route_to must be a non-empty list of "
                          "destination names"));
  EXPECT_THAT(Errors(std::string(kDest) + "  - {name: r, when: trace.error, route_to: q}\n"),
              ElementsAre(HasSubstr("route_to must be a non-empty list")));
  EXPECT_THAT(Errors(std::string(kDest) + "  - {name: r, when: trace.error}\n"),
              ElementsAre("rules.yaml:4:5: rule \"r\": missing required key \"route_to\""));
}

TEST_F(ConfigTest, SampleRates) {
  auto rule_with = [](const std::string& sample) {
    return std::string(kDest) + "  - name: r\n    when: trace.error\n    route_to: [q]\n" +
           "    sample: " + sample + "\n";
  };
  EXPECT_DOUBLE_EQ(LoadOk(rule_with("\"10%\""))->rules->rules[0].sample_rate, 0.1);
  EXPECT_DOUBLE_EQ(LoadOk(rule_with("10%"))->rules->rules[0].sample_rate, 0.1);
  EXPECT_DOUBLE_EQ(LoadOk(rule_with("0.25"))->rules->rules[0].sample_rate, 0.25);
  EXPECT_DOUBLE_EQ(LoadOk(rule_with("0"))->rules->rules[0].sample_rate, 0.0);
  EXPECT_DOUBLE_EQ(LoadOk(rule_with("1"))->rules->rules[0].sample_rate, 1.0);
  EXPECT_DOUBLE_EQ(LoadOk(rule_with("100%"))->rules->rules[0].sample_rate, 1.0);
  EXPECT_DOUBLE_EQ(LoadOk(rule_with("0.5%"))->rules->rules[0].sample_rate, 0.005);

  EXPECT_THAT(Errors(rule_with("1.5")),
              ElementsAre("rules.yaml:7:13: rule \"r\": sample must be between 0 and 1"));
  EXPECT_THAT(Errors(rule_with("-0.1")),
              ElementsAre("rules.yaml:7:13: rule \"r\": sample must be between 0 and 1"));
  EXPECT_THAT(Errors(rule_with("\"150%\"")),
              ElementsAre("rules.yaml:7:13: rule \"r\": sample must be between 0 and 1"));
  EXPECT_THAT(Errors(rule_with("often")),
              ElementsAre(StartsWith("rules.yaml:7:13: rule \"r\": sample must be a number")));
  EXPECT_THAT(Errors(rule_with("[0.1]")),
              ElementsAre(StartsWith("rules.yaml:7:13: rule \"r\": sample must be a number")));
}

TEST_F(ConfigTest, DuplicateRuleNames) {
  EXPECT_THAT(Errors(std::string(kDest) + "  - {name: a, when: trace.error, route_to: [q]}\n"
                                          "  - {name: b, when: trace.error, route_to: [q]}\n"
                                          "  - {name: a, when: trace.error, route_to: [q]}\n"),
              ElementsAre("rules.yaml:6:12: duplicate rule name \"a\" (first defined at line 4)"));
}

TEST_F(ConfigTest, RuleNames) {
  EXPECT_THAT(Errors(std::string(kDest) + "  - {name: \"has space\", when: trace.error, "
                                          "route_to: [q]}\n"),
              ElementsAre("rules.yaml:4:12: rule #1: name must be made of letters, digits, '_', "
                          "'.' and '-', got \"has space\""));
  EXPECT_THAT(Errors(std::string(kDest) + "  - {when: trace.error, route_to: [q]}\n"),
              ElementsAre("rules.yaml:4:5: rule #1: missing required key \"name\""));
  EXPECT_THAT(Errors(std::string(kDest) + "  - just-a-string\n"),
              ElementsAre("rules.yaml:4:5: rule #1: a rule must be a mapping with name, when "
                          "and route_to"));
}

TEST_F(ConfigTest, Priorities) {
  for (const char* p : {"low", "normal", "high", "urgent", "p1", "critical"}) {
    auto config = LoadOk(std::string(kDest) +
                         "  - {name: r, when: trace.error, route_to: [q], "
                         "priority: " +
                         p + "}\n");
    ASSERT_NE(config, nullptr);
    EXPECT_EQ(config->rules->rules[0].priority, p);
  }
  EXPECT_THAT(Errors(std::string(kDest) + "  - {name: r, when: trace.error, route_to: [q], "
                                          "priority: [high]}\n"),
              ElementsAre(::testing::HasSubstr("rules.yaml:4:59: rule \"r\": priority")));
}

TEST_F(ConfigTest, LimitValidation) {
  auto rule_with = [](const std::string& limit) {
    return std::string(kDest) + "  - name: r\n    when: trace.error\n    route_to: [q]\n" +
           "    limit: " + limit + "\n";
  };
  EXPECT_THAT(Errors(rule_with("{max: 0, per: 1h}")),
              ElementsAre("rules.yaml:7:18: rule \"r\": limit.max must be a positive integer, "
                          "got \"0\""));
  EXPECT_THAT(Errors(rule_with("{max: -5, per: 1h}")),
              ElementsAre(HasSubstr("limit.max must be a positive integer")));
  EXPECT_THAT(Errors(rule_with("{max: 10, per: 0s}")),
              ElementsAre("rules.yaml:7:27: rule \"r\": limit.per must be greater than zero"));
  EXPECT_THAT(Errors(rule_with("{max: 10, per: 60}")),
              ElementsAre("rules.yaml:7:27: rule \"r\": limit.per: duration needs a unit (ms, s, "
                          "m, h or d), got \"60\""));
  EXPECT_THAT(Errors(rule_with("{max: 10}")),
              ElementsAre("rules.yaml:7:12: rule \"r\": limit: missing required key \"per\""));
  EXPECT_THAT(Errors(rule_with("{max: 10, per: 1h, burst: 5}")),
              ElementsAre("rules.yaml:7:31: rule \"r\": unknown key \"limit.burst\" (expected "
                          "one of: max, per)"));
  EXPECT_THAT(Errors(rule_with("100")),
              ElementsAre("rules.yaml:7:12: rule \"r\": limit must be a mapping"));
  // Destination limits are checked the same way.
  EXPECT_THAT(Errors("destinations:\n  q: {kind: queue, topic: t, limit: {max: 5, per: soon}}\n"),
              ElementsAre("rules.yaml:2:51: destination \"q\": limit.per must be a duration "
                          "like 250ms, 10s, 5m, 1h or 2d, got \"soon\""));
}

TEST_F(ConfigTest, Destinations) {
  EXPECT_THAT(Errors("destinations:\n  q: {topic: t}\n"),
              ElementsAre("rules.yaml:2:6: destination \"q\": missing required key \"kind\" "
                          "(queue or dataset)"));
  EXPECT_THAT(Errors("destinations:\n  q: {kind: queue}\n"),
              ElementsAre("rules.yaml:2:6: destination \"q\": missing required key \"topic\""));
  EXPECT_THAT(Errors("destinations:\n  q: {kind: stream, topic: t}\n"),
              ElementsAre("rules.yaml:2:13: destination \"q\": kind must be one of queue, "
                          "dataset, got \"stream\""));
  EXPECT_THAT(Errors("destinations:\n  - q\n"),
              ElementsAre(StartsWith("rules.yaml:2:3: destinations must be a mapping")));
}

// ---------------------------------------------------------------------------------------------
// Values of the other sections

TEST_F(ConfigTest, BadDurationsAndSizes) {
  EXPECT_THAT(Errors(R"(trace:
  decision_wait: 10
  root_grace: 2 s
  max_wait: 0s
  late_feedback_window: 0s
  max_open_traces: 0
  max_trace_bytes: 4MB
)"),
              ElementsAre("rules.yaml:2:18: trace.decision_wait: duration needs a unit (ms, s, "
                          "m, h or d), got \"10\"",
                          "rules.yaml:3:15: trace.root_grace must be a duration like 250ms, 10s, "
                          "5m, 1h or 2d, got \"2 s\"",
                          "rules.yaml:4:13: trace.max_wait must be greater than zero",
                          "rules.yaml:6:20: trace.max_open_traces must be a positive integer, "
                          "got \"0\"",
                          "rules.yaml:7:20: trace.max_trace_bytes must be a size like 4MiB, "
                          "512KiB, 1GiB or a number of bytes, got \"4MB\""));
}

TEST_F(ConfigTest, SchemaVersion) {
  EXPECT_THAT(Errors("schema_version: 2\n"),
              ElementsAre("rules.yaml:1:17: schema_version must be 1, got \"2\""));
}

TEST_F(ConfigTest, AdminListen) {
  EXPECT_THAT(Errors("admin: {listen: 9464}\n"),
              ElementsAre("rules.yaml:1:17: admin.listen must be HOST:PORT (e.g. "
                          "127.0.0.1:9464), got \"9464\""));
  EXPECT_THAT(Errors("admin: {listen: \"localhost:99999\"}\n"),
              ElementsAre(HasSubstr("admin.listen must be HOST:PORT")));
  EXPECT_NE(LoadOk("admin: {listen: 0.0.0.0:9464}\n"), nullptr);
}

TEST_F(ConfigTest, AdminTokenFile) {
  auto config = LoadOk("admin: {listen: 0.0.0.0:9464, token_file: /run/secrets/admin_token}\n");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->admin_token_file, "/run/secrets/admin_token");
  for (const char* no_token :
       {"admin: {listen: 127.0.0.1:9464}\n", "admin: {token_file: \"\"}\n"}) {
    config = LoadOk(no_token);
    ASSERT_NE(config, nullptr) << no_token;
    EXPECT_EQ(config->admin_token_file, "") << no_token;
  }
  EXPECT_THAT(Errors("admin: {token_fle: /t}\n"),
              ElementsAre(HasSubstr("did you mean \"admin.token_file\"")));
}

TEST_F(ConfigTest, WrongNodeTypesAreErrorsNotExceptions) {
  EXPECT_THAT(Errors("kafka: [a, b]\n"), ElementsAre("rules.yaml:1:8: kafka must be a mapping"));
  EXPECT_THAT(Errors("rules: {name: x}\n"), ElementsAre("rules.yaml:1:8: rules must be a list"));
  EXPECT_THAT(Errors("- a\n- b\n"), ElementsAre("rules.yaml:1:1: the config must be a mapping"));
  EXPECT_THAT(Errors("kafka:\n  group_id: {a: b}\n"),
              ElementsAre("rules.yaml:2:13: kafka.group_id must be a string"));
  EXPECT_THAT(Errors("kafka:\n  properties: {sasl: {nested: 1}}\n"),
              ElementsAre("rules.yaml:2:22: kafka.properties: value of \"sasl\" must be a "
                          "scalar"));
  EXPECT_THAT(Errors("trace: {decision_wait: [1s]}\n"),
              ElementsAre(StartsWith("rules.yaml:1:24: trace.decision_wait must be a duration")));
}

TEST_F(ConfigTest, MultipleErrorsInFileOrder) {
  auto errors = Errors(R"(destinations:
  q: {kind: queue, topic: t}
rules:
  - name: a
    when: trace.nope
    route_to: [x]
    sample: 2
  - name: b
    when: trace.error
    route_to: [q]
    priorty: high
trace:
  max_wait: forever
kafak: {}
)");
  ASSERT_EQ(errors.size(), 6u);
  EXPECT_THAT(errors[0], StartsWith("rules.yaml:5:11: rule \"a\": "));
  EXPECT_EQ(errors[1], "rules.yaml:6:16: rule \"a\": unknown destination \"x\"");
  EXPECT_EQ(errors[2], "rules.yaml:7:13: rule \"a\": sample must be between 0 and 1");
  EXPECT_EQ(errors[3],
            "rules.yaml:11:5: rule \"b\": unknown key \"priorty\" (did you mean \"priority\"?)");
  EXPECT_THAT(errors[4], StartsWith("rules.yaml:13:13: trace.max_wait must be a duration"));
  EXPECT_EQ(errors[5], "rules.yaml:14:1: unknown key \"kafak\" (did you mean \"kafka\"?)");
}

TEST_F(ConfigTest, YamlSyntaxErrorHasAPosition) {
  auto errors = Errors("kafka:\n  group_id: [a, b\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0],
              ::testing::MatchesRegex("rules\\.yaml:[0-9]+:[0-9]+: YAML syntax error: .*"));
  EXPECT_THAT(Errors("rules: {]\n"),
              ElementsAre("rules.yaml:1:9: YAML syntax error: illegal flow end"));
  EXPECT_THAT(Errors("kafka:\n\tgroup_id: a\n"),
              ElementsAre(StartsWith("rules.yaml:2:10: YAML syntax error: ")));
  EXPECT_THAT(Errors("kafka:\n  group_id: a\n bad_indent: b\n"),
              ElementsAre("rules.yaml:3:2: YAML syntax error: end of map not found"));
}

TEST_F(ConfigTest, InputsThatStallTheYamlParserAreRefusedAtTheirPlace) {
  // yaml-cpp 0.7 loops without end on these; the loader must answer, with a position.
  EXPECT_THAT(Errors("!t ,"), ElementsAre("rules.yaml:1:4: YAML syntax error: the parser cannot "
                                          "get past this point"));
  EXPECT_THAT(Errors("rules:\n  - name: a\n&x ,y\n"), ElementsAre(StartsWith("rules.yaml:")));
  EXPECT_THAT(Errors("!destinations:\n  ,support}\nrules:\n  - e:high\n"),
              ElementsAre(StartsWith("rules.yaml:2:3: YAML syntax error: ")));
}

TEST_F(ConfigTest, MultipleDocumentsAreRejected) {
  EXPECT_THAT(Errors("mode: fan_out\n---\nmode: first_match\n"),
              ElementsAre(StartsWith("rules.yaml:3:1: a config file must hold a single")));
}

TEST(ConfigErrorTest, ToString) {
  EXPECT_EQ((ConfigError{"a.yaml", 3, 7, "boom"}).ToString(), "a.yaml:3:7: boom");
  EXPECT_EQ((ConfigError{"a.yaml", 3, 0, "boom"}).ToString(), "a.yaml:3: boom");
  EXPECT_EQ((ConfigError{"a.yaml", 0, 0, "boom"}).ToString(), "a.yaml: boom");
}

// ---------------------------------------------------------------------------------------------
// Files

TEST_F(ConfigTest, MissingFile) {
  auto r = LoadConfigFile("/nonexistent/triaged.yaml", &TestGetenv);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.error().size(), 1u);
  EXPECT_EQ(r.error()[0].ToString(),
            "/nonexistent/triaged.yaml: cannot read: No such file or directory");
}

TEST_F(ConfigTest, OversizedFileIsRefused) {
  const std::string path = std::string(TRIAGED_BINARY_DIR) + "/config_test_oversized.yaml";
  {
    std::ofstream out(path, std::ios::binary);
    out << "mode: fan_out\n" << std::string(kMaxConfigBytes, '#') << "\n";
  }
  auto r = LoadConfigFile(path, &TestGetenv);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.error().size(), 1u);
  EXPECT_EQ(r.error()[0].ToString(), path + ": config file is larger than 4 MiB (4194304 bytes)");
  // A file of exactly the limit loads.
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "mode: fan_out\n" << std::string(kMaxConfigBytes - 15, '#') << "\n";
  }
  EXPECT_NE(Loaded(LoadConfigFile(path, &TestGetenv)), nullptr);
  std::remove(path.c_str());
}

TEST_F(ConfigTest, ConfigVersionIsSha256OfTheFileBytes) {
  std::string path = std::string(TRIAGED_BINARY_DIR) + "/config_test_version.yaml";
  std::string bytes = "# version test\r\nmode: first_match\r\n";
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
  }
  std::shared_ptr<const Config> config = Loaded(LoadConfigFile(path, &TestGetenv));
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->path, path);
  EXPECT_EQ(config->rules->config_version, Sha256Hex(bytes));
  EXPECT_EQ(config->rules->mode, RoutingMode::kFirstMatch);
  std::remove(path.c_str());
}

TEST_F(ConfigTest, ExampleFileLoads) {
  std::string path = std::string(TRIAGED_SOURCE_DIR) + "/config/examples/rules.yaml";
  std::shared_ptr<const Config> config = Loaded(LoadConfigFile(path, &TestGetenv));
  ASSERT_NE(config, nullptr);
  const RuleSet& rs = *config->rules;
  std::vector<std::string> names;
  for (const RuleSpec& rule : rs.rules) names.push_back(rule.name);
  EXPECT_THAT(names, ::testing::IsSupersetOf({"thumbs-down", "low-faithfulness", "slow", "errors",
                                              "tool-failures", "session-sample"}));
  EXPECT_TRUE(rs.annotations.declared);
  EXPECT_NE(rs.annotations.Find("thumbs"), nullptr);
  bool has_destination_limit = false;
  for (const DestinationSpec& d : rs.destinations) has_destination_limit |= d.limit.has_value();
  EXPECT_TRUE(has_destination_limit);
  for (const RuleSpec& rule : rs.rules) {
    if (rule.name == "session-sample") {
      EXPECT_EQ(rule.sample_key_text, "trace.session_id");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Source mapping internals

TEST(SourceMapTest, ScalarOffsets) {
  using config_internal::ScalarValueOffsetToSource;
  std::string_view src = "k: 'it''s here'\n";
  // value "it's here": offset 5 ('h') -> source offset 3 + 1 + 5 + 1.
  EXPECT_EQ(ScalarValueOffsetToSource(src, 3, "it's here", 5), 10u);
  std::string_view dq = "k: \"\\u00e9x\"\n";
  // value "\xc3\xa9x": 'x' at offset 2 -> after the 6-byte escape.
  EXPECT_EQ(ScalarValueOffsetToSource(dq, 3, "\xc3\xa9x", 2), 10u);
  std::string_view anchored = "k: &a !!str plain\n";
  EXPECT_EQ(ScalarValueOffsetToSource(anchored, 3, "plain", 2), 14u);
}

}  // namespace
}  // namespace triaged
