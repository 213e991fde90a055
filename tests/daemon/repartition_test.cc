// The repartition hop (DESIGN §1.4) against the in-memory Kafka: events that are not on their
// trace's partition reach its engine through `<group_id>.repartition`, events that are home stay,
// both guarantees commit an input offset only with its re-produced events, and traffic that
// `repartition: never` cannot join shows up on triaged_traces_without_spans_total.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "rules/partitioner.h"
#include "tests/daemon/pipeline_fixture.h"

namespace triaged {
namespace {

using testing::ConfigText;
using testing::FakeKafka;
using ::testing::HasSubstr;
using testing::kOther;
using testing::kTrace;
using ::testing::Not;
using testing::Span;
using testing::ThumbsDown;

constexpr int kPartitions = 4;
constexpr const char* kRepartitionTopic = "unit.repartition";

int32_t Home(const std::string& trace) { return Murmur2Partition(trace, kPartitions); }
int32_t Elsewhere(const std::string& trace) { return (Home(trace) + 1) % kPartitions; }

// An OTLP/JSON request with one root span of each trace (the Collector's default batching).
std::string OtlpOf(const std::vector<std::string>& traces) {
  std::string spans;
  for (size_t i = 0; i < traces.size(); ++i) {
    spans += std::string(i ? "," : "") + "{\"traceId\":\"" + traces[i] +
             "\",\"spanId\":\"00000000000000a" + std::to_string(i) +
             "\",\"name\":\"chat\",\"startTimeUnixNano\":\"1793527200000000000\","
             "\"endTimeUnixNano\":\"1793527201000000000\"}";
  }
  return "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[" + spans + "]}]}]}";
}

class RepartitionTest : public testing::PipelineFixture {
 protected:
  void StartMode(const std::string& guarantee, const std::string& inputs_extra,
                 const std::function<void(FakeKafka&)>& setup) {
    StartWith(ConfigText(guarantee, "spans", inputs_extra), guarantee == "exactly_once", setup,
              kPartitions);
  }
  // Whether a pipeline with these inputs settings starts on the topics `topics` makes.
  bool Starts(const std::string& inputs_extra, const std::function<void(FakeKafka&)>& topics) {
    config_path_ = dir_.Write("rules.yaml", ConfigText("at_least_once", "spans", inputs_extra));
    auto loaded = LoadConfigFile(config_path_);
    EXPECT_TRUE(loaded.ok());
    if (!loaded.ok()) return false;
    Pipeline pipeline(RunOptions{config_path_, false}, *loaded, clock_,
                      [&](const Config&, const std::string&, const std::string&, const std::string&,
                          KafkaListener& listener) -> Result<std::unique_ptr<KafkaClient>> {
                        auto fake = std::make_unique<FakeKafka>(listener);
                        topics(*fake);
                        return std::unique_ptr<KafkaClient>(std::move(fake));
                      });
    return pipeline.Start();
  }
  std::vector<testing::FakeRecord> Routed() { return kafka_->Records("review"); }
  uint64_t Repartitioned() { return pipeline_->metrics().repartitioned(); }
};

// The span is home and keyed right; the thumbs-down sits on another partition (a producer
// with another partitioner). Before the hop existed, the feedback was decided alone, as a
// trace with no spans and "context": "missing", and nothing said so.
TEST_F(RepartitionTest, FeedbackOnAnotherPartitionIsJoinedToItsTraceByDefault) {
  StartMode("at_least_once", "", [](FakeKafka& k) {
    k.Append("spans", Home(kTrace), kTrace, Span(kTrace, "a1"));
    k.Append("feedback", Elsewhere(kTrace), kTrace, ThumbsDown(kTrace));
  });
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 1; }));
  const std::string item = *Routed()[0].value;
  EXPECT_THAT(item, Not(HasSubstr("\"context\":\"missing\"")));
  EXPECT_THAT(item, HasSubstr("\"span_id\":\"a1\""));
  EXPECT_EQ(Repartitioned(), 1u);  // the feedback; the span was processed in place
  ASSERT_EQ(kafka_->RecordsOf(kRepartitionTopic, Home(kTrace)).size(), 1u);
  EXPECT_EQ(kafka_->RecordsOf(kRepartitionTopic, Home(kTrace))[0].key, kTrace);
  StepFor(std::chrono::seconds(3));
  EXPECT_EQ(Routed().size(), 1u);
  EXPECT_EQ(pipeline_->metrics().traces_without_spans(), 0u);
  // Everything decided and acknowledged: every input committed past what it held.
  EXPECT_TRUE(StepUntil([&] {
    return Committed("spans", Home(kTrace)) == 1 && Committed("feedback", Elsewhere(kTrace)) == 1 &&
           Committed(kRepartitionTopic, Home(kTrace)) == 1;
  }));
}

