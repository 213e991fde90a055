#include "daemon/pipeline.h"

#include <librdkafka/rdkafka.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/admin_server.h"
#include "daemon/command_util.h"
#include "daemon/embedded_broker.h"
#include "daemon/exactly_once.h"
#include "daemon/ingest.h"
#include "daemon/kafka_errors.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/offset_tracker.h"
#include "daemon/version.h"
#include "rules/engine.h"

namespace triaged {
namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

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
    error = key + ": " + Redact(err);
    return false;
  }
  return true;
}

// Client settings shared by the consumer and the producer; the user's `kafka.properties`
// (SASL, TLS, ...) are applied last, so they win.
ConfPtr BaseConf(const std::string& bootstrap, std::string& error) {
  ConfPtr conf(rd_kafka_conf_new());
  LogKafkaClientAsJson(conf.get());
  if (!Set(conf.get(), "bootstrap.servers", bootstrap, error) ||
      !Set(conf.get(), "client.id", "triaged", error)) {
    return nullptr;
  }
  return conf;
}

// `transactional.id` of kafka.properties, else the instance's name.
std::string TransactionalIdOf(const Config& config, const InstanceId& instance) {
  auto it = config.kafka.properties.find("transactional.id");
  return it != config.kafka.properties.end() ? it->second : instance.id();
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
  // Exactly-once: input offsets an earlier process already dead-lettered (from the decisions
  // topic), by input; forgotten once the committed offset passes them.
  std::set<int64_t> dead_lettered[2];
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
  int64_t routed_at_ns = 0;  // steady clock, routed items only
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
  void OnClientError(rd_kafka_resp_err_t err, const char* reason, bool producer = false);
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);

 private:
  bool Start();
  bool CreateConsumer();
  bool Subscribe();
  void Rejoin();
  std::vector<int32_t> ForgetPartitions();
  bool ResetTransaction();
  // The consumer's fatal error is FENCED_INSTANCE_ID (another join with our instance id).
  bool FencedMember() const {
    return consumer_ != nullptr && rd_kafka_fatal_error(consumer_, nullptr, 0) ==
                                       RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
  }
  bool CreateProducer();
  bool CreateDecisionsReader();
  bool SeedDecisions(const std::vector<int32_t>& numbers);
  // Exactly-once: the transaction holding what was routed since the last commit.
  bool BeginTransaction();
  void CommitTransaction();
  void HandleTransactionError(rd_kafka_error_t* error, const char* during);
  void Recover();
  void Rewind(const std::string& why);
  rd_kafka_topic_partition_list_t* CommittableOffsets(const std::set<int32_t>* only,
                                                      bool changed_only);
  bool CheckCoPartitioned();
  void CheckOutputTopics();
  void Handle(rd_kafka_message_t* msg);
  void DeadLetter(Partition& p, int input, const rd_kafka_message_t* msg, const Error& error);
  void Produce(const std::string& topic, std::string_view key, const std::string& value,
               const std::vector<std::pair<std::string, std::string>>& headers, Delivery* opaque,
               int32_t partition = RD_KAFKA_PARTITION_UA);
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
  // Exactly-once (guarantee: exactly_once).
  bool eos_ = false;
  int input_partitions_ = 0;
  std::optional<InstanceId> instance_;
  rd_kafka_t* decisions_reader_ = nullptr;
  std::string decisions_topic_;
  bool txn_open_ = false;
  bool txn_failed_ = false;  // a message of the open transaction was not delivered
  // A failed transaction waiting for Recover() in the main loop (never inside an engine
  // callback): nothing is produced or committed meanwhile.
  std::string rewind_why_;
  // The group fenced this member (static membership, after a coordinator restart): a new
  // consumer rejoins in the main loop, at most kMaxRejoins times in kRejoinWindow.
  std::string rejoin_why_;
  std::deque<int64_t> rejoins_;
  static constexpr size_t kMaxRejoins = 3;
  static constexpr int64_t kRejoinWindowNs = 600 * kNanosPerSecond;
  // When the main loop last went round (steady clock): a loop stuck in a call to a broker that
  // is gone is not ready, whatever the last callback said.
  std::atomic<int64_t> loop_at_ns_{0};
  bool producer_fatal_ = false;
  std::map<std::pair<int, int32_t>, int64_t> committed_;  // (input, partition) -> offset
  int max_queued_ = 100'000;  // the producer's queue.buffering.max.messages

  Metrics metrics_;
  std::unique_ptr<AdminServer> admin_;
  std::atomic<bool> broker_reachable_{false};
  std::atomic<bool> partitions_assigned_{false};
  // Totals over every partition this process has owned, by rule name.
  std::map<std::string, RuleCounters> rule_totals_;
  EngineCounters engine_totals_;
  uint64_t open_traces_ = 0;
  uint64_t consumed_ = 0;
  int64_t lag_total_ = 0;
  std::map<std::string, uint64_t> routed_by_destination_;
  // The last routed items, newest last, for the status page.
  struct Recent {
    int64_t routed_at_ns;
    std::string trace_id, rule, destination, trigger, priority, when;
  };
  std::deque<Recent> recent_;
  static constexpr size_t kRecentItems = 25;
  mutable std::mutex rules_json_mu_;  // guards rules_json_ and status_json_
  std::string rules_json_ = "{}";
  std::string status_json_ = "{}";
  std::string StatusJson() const;
  void BuildStatusJson(const RuleSet& rules);
};

void ErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque);
void ProducerErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque);

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

bool Daemon::CreateProducer() {
  std::string error;
  // Idempotent, so retries never duplicate a routed item within a session; transactional for
  // exactly-once.
  ConfPtr pconf = BaseConf(bootstrap_, error);
  if (!pconf || !Set(pconf.get(), "enable.idempotence", "true", error) ||
      !Set(pconf.get(), "linger.ms", "5", error) ||
      !ApplyUserProperties(pconf.get(), *config_, error) ||
      (eos_ &&
       !Set(pconf.get(), "transactional.id", TransactionalIdOf(*config_, *instance_), error))) {
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
  // Served while flushing too, so /readyz sees the broker go even when the loop waits on it.
  rd_kafka_conf_set_error_cb(pconf.get(), ProducerErrorCallback);
  rd_kafka_conf_set_opaque(pconf.get(), this);
  char err[512];
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, pconf.release(), err, sizeof err);
  if (producer_ == nullptr) {
    log::Error("cannot create producer", {{"error", err}});
    return false;
  }
  if (eos_) {
    // Fences an earlier producer with this id and aborts what it left open.
    if (rd_kafka_error_t* e = rd_kafka_init_transactions(producer_, 60000)) {
      log::Error("cannot initialize transactions",
                 {{"transactional_id", TransactionalIdOf(*config_, *instance_)},
                  {"error", rd_kafka_error_string(e)}});
      rd_kafka_error_destroy(e);
      return false;
    }
    log::Info("transactions initialized",
              {{"transactional_id", TransactionalIdOf(*config_, *instance_)}});
  }
  return true;
}

// A plain consumer (no group membership) that reads decision records on assignment.
bool Daemon::CreateDecisionsReader() {
  std::string error;
  ConfPtr conf = BaseConf(bootstrap_, error);
  if (!conf || !Set(conf.get(), "group.id", config_->kafka.group_id + ".decisions-reader", error) ||
      !Set(conf.get(), "enable.auto.commit", "false", error) ||
      !Set(conf.get(), "enable.partition.eof", "true", error) ||
      !Set(conf.get(), "isolation.level", "read_committed", error) ||
      !ApplyUserProperties(conf.get(), *config_, error)) {
    log::Error("invalid consumer settings", {{"error", error}});
    return false;
  }
  char err[512];
  decisions_reader_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf.release(), err, sizeof err);
  if (decisions_reader_ == nullptr) {
    log::Error("cannot create the decisions reader", {{"error", err}});
    return false;
  }
  rd_kafka_poll_set_consumer(decisions_reader_);
  return true;
}

// Marks every pair routed by earlier processes for these partitions (exactly-once).
bool Daemon::SeedDecisions(const std::vector<int32_t>& numbers) {
  Result<uint64_t> read = ReadDecisions(
      decisions_reader_, decisions_topic_, numbers,
      [this](int32_t partition, const Decision& d) {
        auto it = partitions_.find(partition);
        if (it == partitions_.end()) return;
        Partition& p = *it->second;
        if (d.dead_letter_offset >= 0) {
          const int input =
              d.dead_letter_topic == config_->inputs.spans_topic ? kSpansInput : kFeedbackInput;
          p.dead_lettered[input].insert(d.dead_letter_offset);
        } else {
          p.engine.SeedRouted(d.trace_id, d.rule, d.destination);
        }
      },
      120000);
  if (!read.ok()) {
    log::Error("cannot read the decisions topic", {{"error", read.error().message}});
    return false;
  }
  log::Info("decisions read", {{"topic", decisions_topic_},
                               {"partitions", std::to_string(numbers.size())},
                               {"records", std::to_string(read.value())}});
  return true;
}

