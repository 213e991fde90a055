#include "daemon/kafka_client.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "daemon/kafka_errors.h"

namespace triaged {

Result<void> SetProperty(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    return MakeError("invalid_setting", key + ": " + Redact(err));
  }
  return {};
}

Result<KafkaConf> BaseConf(const std::string& bootstrap) {
  KafkaConf conf(rd_kafka_conf_new());
  LogKafkaClientAsJson(conf.get());
  for (const auto& [key, value] :
       {std::pair<std::string, std::string>{"bootstrap.servers", bootstrap},
        {"client.id", "triaged"}}) {
    if (Result<void> set = SetProperty(conf.get(), key, value); !set.ok()) return set.error();
  }
  return conf;
}

Result<void> ApplyUserProperties(rd_kafka_conf_t* conf, const Config& config) {
  for (const auto& [key, value] : config.kafka.properties) {
    if (Result<void> set = SetProperty(conf, key, value); !set.ok()) return set;
  }
  return {};
}

namespace {

// `settings` in order, then the user's properties.
Result<KafkaConf> ConfWith(const Config& config, const std::string& bootstrap,
                           const std::vector<std::pair<std::string, std::string>>& settings) {
  Result<KafkaConf> conf = BaseConf(bootstrap);
  if (!conf.ok()) return conf;
  for (const auto& [key, value] : settings) {
    if (Result<void> set = SetProperty(conf->get(), key, value); !set.ok()) return set.error();
  }
  if (Result<void> user = ApplyUserProperties(conf->get(), config); !user.ok()) {
    return user.error();
  }
  return conf;
}

Result<KafkaHandle> NewClient(rd_kafka_type_t type, KafkaConf conf, const char* what) {
  char err[512];
  rd_kafka_t* client = rd_kafka_new(type, conf.release(), err, sizeof err);
  if (client == nullptr)
    return MakeError("client", std::string("cannot create ") + what + ": " + err);
  return KafkaHandle(client);
}

// The callbacks a client reports to; `opaque` is passed back to each.
struct ClientCallbacks {
  void* opaque = nullptr;
  void (*error)(rd_kafka_t*, int, const char*, void*) = nullptr;
  void (*rebalance)(rd_kafka_t*, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t*,
                    void*) = nullptr;
  void (*delivery)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr;
};

void SetCallbacks(rd_kafka_conf_t* conf, const ClientCallbacks& callbacks) {
  if (callbacks.rebalance != nullptr) rd_kafka_conf_set_rebalance_cb(conf, callbacks.rebalance);
  if (callbacks.error != nullptr) rd_kafka_conf_set_error_cb(conf, callbacks.error);
  if (callbacks.delivery != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, callbacks.delivery);
  rd_kafka_conf_set_opaque(conf, callbacks.opaque);
}

// The group consumer. Offsets are stored and committed by hand. The range assignor gives
// partition p of both co-partitioned topics to the same member, which joining traces requires;
// cooperative-sticky does not promise that.
Result<KafkaHandle> NewGroupConsumer(const Config& config, const std::string& bootstrap,
                                     const std::string& instance_id,
                                     const ClientCallbacks& callbacks) {
  Result<KafkaConf> conf = ConfWith(config, bootstrap,
                                    {{"group.id", config.kafka.group_id},
                                     // Inputs written in transactions are read once committed.
                                     {"isolation.level", "read_committed"},
                                     {"enable.auto.commit", "false"},
                                     {"enable.auto.offset.store", "false"},
                                     {"auto.offset.reset", "earliest"},
                                     {"partition.assignment.strategy", "range"},
                                     {"group.instance.id", instance_id}});
  if (!conf.ok())
    return MakeError("settings", "invalid consumer settings: " + conf.error().message);
  SetCallbacks(conf->get(), callbacks);
  Result<KafkaHandle> consumer = NewClient(RD_KAFKA_CONSUMER, std::move(conf.value()), "consumer");
  if (consumer.ok()) rd_kafka_poll_set_consumer(consumer->get());
  return consumer;
}

Result<KafkaHandle> NewProducer(const Config& config, const std::string& bootstrap,
                                const std::string& transactional_id,
                                const ClientCallbacks& callbacks, int& max_queued) {
  Result<KafkaConf> conf =
      ConfWith(config, bootstrap, {{"enable.idempotence", "true"}, {"linger.ms", "5"}});
  if (conf.ok() && !transactional_id.empty()) {
    if (Result<void> set = SetProperty(conf->get(), "transactional.id", transactional_id);
        !set.ok()) {
      conf = set.error();
    }
  }
  if (!conf.ok())
    return MakeError("settings", "invalid producer settings: " + conf.error().message);
  char value[64];
  size_t value_size = sizeof value;
  if (rd_kafka_conf_get(conf->get(), "queue.buffering.max.messages", value, &value_size) ==
      RD_KAFKA_CONF_OK) {
    max_queued = std::max(10, std::atoi(value));
  }
  SetCallbacks(conf->get(), callbacks);
  Result<KafkaHandle> producer = NewClient(RD_KAFKA_PRODUCER, std::move(conf.value()), "producer");
  if (!producer.ok() || transactional_id.empty()) return producer;
  if (KafkaError e{rd_kafka_init_transactions(producer->get(), 60000)}) {
    return MakeError("transactions", "cannot initialize transactions for " + transactional_id +
                                         ": " + rd_kafka_error_string(e.get()));
  }
  return producer;
}

Result<KafkaHandle> NewDecisionsReader(const Config& config, const std::string& bootstrap) {
  Result<KafkaConf> conf = ConfWith(config, bootstrap,
                                    {{"group.id", config.kafka.group_id + ".decisions-reader"},
                                     {"enable.auto.commit", "false"},
                                     {"enable.partition.eof", "true"},
                                     {"isolation.level", "read_committed"}});
  if (!conf.ok())
    return MakeError("settings", "invalid consumer settings: " + conf.error().message);
  Result<KafkaHandle> reader =
      NewClient(RD_KAFKA_CONSUMER, std::move(conf.value()), "the decisions reader");
  if (reader.ok()) rd_kafka_poll_set_consumer(reader->get());
  return reader;
}

Result<int> PartitionCount(rd_kafka_t* client, const std::string& topic,
                           const std::function<bool()>& stop) {
  KafkaTopic t(rd_kafka_topic_new(client, topic.c_str(), nullptr));
  // Up to 15 s in 1 s steps, serving the client's errors in between: a failed authentication
  // stops it at once with the reason.
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
  KafkaMetadata md;
  for (int attempt = 0; attempt < 15 && !stop(); ++attempt) {
    const rd_kafka_metadata_t* raw = nullptr;
    e = rd_kafka_metadata(client, 0, t.get(), &raw, 1000);
    md.reset(raw);
    if (e != RD_KAFKA_RESP_ERR__TIMED_OUT && e != RD_KAFKA_RESP_ERR__TRANSPORT) break;
    KafkaMessage served(rd_kafka_consumer_poll(client, 0));
  }
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
      md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    return md->topics[0].partition_cnt;
  }
  const std::string why = e != RD_KAFKA_RESP_ERR_NO_ERROR || !md
                              ? rd_kafka_err2str(e)
                              : rd_kafka_err2str(md->topics[0].err);
  return MakeError("metadata", why);
}

