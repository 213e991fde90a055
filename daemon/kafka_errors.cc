#include "daemon/kafka_errors.h"

#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "daemon/log.h"

namespace triaged {

KafkaErrorClass ClassifyKafkaError(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
    case RD_KAFKA_RESP_ERR__NO_OFFSET: return KafkaErrorClass::kIgnore;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: return KafkaErrorClass::kFatal;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID: return KafkaErrorClass::kRetriable;
    default:
      // Unknown codes: librdkafka raises truly fatal conditions as _FATAL, so anything else is
      // treated as transient and logged.
      return KafkaErrorClass::kRetriable;
  }
}

bool IsRecordRefused(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: return true;
    default: return false;
  }
}

std::string_view KafkaErrorClassName(KafkaErrorClass c) {
  switch (c) {
    case KafkaErrorClass::kIgnore: return "ignore";
    case KafkaErrorClass::kRetriable: return "retriable";
    case KafkaErrorClass::kFatal: return "fatal";
  }
  return "retriable";
}

namespace {

std::vector<std::string>& Secrets() {
  static std::vector<std::string> secrets;
  return secrets;
}

}  // namespace

void RememberSecrets(const std::map<std::string, std::string>& properties) {
  for (const auto& [key, value] : properties) {
    for (const char* word : {"password", "secret", "token", "key.pem", "oauthbearer.config"}) {
      if (key.find(word) != std::string::npos && value.size() >= 3) Secrets().push_back(value);
    }
  }
}

std::string Redact(std::string text) {
  for (const std::string& secret : Secrets()) {
    for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
      text.replace(at, secret.size(), "[redacted]");
    }
  }
  return text;
}

namespace {

void KafkaLog(const rd_kafka_t*, int level, const char* facility, const char* message) {
  const std::initializer_list<log::Field> fields = {{"facility", facility},
                                                    {"detail", Redact(message)}};
  if (level <= 3) {
    log::LibraryError("kafka client", fields);
  } else if (level <= 5) {
    log::Warn("kafka client", fields);
  } else {
    log::Info("kafka client", fields);
  }
}

}  // namespace

void LogKafkaClientAsJson(rd_kafka_conf_t* conf) { rd_kafka_conf_set_log_cb(conf, KafkaLog); }

}  // namespace triaged
