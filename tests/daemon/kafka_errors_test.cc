#include "daemon/kafka_errors.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(ClassifyKafkaError(RD_KAFKA_RESP_ERR_POLICY_VIOLATION), KafkaErrorClass::kRetriable);
  EXPECT_EQ(KafkaErrorClassName(KafkaErrorClass::kFatal), "fatal");
}

TEST(RedactTest, SecretPropertyValuesNeverShow) {
  RememberSecrets({{"sasl.password", "hunter22"},
                   {"sasl.username", "bob"},
                   {"ssl.key.password", "kp-secret"},
                   {"sasl.oauthbearer.client.secret", "s3cr3t"},
                   {"security.protocol", "SASL_SSL"}});
  EXPECT_EQ(Redact("user bob, password hunter22 (hunter22)"),
            "user bob, password [redacted] ([redacted])");
  EXPECT_EQ(Redact("key kp-secret, client s3cr3t"), "key [redacted], client [redacted]");
  EXPECT_EQ(Redact("SASL_SSL to broker"), "SASL_SSL to broker");  // not a secret
}

}  // namespace
}  // namespace triaged