std::vector<std::string> MissingTopics(rd_kafka_t* client, const std::vector<std::string>& wanted) {
  const rd_kafka_metadata_t* raw = nullptr;
  if (rd_kafka_metadata(client, 1, nullptr, &raw, 15000) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  KafkaMetadata md(raw);
  std::set<std::string> existing;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) existing.insert(md->topics[i].topic);
  }
  std::vector<std::string> missing;
  for (const std::string& topic : wanted) {
    if (existing.count(topic) == 0) missing.push_back(topic);
  }
  return missing;
}

bool ClusterAnswers(rd_kafka_t* client, int timeout_ms) {
  const rd_kafka_metadata_t* raw = nullptr;
  const bool ok =
      rd_kafka_metadata(client, 0, nullptr, &raw, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR;
  KafkaMetadata md(raw);
  return ok;
}

}  // namespace

namespace {

TopicPartitions FromList(const rd_kafka_topic_partition_list_t& list) {
  TopicPartitions out;
  out.reserve(static_cast<size_t>(list.cnt));
  for (int i = 0; i < list.cnt; ++i) {
    out.push_back({list.elems[i].topic, list.elems[i].partition, list.elems[i].offset});
  }
  return out;
}

PartitionList ToList(const TopicPartitions& partitions) {
  PartitionList list = NewPartitionList(static_cast<int>(partitions.size()) + 1);
  for (const TopicPartition& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset =
        tp.offset;
  }
  return list;
}

TxnResult TxnOutcome(rd_kafka_error_t* raw) {
  KafkaError e(raw);
  if (!e) return {};
  return TxnError{rd_kafka_error_string(e.get()), rd_kafka_error_is_fatal(e.get()) != 0,
                  rd_kafka_error_is_retriable(e.get()) != 0};
}

constexpr int kTxnTimeoutMs = 60000;

}  // namespace

