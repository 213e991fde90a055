#include "daemon/pipeline.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/command_util.h"
#include "daemon/embedded_broker.h"
#include "daemon/ingest.h"
#include "daemon/admin_server.h"
#include "daemon/kafka_errors.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/version.h"
#include "daemon/offset_tracker.h"
#include "rules/engine.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace triaged {
namespace {

int64_t WallNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

bool Set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
         std::string& error) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    error = key + ": " + err;
    return false;
  }
  return true;
}

// Client settings shared by the consumer and the producer; the user's `kafka.properties`
// (SASL, TLS, ...) are applied last, so they win.
ConfPtr BaseConf(const std::string& bootstrap, std::string& error) {
  ConfPtr conf(rd_kafka_conf_new());
  if (!Set(conf.get(), "bootstrap.servers", bootstrap, error) ||
      !Set(conf.get(), "client.id", "triaged", error)) {
    return nullptr;
  }
  return conf;
}

bool ApplyUserProperties(rd_kafka_conf_t* conf, const Config& config, std::string& error) {
  for (const auto& [key, value] : config.kafka.properties) {
    if (!Set(conf, key, value, error)) return false;
  }
  return true;
}

constexpr int kSpansInput = 0;
constexpr int kFeedbackInput = 1;

class Daemon;

// Per-partition state: the engine deciding this partition's traces and its offsets.
struct Partition {
  Partition(Daemon* d, int32_t id, std::shared_ptr<const RuleSet> rules,
            std::shared_ptr<EngineGroup> group, uint64_t gen)
      : daemon(d), number(id), engine(std::move(rules), std::move(group)), generation(gen) {}
  Daemon* daemon;
  int32_t number;
  Engine engine;
  PartitionOffsets offsets;
  uint64_t generation;
  int64_t next_offset[2] = {-1, -1};  // for consumer lag
  // Engine counts already added to the daemon's totals (metrics, /v1/rules).
  std::map<std::string, RuleCounters> synced_rules;
  EngineCounters synced_engine;
};

const char* InputName(int input) { return input == 0 ? "spans" : "feedback"; }

// What a delivery report needs to find its hold again.
struct Delivery {
  int32_t partition;
  uint64_t generation;
  uint64_t ticket;
};

class Daemon : public RouteSink, public EngineObserver {
 public:
  Daemon(const RunOptions& options, std::shared_ptr<const Config> config)
      : options_(options), config_(std::move(config)), metrics_(kTriagedVersion) {}
  ~Daemon() override {
    if (admin_) admin_->Stop();
    Destroy();
  }

  int Run();

  // RouteSink: produce one routed item, holding its trace's offsets until acknowledged.
  void OnRoute(const RoutedItem& item) override;
  // EngineObserver: a trace was evaluated, so it no longer pins offsets by itself.
  void OnEvaluation(const Trace& trace, Trigger, int64_t,
                    const std::vector<RuleVerdict>&) override {
    if (current_ != nullptr) current_->offsets.Decided(trace.id());
  }
  void OnClose(const Trace&, CloseReason, int64_t deadline_ns) override {
    metrics_.ObserveDecisionLatency(static_cast<double>(WallNanos() - deadline_ns) / 1e9);
  }