TEST_F(RepartitionTest, NeverTrustsTheProducersAndMisplacedFeedbackIsCounted) {
  StartMode("at_least_once", "  repartition: never\n", [](FakeKafka& k) {
    k.Append("spans", Home(kTrace), kTrace, Span(kTrace, "a1"));
    k.Append("feedback", Elsewhere(kTrace), kTrace, ThumbsDown(kTrace));
  });
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 1; }));
  EXPECT_EQ(kafka_->Partitions(kRepartitionTopic), 0);  // never created
  EXPECT_EQ(Repartitioned(), 0u);
  // The thumbs-down was decided on its own, without its span: wrong, but no longer silent.
  EXPECT_THAT(*Routed()[0].value, Not(HasSubstr("\"span_id\":\"a1\"")));
  EXPECT_TRUE(StepUntil([&] { return pipeline_->metrics().traces_without_spans() == 1; }));
}

TEST_F(RepartitionTest, UnkeyedEventsHopEvenWhenTheyHappenToBeHome) {
  StartMode("at_least_once", "", [](FakeKafka& k) {
    k.Append("spans", Home(kTrace), std::nullopt, Span(kTrace, "a1"));
    k.Append("feedback", Home(kTrace), std::nullopt, ThumbsDown(kTrace));
  });
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 1; }));
  EXPECT_EQ(Repartitioned(), 2u);
  EXPECT_THAT(*Routed()[0].value, HasSubstr("\"span_id\":\"a1\""));
}

TEST_F(RepartitionTest, AlwaysHopsEverything) {
  StartMode("at_least_once", "  repartition: always\n", [](FakeKafka& k) {
    k.Append("spans", Home(kTrace), kTrace, Span(kTrace, "a1"));
    k.Append("feedback", Home(kTrace), kTrace, ThumbsDown(kTrace));
  });
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 1; }));
  EXPECT_EQ(Repartitioned(), 2u);
  EXPECT_EQ(kafka_->RecordsOf(kRepartitionTopic, Home(kTrace)).size(), 2u);
  EXPECT_THAT(*Routed()[0].value, HasSubstr("\"span_id\":\"a1\""));
}

TEST_F(RepartitionTest, AMultiTraceOtlpMessageFeedsEachTraceOnItsOwnPartition) {
  ASSERT_NE(Home(kTrace), Home(kOther));
  StartMode("at_least_once", "", [](FakeKafka& k) {
    k.Append("spans", 0, std::nullopt, OtlpOf({kTrace, kOther}));
    k.Append("feedback", Home(kTrace), kTrace, ThumbsDown(kTrace));
    k.Append("feedback", Home(kOther), kOther, ThumbsDown(kOther));
  });
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 2; }));
  EXPECT_EQ(Repartitioned(), 1u);  // the OTLP message (both its traces); the feedback was home
  EXPECT_EQ(kafka_->RecordsOf(kRepartitionTopic, Home(kTrace)).size(), 1u);
  EXPECT_EQ(kafka_->RecordsOf(kRepartitionTopic, Home(kOther)).size(), 1u);
  for (const testing::FakeRecord& r : Routed()) {
    EXPECT_THAT(*r.value, Not(HasSubstr("\"context\":\"missing\""))) << *r.key;
    EXPECT_THAT(*r.value, HasSubstr("\"span_count\":1")) << *r.key;
  }
  EXPECT_EQ(pipeline_->metrics().traces_without_spans(), 0u);
}

