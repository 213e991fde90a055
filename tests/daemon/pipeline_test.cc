// The pipeline against an in-memory Kafka (FakeKafka) on a clock the test moves by hand: what
// is routed, what is dead-lettered, which offsets are committed and when, reloads, revocations,
// and both guarantees' commit protocols.
#include "daemon/pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "tests/daemon/pipeline_fixture.h"

namespace triaged {
namespace {

using testing::ConfigText;
using testing::FakeKafka;
using ::testing::HasSubstr;

using testing::kOther;
using testing::kTrace;
using testing::OneThumbsDown;
using testing::Span;
using testing::ThumbsDown;

using PipelineTest = testing::PipelineFixture;

// A turn of the loop takes what is already fetched, up to a batch: the engines' deadlines and
// the periodic work are served once a batch, not once a message.
TEST_F(PipelineTest, ATurnTakesABatchOfMessages) {
  const int messages = Pipeline::kBatchMessages + 20;
  Start("at_least_once", [&](FakeKafka& kafka) {
    for (int i = 0; i < messages; ++i) {
      const std::string id = std::string(24, 'a') + std::to_string(10000000 + i);
      kafka.Append("spans", 0, id, Span(id, "root"));
    }
  });
  // The turns that join the group and take the assignment consume nothing.
  ASSERT_TRUE(StepUntil([&] { return pipeline_->metrics().consumed() > 0; }, 10));
  EXPECT_EQ(pipeline_->metrics().consumed(), static_cast<uint64_t>(Pipeline::kBatchMessages));
  pipeline_->Step(milliseconds(0));
  EXPECT_EQ(pipeline_->metrics().consumed(), static_cast<uint64_t>(messages));
}

// `threads:` runs the partitions' engines on several threads; what is produced, and in which
// order, is what one thread produces: the engines' decisions are applied in consumption order.
struct ThreadsRun : testing::PipelineFixture {
  void TestBody() override {}
  std::vector<std::string> Routed(int threads, int64_t& committed);
};

std::vector<std::string> ThreadsRun::Routed(int threads, int64_t& committed) {
  ThreadsRun& run = *this;
  constexpr int kPartitions = 8, kTraces = 240;
  run.StartWith(
      "threads: " + std::to_string(threads) + "\n" + ConfigText("at_least_once"), false,
      [&](FakeKafka& kafka) {
        for (int i = 0; i < kTraces; ++i) {
          const std::string id = std::string(24, 'c') + std::to_string(10000000 + i);
          const int32_t p = i % kPartitions;
          kafka.Append("spans", p, id, Span(id, "root"));
          kafka.Append("spans", p, id, Span(id, "child", false));
          if (i % 3 != 0) kafka.Append("feedback", p, id, ThumbsDown(id));
          if (i % 40 == 7) kafka.Append("feedback", p, id, "{not json");
        }
      },
      kPartitions);
  EXPECT_EQ(run.pipeline_->threads(), threads);
  const size_t want = kTraces - kTraces / 3;
  EXPECT_TRUE(run.StepUntil([&] { return run.kafka_->Records("review").size() >= want; }));
  run.StepFor(std::chrono::seconds(3));
  std::vector<std::string> out;
  for (const char* topic : {"review", "dlq"}) {
    for (const testing::FakeRecord& r : run.kafka_->Records(topic)) {
      // The config's hash differs by its `threads:` line; nothing else may.
      std::string value = r.value.value_or("");
      const std::string version = (*LoadConfigFile(run.config_path_))->rules->config_version;
      for (size_t at = value.find(version); at != std::string::npos; at = value.find(version)) {
        value.replace(at, version.size(), "VERSION");
      }
      out.push_back(std::string(topic) + " " + r.key.value_or("") + " " + value);
    }
  }
  committed = 0;
  for (int32_t p = 0; p < kPartitions; ++p) {
    committed += run.Committed("spans", p) + run.Committed("feedback", p);
  }
  EXPECT_EQ(run.pipeline_->Shutdown(), 0);
  return out;
}

TEST(PipelineThreadsTest, EngineThreadsProduceWhatOneThreadProduces) {
  int64_t committed_one = 0, committed_four = 0;
  const std::vector<std::string> one = ThreadsRun().Routed(1, committed_one);
  const std::vector<std::string> four = ThreadsRun().Routed(4, committed_four);
  // 160 routed items and 6 dead letters, in the same order.
  EXPECT_EQ(one.size(), 166u);
  ASSERT_EQ(four.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) ASSERT_EQ(four[i], one[i]) << "record " << i;
  // Every message committed: 480 spans and 166 feedback messages.
  EXPECT_EQ(committed_one, 480 + 166);
  EXPECT_EQ(committed_four, committed_one);
}

TEST_F(PipelineTest, RoutesADecidedTraceThenCommitsPastIt) {
  Start("at_least_once", OneThumbsDown);
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("review").size() == 1; }));
  const testing::FakeRecord item = kafka_->Records("review")[0];
  EXPECT_EQ(item.key, kTrace);
  EXPECT_EQ(item.Header("triaged-rule"), "thumbs-down");
  EXPECT_EQ(item.Header("triaged-destination"), "review");
  EXPECT_THAT(*item.value, HasSubstr("\"schema\":\"triaged.routed_item/v1\""));
  // Acknowledged and decided: both inputs are committed past their message.
  EXPECT_TRUE(StepUntil([&] { return Committed("spans") == 1 && Committed("feedback") == 1; }));
  EXPECT_EQ(kafka_->Records("review").size(), 1u);
  EXPECT_EQ(pipeline_->metrics().routed(), 1u);
  EXPECT_EQ(pipeline_->Shutdown(), 0);
  EXPECT_TRUE(kafka_->closed);
}