  void OnDelivery(const rd_kafka_message_t* msg);
  void OnClientError(rd_kafka_resp_err_t err, const char* reason);
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);

 private:
  bool Start();
  bool CheckCoPartitioned();
  void CheckOutputTopics();
  void Handle(rd_kafka_message_t* msg);
  void DeadLetter(Partition& p, int input, const rd_kafka_message_t* msg, const Error& error);
  void Produce(const std::string& topic, std::string_view key, const std::string& value,
               const std::vector<std::pair<std::string, std::string>>& headers, Delivery* opaque);
  void Tick(int64_t now);
  void Backpressure();
  void Commit(bool sync, const std::set<int32_t>* only = nullptr);
  void Reload(const char* why);
  void Shutdown();
  void Destroy();
  Partition& PartitionFor(int32_t number);
  void SyncCounters();
  void UpdateLag();
  std::string RulesJson() const;

  RunOptions options_;
  std::shared_ptr<const Config> config_;
  std::unique_ptr<EmbeddedBroker> embedded_;  // `bootstrap_servers: embedded`; outlives clients
  std::string bootstrap_;
  rd_kafka_t* consumer_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
  std::map<int32_t, std::unique_ptr<Partition>> partitions_;
  // Rate limits and max_open_traces bound the process, not each partition; limits survive
  // rebalances.
  std::shared_ptr<EngineGroup> engines_ = std::make_shared<EngineGroup>();
  Partition* current_ = nullptr;  // the partition whose engine is running
  uint64_t generation_ = 0;
  int64_t last_commit_ns_ = 0;
  int64_t last_watch_ns_ = 0;
  int64_t config_mtime_ = 0;
  uint64_t produce_errors_ = 0;
  uint64_t routed_ = 0;
  uint64_t dead_lettered_ = 0;
  bool fatal_ = false;
  bool paused_ = false;  // consumption paused while the producer queue drains
  int max_queued_ = 100'000;  // the producer's queue.buffering.max.messages

  Metrics metrics_;
  std::unique_ptr<AdminServer> admin_;
  std::atomic<bool> broker_reachable_{false};
  std::atomic<bool> partitions_assigned_{false};
  // Totals over every partition this process has owned, by rule name.
  std::map<std::string, RuleCounters> rule_totals_;
  EngineCounters engine_totals_;
  uint64_t open_traces_ = 0;
  mutable std::mutex rules_json_mu_;
  std::string rules_json_ = "{}";
};

void ErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque);

void DeliveryReport(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<Daemon*>(opaque)->OnDelivery(msg);
}

void Rebalance(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
               void* opaque) {
  static_cast<Daemon*>(opaque)->OnRebalance(err, parts);
}

int64_t FileMtime(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

bool Daemon::Start() {
  std::string error;
  bootstrap_ = config_->kafka.bootstrap_servers;
  if (bootstrap_ == "embedded") {
    Result<std::unique_ptr<EmbeddedBroker>> broker = EmbeddedBroker::Start();
    Result<bool> created = broker.ok() ? broker.value()->CreateTopicsFor(*config_) : true;
    if (!broker.ok() || !created.ok()) {
      log::Error("cannot start the embedded broker",
                 {{"error", (broker.ok() ? created.error() : broker.error()).message}});
      return false;
    }
    embedded_ = std::move(broker.value());
    bootstrap_ = embedded_->bootstrap();
    log::Info("embedded broker listening",
              {{"bootstrap", bootstrap_},
               {"partitions", std::to_string(kEmbeddedPartitions)},
               {"note", "in-memory librdkafka mock cluster, for demos; not for production"}});
  }
  // Producer: idempotent, so retries never duplicate a routed item within a session.
  ConfPtr pconf = BaseConf(bootstrap_, error);
  if (!pconf || !Set(pconf.get(), "enable.idempotence", "true", error) ||
      !Set(pconf.get(), "linger.ms", "5", error) ||
      !ApplyUserProperties(pconf.get(), *config_, error)) {
    log::Error("invalid producer settings", {{"error", error}});
    return false;
  }
  char value[64];
  size_t value_size = sizeof value;
  if (rd_kafka_conf_get(pconf.get(), "queue.buffering.max.messages", value, &value_size) ==
      RD_KAFKA_CONF_OK) {
    max_queued_ = std::max(10, std::atoi(value));
  }
  rd_kafka_conf_set_dr_msg_cb(pconf.get(), DeliveryReport);
  rd_kafka_conf_set_opaque(pconf.get(), this);
  char err[512];
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, pconf.release(), err, sizeof err);
  if (producer_ == nullptr) {
    log::Error("cannot create producer", {{"error", err}});
    return false;
  }

  // Consumer. Offsets are stored and committed by hand (at-least-once). The range assignor
  // gives partition p of both co-partitioned topics to the same member, which joining traces
  // requires; cooperative-sticky does not promise that.
  ConfPtr cconf = BaseConf(bootstrap_, error);
  if (!cconf || !Set(cconf.get(), "group.id", config_->kafka.group_id, error) ||
      !Set(cconf.get(), "enable.auto.commit", "false", error) ||
      !Set(cconf.get(), "enable.auto.offset.store", "false", error) ||
      !Set(cconf.get(), "auto.offset.reset", "earliest", error) ||
      !Set(cconf.get(), "partition.assignment.strategy", "range", error) ||
      !ApplyUserProperties(cconf.get(), *config_, error)) {
    log::Error("invalid consumer settings", {{"error", error}});
    return false;
  }
  rd_kafka_conf_set_rebalance_cb(cconf.get(), Rebalance);
  rd_kafka_conf_set_error_cb(cconf.get(), ErrorCallback);
  rd_kafka_conf_set_opaque(cconf.get(), this);
  consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, cconf.release(), err, sizeof err);
  if (consumer_ == nullptr) {
    log::Error("cannot create consumer", {{"error", err}});
    return false;
  }
  rd_kafka_poll_set_consumer(consumer_);
  if (!CheckCoPartitioned()) return false;
  broker_reachable_ = true;

  AdminProviders providers;
  providers.metrics = [this] { return metrics_.Serialize(); };
  providers.readiness = [this] {
    return Readiness{broker_reachable_.load(), partitions_assigned_.load(), true};
  };
  providers.rules_json = [this] { return RulesJson(); };
  admin_ = std::make_unique<AdminServer>(std::move(providers));
  Result<uint16_t> port = admin_->Start(config_->admin_listen);
  if (!port.ok()) {
    log::Error("cannot start the admin server",
               {{"listen", config_->admin_listen}, {"error", port.error().message}});
    return false;
  }
  log::Info("admin server listening", {{"listen", config_->admin_listen},
                                        {"port", std::to_string(port.value())}});

  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(2);
  rd_kafka_topic_partition_list_add(topics, config_->inputs.spans_topic.c_str(),
                                    RD_KAFKA_PARTITION_UA);
  rd_kafka_topic_partition_list_add(topics, config_->inputs.feedback_topic.c_str(),
                                    RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer_, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::Error("cannot subscribe", {{"error", rd_kafka_err2str(e)}});
    return false;
  }
  config_mtime_ = FileMtime(options_.config_path);
  log::Info("started", {{"bootstrap", bootstrap_},
                        {"group_id", config_->kafka.group_id},
                        {"config_version", config_->rules->config_version}});
  return true;
}