// A trace whose events would make a record past max_item_bytes (a protobuf batch grows as JSON)
// is re-produced in several records, none of them too large, and joined whole.
TEST_F(RepartitionTest, ATraceTooLargeForOneRecordHopsInSeveral) {
  std::string spans;
  for (int i = 0; i < 10; ++i) {
    spans += std::string(i ? "," : "") + "{\"traceId\":\"" + kTrace +
             "\",\"spanId\":\"00000000000000b" + std::to_string(i) +
             "\",\"name\":\"chat\",\"startTimeUnixNano\":\"1793527200000000000\","
             "\"endTimeUnixNano\":\"1793527201000000000\",\"attributes\":[{\"key\":\"input.value\","
             "\"value\":{\"stringValue\":\"" +
             std::string(1000, 'x') + "\"}}]}";
  }
  const std::string otlp = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[" + spans + "]}]}]}";
  StartWith(
      ConfigText("at_least_once") + "max_item_bytes: 4KiB\n", false,
      [&](FakeKafka& k) {
        k.Append("spans", Elsewhere(kTrace), std::nullopt, otlp);
        k.Append("feedback", Home(kTrace), kTrace, ThumbsDown(kTrace));
      },
      kPartitions);
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 1; }));
  const auto& records = kafka_->RecordsOf(kRepartitionTopic, Home(kTrace));
  EXPECT_GE(records.size(), 3u);
  for (const testing::FakeRecord& r : records) EXPECT_LE(r.value->size(), 4096u);
  EXPECT_THAT(*Routed()[0].value, HasSubstr("\"span_count\":10"));
}

TEST_F(RepartitionTest, AtLeastOnceCommitsAnInputOffsetOnlyOnceItsEventsAreAcknowledged) {
  StartMode("at_least_once", "  repartition: always\n",
            [](FakeKafka& k) { k.Append("feedback", 0, std::nullopt, ThumbsDown(kTrace)); });
  kafka_->hold_deliveries = true;  // the re-produced record is not acknowledged yet
  StepFor(std::chrono::seconds(3));
  EXPECT_EQ(kafka_->InFlight(), 1);
  EXPECT_LT(Committed("feedback", 0), 1);
  kafka_->hold_deliveries = false;
  EXPECT_TRUE(StepUntil([&] { return Committed("feedback", 0) == 1; }));
}

TEST_F(RepartitionTest, ExactlyOnceTheHopAndTheInputOffsetsCommitInOneTransaction) {
  StartMode("exactly_once", "  repartition: always\n", [](FakeKafka& k) {
    k.Append("spans", 0, std::nullopt, Span(kTrace, "a1"));
    k.Append("feedback", 1, std::nullopt, ThumbsDown(kTrace));
  });
  // Consumed and re-produced, but the transaction is not committed yet: nothing visible.
  pipeline_->Step(milliseconds(0));
  pipeline_->Step(milliseconds(0));
  pipeline_->Step(milliseconds(0));
  EXPECT_TRUE(kafka_->RecordsOf(kRepartitionTopic, Home(kTrace)).empty());
  EXPECT_EQ(Committed("spans", 0), -1);
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 1; }));
  EXPECT_EQ(kafka_->RecordsOf(kRepartitionTopic, Home(kTrace)).size(), 2u);
  EXPECT_EQ(Committed("spans", 0), 1);
  EXPECT_EQ(Committed("feedback", 1), 1);
  EXPECT_THAT(*Routed()[0].value, HasSubstr("\"span_id\":\"a1\""));
}

TEST_F(RepartitionTest, InputsOfDifferentPartitionCountsJoinThroughTheHop) {
  StartMode("at_least_once", "", [](FakeKafka& k) {
    k.CreateTopic("spans", 6);  // a Collector topic; feedback keeps 4
    k.Append("spans", 5, kTrace, Span(kTrace, "a1"));
    k.Append("feedback", Home(kTrace), kTrace, ThumbsDown(kTrace));
  });
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 1; }));
  // The repartition topic takes the larger count; no input is laid out like it but spans.
  EXPECT_EQ(kafka_->Partitions(kRepartitionTopic), 6);
  EXPECT_THAT(*Routed()[0].value, HasSubstr("\"span_id\":\"a1\""));
  EXPECT_EQ(Repartitioned(), 2u);
}

TEST_F(RepartitionTest, FeedbackWithoutATraceIdIsJoinedByItsKafkaKey) {
  StartMode("at_least_once", "", [](FakeKafka& k) {
    k.Append("spans", Home(kTrace), kTrace, Span(kTrace, "a1"));
    k.Append("feedback", Elsewhere(kTrace), kTrace, R"({"thumbs":"down"})");
  });
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 1; }));
  EXPECT_EQ(Routed()[0].key, kTrace);
  EXPECT_THAT(*Routed()[0].value, HasSubstr("\"span_id\":\"a1\""));
  EXPECT_TRUE(kafka_->Records("dlq").empty());
}

