#include "daemon/exactly_once.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "config/config.h"
#include "daemon/kafka_client.h"
#include "daemon/kafka_errors.h"
#include "rules/decode.h"
#include "rules/trace.h"

namespace triaged {

std::string DecisionsTopic(const Config& config) { return config.kafka.group_id + ".decisions"; }

int64_t DecisionsRetentionMs(const Config& config) {
  const RuleSet& rules = *config.rules;
  const TraceSettings& t = rules.trace;
  int64_t longest = std::max(t.max_wait_ns, t.late_feedback_window_ns);
  // A bucket's state must outlive the time its bucket takes to refill.
  for (const RuleSpec& rule : rules.rules) {
    if (rule.limit) longest = std::max(longest, rule.limit->per_ns);
  }
  for (const DestinationSpec& dest : rules.destinations) {
    if (dest.limit) longest = std::max(longest, dest.limit->per_ns);
  }
  return (longest + 3600 * kNanosPerSecond) / 1'000'000;
}

std::string DecisionRecord(const Route& route) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("trace_id");
  w.String(route.trace_id.c_str());
  w.Key("rule");
  w.String(route.rule->name.c_str());
  w.Key("destination");
  w.String(route.destination->name.c_str());
  w.Key("routed_at");
  w.String(FormatRfc3339(route.routed_at_ns).c_str());
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string DeadLetterDecisionKey(std::string_view topic, int32_t partition, int64_t offset) {
  return "dead-letter/" + std::string(topic) + "/" + std::to_string(partition) + "/" +
         std::to_string(offset);
}

std::string DeadLetterDecisionRecord(std::string_view topic, int32_t partition, int64_t offset) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("dead_letter");
  w.StartObject();
  w.Key("topic");
  w.String(topic.data(), static_cast<rapidjson::SizeType>(topic.size()));
  w.Key("partition");
  w.Int(partition);
  w.Key("offset");
  w.Int64(offset);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string BucketDecisionKey(const BucketState& bucket) {
  return "bucket/" + std::to_string(bucket.partition) + "/" +
         std::string(LimitKindName(bucket.kind)) + "/" + bucket.name;
}

std::string BucketDecisionRecord(const BucketState& bucket) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("bucket");
  w.StartObject();
  w.Key("partition");
  w.Int(bucket.partition);
  w.Key("kind");
  w.String(LimitKindName(bucket.kind).data());
  w.Key("name");
  w.String(bucket.name.c_str(), static_cast<rapidjson::SizeType>(bucket.name.size()));
  w.Key("tokens");
  w.Double(bucket.tokens);
  w.Key("at_unix_nano");
  w.Int64(bucket.at_ns);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

namespace {

Result<BucketState> ParseBucket(const rapidjson::Value& b) {
  if (!b.IsObject()) return MakeError("missing_field", "a bucket record is not an object");
  BucketState out;
  auto partition = b.FindMember("partition");
  auto kind = b.FindMember("kind");
  auto name = b.FindMember("name");
  auto tokens = b.FindMember("tokens");
  auto at = b.FindMember("at_unix_nano");
  if (partition == b.MemberEnd() || !partition->value.IsInt() || partition->value.GetInt() < 0 ||
      kind == b.MemberEnd() || !kind->value.IsString() || name == b.MemberEnd() ||
      !name->value.IsString() || tokens == b.MemberEnd() || !tokens->value.IsNumber() ||
      at == b.MemberEnd() || !at->value.IsInt64()) {
    return MakeError("missing_field",
                     "a bucket record needs partition, kind, name, tokens and at_unix_nano");
  }
  const std::string_view k(kind->value.GetString(), kind->value.GetStringLength());
  if (k == LimitKindName(LimitKind::kRule)) {
    out.kind = LimitKind::kRule;
  } else if (k == LimitKindName(LimitKind::kDestination)) {
    out.kind = LimitKind::kDestination;
  } else {
    return MakeError("invalid_field", "a bucket's kind is rule or destination");
  }
  out.partition = partition->value.GetInt();
  out.name.assign(name->value.GetString(), name->value.GetStringLength());
  out.tokens = tokens->value.GetDouble();
  out.at_ns = at->value.GetInt64();
  return out;
}

}  // namespace

Result<Decision> ParseDecisionRecord(std::string_view value) {
  rapidjson::Document d;
  d.Parse(value.data(), value.size());
  if (d.HasParseError() || !d.IsObject()) {
    return MakeError("invalid_json", "a decision record is not a JSON object");
  }
  Decision out;
  if (auto dl = d.FindMember("dead_letter"); dl != d.MemberEnd()) {
    if (!dl->value.IsObject() || !dl->value.HasMember("topic") || !dl->value["topic"].IsString() ||
        !dl->value.HasMember("offset") || !dl->value["offset"].IsInt64()) {
      return MakeError("missing_field", "a dead-letter decision needs topic and offset");
    }
    out.dead_letter_topic = dl->value["topic"].GetString();
    out.dead_letter_offset = dl->value["offset"].GetInt64();
    return out;
  }
  if (auto b = d.FindMember("bucket"); b != d.MemberEnd()) {
    Result<BucketState> bucket = ParseBucket(b->value);
    if (!bucket.ok()) return bucket.error();
    out.bucket = std::move(bucket.value());
    return out;
  }
  for (auto [key, field] : {std::pair{"trace_id", &out.trace_id},
                            {"rule", &out.rule},
                            {"destination", &out.destination}}) {
    auto it = d.FindMember(key);
    if (it == d.MemberEnd() || !it->value.IsString()) {
      return MakeError("missing_field", std::string("a decision record has no string ") + key);
    }
    field->assign(it->value.GetString(), it->value.GetStringLength());
  }
  return out;
}

// ---- instance id ----

Result<InstanceId> InstanceId::Choose(const Config& config) {
  InstanceId out;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  std::string group = config.kafka.group_id;
  for (char& c : group) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  for (int slot = 0; slot < 256; ++slot) {
    const std::string path = dir + "/triaged-" + group + "-" + std::to_string(slot) + ".lock";
    const int fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return MakeError("transactional_id", "cannot open " + path);
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      out.id_ = config.kafka.group_id + "-" + host + "-" + std::to_string(slot);
      out.lock_fd_ = fd;
      return out;
    }
    close(fd);
  }
  return MakeError("transactional_id", "256 instances of this group on one host");
}

