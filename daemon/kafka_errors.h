// What to do about a librdkafka error code, decided in one place (Redpanda's
// kafka/client/errors.h): retry it, ignore it, or stop because the client cannot go on.
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <string>
#include <string_view>

namespace triaged {

enum class KafkaErrorClass {
  kIgnore,     // informational (end of partition, no offset to commit)
  kRetriable,  // transient: librdkafka retries, or the next poll/commit will
  kFatal,      // the client is unusable (fenced, fatal idempotence error, bad config): exit
};

KafkaErrorClass ClassifyKafkaError(rd_kafka_resp_err_t err);

// The broker (or the client, checking locally) refuses this one record, for good: too large, a
// topic that does not exist or may not be written, an invalid record. Retrying cannot help;
// the record goes to the dead-letter topic instead and the partition moves on.
bool IsRecordRefused(rd_kafka_resp_err_t err);
std::string_view KafkaErrorClassName(KafkaErrorClass c);

// Values of secret settings (names containing password, secret, token, ...) of
// kafka.properties, to be replaced by "[redacted]" wherever a message could show them.
void RememberSecrets(const std::map<std::string, std::string>& properties);
std::string Redact(std::string text);

// librdkafka's own log lines as JSON lines like ours (redacted).
void LogKafkaClientAsJson(rd_kafka_conf_t* conf);

}  // namespace triaged