bool Daemon::Start() {
  std::string error;
  RememberSecrets(config_->kafka.properties);
  bootstrap_ = config_->kafka.bootstrap_servers;
  if (bootstrap_ == "embedded") {
    Result<std::unique_ptr<EmbeddedBroker>> broker = EmbeddedBroker::Start();
    Result<void> created = broker.ok() ? broker.value()->CreateTopicsFor(*config_) : Result<void>();
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
  eos_ = config_->kafka.guarantee == Guarantee::kExactlyOnce;
  decisions_topic_ = DecisionsTopic(*config_);
  Result<InstanceId> instance = InstanceId::Choose(*config_);
  if (!instance.ok()) {
    log::Error("cannot choose an instance id", {{"error", instance.error().message}});
    return false;
  }
  instance_.emplace(std::move(instance.value()));
  if (eos_ && embedded_) embedded_->CreateTopic(decisions_topic_, kEmbeddedPartitions);

  if (!CreateConsumer()) return false;
  if (!CheckCoPartitioned()) return false;
  if (!CreateProducer()) return false;
  // Connects the producer to the cluster now rather than with the first routed item.
  if (const rd_kafka_metadata_t* md = nullptr;
      rd_kafka_metadata(producer_, 1, nullptr, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_metadata_destroy(md);
  }
  if (eos_) {
    Result<void> ensured = EnsureDecisionsTopic(producer_, decisions_topic_, input_partitions_,
                                                DecisionsRetentionMs(*config_));
    if (!ensured.ok()) {
      log::Error("exactly_once needs the decisions topic", {{"error", ensured.error().message}});
      return false;
    }
    if (!CreateDecisionsReader()) return false;
  }
  broker_reachable_ = true;

  AdminProviders providers;
  providers.metrics = [this] { return metrics_.Serialize(); };
  providers.readiness = [this] {
    // A main loop stuck for seconds is waiting on a broker that does not answer.
    const bool looping = SteadyNanos() - loop_at_ns_.load() < 5 * kNanosPerSecond;
    return Readiness{broker_reachable_.load() && looping, partitions_assigned_.load(), true};
  };
  providers.rules_json = [this] { return RulesJson(); };
  providers.status_json = [this] { return StatusJson(); };
  admin_ = std::make_unique<AdminServer>(std::move(providers));
  Result<uint16_t> port = admin_->Start(config_->admin_listen);
  if (!port.ok()) {
    log::Error("cannot start the admin server",
               {{"listen", config_->admin_listen}, {"error", port.error().message}});
    return false;
  }
  log::Info("admin server listening",
            {{"listen", config_->admin_listen}, {"port", std::to_string(port.value())}});

  if (!Subscribe()) return false;
  config_mtime_ = FileMtime(options_.config_path);
  log::Info("started", {{"bootstrap", bootstrap_},
                        {"group_id", config_->kafka.group_id},
                        {"guarantee", eos_ ? "exactly_once" : "at_least_once"},
                        {"instance", instance_->id()},
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
    // Up to 15 s in 1 s steps, serving the client's errors in between: a failed
    // authentication stops it at once (OnClientError) with the reason.
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (int attempt = 0; attempt < 15 && !fatal_; ++attempt) {
      e = rd_kafka_metadata(consumer_, 0, t, &md, 1000);
      if (e != RD_KAFKA_RESP_ERR__TIMED_OUT && e != RD_KAFKA_RESP_ERR__TRANSPORT) break;
      if (rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_, 0)) rd_kafka_message_destroy(m);
    }
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
        md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      counts[i] = md->topics[0].partition_cnt;
    } else if (!fatal_) {
      const std::string why = e != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(e)
                                                              : rd_kafka_err2str(md->topics[0].err);
      log::Error("cannot read topic metadata", {{"topic", *names[i]}, {"error", why}});
    }
    if (md != nullptr) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    if (counts[i] < 0) return false;
  }
  CheckOutputTopics();
  input_partitions_ = counts[0];
  if (counts[0] != counts[1]) {
    log::Error(
        "input topics are not co-partitioned: spans and feedback must have the same "
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
      log::Warn(
          "output topic does not exist; producing to it fails unless the broker creates "
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
    std::set<int32_t> numbers;
    for (int i = 0; i < parts->cnt; ++i) {
      if (partitions_.count(parts->elems[i].partition) == 0)
        numbers.insert(parts->elems[i].partition);
      PartitionFor(parts->elems[i].partition);
    }
    if (eos_ && !SeedDecisions({numbers.begin(), numbers.end()})) {
      // Without them a pair routed by the previous owner could be routed again: stop.
      fatal_ = true;
    }
    partitions_assigned_ = true;
    log::Info("partitions assigned", {{"count", std::to_string(parts->cnt)}});
    rd_kafka_assign(consumer_, parts);
    return;
  }
  // Revoked: commit what is safe, then drop the open traces uncommitted; the new owner rebuilds
  // them from the committed offset.
  std::set<int32_t> revoked;
  for (int i = 0; i < parts->cnt; ++i) revoked.insert(parts->elems[i].partition);
  if (eos_) {
    CommitTransaction();
  } else {
    rd_kafka_flush(producer_, 10000);
    Commit(/*sync=*/true, &revoked);
  }
  SyncCounters();
  for (int32_t p : revoked) {
    partitions_.erase(p);
    committed_.erase({kSpansInput, p});
    committed_.erase({kFeedbackInput, p});
  }
  partitions_assigned_ = false;
  log::Info("partitions revoked", {{"count", std::to_string(parts->cnt)}});
  rd_kafka_assign(consumer_, nullptr);
}

void Daemon::Produce(const std::string& topic, std::string_view key, const std::string& value,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     Delivery* opaque, int32_t partition) {
  while (true) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& [name, v] : headers) {
      rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), v.data(),
                          static_cast<ssize_t>(v.size()));
    }
    const rd_kafka_resp_err_t e = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
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
    txn_failed_ = true;
    log::Error("produce failed", {{"topic", topic}, {"error", rd_kafka_err2str(e)}});
    // The hold stays: offsets are not committed past an item that was not produced.
    delete opaque;
    return;
  }
}