LibrdkafkaClient::LibrdkafkaClient(const Config& config, std::string bootstrap,
                                   std::string instance_id, std::string transactional_id,
                                   KafkaListener& listener)
    : config_(config),
      bootstrap_(std::move(bootstrap)),
      instance_id_(std::move(instance_id)),
      transactional_id_(std::move(transactional_id)),
      listener_(listener) {}

LibrdkafkaClient::~LibrdkafkaClient() {
  // The consumer first, then the decisions reader, then the producer.
  consumer_.reset();
  decisions_reader_.reset();
  producer_.reset();
}

Result<std::unique_ptr<LibrdkafkaClient>> LibrdkafkaClient::Connect(
    const Config& config, const std::string& bootstrap, const std::string& instance_id,
    const std::string& transactional_id, KafkaListener& listener) {
  std::unique_ptr<LibrdkafkaClient> client(
      new LibrdkafkaClient(config, bootstrap, instance_id, transactional_id, listener));
  TRIAGED_TRY(client->NewConsumer());
  return client;
}

Result<void> LibrdkafkaClient::NewConsumer() {
  TRIAGED_ASSIGN_OR_RETURN(consumer_,
                           NewGroupConsumer(config_, bootstrap_, instance_id_,
                                            {this, OnConsumerError, OnRebalance, nullptr}));
  return {};
}

Result<void> LibrdkafkaClient::StartProducer() {
  // Errors of the producer are served while flushing too, so readiness sees the broker go even
  // when the loop waits on it.
  TRIAGED_ASSIGN_OR_RETURN(
      producer_, NewProducer(config_, bootstrap_, transactional_id_,
                             {this, OnProducerError, nullptr, OnDeliveryReport}, max_queued_));
  return {};
}

void LibrdkafkaClient::OnConsumerError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<LibrdkafkaClient*>(opaque)->listener_.OnClientError(
      static_cast<rd_kafka_resp_err_t>(err), reason, /*producer=*/false);
}

void LibrdkafkaClient::OnProducerError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<LibrdkafkaClient*>(opaque)->listener_.OnClientError(
      static_cast<rd_kafka_resp_err_t>(err), reason, /*producer=*/true);
}

void LibrdkafkaClient::OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                   rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* self = static_cast<LibrdkafkaClient*>(opaque);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->listener_.OnAssigned(FromList(*parts));
    rd_kafka_assign(rk, parts);
  } else {
    self->listener_.OnRevoked(FromList(*parts));
    rd_kafka_assign(rk, nullptr);
  }
}