TEST_F(PipelineTest, ShutdownWithTheBrokerGoneDoesNotWaitOnItAndSaysSo) {
  Start("at_least_once", OneThumbsDown);
  kafka_->hold_deliveries = true;  // the broker stops answering
  ASSERT_TRUE(StepUntil([&] { return kafka_->InFlight() == 1; }));
  pipeline_->OnClientError(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", false);
  // The routed item is not acknowledged: the process lets go instead of waiting, and exits
  // EX_TEMPFAIL; the trace is read again after a restart.
  EXPECT_EQ(pipeline_->Shutdown(), kExitUnflushed);
  EXPECT_TRUE(kafka_->abandoned);
  EXPECT_FALSE(kafka_->closed);
  EXPECT_LE(Committed("spans"), 0);
}

TEST_F(PipelineTest, NeverCommitsPastTheFirstEventOfAnUndecidedTrace) {
  Start("at_least_once", [](FakeKafka& k) {
    k.Append("spans", 0, kTrace, Span(kTrace, "a1", /*root=*/false));
    k.Append("spans", 0, kOther, Span(kOther, "b1", /*root=*/false));
  });
  // Both spans read; the traces stay open for decision_wait (2 s) after their last span.
  StepFor(std::chrono::milliseconds(1500));
  EXPECT_LE(Committed("spans"), 0);
  ASSERT_TRUE(StepUntil([&] { return Committed("spans") == 2; }, 60));
  EXPECT_TRUE(kafka_->Records("review").empty());
}

TEST_F(PipelineTest, AFailedDeliveryKeepsItsOffsetUncommitted) {
  Start("at_least_once", [](FakeKafka& k) {
    k.fail_delivery["review"] = RD_KAFKA_RESP_ERR__MSG_TIMED_OUT;
    OneThumbsDown(k);
  });
  ASSERT_TRUE(StepUntil([&] { return pipeline_->metrics().produce_errors() == 1; }));
  StepFor(std::chrono::seconds(5));
  // Nothing is committed past the trace whose routed item was not delivered.
  EXPECT_LE(Committed("spans"), 0);
  EXPECT_LE(Committed("feedback"), 0);
  EXPECT_FALSE(pipeline_->failed());  // a retriable error does not stop the daemon
  // The stuck commit point is visible: it has not moved for the last 5 s of the clock.
  const std::string text = pipeline_->metrics().Serialize();
  const std::string series = "triaged_commit_stalled_seconds{partition=\"0\",topic=\"spans\"} ";
  const size_t at = text.find(series);
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GE(std::stod(text.substr(at + series.size())), 5.0);
}

// A routed item the broker refuses for good (too large, say) used to keep its hold forever:
// nothing was committed again on either input. It now goes to the dead-letter topic in its
// place, with the error and the item's id, and the partition moves on.
TEST_F(PipelineTest, ARoutedItemTheBrokerRefusesIsDeadLetteredAndThePartitionMovesOn) {
  Start("at_least_once", [](FakeKafka& k) {
    k.fail_delivery["review"] = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    OneThumbsDown(k);
  });
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("dlq").size() == 1; }));
  const testing::FakeRecord dead = kafka_->Records("dlq")[0];
  EXPECT_EQ(dead.Header("triaged-reason"), "produce_refused");
  EXPECT_EQ(dead.key, kTrace);
  EXPECT_THAT(*dead.value, HasSubstr("\"id\":\"" + RoutedItemId(kTrace, "thumbs-down", "review")));
  EXPECT_THAT(*dead.value, HasSubstr("Message size too large"));
  EXPECT_TRUE(StepUntil([&] { return Committed("spans") == 1 && Committed("feedback") == 1; }));
  EXPECT_TRUE(kafka_->Records("review").empty());
  EXPECT_EQ(pipeline_->metrics().routed(), 0u);  // counted on the broker's acknowledgement
  EXPECT_THAT(
      pipeline_->metrics().Serialize(),
      HasSubstr(
          "triaged_produce_errors_total{destination=\"review\",error=\"MSG_SIZE_TOO_LARGE\"} 1"));
  EXPECT_FALSE(pipeline_->failed());
}