// Both inputs must have the same partition count, or traces would not meet (DESIGN §1).
bool Daemon::CheckCoPartitioned() {
  int counts[2] = {-1, -1};
  const std::string* names[2] = {&config_->inputs.spans_topic, &config_->inputs.feedback_topic};
  for (int i = 0; i < 2; ++i) {
    rd_kafka_topic_t* t = rd_kafka_topic_new(consumer_, names[i]->c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t e = rd_kafka_metadata(consumer_, 0, t, &md, 15000);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
        md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      counts[i] = md->topics[0].partition_cnt;
    } else {
      const std::string why = e != RD_KAFKA_RESP_ERR_NO_ERROR
                                  ? rd_kafka_err2str(e)
                                  : rd_kafka_err2str(md->topics[0].err);
      log::Error("cannot read topic metadata", {{"topic", *names[i]}, {"error", why}});
    }
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    if (counts[i] < 0) return false;
  }
  CheckOutputTopics();
  if (counts[0] != counts[1]) {
    log::Error("input topics are not co-partitioned: spans and feedback must have the same "
               "partition count, keyed by trace id",
               {{"spans_topic", *names[0]},
                {"spans_partitions", std::to_string(counts[0])},
                {"feedback_topic", *names[1]},
                {"feedback_partitions", std::to_string(counts[1])}});
    return false;
  }
  return true;
}

// A destination or dead-letter topic that does not exist is reported at start; it is not fatal,
// since brokers with auto.create.topics.enable create it on the first produce.
void Daemon::CheckOutputTopics() {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(consumer_, 1, nullptr, &md, 15000) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  std::set<std::string> existing;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) existing.insert(md->topics[i].topic);
  }
  rd_kafka_metadata_destroy(md);
  for (const std::string& topic : ConfigTopics(*config_)) {
    if (existing.count(topic) == 0) {
      log::Warn("output topic does not exist; producing to it fails unless the broker creates "
                "topics automatically",
                {{"topic", topic}});
    }
  }
}

Partition& Daemon::PartitionFor(int32_t number) {
  auto& slot = partitions_[number];
  if (!slot) {
    slot = std::make_unique<Partition>(this, number, config_->rules, engines_, ++generation_);
    slot->engine.set_observer(this);
  }
  return *slot;
}