void Daemon::OnRoute(const RoutedItem& item) {
  Partition& p = *current_;
  if (eos_ && (!rewind_why_.empty() || !BeginTransaction())) return;
  auto* d = new Delivery{p.number, p.generation, p.offsets.Hold(item.trace->id()), SteadyNanos()};
  ++routed_;
  metrics_.Routed(item.rule->name, item.destination->name);
  ++routed_by_destination_[item.destination->name];
  recent_.push_back({item.routed_at_ns, item.trace->id(), item.rule->name, item.destination->name,
                     std::string(TriggerName(item.trigger)), item.rule->priority,
                     item.rule->when_text});
  if (recent_.size() > kRecentItems) recent_.pop_front();
  const std::string json = SerializeRoutedItem(item);
  admin_->Publish(item.rule->name, json);
  Produce(item.destination->topic, item.trace->id(), json,
          {{"triaged-rule", item.rule->name}, {"triaged-destination", item.destination->name}}, d);
  if (eos_) {
    // In the same transaction: the pair is routed, for whoever owns this partition next.
    Produce(decisions_topic_,
            RoutedItemId(item.trace->id(), item.rule->name, item.destination->name),
            DecisionRecord(item), {}, nullptr, p.number);
  }
}

void Daemon::OnDelivery(const rd_kafka_message_t* msg) {
  std::unique_ptr<Delivery> d(static_cast<Delivery*>(msg->_private));
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    txn_failed_ = true;  // exactly-once: the transaction is aborted and the input re-read
    ++produce_errors_;
    metrics_.ProduceError();
    log::Error("delivery failed",
               {{"topic", rd_kafka_topic_name(msg->rkt)},
                {"error", rd_kafka_err2str(msg->err)},
                {"class", std::string(KafkaErrorClassName(ClassifyKafkaError(msg->err)))}});
    // The hold stays, so nothing past this item is committed; a fatal producer cannot deliver
    // anything else: stop, and the restart re-reads from the committed offset.
    if (!eos_ && (ClassifyKafkaError(msg->err) == KafkaErrorClass::kFatal ||
                  rd_kafka_fatal_error(producer_, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)) {
      fatal_ = true;
    }
  }
  if (!d) return;
  if (d->routed_at_ns != 0 && msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    metrics_.ObserveRouteAckLatency(static_cast<double>(SteadyNanos() - d->routed_at_ns) / 1e9);
  }
  auto it = partitions_.find(d->partition);
  if (it == partitions_.end() || it->second->generation != d->generation) return;
  it->second->offsets.Release(d->ticket, msg->err == RD_KAFKA_RESP_ERR_NO_ERROR);
}