InstanceId::InstanceId(InstanceId&& other) noexcept
    : id_(std::move(other.id_)), lock_fd_(other.lock_fd_) {
  other.lock_fd_ = -1;
}

InstanceId& InstanceId::operator=(InstanceId&& other) noexcept {
  if (this != &other) {
    if (lock_fd_ >= 0) close(lock_fd_);
    id_ = std::move(other.id_);
    lock_fd_ = other.lock_fd_;
    other.lock_fd_ = -1;
  }
  return *this;
}

InstanceId::~InstanceId() {
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

// ---- the decisions topic ----

namespace {

// The partition count of `topic`, 0 if it does not exist, -1 if the broker did not answer.
int TopicPartitionCount(rd_kafka_t* rk, const std::string& topic) {
  KafkaTopic t(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  const rd_kafka_metadata_t* raw = nullptr;
  const bool answered =
      rd_kafka_metadata(rk, 0, t.get(), &raw, 15000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  KafkaMetadata md(raw);
  if (!answered) return -1;
  return md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR
             ? md->topics[0].partition_cnt
             : 0;
}

}  // namespace

Result<int> EnsureTopic(rd_kafka_t* admin, const std::string& topic, int partitions,
                        const std::vector<std::pair<std::string, std::string>>& configs) {
  int count = TopicPartitionCount(admin, topic);
  if (count < 0) return MakeError("topic", "cannot read metadata of " + topic);
  if (count > 0) return count;
  char err[512];
  KafkaNewTopic nt(rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, err, sizeof err));
  if (!nt) return MakeError("topic", err);
  for (const auto& [name, value] : configs) {
    rd_kafka_NewTopic_set_config(nt.get(), name.c_str(), value.c_str());
  }
  KafkaQueue queue(rd_kafka_queue_new(admin));
  rd_kafka_NewTopic_t* topics[] = {nt.get()};
  rd_kafka_CreateTopics(admin, topics, 1, nullptr, queue.get());
  KafkaEvent ev(rd_kafka_queue_poll(queue.get(), 30000));
  std::string error;
  if (!ev) {
    error = "no answer to CreateTopics";
  } else if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    error = rd_kafka_event_error_string(ev.get());
  } else if (const rd_kafka_CreateTopics_result_t* res =
                 rd_kafka_event_CreateTopics_result(ev.get())) {
    size_t n = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
    for (size_t i = 0; i < n; ++i) {
      const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char* why = rd_kafka_topic_result_error_string(results[i]);
        error = why != nullptr ? why : rd_kafka_err2str(e);
      }
    }
  }
  if (!error.empty()) return MakeError("topic", "cannot create " + topic + ": " + error);
  // Metadata catches up with a new topic shortly after; wait for it (with a deadline).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((count = TopicPartitionCount(admin, topic)) <= 0 &&
         std::chrono::steady_clock::now() < deadline) {
    usleep(100'000);
  }
  if (count <= 0) return MakeError("topic", "created " + topic + " but cannot see it");
  return count;
}