void Daemon::OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (int i = 0; i < parts->cnt; ++i) PartitionFor(parts->elems[i].partition);
    partitions_assigned_ = true;
    log::Info("partitions assigned", {{"count", std::to_string(parts->cnt)}});
    rd_kafka_assign(consumer_, parts);
    return;
  }
  // Revoked: commit what is safe, then drop the open traces uncommitted; the new owner rebuilds
  // them from the committed offset.
  std::set<int32_t> revoked;
  for (int i = 0; i < parts->cnt; ++i) revoked.insert(parts->elems[i].partition);
  rd_kafka_flush(producer_, 10000);
  Commit(/*sync=*/true, &revoked);
  SyncCounters();
  for (int32_t p : revoked) partitions_.erase(p);
  partitions_assigned_ = false;
  log::Info("partitions revoked", {{"count", std::to_string(parts->cnt)}});
  rd_kafka_assign(consumer_, nullptr);
}

void Daemon::Produce(const std::string& topic, std::string_view key, const std::string& value,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     Delivery* opaque) {
  while (true) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& [name, v] : headers) {
      rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), v.data(),
                          static_cast<ssize_t>(v.size()));
    }
    const rd_kafka_resp_err_t e = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic.c_str()),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    rd_kafka_headers_destroy(hdrs);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Backpressure: serve delivery reports until there is room; never drop.
      rd_kafka_poll(producer_, 100);
      continue;
    }
    ++produce_errors_;
    metrics_.ProduceError();
    log::Error("produce failed", {{"topic", topic}, {"error", rd_kafka_err2str(e)}});
    // The hold stays: offsets are not committed past an item that was not produced.
    delete opaque;
    return;
  }
}

void Daemon::OnRoute(const RoutedItem& item) {
  Partition& p = *current_;
  auto* d = new Delivery{p.number, p.generation, p.offsets.Hold(item.trace->id())};
  ++routed_;
  metrics_.Routed(item.rule->name, item.destination->name);
  const std::string json = SerializeRoutedItem(item);
  admin_->Publish(item.rule->name, json);
  Produce(item.destination->topic, item.trace->id(), json,
          {{"triaged-rule", item.rule->name}, {"triaged-destination", item.destination->name}},
          d);
}

void Daemon::OnDelivery(const rd_kafka_message_t* msg) {
  std::unique_ptr<Delivery> d(static_cast<Delivery*>(msg->_private));
  if (!d) return;
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++produce_errors_;
    metrics_.ProduceError();
    log::Error("delivery failed", {{"topic", rd_kafka_topic_name(msg->rkt)},
                                   {"error", rd_kafka_err2str(msg->err)},
                                   {"class", std::string(KafkaErrorClassName(
                                                 ClassifyKafkaError(msg->err)))}});
    // The hold stays, so nothing past this item is committed; a fatal producer cannot deliver
    // anything else: stop, and the restart re-reads from the committed offset.
    if (ClassifyKafkaError(msg->err) == KafkaErrorClass::kFatal ||
        rd_kafka_fatal_error(producer_, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      fatal_ = true;
    }
  }
  auto it = partitions_.find(d->partition);
  if (it == partitions_.end() || it->second->generation != d->generation) return;
  it->second->offsets.Release(d->ticket, msg->err == RD_KAFKA_RESP_ERR_NO_ERROR);
}

void Daemon::DeadLetter(Partition& p, int input, const rd_kafka_message_t* msg,
                        const Error& error) {
  MessageOrigin origin;
  origin.topic = rd_kafka_topic_name(msg->rkt);
  origin.partition = msg->partition;
  origin.offset = msg->offset;
  const std::string_view payload(static_cast<const char*>(msg->payload), msg->len);
  const std::string record = DeadLetterToJson(triaged::DeadLetter{error.reason, error.message, origin, payload});
  auto* d = new Delivery{p.number, p.generation, p.offsets.HoldOffset(input, msg->offset)};
  ++dead_lettered_;
  metrics_.DeadLettered();
  metrics_.EventInvalid(InputName(input), error.reason);
  log::Warn("dead-lettered", {{"reason", error.reason},
                              {"topic", origin.topic},
                              {"partition", std::to_string(msg->partition)},
                              {"offset", std::to_string(msg->offset)}});
  Produce(config_->dead_letter_topic,
          std::string_view(static_cast<const char*>(msg->key), msg->key ? msg->key_len : 0),
          record, {{"triaged-reason", error.reason}}, d);
}