void Daemon::DeadLetter(Partition& p, int input, const rd_kafka_message_t* msg,
                        const Error& error) {
  if (eos_ && p.dead_lettered[input].count(msg->offset) > 0) return;  // sent by an earlier run
  MessageOrigin origin;
  origin.topic = rd_kafka_topic_name(msg->rkt);
  origin.partition = msg->partition;
  origin.offset = msg->offset;
  const std::string_view payload(static_cast<const char*>(msg->payload), msg->len);
  const std::string record =
      DeadLetterToJson(triaged::DeadLetter{error.reason, error.message, origin, payload});
  if (eos_ && (!rewind_why_.empty() || !BeginTransaction())) return;
  auto* d = new Delivery{p.number, p.generation, p.offsets.HoldOffset(input, msg->offset)};
  ++dead_lettered_;
  metrics_.DeadLettered();
  metrics_.EventInvalid(InputName(input), error.reason);
  log::Warn("dead-lettered", {{"reason", error.reason},
                              {"topic", origin.topic},
                              {"partition", std::to_string(msg->partition)},
                              {"offset", std::to_string(msg->offset)}});
  Produce(config_->dead_letter_topic,
          std::string_view(static_cast<const char*>(msg->key), msg->key ? msg->key_len : 0), record,
          {{"triaged-reason", error.reason}}, d);
  if (eos_) {
    Produce(decisions_topic_, DeadLetterDecisionKey(origin.topic, msg->partition, msg->offset),
            DeadLetterDecisionRecord(origin.topic, msg->partition, msg->offset), {}, nullptr,
            p.number);
  }
}