void LibrdkafkaClient::OnDeliveryReport(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<LibrdkafkaClient*>(opaque)->listener_.OnDelivery(msg->_private, msg->err,
                                                               rd_kafka_topic_name(msg->rkt));
}

Result<void> LibrdkafkaClient::Subscribe(const std::vector<std::string>& topics) {
  PartitionList list = NewPartitionList(static_cast<int>(topics.size()));
  for (const std::string& t : topics) {
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  const rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer_.get(), list.get());
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return MakeError("subscribe", rd_kafka_err2str(e));
  return {};
}

bool LibrdkafkaClient::Poll(milliseconds wait) {
  KafkaMessage msg(rd_kafka_consumer_poll(consumer_.get(), static_cast<int>(wait.count())));
  if (!msg) return false;
  InputMessage in;
  in.err = msg->err;
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    in.error_text = rd_kafka_message_errstr(msg.get());
    listener_.OnMessage(in);
    return true;
  }
  in.topic = rd_kafka_topic_name(msg->rkt);
  in.partition = msg->partition;
  in.offset = msg->offset;
  if (msg->key != nullptr)
    in.key = std::string_view(static_cast<const char*>(msg->key), msg->key_len);
  if (msg->payload != nullptr) {
    in.payload = std::string_view(static_cast<const char*>(msg->payload), msg->len);
  }
  listener_.OnMessage(in);
  return true;
}

Result<void> LibrdkafkaClient::Commit(const TopicPartitions& offsets, bool sync,
                                      milliseconds timeout) {
  if (offsets.empty()) return {};
  PartitionList list = ToList(offsets);
  rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (!sync) {
    e = rd_kafka_commit(consumer_.get(), list.get(), 1);
  } else {
    // rd_kafka_commit's own wait has no limit: take the result from a queue of our own.
    KafkaQueue queue(rd_kafka_queue_new(consumer_.get()));
    e = rd_kafka_commit_queue(consumer_.get(), list.get(), queue.get(), nullptr, nullptr);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      KafkaEvent ev(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count())));
      if (!ev) return MakeError("commit", "no answer from the broker in time");
      e = rd_kafka_event_error(ev.get());
    }
  }
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    return MakeError("commit", rd_kafka_err2str(e));
  }
  return {};
}

Result<TopicPartitions> LibrdkafkaClient::Committed(const TopicPartitions& partitions) {
  PartitionList list = ToList(partitions);
  const rd_kafka_resp_err_t e = rd_kafka_committed(consumer_.get(), list.get(), kTxnTimeoutMs);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return MakeError("committed", rd_kafka_err2str(e));
  return FromList(*list);
}

Result<void> LibrdkafkaClient::Seek(const TopicPartitions& offsets) {
  PartitionList list = ToList(offsets);
  if (KafkaError e{rd_kafka_seek_partitions(consumer_.get(), list.get(), kTxnTimeoutMs)}) {
    return MakeError("seek", rd_kafka_error_string(e.get()));
  }
  return {};
}

