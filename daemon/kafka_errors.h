// What to do about a librdkafka error code, decided in one place (Redpanda's
// kafka/client/errors.h): retry it, ignore it, or stop because the client cannot go on.
#pragma once

#include <librdkafka/rdkafka.h>

#include <string_view>

namespace triaged {

enum class KafkaErrorClass {
  kIgnore,     // informational (end of partition, no offset to commit)
  kRetriable,  // transient: librdkafka retries, or the next poll/commit will
  kFatal,      // the client is unusable (fenced, fatal idempotence error, bad config): exit
};

KafkaErrorClass ClassifyKafkaError(rd_kafka_resp_err_t err);
std::string_view KafkaErrorClassName(KafkaErrorClass c);

}  // namespace triaged
