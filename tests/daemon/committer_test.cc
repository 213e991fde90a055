// Both commit protocols against an in-memory Kafka: what each commits, when a transaction is
// begun, and how a failed one is reported and reset.
#include "daemon/committer.h"

#include <gtest/gtest.h>

#include "tests/daemon/fake_kafka.h"

namespace triaged {
namespace {

using testing::FakeKafka;

class NoListener final : public KafkaListener {
 public:
  void OnMessage(const InputMessage&) override {}
  void OnAssigned(const TopicPartitions&) override {}
  void OnRevoked(const TopicPartitions&) override {}
  void OnDelivery(void*, rd_kafka_resp_err_t, std::string_view) override {}
  void OnClientError(rd_kafka_resp_err_t, std::string_view, bool) override {}
};

class CommitterTest : public ::testing::Test {
 protected:
  CommitterTest() {
    auto rules = std::make_shared<RuleSet>();
    rules_ = rules;
    for (int32_t p : {0, 1}) {
      Partition& part = partitions_.At(p, rules_);
      // Spans offsets 0..4 consumed and decided (no trace pins them).
      for (int64_t o = 0; o < 5; ++o) part.offsets.Consumed(kSpansInput, o, {});
    }
  }
  NoListener listener_;
  std::shared_ptr<const RuleSet> rules_;
  PartitionTable partitions_{std::make_shared<EngineGroup>()};
  InputsConfig inputs_;
};

TEST_F(CommitterTest, AtLeastOnceCommitsTheCommittableOffsetsOfTheGivenPartitions) {
  FakeKafka kafka(listener_);
  auto committer = NewAtLeastOnceCommitter(kafka, partitions_, inputs_);
  const std::set<int32_t> only{1};
  committer->Commit(/*sync=*/true, &only);
  EXPECT_EQ(kafka.CommittedOffset(inputs_.spans_topic, 1), 5);
  EXPECT_EQ(kafka.CommittedOffset(inputs_.spans_topic, 0), std::nullopt);
  committer->Commit(/*sync=*/false);
  EXPECT_EQ(kafka.CommittedOffset(inputs_.spans_topic, 0), 5);
  EXPECT_TRUE(committer->BeforeProduce());
  EXPECT_TRUE(committer->rewind_reason().empty());
}

TEST_F(CommitterTest, TransactionalCommitsOffsetsOnlyInATransactionAndOnlyWhenTheyMoved) {
  FakeKafka kafka(listener_, /*transactional=*/true);
  int errors = 0;
  auto committer = NewTransactionalCommitter(kafka, partitions_, inputs_, [&] { ++errors; });
  committer->Commit(false);
  EXPECT_EQ(kafka.transactions_committed, 1);
  EXPECT_EQ(kafka.CommittedOffset(inputs_.spans_topic, 0), 5);
  EXPECT_EQ(kafka.commits, 0);
  // Nothing moved, nothing produced: no transaction.
  committer->Commit(false);
  EXPECT_EQ(kafka.transactions_committed, 1);
  EXPECT_EQ(errors, 0);
}

TEST_F(CommitterTest, TransactionalRetriableErrorTriesAgainAtTheNextCommit) {
  FakeKafka kafka(listener_, /*transactional=*/true);
  int errors = 0;
  auto committer = NewTransactionalCommitter(kafka, partitions_, inputs_, [&] { ++errors; });
  kafka.fail_next_commit = TxnError{"Broker: request timed out", false, /*retriable=*/true};
  committer->Commit(false);
  EXPECT_EQ(errors, 1);
  EXPECT_TRUE(committer->rewind_reason().empty());
  committer->Commit(false);
  EXPECT_EQ(kafka.transactions_committed, 1);
  EXPECT_EQ(kafka.CommittedOffset(inputs_.spans_topic, 1), 5);
}

TEST_F(CommitterTest, TransactionalFatalErrorAsksForARewindAndResetReplacesTheProducer) {
  FakeKafka kafka(listener_, /*transactional=*/true);
  int errors = 0;
  auto committer = NewTransactionalCommitter(kafka, partitions_, inputs_, [&] { ++errors; });
  kafka.fail_next_commit = TxnError{"Broker: producer fenced", /*fatal=*/true, false};
  committer->Commit(false);
  EXPECT_EQ(committer->rewind_reason(), "transaction commit failed");
  EXPECT_FALSE(committer->BeforeProduce());  // nothing is produced until the rewind
  EXPECT_TRUE(committer->Reset());
  EXPECT_EQ(kafka.producers_replaced, 1);
  EXPECT_TRUE(committer->rewind_reason().empty());
  EXPECT_TRUE(committer->BeforeProduce());
}

TEST_F(CommitterTest, TransactionalUndeliveredMessageAsksForARewindAndResetAborts) {
  FakeKafka kafka(listener_, /*transactional=*/true);
  auto committer = NewTransactionalCommitter(kafka, partitions_, inputs_, [] {});
  ASSERT_TRUE(committer->BeforeProduce());  // opens the transaction
  committer->ProduceFailed();
  committer->Commit(false);
  EXPECT_EQ(committer->rewind_reason(), "a message of the transaction was not delivered");
  EXPECT_TRUE(committer->Reset());
  EXPECT_EQ(kafka.transactions_aborted, 1);
  EXPECT_EQ(kafka.producers_replaced, 0);
  EXPECT_EQ(kafka.CommittedOffset(inputs_.spans_topic, 0), std::nullopt);
}

}  // namespace
}  // namespace triaged