void LibrdkafkaClient::PauseAssigned(bool pause) {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(consumer_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  PartitionList assigned(raw);
  if (pause) {
    rd_kafka_pause_partitions(consumer_.get(), assigned.get());
  } else {
    rd_kafka_resume_partitions(consumer_.get(), assigned.get());
  }
}

std::optional<std::pair<int64_t, int64_t>> LibrdkafkaClient::Watermarks(const std::string& topic,
                                                                        int32_t partition) {
  int64_t low = -1, high = -1;
  if (rd_kafka_get_watermark_offsets(consumer_.get(), topic.c_str(), partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      high < 0) {
    return std::nullopt;
  }
  return std::pair{low, high};
}

bool LibrdkafkaClient::Fenced() {
  return consumer_ != nullptr &&
         rd_kafka_fatal_error(consumer_.get(), nullptr, 0) == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

Result<void> LibrdkafkaClient::ReplaceConsumer() {
  // No close: the group already replaced this member, and leaving would fence the new one.
  rd_kafka_destroy_flags(consumer_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  return NewConsumer();
}

bool LibrdkafkaClient::CloseConsumer(milliseconds timeout) {
  // rd_kafka_consumer_close waits up to session.timeout.ms: close on a queue of our own, serving
  // the revocation it brings, until it is done or the time is up.
  KafkaQueue queue(rd_kafka_queue_new(consumer_.get()));
  if (KafkaError e{rd_kafka_consumer_close_queue(consumer_.get(), queue.get())}) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!rd_kafka_consumer_closed(consumer_.get())) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= milliseconds(0)) return false;
    KafkaEvent ev(
        rd_kafka_queue_poll(queue.get(), static_cast<int>(std::min<int64_t>(left.count(), 100))));
    if (ev && rd_kafka_event_type(ev.get()) == RD_KAFKA_EVENT_REBALANCE &&
        rd_kafka_event_error(ev.get()) == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      rd_kafka_assign(consumer_.get(), nullptr);
    }
  }
  return true;
}

void LibrdkafkaClient::Abandon() {
  if (producer_) {
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                        RD_KAFKA_PURGE_F_NON_BLOCKING);
  }
  // The process is about to exit. Destroying a client waits for its requests in flight, which
  // a broker that does not answer holds for up to socket.timeout.ms: let the OS reclaim them.
  (void)consumer_.release();
  (void)decisions_reader_.release();
  (void)producer_.release();
}

Result<int> LibrdkafkaClient::PartitionCount(const std::string& topic,
                                             const std::function<bool()>& stop) {
  return triaged::PartitionCount(consumer_.get(), topic, stop);
}

std::vector<std::string> LibrdkafkaClient::MissingTopics(const std::vector<std::string>& wanted) {
  // The producer's view once it exists: it is the one that will produce to them.
  return triaged::MissingTopics(producer_ ? producer_.get() : consumer_.get(), wanted);
}

bool LibrdkafkaClient::ClusterAnswers(milliseconds timeout) {
  // Asked through the producer once it exists, which also connects it.
  return triaged::ClusterAnswers(producer_ ? producer_.get() : consumer_.get(),
                                 static_cast<int>(timeout.count()));
}