void Daemon::Handle(rd_kafka_message_t* msg) {
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const KafkaErrorClass c = ClassifyKafkaError(msg->err);
    if (c == KafkaErrorClass::kFatal) {
      log::Error("fatal consumer error", {{"error", rd_kafka_message_errstr(msg)}});
      fatal_ = true;
    } else if (c == KafkaErrorClass::kRetriable) {
      log::Warn("consumer error", {{"error", rd_kafka_message_errstr(msg)}});
    }
    return;
  }
  const std::string_view topic = rd_kafka_topic_name(msg->rkt);
  const int input = topic == config_->inputs.spans_topic ? kSpansInput : kFeedbackInput;
  Partition& p = PartitionFor(msg->partition);
  current_ = &p;
  broker_reachable_ = true;
  metrics_.EventConsumed(InputName(input));
  p.next_offset[input] = msg->offset + 1;
  const std::string_view payload(static_cast<const char*>(msg->payload),
                                 msg->payload ? msg->len : 0);
  MessageOrigin origin;
  origin.topic = topic;
  Result<DecodedMessage> decoded =
      payload.empty() ? Result<DecodedMessage>(MakeError("empty_payload", "message has no payload"))
                      : DecodeInput(config_->inputs, origin, payload);
  if (!decoded.ok()) {
    p.offsets.Consumed(input, msg->offset, {});
    DeadLetter(p, input, msg, decoded.error());
    current_ = nullptr;
    return;
  }
  std::vector<std::string> ids;
  for (const Span& s : decoded->spans) ids.push_back(s.trace_id);
  for (const Annotation& a : decoded->annotations) ids.push_back(a.trace_id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  p.offsets.Consumed(input, msg->offset, ids);
  const size_t spans = decoded->spans.size();
  const AddResult added = p.engine.Add(std::move(decoded.value()), WallNanos(), *this);
  // A trace the engine did not keep open (evaluated at once as late, or refused) pins nothing.
  for (const std::string& id : ids) {
    if (!p.engine.IsOpen(id)) p.offsets.Decided(id);
  }
  if (added.spans_rejected > 0) {
    DeadLetter(p, input, msg,
               TraceTooLargeError(added.spans_rejected, spans));
  }
  current_ = nullptr;
}

void Daemon::Tick(int64_t now) {
  for (auto& [number, p] : partitions_) {
    current_ = p.get();
    p->engine.Advance(now, *this);
  }
  current_ = nullptr;
  rd_kafka_poll(producer_, 0);
  if (now - last_commit_ns_ >= kNanosPerSecond) {
    Commit(/*sync=*/false);
    SyncCounters();
    UpdateLag();
    if (!broker_reachable_) {
      // Probe, so /readyz turns ready again once the cluster is back even with no traffic.
      const rd_kafka_metadata_t* md = nullptr;
      if (rd_kafka_metadata(consumer_, 0, nullptr, &md, 200) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        broker_reachable_ = true;
      }
      if (md != nullptr) rd_kafka_metadata_destroy(md);
    }
    last_commit_ns_ = now;
  }
  if (options_.watch && now - last_watch_ns_ >= kNanosPerSecond) {
    last_watch_ns_ = now;
    const int64_t mtime = FileMtime(options_.config_path);
    if (mtime != 0 && mtime != config_mtime_) {
      config_mtime_ = mtime;
      Reload("file changed");
    }
  }
}

