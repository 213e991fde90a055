// The `annotations:` section of DESIGN §1.5: what it declares, the errors in it, and the rules it
// turns into config errors, each at its FILE:LINE:COL.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace triaged {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Errors(const std::string& text) {
  auto r = LoadConfigString(text, "rules.yaml");
  std::vector<std::string> out;
  if (!r.ok()) {
    for (const ConfigError& e : r.error()) out.push_back(e.ToString());
  }
  return out;
}

std::shared_ptr<const Config> LoadOk(const std::string& text) {
  auto r = LoadConfigString(text, "rules.yaml");
  if (r.ok()) return *r;
  for (const ConfigError& e : r.error()) ADD_FAILURE() << e.ToString();
  return nullptr;
}

// DESIGN §1.5's example, then a rule section (line 9 on).
const std::string kAnnotations = R"(destinations:
  q: {kind: queue, topic: t}
annotations:
  thumbs:       {type: categorical, values: [up, down]}
  faithfulness: {type: score, min: 0, max: 1, version: 3}
  correctness:  {type: categorical, values: [correct, partially_correct, wrong], version: 2}
  reviewer_note: {type: text}
  strict: false        # true: feedback with an undeclared name is dead-lettered
rules:
)";

std::string Rule(const std::string& when) {
  return kAnnotations + "  - name: r\n    when: " + when + "\n    route_to: [q]\n";
}

TEST(ConfigAnnotations, TheDesignExampleLoads) {
  auto config = LoadOk(Rule(R"(feedback.thumbs.label == "down")"));
  ASSERT_TRUE(config);
  const AnnotationSchemas& a = config->rules->annotations;
  EXPECT_TRUE(a.declared);
  EXPECT_FALSE(a.strict);
  ASSERT_EQ(a.schemas.size(), 4u);
  const AnnotationSchema* thumbs = a.Find("thumbs");
  ASSERT_NE(thumbs, nullptr);
  EXPECT_EQ(thumbs->type, AnnotationSchema::Type::kCategorical);
  EXPECT_THAT(thumbs->values, ElementsAre("up", "down"));
  EXPECT_EQ(thumbs->version, std::nullopt);
  EXPECT_FALSE(thumbs->correction);
  const AnnotationSchema* f = a.Find("faithfulness");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->type, AnnotationSchema::Type::kScore);
  EXPECT_EQ(f->min, 0);
  EXPECT_EQ(f->max, 1);
  EXPECT_EQ(f->version, 3);
  EXPECT_EQ(a.Find("correctness")->version, 2);
  EXPECT_THAT(a.Find("correctness")->values, ElementsAre("correct", "partially_correct", "wrong"));
  EXPECT_EQ(a.Find("reviewer_note")->type, AnnotationSchema::Type::kText);
  EXPECT_EQ(a.Find("strict"), nullptr);  // a key of the section, not a name
}

TEST(ConfigAnnotations, StrictCorrectionsAndNamesOfAnyShape) {
  auto config = LoadOk(R"(annotations:
  strict: true
  golden answer: {type: text, correction: true}
  verdict: {type: categorical, values: [ok, "not ok"], correction: false}
  latency-score: {type: score, min: -1.5}
)");
  ASSERT_TRUE(config);
  const AnnotationSchemas& a = config->rules->annotations;
  EXPECT_TRUE(a.strict);
  ASSERT_NE(a.Find("golden answer"), nullptr);
  EXPECT_TRUE(a.Find("golden answer")->correction);
  EXPECT_FALSE(a.Find("verdict")->correction);
  EXPECT_THAT(a.Find("verdict")->values, ElementsAre("ok", "not ok"));
  EXPECT_EQ(a.Find("latency-score")->min, -1.5);
  EXPECT_EQ(a.Find("latency-score")->max, std::nullopt);
}

TEST(ConfigAnnotations, WithoutTheSectionNothingIsDeclaredAndRulesAreFree) {
  auto config = LoadOk(R"(destinations:
  q: {kind: queue, topic: t}
rules:
  - {name: r, when: 'feedback.thmbs.label == "dwn"', route_to: [q]}
)");
  ASSERT_TRUE(config);
  EXPECT_FALSE(config->rules->annotations.declared);
  // An empty section declares no names: every feedback name a rule reads is undeclared.
  auto empty = LoadOk("annotations: {}\n");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->rules->annotations.declared);
  EXPECT_THAT(Errors(R"(destinations:
  q: {kind: queue, topic: t}
annotations:
rules:
  - {name: r, when: 'feedback.thumbs.score < 1', route_to: [q]}
)"),
              ElementsAre("rules.yaml:5:31: rule \"r\": feedback \"thumbs\" is not declared in "
                          "annotations (it declares no names)"));
}