rd_kafka_resp_err_t LibrdkafkaClient::Produce(const OutputRecord& record, void* opaque) {
  KafkaHeaders hdrs(rd_kafka_headers_new(record.headers.size()));
  for (const auto& [name, v] : record.headers) {
    rd_kafka_header_add(hdrs.get(), name.data(), static_cast<ssize_t>(name.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  }
  const rd_kafka_resp_err_t e = rd_kafka_producev(
      producer_.get(), RD_KAFKA_V_TOPIC(record.topic.c_str()),
      RD_KAFKA_V_PARTITION(record.partition),
      RD_KAFKA_V_KEY(const_cast<char*>(record.key.data()), record.key.size()),
      RD_KAFKA_V_VALUE(record.tombstone ? nullptr : const_cast<char*>(record.value.data()),
                       record.tombstone ? 0 : record.value.size()),
      RD_KAFKA_V_MSGFLAGS(record.value_held ? 0 : RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_HEADERS(hdrs.get()), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) hdrs.release();  // the message owns them now
  return e;
}

void LibrdkafkaClient::PollProducer(milliseconds wait) {
  rd_kafka_poll(producer_.get(), static_cast<int>(wait.count()));
}

void LibrdkafkaClient::Flush(milliseconds timeout) {
  rd_kafka_flush(producer_.get(), static_cast<int>(timeout.count()));
}

int LibrdkafkaClient::InFlight() { return rd_kafka_outq_len(producer_.get()); }

bool LibrdkafkaClient::ProducerFailed() {
  return rd_kafka_fatal_error(producer_.get(), nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

TxnResult LibrdkafkaClient::BeginTransaction() {
  return TxnOutcome(rd_kafka_begin_transaction(producer_.get()));
}

TxnResult LibrdkafkaClient::SendOffsetsToTransaction(const TopicPartitions& offsets,
                                                     milliseconds timeout) {
  PartitionList list = ToList(offsets);
  GroupMetadata group(rd_kafka_consumer_group_metadata(consumer_.get()));
  return TxnOutcome(rd_kafka_send_offsets_to_transaction(producer_.get(), list.get(), group.get(),
                                                         static_cast<int>(timeout.count())));
}

TxnResult LibrdkafkaClient::CommitTransaction(milliseconds timeout) {
  return TxnOutcome(
      rd_kafka_commit_transaction(producer_.get(), static_cast<int>(timeout.count())));
}

TxnResult LibrdkafkaClient::AbortTransaction(milliseconds timeout) {
  return TxnOutcome(rd_kafka_abort_transaction(producer_.get(), static_cast<int>(timeout.count())));
}

Result<void> LibrdkafkaClient::ReplaceProducer() {
  rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(producer_.get(), 0);  // delivery reports of the purged messages
  producer_.reset();
  return StartProducer();
}

Result<int> LibrdkafkaClient::EnsureRepartitionTopic(const std::string& topic, int partitions,
                                                     int64_t retention_ms) {
  // Called before the producer exists (the topic checks come first): any client can ask.
  return triaged::EnsureTopic(
      producer_ ? producer_.get() : consumer_.get(), topic, partitions,
      {{"cleanup.policy", "delete"}, {"retention.ms", std::to_string(retention_ms)}});
}

Result<void> LibrdkafkaClient::EnsureDecisionsTopic(const std::string& topic, int partitions,
                                                    int64_t retention_ms) {
  return triaged::EnsureDecisionsTopic(producer_.get(), topic, partitions, retention_ms);
}

Result<uint64_t> LibrdkafkaClient::ReadDecisions(const std::string& topic,
                                                 const std::vector<int32_t>& partitions,
                                                 const DecisionSink& sink) {
  if (!decisions_reader_) {
    TRIAGED_ASSIGN_OR_RETURN(decisions_reader_, NewDecisionsReader(config_, bootstrap_));
  }
  return triaged::ReadDecisions(decisions_reader_.get(), topic, partitions, sink, 120000);
}

Result<int> LibrdkafkaClient::EnsureChangelogTopic(const std::string& topic, int partitions) {
  // Compacted: the latest record of each trace is its state; a delete is a tombstone. Records
  // may be as large as a trace (max_trace_bytes).
  return triaged::EnsureTopic(producer_ ? producer_.get() : consumer_.get(), topic, partitions,
                              {{"cleanup.policy", "compact"}, {"max.message.bytes", "8388608"}});
}

Result<std::pair<int64_t, int64_t>> LibrdkafkaClient::ChangelogWatermarks(const std::string& topic,
                                                                          int32_t partition) {
  if (!decisions_reader_) {
    TRIAGED_ASSIGN_OR_RETURN(decisions_reader_, NewDecisionsReader(config_, bootstrap_));
  }
  int64_t low = -1, high = -1;
  const rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
      decisions_reader_.get(), topic.c_str(), partition, &low, &high, 10000);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return MakeError("trace_store", "cannot read the offsets of " + topic + " partition " +
                                        std::to_string(partition) + ": " + rd_kafka_err2str(e));
  }
  return std::pair{low, high};
}

Result<uint64_t> LibrdkafkaClient::ReadChangelog(const std::string& topic, int32_t partition,
                                                 int64_t from, const ChangelogSink& sink) {
  if (!decisions_reader_) {
    TRIAGED_ASSIGN_OR_RETURN(decisions_reader_, NewDecisionsReader(config_, bootstrap_));
  }
  return triaged::ReadRecords(
      decisions_reader_.get(), topic, {{partition, from}},
      [&](int32_t, int64_t offset, std::string_view key, std::optional<std::string_view> value) {
        sink(offset, key, value);
      },
      600000, "trace_store");
}

}  // namespace triaged
