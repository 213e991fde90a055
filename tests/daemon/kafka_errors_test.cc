#include <gtest/gtest.h>

#include "daemon/kafka_errors.h"

namespace triaged {
namespace {

TEST(KafkaErrors, Classifies) {
  EXPECT_EQ(ClassifyKafkaError(RD_KAFKA_RESP_ERR__PARTITION_EOF), KafkaErrorClass::kIgnore);
  EXPECT_EQ(ClassifyKafkaError(RD_KAFKA_RESP_ERR__FATAL), KafkaErrorClass::kFatal);
  EXPECT_EQ(ClassifyKafkaError(RD_KAFKA_RESP_ERR_PRODUCER_FENCED), KafkaErrorClass::kFatal);
  EXPECT_EQ(ClassifyKafkaError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART), KafkaErrorClass::kFatal);
  EXPECT_EQ(ClassifyKafkaError(RD_KAFKA_RESP_ERR__TRANSPORT), KafkaErrorClass::kRetriable);
  EXPECT_EQ(ClassifyKafkaError(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS),
            KafkaErrorClass::kRetriable);
  // A code the table does not know is retriable, not a crash.
  EXPECT_EQ(ClassifyKafkaError(RD_KAFKA_RESP_ERR_POLICY_VIOLATION),
            KafkaErrorClass::kRetriable);
  EXPECT_EQ(KafkaErrorClassName(KafkaErrorClass::kFatal), "fatal");
}

}  // namespace
}  // namespace triaged