Result<void> EnsureDecisionsTopic(rd_kafka_t* admin, const std::string& topic, int partitions,
                                  int64_t retention_ms) {
  Result<int> count = EnsureTopic(
      admin, topic, partitions,
      {{"cleanup.policy", "compact,delete"}, {"retention.ms", std::to_string(retention_ms)}});
  if (!count.ok()) return MakeError("decisions_topic", count.error().message);
  if (count.value() < partitions) {
    return MakeError("decisions_topic", topic + " has " + std::to_string(count.value()) +
                                            " partitions; it needs one per input partition (" +
                                            std::to_string(partitions) + ")");
  }
  return {};
}

Result<uint64_t> ReadRecords(rd_kafka_t* reader, const std::string& topic,
                             const std::vector<std::pair<int32_t, int64_t>>& from,
                             const RecordSink& sink, int timeout_ms, const char* what) {
  if (from.empty()) return uint64_t{0};
  PartitionList list = NewPartitionList(static_cast<int>(from.size()));
  for (const auto& [p, offset] : from) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = offset;
  }
  const rd_kafka_resp_err_t e = rd_kafka_assign(reader, list.get());
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return MakeError(what, std::string("cannot read ") + topic + ": " + rd_kafka_err2str(e));
  }
  std::map<int32_t, bool> at_end;
  for (const auto& [p, offset] : from) at_end[p] = false;
  size_t remaining = at_end.size();
  uint64_t read = 0;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (remaining > 0 && std::chrono::steady_clock::now() < deadline) {
    KafkaMessage msg(rd_kafka_consumer_poll(reader, 100));
    if (!msg) continue;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (auto it = at_end.find(msg->partition); it != at_end.end() && !it->second) {
        it->second = true;
        --remaining;
      }
    } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (ClassifyKafkaError(msg->err) == KafkaErrorClass::kFatal) {
        error = rd_kafka_message_errstr(msg.get());
      }
    } else {
      const std::string_view key(static_cast<const char*>(msg->key), msg->key_len);
      std::optional<std::string_view> value;
      if (msg->payload != nullptr) {
        value = std::string_view(static_cast<const char*>(msg->payload), msg->len);
      }
      sink(msg->partition, msg->offset, key, value);
      ++read;
    }
    if (!error.empty()) break;
  }
  rd_kafka_assign(reader, nullptr);
  if (!error.empty()) return MakeError(what, "reading " + topic + ": " + error);
  if (remaining > 0) return MakeError(what, "timed out reading " + topic);
  return read;
}

Result<uint64_t> ReadDecisions(rd_kafka_t* reader, const std::string& topic,
                               const std::vector<int32_t>& partitions, const DecisionSink& sink,
                               int timeout_ms) {
  std::vector<std::pair<int32_t, int64_t>> from;
  for (int32_t p : partitions) from.emplace_back(p, RD_KAFKA_OFFSET_BEGINNING);
  uint64_t parsed = 0;
  Result<uint64_t> read = ReadRecords(
      reader, topic, from,
      [&](int32_t partition, int64_t, std::string_view, std::optional<std::string_view> value) {
        if (!value) return;
        Result<Decision> d = ParseDecisionRecord(*value);
        if (d.ok()) {
          sink(partition, d.value());
          ++parsed;
        }
      },
      timeout_ms, "decisions_topic");
  if (!read.ok()) return read.error();
  return parsed;
}

}  // namespace triaged