TEST_F(PipelineTest, AnItemRefusedBeforeItLeavesIsDeadLetteredToo) {
  Start("at_least_once", [](FakeKafka& k) {
    k.refuse_produce["review"] = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    OneThumbsDown(k);
  });
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("dlq").size() == 1; }));
  EXPECT_TRUE(StepUntil([&] { return Committed("spans") == 1 && Committed("feedback") == 1; }));
}

TEST_F(PipelineTest, WhenTheDeadLetterTopicRefusesTooThePartitionStillMovesOn) {
  Start("at_least_once", [](FakeKafka& k) {
    k.fail_delivery["review"] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
    k.fail_delivery["dlq"] = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
    OneThumbsDown(k);
  });
  EXPECT_TRUE(StepUntil([&] { return Committed("spans") == 1 && Committed("feedback") == 1; }));
  EXPECT_EQ(pipeline_->metrics().produce_errors(), 2u);
  EXPECT_FALSE(pipeline_->failed());
}

TEST_F(PipelineTest, ExactlyOnceARefusedItemIsDeadLetteredAfterOneRewindNotLoopedOn) {
  Start("exactly_once", [](FakeKafka& k) {
    k.fail_delivery["review"] = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    OneThumbsDown(k);
  });
  ASSERT_TRUE(StepUntil([&] { return Committed("spans") == 1 && Committed("feedback") == 1; }));
  EXPECT_EQ(kafka_->transactions_aborted, 1);
  StepFor(std::chrono::seconds(5));
  EXPECT_EQ(kafka_->transactions_aborted, 1);  // no rewind loop
  ASSERT_EQ(kafka_->Records("dlq").size(), 1u);
  EXPECT_EQ(kafka_->Records("dlq")[0].Header("triaged-reason"), "produce_refused");
  EXPECT_TRUE(kafka_->Records("review").empty());
  EXPECT_EQ(kafka_->Records("unit.decisions").size(), 1u);
}

TEST_F(PipelineTest, BadInputIsDeadLetteredWithItsReasonAndCommitted) {
  Start("at_least_once", [](FakeKafka& k) { k.Append("feedback", 0, "k", "not json"); });
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("dlq").size() == 1; }));
  const testing::FakeRecord dead = kafka_->Records("dlq")[0];
  EXPECT_EQ(dead.Header("triaged-reason"), "invalid_json");
  EXPECT_EQ(dead.key, "k");
  EXPECT_THAT(*dead.value, HasSubstr("\"offset\":0"));
  EXPECT_TRUE(StepUntil([&] { return Committed("feedback") == 1; }));
  EXPECT_EQ(pipeline_->metrics().dead_lettered(), 1u);
}

