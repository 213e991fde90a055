#include "daemon/reload.h"

#include <gtest/gtest.h>

#include <string>

namespace triaged {
namespace {

const char* kBase = R"(kafka:
  bootstrap_servers: localhost:9092
  group_id: reviewers
  properties: {security.protocol: plaintext}
inputs:
  spans: {topic: llm.spans}
  feedback: {topic: llm.feedback}
trace: {decision_wait: 10s}
destinations:
  q: {kind: queue, topic: annotations.q}
dead_letter: {topic: triaged.dead-letter}
admin: {listen: 127.0.0.1:9464}
rules:
  - {name: all, when: "trace.span_count > 0", route_to: [q]}
)";

std::shared_ptr<const Config> Load(const std::string& text) {
  auto loaded = LoadConfigString(text, "rules.yaml");
  if (!loaded.ok()) {
    ADD_FAILURE() << loaded.error().front().ToString();
    return nullptr;
  }
  return *loaded;
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(ReloadTest, RulesDestinationsAndTimingsMayChange) {
  auto running = Load(kBase);
  std::string next = Replace(kBase, "decision_wait: 10s", "decision_wait: 2s");
  next = Replace(next, "annotations.q", "annotations.other");
  next = Replace(next, "trace.span_count > 0", "trace.error");
  auto changed = Load(next);
  ASSERT_TRUE(running && changed);
  EXPECT_TRUE(CheckReloadable(*running, *changed).ok());
  EXPECT_TRUE(CheckReloadable(*running, *running).ok());
}

// DESIGN §6 Reload: `annotations` may be added, changed or removed without a restart.
TEST(ReloadTest, AnnotationsMayChange) {
  auto running = Load(kBase);
  auto declared = Load(std::string(kBase) +
                       "annotations:\n  thumbs: {type: categorical, values: [up, down]}\n");
  auto changed = Load(std::string(kBase) +
                      "annotations:\n  thumbs: {type: categorical, values: [up, down, meh]}\n"
                      "  strict: true\n");
  ASSERT_TRUE(running && declared && changed);
  EXPECT_TRUE(CheckReloadable(*running, *declared).ok());
  EXPECT_TRUE(CheckReloadable(*declared, *changed).ok());
  EXPECT_TRUE(CheckReloadable(*changed, *running).ok());
  EXPECT_TRUE(changed->rules->annotations.strict);  // the new RuleSet carries them
  EXPECT_EQ(changed->rules->annotations.Find("thumbs")->values.size(), 3u);
}

struct FixedField {
  const char* from;
  const char* to;
  const char* field;
};

class ReloadRefused : public ::testing::TestWithParam<FixedField> {};

TEST_P(ReloadRefused, NamesTheFieldThatNeedsARestart) {
  auto running = Load(kBase);
  auto next = Load(Replace(kBase, GetParam().from, GetParam().to));
  ASSERT_TRUE(running && next);
  Result<void> r = CheckReloadable(*running, *next);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, std::string("restart required: ") + GetParam().field + " changed");
}

INSTANTIATE_TEST_SUITE_P(
    FixedFields, ReloadRefused,
    ::testing::Values(
        FixedField{"localhost:9092", "localhost:9093", "kafka.bootstrap_servers"},
        FixedField{"group_id: reviewers", "group_id: others", "kafka.group_id"},
        FixedField{"group_id: reviewers", "group_id: reviewers\n  guarantee: exactly_once",
                   "kafka.guarantee"},
        FixedField{"plaintext", "ssl", "kafka.properties"},
        FixedField{"topic: llm.spans}", "topic: llm.spans.v2}", "inputs.spans.topic"},
        FixedField{"topic: llm.spans}", "topic: llm.spans, format: otlp_json}",
                   "inputs.spans.format"},
        FixedField{"topic: llm.feedback}", "topic: llm.feedback.v2}", "inputs.feedback.topic"},
        FixedField{"triaged.dead-letter", "triaged.dlq", "dead_letter.topic"},
        FixedField{"127.0.0.1:9464", "127.0.0.1:9465", "admin.listen"},
        FixedField{"listen: 127.0.0.1:9464}", "listen: 127.0.0.1:9464, token_file: /t}",
                   "admin.token_file"}),
    [](const ::testing::TestParamInfo<FixedField>& p) {
      std::string name = p.param.field;
      for (char& c : name) {
        if (c == '.') c = '_';
      }
      return name;
    });

}  // namespace
}  // namespace triaged