TEST(ConfigAnnotations, ErrorsInTheSection) {
  EXPECT_THAT(
      Errors(R"(annotations:
  thumbs: {type: categorical, valeus: [up, down]}
  faithfulness: {type: scroe}
  tone: {values: [a]}
  strcit: true
  note: text
  fine: {type: text, correction: yes}
  range: {type: score, min: 1, max: 0}
  lo: {type: score, min: low}
  v: {type: text, version: -1}
  cat: {type: categorical, values: []}
  dup: {type: categorical, values: [a, b, a]}
  sc: {type: score, values: [a], correction: true}
  tx: {type: text, max: 3}
)"),
      ElementsAre(
          "rules.yaml:2:11: annotations.thumbs.values is required for type: categorical (the "
          "allowed labels)",
          "rules.yaml:2:31: unknown key \"annotations.thumbs.valeus\" (did you mean "
          "\"annotations.thumbs.values\"?)",
          "rules.yaml:3:24: annotations.faithfulness.type must be one of categorical, score, "
          "text, got \"scroe\" (did you mean \"score\"?)",
          "rules.yaml:4:9: annotations.tone.type is required: categorical, score or text",
          "rules.yaml:5:11: annotations.strcit must be a mapping like {type: categorical, values: "
          "[...]} (did you mean \"annotations.strict\"?)",
          "rules.yaml:6:9: annotations.note must be a mapping like {type: categorical, values: "
          "[...]}",
          "rules.yaml:7:34: annotations.fine.correction must be true or false, got \"yes\"",
          "rules.yaml:8:29: annotations.range.min must not be greater than annotations.range.max",
          "rules.yaml:9:26: annotations.lo.min must be a number, got \"low\"",
          "rules.yaml:10:28: annotations.v.version must be a non-negative integer, got \"-1\"",
          "rules.yaml:11:36: annotations.cat.values must be a non-empty list of labels",
          "rules.yaml:12:43: annotations.dup.values: \"a\" is listed twice",
          "rules.yaml:13:21: annotations.sc.values applies to type: categorical only",
          "rules.yaml:13:34: annotations.sc.correction applies to types categorical and text",
          "rules.yaml:14:20: annotations.tx.max applies to type: score only"));
  EXPECT_THAT(Errors("annotations: [thumbs]\n"),
              ElementsAre("rules.yaml:1:14: annotations must be a mapping of feedback names to "
                          "{type, ...} (and strict)"));
  EXPECT_THAT(Errors("annotations:\n  strict: maybe\n"),
              ElementsAre("rules.yaml:2:11: annotations.strict must be true or false, got "
                          "\"maybe\""));
  EXPECT_THAT(Errors("annotations:\n  thumbs: {type: text}\n  thumbs: {type: text}\n"),
              ElementsAre("rules.yaml:3:3: duplicate key \"annotations.thumbs\""));
}

struct RuleError {
  const char* when;
  const char* error;
};

class ConfigAnnotationRules : public ::testing::TestWithParam<RuleError> {};

// `when: ` ends at column 11 of line 11: an offset N into the expression is column 11 + N.
TEST_P(ConfigAnnotationRules, AreConfigErrorsAtTheOffendingNameOrLiteral) {
  EXPECT_THAT(Errors(Rule(GetParam().when)), ElementsAre(GetParam().error));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigAnnotationRules,
    ::testing::Values(
        RuleError{"feedback.thumb.label == \"down\"",
                  "rules.yaml:11:20: rule \"r\": feedback \"thumb\" is not declared in "
                  "annotations; did you mean \"thumbs\"?"},
        RuleError{"trace.error and session.feedback.helpfulness.score > 0",
                  "rules.yaml:11:44: rule \"r\": feedback \"helpfulness\" is not declared in "
                  "annotations (declared: thumbs, faithfulness, correctness, reviewer_note)"},
        RuleError{"feedback.thumbs.label == \"dwn\"",
                  "rules.yaml:11:36: rule \"r\": label \"dwn\" is not one of "
                  "annotations.thumbs's values [up, down]; did you mean \"down\"?"},
        RuleError{"'\"wrnog\" != feedback.correctness.label'",
                  "rules.yaml:11:12: rule \"r\": label \"wrnog\" is not one of "
                  "annotations.correctness's values [correct, partially_correct, wrong]; did you "
                  "mean \"wrong\"?"},
        RuleError{"feedback.correctness.label in [\"correct\", \"partialy_correct\"]",
                  "rules.yaml:11:53: rule \"r\": label \"partialy_correct\" is not one of "
                  "annotations.correctness's values [correct, partially_correct, wrong]; did you "
                  "mean \"partially_correct\"?"},
        RuleError{"feedback.faithfulness.score < 7",
                  "rules.yaml:11:41: rule \"r\": score 7 is outside annotations.faithfulness's "
                  "range [0, 1]"}),
    [](const ::testing::TestParamInfo<RuleError>& p) { return std::to_string(p.index); });

TEST(ConfigAnnotations, SampleKeysAreCheckedToo) {
  EXPECT_THAT(
      Errors(kAnnotations + "  - name: r\n    when: trace.error\n    sample_key: "
                            "feedback.reviewer_nte.label\n    sample: 10%\n    route_to: [q]\n"),
      ElementsAre("rules.yaml:12:26: rule \"r\": feedback \"reviewer_nte\" is not declared "
                  "in annotations; did you mean \"reviewer_note\"?"));
}

// Aggregates are not names; declared names read every field.
TEST(ConfigAnnotations, RulesThatKeepToTheSchemasLoad) {
  EXPECT_TRUE(LoadOk(Rule("feedback.count > 0 and feedback.min_score < 0.5")));
  EXPECT_TRUE(LoadOk(Rule(R"(feedback.thumbs.label in ["up", "down"] and )"
                          R"(feedback.faithfulness.score <= 1 and )"
                          R"(feedback.reviewer_note.expected_output contains "x" and )"
                          R"(session.feedback.correctness.label != "wrong" and )"
                          R"(feedback.thumbs.metadata.queue == "anything")")));
}

}  // namespace
}  // namespace triaged