void Daemon::Handle(rd_kafka_message_t* msg) {
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const KafkaErrorClass c = ClassifyKafkaError(msg->err);
    if (c == KafkaErrorClass::kFatal && FencedMember()) {
      rejoin_why_ = rd_kafka_message_errstr(msg);
    } else if (c == KafkaErrorClass::kFatal) {
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
  ++consumed_;
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
    DeadLetter(p, input, msg, TraceTooLargeError(added.spans_rejected, spans));
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

// The offsets that are safe to commit; with `changed_only`, only those not committed yet.
rd_kafka_topic_partition_list_t* Daemon::CommittableOffsets(const std::set<int32_t>* only,
                                                            bool changed_only) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
  for (auto& [number, p] : partitions_) {
    if (only != nullptr && only->count(number) == 0) continue;
    for (int input : {kSpansInput, kFeedbackInput}) {
      const std::optional<int64_t> at = p->offsets.Committable(input);
      if (!at) continue;
      if (changed_only) {
        auto it = committed_.find({input, number});
        if (it != committed_.end() && it->second == *at) continue;
      }
      const std::string& topic =
          input == kSpansInput ? config_->inputs.spans_topic : config_->inputs.feedback_topic;
      rd_kafka_topic_partition_list_add(list, topic.c_str(), number)->offset = *at;
    }
  }
  return list;
}

void Daemon::Commit(bool sync, const std::set<int32_t>* only) {
  if (eos_) {
    CommitTransaction();
    return;
  }
  rd_kafka_topic_partition_list_t* list = CommittableOffsets(only, /*changed_only=*/false);
  if (list->cnt > 0) {
    const rd_kafka_resp_err_t e = rd_kafka_commit(consumer_, list, sync ? 0 : 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      log::Warn("commit failed", {{"error", rd_kafka_err2str(e)}});
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
}

bool Daemon::BeginTransaction() {
  if (txn_open_) return true;
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(producer_)) {
    HandleTransactionError(e, "begin");
    return false;
  }
  txn_open_ = true;
  return true;
}

// Routed items, dead letters and decision records of the open transaction, with the input
// offsets they make safe, committed atomically. Nothing to commit, no transaction.
void Daemon::CommitTransaction() {
  if (!rewind_why_.empty()) return;
  if (txn_open_) {
    // Every message of the transaction acknowledged, so the holds it pinned are released.
    rd_kafka_flush(producer_, 60000);
    if (txn_failed_ || rd_kafka_outq_len(producer_) > 0) {
      rewind_why_ = "a message of the transaction was not delivered";
      return;
    }
  }
  rd_kafka_topic_partition_list_t* offsets = CommittableOffsets(nullptr, /*changed_only=*/true);
  if (!txn_open_ && offsets->cnt == 0) {
    rd_kafka_topic_partition_list_destroy(offsets);
    return;
  }
  if (!BeginTransaction()) {
    rd_kafka_topic_partition_list_destroy(offsets);
    return;
  }
  if (offsets->cnt > 0) {
    rd_kafka_consumer_group_metadata_t* group = rd_kafka_consumer_group_metadata(consumer_);
    rd_kafka_error_t* e = rd_kafka_send_offsets_to_transaction(producer_, offsets, group, 60000);
    rd_kafka_consumer_group_metadata_destroy(group);
    if (e != nullptr) {
      rd_kafka_topic_partition_list_destroy(offsets);
      HandleTransactionError(e, "send_offsets_to_transaction");
      return;
    }
  }
  if (rd_kafka_error_t* e = rd_kafka_commit_transaction(producer_, 60000)) {
    rd_kafka_topic_partition_list_destroy(offsets);
    HandleTransactionError(e, "commit");
    return;
  }
  txn_open_ = false;
  for (int i = 0; i < offsets->cnt; ++i) {
    const rd_kafka_topic_partition_t& o = offsets->elems[i];
    const int input = config_->inputs.spans_topic == o.topic ? kSpansInput : kFeedbackInput;
    committed_[{input, o.partition}] = o.offset;
    if (auto it = partitions_.find(o.partition); it != partitions_.end()) {
      std::set<int64_t>& done = it->second->dead_lettered[input];
      done.erase(done.begin(), done.lower_bound(o.offset));
    }
  }
  rd_kafka_topic_partition_list_destroy(offsets);
}

// A failed transaction is retried when the error says so, else recovered from in the main loop.
void Daemon::HandleTransactionError(rd_kafka_error_t* error, const char* during) {
  const bool fatal = rd_kafka_error_is_fatal(error);
  const bool retriable = rd_kafka_error_is_retriable(error);
  log::Warn("transaction failed", {{"during", during},
                                   {"error", rd_kafka_error_string(error)},
                                   {"fatal", fatal ? "true" : "false"}});
  rd_kafka_error_destroy(error);
  ++produce_errors_;
  metrics_.ProduceError();
  if (retriable && !fatal && txn_open_) return;  // the next commit tries again
  producer_fatal_ = producer_fatal_ || fatal;
  rewind_why_ = std::string("transaction ") + during + " failed";
}

// Aborts the failed transaction — or, when the producer is fenced or otherwise unusable,
// replaces it (the new one fences it for good) — then rewinds.
// The group consumer. Offsets are stored and committed by hand. The range assignor gives
// partition p of both co-partitioned topics to the same member, which joining traces requires;
// cooperative-sticky does not promise that.
bool Daemon::CreateConsumer() {
  std::string error;
  ConfPtr cconf = BaseConf(bootstrap_, error);
  char err[512];
  if (!cconf || !Set(cconf.get(), "group.id", config_->kafka.group_id, error) ||
      // Inputs written in transactions are read once committed; aborted ones never.
      !Set(cconf.get(), "isolation.level", "read_committed", error) ||
      !Set(cconf.get(), "enable.auto.commit", "false", error) ||
      !Set(cconf.get(), "enable.auto.offset.store", "false", error) ||
      !Set(cconf.get(), "auto.offset.reset", "earliest", error) ||
      !Set(cconf.get(), "partition.assignment.strategy", "range", error) ||
      !Set(cconf.get(), "group.instance.id", instance_->id(), error) ||
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
  return true;
}

bool Daemon::Subscribe() {
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
  return true;
}

// A fenced member cannot consume or commit again; a process restart would rejoin with a new
// consumer and re-read from the committed offsets. Do that here, keeping the process (and
// its admin server, metrics and producer) up: abort the open transaction, forget every
// partition's state, replace the consumer. The new assignment seeds and re-reads as usual.
// Drops every partition's state (open traces, holds, committed offsets) after adding its
// counts to the totals; returns the partition numbers it held.
std::vector<int32_t> Daemon::ForgetPartitions() {
  SyncCounters();
  std::vector<int32_t> numbers;
  for (const auto& [number, p] : partitions_) numbers.push_back(number);
  partitions_.clear();
  committed_.clear();
  return numbers;
}

void Daemon::Rejoin() {
  const std::string why = rejoin_why_;
  rejoin_why_.clear();
  const int64_t now = SteadyNanos();
  while (!rejoins_.empty() && now - rejoins_.front() > kRejoinWindowNs) rejoins_.pop_front();
  if (rejoins_.size() >= kMaxRejoins) {
    log::Error("fenced again: another process uses this group.instance.id",
               {{"why", why}, {"rejoins", std::to_string(rejoins_.size())}});
    fatal_ = true;
    return;
  }
  rejoins_.push_back(now);
  log::Warn("rejoining the group with a new consumer", {{"why", why}});
  if (eos_ && !ResetTransaction()) return;
  ForgetPartitions();
  partitions_assigned_ = false;
  // No close: the group already replaced this member, and leaving would fence the new one.
  rd_kafka_destroy_flags(consumer_, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  consumer_ = nullptr;
  if (!CreateConsumer() || !Subscribe()) fatal_ = true;
}

// Aborts the open transaction, or replaces a producer that cannot abort. False when no producer
// could be made (fatal_ is set).
bool Daemon::ResetTransaction() {
  if (!producer_fatal_ && txn_open_) {
    if (rd_kafka_error_t* e = rd_kafka_abort_transaction(producer_, 60000)) {
      log::Warn("abort failed; starting a new producer", {{"error", rd_kafka_error_string(e)}});
      producer_fatal_ = true;
      rd_kafka_error_destroy(e);
    }
  }
  if (producer_fatal_) {
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(producer_, 0);  // delivery reports of the purged messages
    rd_kafka_destroy(producer_);
    producer_ = nullptr;
    if (!CreateProducer()) {
      fatal_ = true;
      return false;
    }
  }
  txn_open_ = false;
  producer_fatal_ = false;
  return true;
}

void Daemon::Recover() {
  if (!ResetTransaction()) return;
  const std::string why = rewind_why_;
  rewind_why_.clear();
  Rewind(why);
}

// Exactly-once recovery: forget every partition's state, seed the decisions again and seek the
// inputs back to their committed offsets, so what the aborted transaction held is decided
// again (and only what was not routed before is routed).
void Daemon::Rewind(const std::string& why) {
  txn_failed_ = false;
  const std::vector<int32_t> numbers = ForgetPartitions();
  log::Warn("rewinding to the committed offsets",
            {{"why", why}, {"partitions", std::to_string(numbers.size())}});
  if (numbers.empty()) return;
  for (int32_t n : numbers) PartitionFor(n);
  if (!SeedDecisions(numbers)) {
    fatal_ = true;
    return;
  }
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(8);
  for (int32_t n : numbers) {
    rd_kafka_topic_partition_list_add(list, config_->inputs.spans_topic.c_str(), n);
    rd_kafka_topic_partition_list_add(list, config_->inputs.feedback_topic.c_str(), n);
  }
  if (FencedMember()) {
    // A new consumer re-reads from the committed offsets anyway.
    rejoin_why_ = "fenced while rewinding";
    rd_kafka_topic_partition_list_destroy(list);
    return;
  }
  rd_kafka_resp_err_t e = rd_kafka_committed(consumer_, list, 60000);
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i) {
      if (list->elems[i].offset < 0) list->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (rd_kafka_error_t* se = rd_kafka_seek_partitions(consumer_, list, 60000)) {
      log::Error("cannot seek to the committed offsets", {{"error", rd_kafka_error_string(se)}});
      rd_kafka_error_destroy(se);
      fatal_ = true;
    }
  } else {
    log::Error("cannot read the committed offsets", {{"error", rd_kafka_err2str(e)}});
    fatal_ = true;
  }
  rd_kafka_topic_partition_list_destroy(list);
}

void ErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* d = static_cast<Daemon*>(opaque);
  d->OnClientError(static_cast<rd_kafka_resp_err_t>(err), reason);
}

// The producer's fatal errors are handled where they surface (delivery reports, transaction
// calls: exit at-least-once, recover exactly-once); the consumer's stop the daemon.
void ProducerErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<Daemon*>(opaque)->OnClientError(static_cast<rd_kafka_resp_err_t>(err), reason,
                                              /*producer=*/true);
}

void Daemon::OnClientError(rd_kafka_resp_err_t err, const char* reason, bool producer) {
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) broker_reachable_ = false;
  if (!producer && ClassifyKafkaError(err) == KafkaErrorClass::kFatal) {
    if (FencedMember()) {
      rejoin_why_ = reason;
    } else {
      fatal_ = true;
    }
  }
  const std::string why = Redact(reason);
  if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
    // Retrying cannot fix credentials: say so and stop.
    log::Error("authentication failed; check the sasl.* / ssl.* settings in kafka.properties",
               {{"reason", why}});
    fatal_ = true;
    return;
  }
  log::Warn("kafka client error", {{"error", rd_kafka_err2str(err)}, {"reason", why}});
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
  metrics_.SetMaxOpenTraces(rules.trace.max_open_traces);
  {
    std::lock_guard lock(rules_json_mu_);
    rules_json_.assign(buf.GetString(), buf.GetSize());
  }
  BuildStatusJson(rules);
}