// With half the producer's queue (queue.buffering.max.messages) waiting for the broker, stop
// fetching until it is back under a tenth; the consumer keeps polling, so group membership and
// rebalances are served. Memory stays bounded instead of growing with a slow or absent broker.
void Daemon::Backpressure() {
  const int queued = rd_kafka_outq_len(producer_);
  const bool pause = paused_ ? queued > max_queued_ / 10 : queued >= max_queued_ / 2;
  if (!pause && !paused_) return;
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(consumer_, &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  // Re-applied while paused, so partitions assigned meanwhile are paused too.
  if (pause) {
    rd_kafka_pause_partitions(consumer_, assigned);
  } else {
    rd_kafka_resume_partitions(consumer_, assigned);
  }
  rd_kafka_topic_partition_list_destroy(assigned);
  if (pause != paused_) {
    paused_ = pause;
    log::Warn(pause ? "producer queue full: consumption paused" : "consumption resumed",
              {{"queued", std::to_string(queued)}});
  }
}

void Daemon::Commit(bool sync, const std::set<int32_t>* only) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
  for (auto& [number, p] : partitions_) {
    if (only != nullptr && only->count(number) == 0) continue;
    for (int input : {kSpansInput, kFeedbackInput}) {
      const std::optional<int64_t> at = p->offsets.Committable(input);
      if (!at) continue;
      const std::string& topic =
          input == kSpansInput ? config_->inputs.spans_topic : config_->inputs.feedback_topic;
      rd_kafka_topic_partition_list_add(list, topic.c_str(), number)->offset = *at;
    }
  }
  if (list->cnt > 0) {
    const rd_kafka_resp_err_t e = rd_kafka_commit(consumer_, list, sync ? 0 : 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      log::Warn("commit failed", {{"error", rd_kafka_err2str(e)}});
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
}

void ErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* d = static_cast<Daemon*>(opaque);
  d->OnClientError(static_cast<rd_kafka_resp_err_t>(err), reason);
}

void Daemon::OnClientError(rd_kafka_resp_err_t err, const char* reason) {
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) broker_reachable_ = false;
  if (ClassifyKafkaError(err) == KafkaErrorClass::kFatal) fatal_ = true;
  log::Warn("kafka client error", {{"error", rd_kafka_err2str(err)}, {"reason", reason}});
}

