// The run-time annotation schemas of DESIGN §1.5: which annotations keep to their declared
// schema, what they gain from it, why the others break it, and the metric's bounded labels.
#include "rules/annotation_schema.h"

#include <gtest/gtest.h>

namespace triaged {
namespace {

AnnotationSchemas Schemas(bool strict = false) {
  AnnotationSchemas s;
  s.declared = true;
  s.strict = strict;
  AnnotationSchema thumbs;
  thumbs.name = "thumbs";
  thumbs.type = AnnotationSchema::Type::kCategorical;
  thumbs.values = {"up", "down"};
  thumbs.version = 2;
  AnnotationSchema faithfulness;
  faithfulness.name = "faithfulness";
  faithfulness.type = AnnotationSchema::Type::kScore;
  faithfulness.min = 0;
  faithfulness.max = 1;
  faithfulness.version = 3;
  AnnotationSchema note;
  note.name = "reviewer_note";
  note.type = AnnotationSchema::Type::kText;
  note.correction = true;
  AnnotationSchema verdict;
  verdict.name = "verdict";
  verdict.type = AnnotationSchema::Type::kCategorical;
  verdict.values = {"correct", "wrong"};
  verdict.correction = true;
  s.schemas = {thumbs, faithfulness, note, verdict};
  return s;
}

Annotation Named(std::string name, std::optional<double> score = std::nullopt,
                 std::optional<std::string> label = std::nullopt) {
  Annotation a;
  a.trace_id = "abc";
  a.name = std::move(name);
  a.score = score;
  a.label = std::move(label);
  a.source = "end_user";
  return a;
}

TEST(AnnotationSchemaCheck, ACategoricalLabelMustBeOneOfItsValues) {
  const AnnotationSchemas s = Schemas();
  Annotation ok = Named("thumbs", 0, "down");
  EXPECT_EQ(CheckAnnotation(s, ok), std::nullopt);
  EXPECT_EQ(ok.schema_version, 2);
  Annotation typo = Named("thumbs", std::nullopt, "dwn");
  EXPECT_EQ(CheckAnnotation(s, typo),
            "annotation \"thumbs\": label \"dwn\" is not one of [up, down] (annotations.thumbs, "
            "version 2)");
  EXPECT_EQ(typo.schema_version, std::nullopt);
  // A score alone (a Langfuse BOOLEAN score, say) is not a categorical label.
  Annotation score_only = Named("thumbs", 1);
  EXPECT_EQ(CheckAnnotation(s, score_only),
            "annotation \"thumbs\": no label, expected one of [up, down] (annotations.thumbs, "
            "version 2)");
}

TEST(AnnotationSchemaCheck, AScoreMustBePresentAndWithinItsRange) {
  const AnnotationSchemas s = Schemas();
  for (double v : {0.0, 0.5, 1.0}) {
    Annotation a = Named("faithfulness", v);
    EXPECT_EQ(CheckAnnotation(s, a), std::nullopt) << v;
    EXPECT_EQ(a.schema_version, 3);
  }
  Annotation high = Named("faithfulness", 7);
  EXPECT_EQ(CheckAnnotation(s, high),
            "annotation \"faithfulness\": score 7 is outside [0, 1] (annotations.faithfulness, "
            "version 3)");
  Annotation low = Named("faithfulness", -0.25);
  EXPECT_EQ(CheckAnnotation(s, low),
            "annotation \"faithfulness\": score -0.25 is outside [0, 1] "
            "(annotations.faithfulness, version 3)");
  Annotation none = Named("faithfulness", std::nullopt, "faithful");
  EXPECT_EQ(CheckAnnotation(s, none),
            "annotation \"faithfulness\": no score, expected a score in [0, 1] "
            "(annotations.faithfulness, version 3)");
}

TEST(AnnotationSchemaCheck, AnOpenRangeChecksOnlyItsBound) {
  AnnotationSchemas s;
  s.declared = true;
  AnnotationSchema latency;
  latency.name = "latency";
  latency.type = AnnotationSchema::Type::kScore;
  latency.min = 0;
  s.schemas = {latency};
  Annotation big = Named("latency", 1e9);
  EXPECT_EQ(CheckAnnotation(s, big), std::nullopt);
  Annotation negative = Named("latency", -1);
  EXPECT_EQ(CheckAnnotation(s, negative),
            "annotation \"latency\": score -1 is outside [0, inf] (annotations.latency)");
}

TEST(AnnotationSchemaCheck, TextTakesAnything) {
  const AnnotationSchemas s = Schemas();
  Annotation a = Named("reviewer_note", 42, "whatever");
  EXPECT_EQ(CheckAnnotation(s, a), std::nullopt);
  EXPECT_EQ(a.schema_version, std::nullopt);  // the schema has no version
}

TEST(AnnotationSchemaCheck, ACorrectionsStringBecomesItsExpectedOutput) {
  const AnnotationSchemas s = Schemas();
  Annotation note = Named("reviewer_note");
  note.explanation = "Order 10442 ships tomorrow.";
  ASSERT_EQ(CheckAnnotation(s, note), std::nullopt);
  EXPECT_EQ(note.expected_output, "Order 10442 ships tomorrow.");
  // The label comes first.
  Annotation verdict = Named("verdict", std::nullopt, "wrong");
  verdict.explanation = "the date";
  ASSERT_EQ(CheckAnnotation(s, verdict), std::nullopt);
  EXPECT_EQ(verdict.expected_output, "wrong");
  // An expected_output the source gave stays.
  Annotation given = Named("reviewer_note", std::nullopt, "label");
  given.expected_output = "from the source";
  ASSERT_EQ(CheckAnnotation(s, given), std::nullopt);
  EXPECT_EQ(given.expected_output, "from the source");
  // Without `correction` nothing moves.
  Annotation thumbs = Named("thumbs", 0, "down");
  ASSERT_EQ(CheckAnnotation(s, thumbs), std::nullopt);
  EXPECT_EQ(thumbs.expected_output, std::nullopt);
}

TEST(AnnotationSchemaCheck, UndeclaredNamesPassUnlessStrict) {
  Annotation loose = Named("tone", 0.5);
  EXPECT_EQ(CheckAnnotation(Schemas(false), loose), std::nullopt);
  EXPECT_EQ(loose.schema_version, std::nullopt);
  Annotation strict = Named("thumb", 0, "down");
  EXPECT_EQ(CheckAnnotation(Schemas(true), strict),
            "annotation \"thumb\": the name is not declared in annotations (annotations.strict); "
            "did you mean \"thumbs\"?");
}

TEST(AnnotationSchemaCheck, WithoutAnAnnotationsSectionNothingIsChecked) {
  AnnotationSchemas none;  // declared false, even with a stray strict
  none.strict = true;
  Annotation a = Named("thumbs", std::nullopt, "dwn");
  EXPECT_EQ(CheckAnnotation(none, a), std::nullopt);
}

TEST(AnnotationSchemaCheck, AHugeLabelIsQuotedByItsStartAndSize) {
  Annotation a = Named("thumbs", std::nullopt, std::string(100'000, 'x'));
  const std::optional<std::string> why = CheckAnnotation(Schemas(), a);
  ASSERT_TRUE(why);
  EXPECT_LT(why->size(), 300u);
  EXPECT_NE(why->find("...\" (100000 bytes)"), std::string::npos) << *why;
}

TEST(AnnotationSchemaMessage, BrokenAnnotationsLeaveAndTheMessageGetsOneError) {
  DecodedMessage msg;
  Span span;
  span.trace_id = "abc";
  span.span_id = "s1";
  msg.spans.push_back(span);
  msg.annotations = {Named("thumbs", std::nullopt, "dwn"), Named("thumbs", 1, "up"),
                     Named("faithfulness", 9), Named("tone", 0.5)};
  const std::optional<Error> e = CheckAnnotations(Schemas(), msg);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->reason, "annotation_schema");
  EXPECT_EQ(e->message,
            "annotation \"thumbs\": label \"dwn\" is not one of [up, down] (annotations.thumbs, "
            "version 2); annotation \"faithfulness\": score 9 is outside [0, 1] "
            "(annotations.faithfulness, version 3)");
  ASSERT_EQ(msg.annotations.size(), 2u);  // the valid ones stay, in order
  EXPECT_EQ(msg.annotations[0].label, "up");
  EXPECT_EQ(msg.annotations[0].schema_version, 2);
  EXPECT_EQ(msg.annotations[1].name, "tone");
  EXPECT_EQ(msg.spans.size(), 1u);
}

TEST(AnnotationSchemaMessage, ManyBrokenAnnotationsAreCountedNotAllListed) {
  DecodedMessage msg;
  for (int i = 0; i < 10; ++i) msg.annotations.push_back(Named("faithfulness", 2 + i));
  const std::optional<Error> e = CheckAnnotations(Schemas(), msg);
  ASSERT_TRUE(e);
  EXPECT_TRUE(msg.annotations.empty());
  EXPECT_NE(e->message.find("score 4 is outside"), std::string::npos);
  EXPECT_EQ(e->message.find("score 5 is outside"), std::string::npos);
  EXPECT_TRUE(e->message.ends_with(" (and 7 more)")) << e->message;
}

TEST(AnnotationSchemaMessage, AValidMessageIsUntouchedButForWhatItGains) {
  DecodedMessage msg;
  msg.annotations = {Named("thumbs", 0, "down")};
  EXPECT_EQ(CheckAnnotations(Schemas(), msg), std::nullopt);
  ASSERT_EQ(msg.annotations.size(), 1u);
  EXPECT_EQ(msg.annotations[0].schema_version, 2);
}

TEST(AnnotationMetricLabels, DeclaredNamesElseOtherAndKnownSourcesElseUnknown) {
  const AnnotationSchemas s = Schemas();
  EXPECT_EQ(AnnotationMetricName(s, Named("thumbs")), "thumbs");
  EXPECT_EQ(AnnotationMetricName(s, Named("tone")), "other");
  EXPECT_EQ(AnnotationMetricName(AnnotationSchemas{}, Named("thumbs")), "other");
  Annotation a = Named("thumbs");
  EXPECT_EQ(AnnotationMetricSource(a), "end_user");
  a.source = "llm_judge";
  EXPECT_EQ(AnnotationMetricSource(a), "llm_judge");
  a.source.reset();
  EXPECT_EQ(AnnotationMetricSource(a), "unknown");
  a.source = "someone";
  EXPECT_EQ(AnnotationMetricSource(a), "unknown");
}

}  // namespace
}  // namespace triaged