std::string Daemon::RulesJson() const {
  std::lock_guard lock(rules_json_mu_);
  return rules_json_;
}

// The status page's document (/v1/status): the process, its inputs and outputs, and the last
// routed items with the rule that routed them. Rebuilt with the counters, once a second.
void Daemon::BuildStatusJson(const RuleSet& rules) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("version");
  w.String(kTriagedVersion);
  w.Key("config_version");
  w.String(rules.config_version.c_str());
  w.Key("group_id");
  w.String(config_->kafka.group_id.c_str());
  w.Key("guarantee");
  w.String(eos_ ? "exactly_once" : "at_least_once");
  w.Key("ready");
  w.StartObject();
  w.Key("broker_reachable");
  w.Bool(broker_reachable_.load());
  w.Key("partitions_assigned");
  w.Bool(partitions_assigned_.load());
  w.EndObject();
  w.Key("partitions");
  w.Uint64(partitions_.size());
  w.Key("events_consumed");
  w.Uint64(consumed_);
  w.Key("dead_lettered");
  w.Uint64(dead_lettered_);
  w.Key("routed");
  w.Uint64(routed_);
  w.Key("produce_errors");
  w.Uint64(produce_errors_);
  w.Key("traces_open");
  w.Uint64(open_traces_);
  w.Key("max_open_traces");
  w.Uint64(rules.trace.max_open_traces);
  w.Key("consumer_lag");
  w.Int64(lag_total_);
  w.Key("inputs");
  w.StartObject();
  w.Key("spans");
  w.String(config_->inputs.spans_topic.c_str());
  w.Key("feedback");
  w.String(config_->inputs.feedback_topic.c_str());
  w.EndObject();
  w.Key("destinations");
  w.StartArray();
  for (const DestinationSpec& d : rules.destinations) {
    w.StartObject();
    w.Key("name");
    w.String(d.name.c_str());
    w.Key("kind");
    w.String(std::string(DestinationKindName(d.kind)).c_str());
    w.Key("topic");
    w.String(d.topic.c_str());
    w.Key("routed");
    auto it = routed_by_destination_.find(d.name);
    w.Uint64(it == routed_by_destination_.end() ? 0 : it->second);
    w.EndObject();
  }
  w.EndArray();
  w.Key("recent");
  w.StartArray();
  for (auto it = recent_.rbegin(); it != recent_.rend(); ++it) {
    w.StartObject();
    w.Key("routed_at");
    w.String(FormatRfc3339(it->routed_at_ns).c_str());
    w.Key("trace_id");
    w.String(it->trace_id.c_str());
    w.Key("rule");
    w.String(it->rule.c_str());
    w.Key("destination");
    w.String(it->destination.c_str());
    w.Key("trigger");
    w.String(it->trigger.c_str());
    w.Key("priority");
    w.String(it->priority.c_str());
    w.Key("reason");
    w.String(it->when.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::lock_guard lock(rules_json_mu_);
  status_json_.assign(buf.GetString(), buf.GetSize());
}

std::string Daemon::StatusJson() const {
  std::lock_guard lock(rules_json_mu_);
  return status_json_;
}

// Lag per input partition: the high watermark librdkafka last saw minus the next offset to read.
void Daemon::UpdateLag() {
  lag_total_ = 0;
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
      lag_total_ += std::max<int64_t>(0, high - next);
    }
  }
}