// Adds each partition engine's counts since the last sync to the process totals, then
// publishes them (metrics, /v1/rules). Totals survive revocations and reloads.
void Daemon::SyncCounters() {
  const RuleSet& rules = *config_->rules;
  open_traces_ = 0;
  for (auto& [number, p] : partitions_) {
    const RuleSet& prs = p->engine.rules();
    const auto& counters = p->engine.rule_counters();
    for (size_t i = 0; i < prs.rules.size() && i < counters.size(); ++i) {
      RuleCounters& seen = p->synced_rules[prs.rules[i].name];
      RuleCounters& total = rule_totals_[prs.rules[i].name];
      total.matched += counters[i].matched - std::min(seen.matched, counters[i].matched);
      total.sampled_out +=
          counters[i].sampled_out - std::min(seen.sampled_out, counters[i].sampled_out);
      total.rate_limited +=
          counters[i].rate_limited - std::min(seen.rate_limited, counters[i].rate_limited);
      total.routed += counters[i].routed - std::min(seen.routed, counters[i].routed);
      seen = counters[i];
    }
    const EngineCounters& ec = p->engine.counters();
    engine_totals_.evicted_expired += ec.evicted_expired - p->synced_engine.evicted_expired;
    engine_totals_.evicted_capacity += ec.evicted_capacity - p->synced_engine.evicted_capacity;
    p->synced_engine = ec;
    open_traces_ += p->engine.open_traces();
  }
  std::vector<RuleCounters> ordered;
  for (const RuleSpec& r : rules.rules) ordered.push_back(rule_totals_[r.name]);
  metrics_.SyncRuleCounters(rules, ordered);
  metrics_.SyncEngineCounters(engine_totals_, open_traces_);

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("config_version");
  w.String(rules.config_version.c_str());
  w.Key("mode");
  w.String(rules.mode == RoutingMode::kFirstMatch ? "first_match" : "fan_out");
  w.Key("traces_open");
  w.Uint64(open_traces_);
  w.Key("rules");
  w.StartArray();
  for (size_t i = 0; i < rules.rules.size(); ++i) {
    const RuleSpec& r = rules.rules[i];
    w.StartObject();
    w.Key("name");
    w.String(r.name.c_str());
    w.Key("when");
    w.String(r.when_text.c_str());
    w.Key("route_to");
    w.StartArray();
    for (size_t d : r.destinations) w.String(rules.destinations[d].name.c_str());
    w.EndArray();
    w.Key("priority");
    w.String(r.priority.c_str());
    w.Key("sample");
    w.Double(r.sample_rate);
    w.Key("matched");
    w.Uint64(ordered[i].matched);
    w.Key("sampled_out");
    w.Uint64(ordered[i].sampled_out);
    w.Key("rate_limited");
    w.Uint64(ordered[i].rate_limited);
    w.Key("routed");
    w.Uint64(ordered[i].routed);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::lock_guard lock(rules_json_mu_);
  rules_json_.assign(buf.GetString(), buf.GetSize());
}

std::string Daemon::RulesJson() const {
  std::lock_guard lock(rules_json_mu_);
  return rules_json_;
}

// Lag per input partition: the high watermark librdkafka last saw minus the next offset to read.
void Daemon::UpdateLag() {
  for (auto& [number, p] : partitions_) {
    for (int input : {kSpansInput, kFeedbackInput}) {
      const std::string& topic =
          input == kSpansInput ? config_->inputs.spans_topic : config_->inputs.feedback_topic;
      int64_t low = -1, high = -1;
      if (rd_kafka_get_watermark_offsets(consumer_, topic.c_str(), number, &low, &high) !=
              RD_KAFKA_RESP_ERR_NO_ERROR ||
          high < 0) {
        continue;
      }
      const int64_t next = p->next_offset[input] >= 0 ? p->next_offset[input] : low;
      metrics_.SetConsumerLag(topic, number, std::max<int64_t>(0, high - next));
    }
  }
}

void Daemon::Reload(const char* why) {
  ConfigLoadResult loaded = LoadConfigFile(options_.config_path);
  if (!loaded.config) {
    std::string errors;
    for (const ConfigError& e : loaded.errors) errors += (errors.empty() ? "" : "; ") + e.ToString();
    log::Error("reload failed; the running config stays", {{"why", why}, {"errors", errors}});
    metrics_.ConfigReload(false);
    return;
  }
  if (embedded_) {
    Result<bool> created = embedded_->CreateTopicsFor(*loaded.config);
    if (!created.ok()) log::Warn("embedded broker", {{"error", created.error().message}});
  }
  config_ = loaded.config;
  for (auto& [number, p] : partitions_) p->engine.SetRuleSet(config_->rules);
  metrics_.ConfigReload(true);
  SyncCounters();
  log::Info("config reloaded", {{"why", why}, {"config_version", config_->rules->config_version}});
}

void Daemon::Shutdown() {
  // Stop consuming; decide nothing early: open traces stay uncommitted and are re-read after a
  // restart. Flush what was routed, then commit what is safe.
  log::Info("stopping");
  SyncCounters();
  rd_kafka_flush(producer_, 30000);
  Commit(/*sync=*/true);
  rd_kafka_consumer_close(consumer_);
  log::Info("stopped", {{"routed", std::to_string(routed_)},
                        {"dead_lettered", std::to_string(dead_lettered_)},
                        {"produce_errors", std::to_string(produce_errors_)}});
}

void Daemon::Destroy() {
  if (consumer_ != nullptr) rd_kafka_destroy(consumer_);
  if (producer_ != nullptr) rd_kafka_destroy(producer_);
  consumer_ = producer_ = nullptr;
}

int Daemon::Run() {
  // Signals are taken synchronously (sigtimedwait) in the loop; blocking them first keeps
  // librdkafka's threads, which inherit the mask, from receiving them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (!Start()) return 1;
  const timespec no_wait{0, 0};
  while (true) {
    const int sig = sigtimedwait(&signals, nullptr, &no_wait);
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig == SIGHUP) Reload("SIGHUP");
    Backpressure();
    if (rd_kafka_message_t* msg = rd_kafka_consumer_poll(consumer_, 100)) {
      Handle(msg);
      rd_kafka_message_destroy(msg);
    }
    Tick(WallNanos());
    if (fatal_) break;
  }
  Shutdown();
  return fatal_ ? 1 : 0;
}

}  // namespace

int RunDaemon(const RunOptions& options, std::ostream& err) {
  std::shared_ptr<const Config> config = LoadConfigOrReport(options.config_path, err);
  if (!config) return kExitConfig;
  Daemon daemon(options, config);
  return daemon.Run();
}

}  // namespace triaged