// 38 bad inputs: one warning at once, then one line with the others' count and reasons once the
// interval (10 s of the pipeline's clock) has passed, not one line each.
TEST_F(PipelineTest, DeadLetterWarningsAreAggregatedPerInterval) {
  auto lines = [](const std::string& err) {
    size_t n = 0;
    for (size_t at = 0; (at = err.find("\"msg\":\"dead-lettered\"", at)) != std::string::npos;
         ++at) {
      ++n;
    }
    return n;
  };
  ::testing::internal::CaptureStderr();
  Start("at_least_once", [](FakeKafka& k) {
    for (int i = 0; i < 38; ++i) k.Append("feedback", 0, "k", "not json");
  });
  const bool all = StepUntil([&] { return kafka_->Records("dlq").size() == 38; });
  StepFor(std::chrono::milliseconds(5000));
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(all);
  EXPECT_EQ(lines(err), 1u) << err;
  EXPECT_NE(err.find("\"reason\":\"invalid_json\",\"topic\":\"feedback\",\"partition\":0,"
                     "\"offset\":0}"),
            std::string::npos)
      << err;

  ::testing::internal::CaptureStderr();
  StepFor(std::chrono::milliseconds(6000));
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(lines(err), 1u) << err;
  EXPECT_NE(err.find("\"msg\":\"dead-lettered\",\"count\":37,\"reasons\":{\"invalid_json\":37}}"),
            std::string::npos)
      << err;
  EXPECT_EQ(pipeline_->metrics().dead_lettered(), 38u);
}

TEST_F(PipelineTest, AReloadThatRenamesAnInputIsRefusedAndTheRunningConfigStays) {
  Start("at_least_once");
  dir_.Write("rules.yaml", ConfigText("at_least_once", "spans.renamed"));
  pipeline_->Reload("test");
  EXPECT_THAT(pipeline_->metrics().Serialize(),
              HasSubstr("triaged_config_reloads_total{result=\"failure\"} 1"));
  // Still reading `spans`: a trace there routes.
  kafka_->Append("spans", 0, kTrace, Span(kTrace, "a1"));
  kafka_->Append("feedback", 0, kTrace, ThumbsDown(kTrace));
  EXPECT_TRUE(StepUntil([&] { return kafka_->Records("review").size() == 1; }));
}

// A reloaded config that has warnings is taken, and each warning is logged (as `run` logs them at
// start).
TEST_F(PipelineTest, AReloadLogsTheNewConfigsWarnings) {
  Start("at_least_once");
  std::string text = ConfigText("at_least_once");
  const std::string review = "  review: {kind: queue, topic: review}\n";
  text.insert(text.find(review) + review.size(), "  spare: {kind: queue, topic: review}\n");
  dir_.Write("rules.yaml", text);
  ::testing::internal::CaptureStderr();
  pipeline_->Reload("test");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(pipeline_->metrics().Serialize(),
              HasSubstr("triaged_config_reloads_total{result=\"success\"} 1"));
  EXPECT_THAT(err, HasSubstr("\"msg\":\"config warning\",\"warning\":\"" + config_path_ +
                             ":11:3: warning: destination \\\"spare\\\" is not used by any "
                             "rule\""))
      << err;
}

// `run -c -` read its config from stdin once: a reload (SIGHUP, --watch) has nothing to read
// again, and says so instead of reading what is left of stdin.
TEST_F(PipelineTest, AReloadOfAConfigReadFromStdinIsRefusedAndTheRunningConfigStays) {
  run_config_path_ = "-";
  Start("at_least_once");
  ::testing::internal::CaptureStderr();
  pipeline_->Reload("test");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, HasSubstr("the config was read from stdin (-c -), which cannot be read again"));
  EXPECT_THAT(pipeline_->metrics().Serialize(),
              HasSubstr("triaged_config_reloads_total{result=\"failure\"} 1"));
  kafka_->Append("spans", 0, kTrace, Span(kTrace, "a1"));
  kafka_->Append("feedback", 0, kTrace, ThumbsDown(kTrace));
  EXPECT_TRUE(StepUntil([&] { return kafka_->Records("review").size() == 1; }));
}