void Daemon::Reload(const char* why) {
  auto loaded = LoadConfigFile(options_.config_path);
  if (!loaded.ok()) {
    std::string errors;
    for (const ConfigError& e : loaded.error())
      errors += (errors.empty() ? "" : "; ") + e.ToString();
    log::Error("reload failed; the running config stays", {{"why", why}, {"errors", errors}});
    metrics_.ConfigReload(false);
    return;
  }
  if (embedded_) {
    Result<void> created = embedded_->CreateTopicsFor(**loaded);
    if (!created.ok()) log::Warn("embedded broker", {{"error", created.error().message}});
  }
  config_ = *loaded;
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
  if (!eos_) rd_kafka_flush(producer_, 30000);
  Commit(/*sync=*/true);
  rd_kafka_consumer_close(consumer_);
  log::Info("stopped", {{"routed", std::to_string(routed_)},
                        {"dead_lettered", std::to_string(dead_lettered_)},
                        {"produce_errors", std::to_string(produce_errors_)}});
}

void Daemon::Destroy() {
  if (consumer_ != nullptr) rd_kafka_destroy(consumer_);
  if (decisions_reader_ != nullptr) rd_kafka_destroy(decisions_reader_);
  decisions_reader_ = nullptr;
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
  loop_at_ns_ = SteadyNanos();
  while (true) {
    const int sig = sigtimedwait(&signals, nullptr, &no_wait);
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig == SIGHUP) Reload("SIGHUP");
    Backpressure();
    // Delivery reports are served between polls: while items are in flight to a reachable
    // broker, wait for input at most a millisecond so acknowledgements are seen (and holds
    // released) when they come; with the broker gone, do not spin.
    const int wait_ms = broker_reachable_ && rd_kafka_outq_len(producer_) > 0 ? 1 : 100;
    if (rd_kafka_message_t* msg = rd_kafka_consumer_poll(consumer_, wait_ms)) {
      Handle(msg);
      rd_kafka_message_destroy(msg);
    }
    Tick(WallNanos());
    if (!rejoin_why_.empty()) Rejoin();
    if (!rewind_why_.empty()) Recover();
    loop_at_ns_ = SteadyNanos();
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