// Phoenix span annotations name only their span: each partition is searched in turn, from the
// span's own, until the one whose engine holds the span.
TEST_F(RepartitionTest, ASpanOnlyAnnotationFindsItsTraceOnWhicheverPartitionHoldsIt) {
  const std::string phoenix =
      R"({"span_id":"a1","name":"thumbs","annotator_kind":"HUMAN","result":{"label":"down"}})";
  StartMode("at_least_once", "", [&](FakeKafka& k) {
    k.Append("spans", Home(kTrace), kTrace, Span(kTrace, "a1"));
    k.Append("spans", Home(kOther), kOther, Span(kOther, "b1"));
    k.Append("feedback", 0, "not-a-trace-id", phoenix);
  });
  ASSERT_TRUE(StepUntil([&] { return Routed().size() == 1; }));
  EXPECT_EQ(Routed()[0].key, kTrace);
  EXPECT_THAT(*Routed()[0].value, HasSubstr("\"span_id\":\"a1\""));
  EXPECT_TRUE(kafka_->Records("dlq").empty());
  EXPECT_TRUE(StepUntil([&] { return Committed("feedback", 0) == 1; }));
}

TEST_F(RepartitionTest, ASpanOnlyAnnotationNoPartitionHoldsIsDeadLetteredOnce) {
  StartMode("at_least_once", "", [](FakeKafka& k) {
    k.Append("spans", Home(kTrace), kTrace, Span(kTrace, "a1"));
    k.Append("feedback", 0, std::nullopt,
             R"({"span_id":"ffff","name":"thumbs","annotator_kind":"HUMAN","result":{}})");
  });
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("dlq").size() == 1; }));
  StepFor(std::chrono::seconds(3));
  ASSERT_EQ(kafka_->Records("dlq").size(), 1u);
  const std::string dead = *kafka_->Records("dlq")[0].value;
  EXPECT_THAT(dead, HasSubstr("\"reason\":\"missing_trace_id\""));
  EXPECT_THAT(dead, HasSubstr("no trace on any of the 4 partitions holds span ffff"));
  // Every partition was searched once: the first hop and one more per partition after it.
  size_t records = 0;
  for (int32_t p = 0; p < kPartitions; ++p)
    records += kafka_->RecordsOf(kRepartitionTopic, p).size();
  EXPECT_EQ(records, static_cast<size_t>(kPartitions));
  EXPECT_TRUE(StepUntil([&] { return Committed("feedback", 0) == 1; }));
}

TEST_F(RepartitionTest, NeverJoinsASpanOnlyAnnotationOnlyOnItsOwnPartition) {
  const std::string phoenix =
      R"({"span_id":"a1","name":"thumbs","annotator_kind":"HUMAN","result":{"label":"down"}})";
  StartMode("at_least_once", "  repartition: never\n", [&](FakeKafka& k) {
    k.Append("spans", 1, kTrace, Span(kTrace, "a1"));
    k.Append("feedback", 1, std::nullopt, phoenix);
    k.Append("feedback", 2, std::nullopt, phoenix);
  });
  ASSERT_TRUE(
      StepUntil([&] { return Routed().size() == 1 && kafka_->Records("dlq").size() == 1; }));
  EXPECT_THAT(*kafka_->Records("dlq")[0].value, HasSubstr("no trace on partition 2 holds span a1"));
}

TEST_F(RepartitionTest, NeverRefusesInputsOfDifferentPartitionCounts) {
  EXPECT_FALSE(Starts("  repartition: never\n", [](FakeKafka& k) {
    k.CreateTopic("spans", 6);
    k.CreateTopic("feedback", 4);
  }));
}

TEST_F(RepartitionTest, ARepartitionTopicOfAnotherCountThanConfiguredIsRefused) {
  EXPECT_FALSE(Starts("  repartition_partitions: 4\n", [](FakeKafka& k) {
    for (const char* t : {"spans", "feedback"}) k.CreateTopic(t, 4);
    k.CreateTopic(kRepartitionTopic, 3);
  }));
  EXPECT_TRUE(Starts("  repartition_partitions: 3\n", [](FakeKafka& k) {
    for (const char* t : {"spans", "feedback"}) k.CreateTopic(t, 4);
    k.CreateTopic(kRepartitionTopic, 3);
  }));
}

}  // namespace
}  // namespace triaged