TEST_F(PipelineTest, AReloadToADestinationTopicThatDoesNotExistIsRefused) {
  Start("at_least_once");
  std::string next = ConfigText("at_least_once");
  next.replace(next.find("topic: review"), 13, "topic: nowhere");
  dir_.Write("rules.yaml", next);
  pipeline_->Reload("test");
  EXPECT_THAT(pipeline_->metrics().Serialize(),
              HasSubstr("triaged_config_reloads_total{result=\"failure\"} 1"));
  kafka_->Append("spans", 0, kTrace, Span(kTrace, "a1"));
  kafka_->Append("feedback", 0, kTrace, ThumbsDown(kTrace));
  EXPECT_TRUE(StepUntil([&] { return kafka_->Records("review").size() == 1; }));
  EXPECT_FALSE(pipeline_->failed());
}

TEST_F(PipelineTest, ARevocationCommitsWhatIsSafeAndTheNextOwnerRoutesNothingTwice) {
  Start("at_least_once", OneThumbsDown);
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("review").size() == 1; }));
  kafka_->RevokeAtNextPoll();
  StepFor(std::chrono::milliseconds(200));
  // Committed synchronously at revocation, so the reassigned partitions start after the trace.
  EXPECT_EQ(Committed("spans"), 1);
  EXPECT_EQ(Committed("feedback"), 1);
  kafka_->Append("spans", 0, kOther, Span(kOther, "b1"));
  kafka_->Append("feedback", 0, kOther, ThumbsDown(kOther));
  ASSERT_TRUE(StepUntil([&] { return kafka_->Records("review").size() == 2; }));
  EXPECT_EQ(kafka_->Records("review")[1].key, kOther);
}

TEST_F(PipelineTest, ExactlyOnceRoutedItemsAndOffsetsBecomeVisibleTogether) {
  Start("exactly_once", OneThumbsDown);
  ASSERT_TRUE(StepUntil(
      [&] { return kafka_->transactions_committed > 0 && kafka_->Records("review").size() == 1; }));
  EXPECT_EQ(kafka_->Records("unit.decisions").size(), 1u);  // the pair, for the next owner
  EXPECT_TRUE(StepUntil([&] { return Committed("spans") == 1 && Committed("feedback") == 1; }));
  EXPECT_EQ(kafka_->commits, 0);  // offsets go through the transaction, never a plain commit
}

TEST_F(PipelineTest, ExactlyOnceAFailedCommitIsAbortedRewoundAndRoutedOnce) {
  Start("exactly_once", [](FakeKafka& k) {
    k.fail_next_commit = TxnError{"Broker: coordinator load in progress", false, false};
    OneThumbsDown(k);
  });
  ASSERT_TRUE(StepUntil([&] { return kafka_->transactions_aborted == 1; }));
  // Re-read from the committed offsets and decided again: one routed item in the end.
  ASSERT_TRUE(StepUntil([&] { return Committed("spans") == 1 && Committed("feedback") == 1; }));
  EXPECT_EQ(kafka_->Records("review").size(), 1u);
  EXPECT_EQ(kafka_->Records("unit.decisions").size(), 1u);
  EXPECT_FALSE(pipeline_->failed());
}

TEST_F(PipelineTest, ExactlyOnceAFencedProducerIsReplaced) {
  Start("exactly_once", [](FakeKafka& k) {
    k.fail_next_commit = TxnError{"Broker: producer fenced", /*fatal=*/true, false};
    OneThumbsDown(k);
  });
  ASSERT_TRUE(StepUntil([&] { return kafka_->producers_replaced == 1; }));
  ASSERT_TRUE(StepUntil([&] { return Committed("feedback") == 1; }));
  EXPECT_EQ(kafka_->Records("review").size(), 1u);
}

}  // namespace
}  // namespace triaged
