// The pipeline's life around the message path: start (embedded broker, instance id, clients,
// topic checks, admin server), the group's assignments and revocations, exactly-once seeding
// and recovery, rejoining after a fence, reload and shutdown.
#include <sys/stat.h>

#include <algorithm>

#include "daemon/command_util.h"
#include "daemon/kafka_client.h"
#include "daemon/kafka_errors.h"
#include "daemon/log.h"
#include "daemon/pipeline.h"
#include "daemon/reload.h"
#include "daemon/version.h"

namespace triaged {
namespace {

constexpr size_t kMaxRejoins = 3;
constexpr auto kRejoinWindow = std::chrono::minutes(10);

// `transactional.id` of kafka.properties, else the instance's name.
std::string TransactionalIdOf(const Config& config, const InstanceId& instance) {
  auto it = config.kafka.properties.find("transactional.id");
  return it != config.kafka.properties.end() ? it->second : instance.id();
}

}  // namespace

KafkaClientFactory LibrdkafkaClientFactory() {
  return [](const Config& config, const std::string& bootstrap, const std::string& instance_id,
            const std::string& transactional_id,
            KafkaListener& listener) -> Result<std::unique_ptr<KafkaClient>> {
    TRIAGED_ASSIGN_OR_RETURN(auto client, LibrdkafkaClient::Connect(config, bootstrap, instance_id,
                                                                    transactional_id, listener));
    return std::unique_ptr<KafkaClient>(std::move(client));
  };
}

Pipeline::Pipeline(RunOptions options, std::shared_ptr<const Config> config, const Clock& clock,
                   KafkaClientFactory new_client)
    : options_(std::move(options)),
      config_(std::move(config)),
      clock_(clock),
      new_client_(std::move(new_client)),
      workers_(std::make_unique<WorkerPool>(ThreadsFor(config_->threads))),
      metrics_(kTriagedVersion) {}

Pipeline::~Pipeline() {
  if (admin_) admin_->Stop();
  committer_.reset();
  client_.reset();  // before the embedded broker it may be connected to
}

int64_t Pipeline::FileMtime(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

bool Pipeline::StartEmbeddedBroker() {
  Result<std::unique_ptr<EmbeddedBroker>> broker = EmbeddedBroker::Start();
  if (broker.ok()) {
    if (Result<void> created = broker.value()->CreateTopicsFor(*config_); !created.ok()) {
      broker = created.error();
    }
  }
  if (!broker.ok()) {
    log::Error("cannot start the embedded broker", {{"error", broker.error().message}});
    return false;
  }
  embedded_ = std::move(broker.value());
  bootstrap_ = embedded_->bootstrap();
  log::Info("embedded broker listening",
            {{"bootstrap", bootstrap_},
             {"partitions", kEmbeddedPartitions},
             {"note", "in-memory librdkafka mock cluster, for demos; not for production"}});
  return true;
}

// The join needs every event of a trace in one engine (DESIGN §1, §1.4). With `repartition:
// never` both inputs must have the same partition count (the producers are trusted to key
// them alike); otherwise the repartition topic is created if needed and its partitions are the
// engines'. A destination or dead-letter topic that does not exist is reported, not fatal:
// brokers with auto.create.topics.enable create it on the first produce.
bool Pipeline::CheckTopics() {
  const InputsConfig& inputs = config_->inputs;
  int counts[2] = {-1, -1};
  for (int i : {kSpansInput, kFeedbackInput}) {
    const std::string& topic = InputTopic(inputs, i);
    Result<int> count = client_->PartitionCount(topic, [this] { return fatal_; });
    if (!count.ok()) {
      if (!fatal_) {
        log::Error("cannot read topic metadata",
                   {{"topic", topic}, {"error", count.error().message}});
      }
      return false;
    }
    counts[i] = count.value();
  }
  for (const std::string& topic : client_->MissingTopics(ConfigTopics(*config_))) {
    log::Warn(
        "output topic does not exist; producing to it fails unless the broker creates "
        "topics automatically",
        {{"topic", topic}});
  }
  input_partitions_ = std::max(counts[0], counts[1]);
  repartition_ = inputs.repartition != Repartition::kNever;
  if (!repartition_) {
    join_partitions_ = counts[0];
    if (counts[0] != counts[1]) {
      log::Error(
          "input topics are not co-partitioned: with inputs.repartition: never, spans and "
          "feedback must have the same partition count, keyed by trace id (or set "
          "inputs.repartition: auto)",
          {{"spans_topic", inputs.spans_topic},
           {"spans_partitions", counts[0]},
           {"feedback_topic", inputs.feedback_topic},
           {"feedback_partitions", counts[1]}});
      return false;
    }
    return true;
  }
  const int wanted =
      inputs.repartition_partitions > 0 ? inputs.repartition_partitions : input_partitions_;
  if (embedded_) embedded_->CreateTopic(inputs.repartition_topic, wanted);
  Result<int> have =
      client_->EnsureRepartitionTopic(inputs.repartition_topic, wanted, RepartitionRetentionMs());
  if (!have.ok()) {
    log::Error("cannot create the repartition topic",
               {{"topic", inputs.repartition_topic}, {"error", have.error().message}});
    return false;
  }
  if (have.value() != wanted && inputs.repartition_partitions > 0) {
    // Traces are placed by the topic's partition count: another count would move them.
    log::Error("the repartition topic exists with another partition count",
               {{"topic", inputs.repartition_topic},
                {"partitions", have.value()},
                {"repartition_partitions", inputs.repartition_partitions}});
    return false;
  }
  join_partitions_ = have.value();
  for (int i : {kSpansInput, kFeedbackInput}) {
    in_place_[i] = inputs.repartition == Repartition::kAuto && counts[i] == join_partitions_;
  }
  log::Info("repartitioning the inputs",
            {{"mode", inputs.repartition == Repartition::kAuto ? "auto" : "always"},
             {"topic", inputs.repartition_topic},
             {"partitions", join_partitions_},
             {"spans_in_place", in_place_[kSpansInput]},
             {"feedback_in_place", in_place_[kFeedbackInput]}});
  return true;
}

// Re-produced events wait in the repartition topic only until their engine has read them;
// a week covers any outage the daemon would be restarted from.
int64_t Pipeline::RepartitionRetentionMs() { return int64_t{7} * 24 * 3600 * 1000; }

std::vector<std::string> Pipeline::SubscribedTopics() const {
  std::vector<std::string> topics{config_->inputs.spans_topic, config_->inputs.feedback_topic};
  if (repartition_) topics.push_back(config_->inputs.repartition_topic);
  return topics;
}

bool Pipeline::StartAdmin() {
  AdminProviders providers;
  providers.metrics = [this] { return metrics_.Serialize(); };
  providers.readiness = [this] {
    // A main loop stuck for seconds is waiting on a broker that does not answer.
    const bool looping = clock_.Steady() - loop_at_.load() < std::chrono::seconds(5);
    return Readiness{broker_reachable_.load() && looping, partitions_assigned_.load(), true,
                     commits_advancing_.load()};
  };
  providers.rules_json = [this] { return status_.rules_json(); };
  providers.status_json = [this](bool with_recent) { return status_.status_json(with_recent); };
  // The rules of config_ (read here, on the pipeline's thread), then of every reload.
  status_.SetRules(*config_->rules);
  providers.rule_names = [this] { return status_.rule_names(); };
  AdminOptions options;
  if (!config_->admin_token_file.empty()) {
    Result<std::string> token = ReadTokenFile(config_->admin_token_file);
    if (!token.ok()) {
      log::Error("cannot start the admin server", {{"error", token.error().message}});
      return false;
    }
    options.token = std::move(token.value());
  }
  admin_ = std::make_unique<AdminServer>(std::move(providers), std::move(options));
  Result<uint16_t> port = admin_->Start(config_->admin_listen);
  if (!port.ok()) {
    log::Error("cannot start the admin server",
               {{"listen", config_->admin_listen}, {"error", port.error().message}});
    return false;
  }
  admin_port_ = port.value();
  log::Info("admin server listening", {{"listen", config_->admin_listen},
                                       {"port", admin_port_},
                                       {"token", !config_->admin_token_file.empty()}});
  return true;
}

bool Pipeline::Start() {
  RememberSecrets(config_->kafka.properties);
  bootstrap_ = config_->kafka.bootstrap_servers;
  if (bootstrap_ == "embedded" && !StartEmbeddedBroker()) return false;
  eos_ = config_->kafka.guarantee == Guarantee::kExactlyOnce;
  decisions_topic_ = DecisionsTopic(*config_);
  Result<InstanceId> instance = InstanceId::Choose(*config_);
  if (!instance.ok()) {
    log::Error("cannot choose an instance id", {{"error", instance.error().message}});
    return false;
  }
  instance_.emplace(std::move(instance.value()));
  if (eos_ && embedded_) embedded_->CreateTopic(decisions_topic_, kEmbeddedPartitions);

  const std::string txn_id = eos_ ? TransactionalIdOf(*config_, *instance_) : "";
  Result<std::unique_ptr<KafkaClient>> client =
      new_client_(*config_, bootstrap_, instance_->id(), txn_id, *this);
  if (!client.ok()) {
    log::Error("cannot create consumer", {{"error", client.error().message}});
    return false;
  }
  client_ = std::move(client.value());
  if (!CheckTopics()) return false;
  // Every limit is split over the partitions the engines join on (DESIGN §2.3).
  partitions_.set_limit_partitions(std::max(join_partitions_, 1));
  if (Result<void> started = client_->StartProducer(); !started.ok()) {
    log::Error("cannot create producer", {{"error", started.error().message}});
    return false;
  }
  if (eos_) log::Info("transactions initialized", {{"transactional_id", txn_id}});
  // Connects the producer to the cluster now rather than with the first routed item.
  client_->ClusterAnswers(milliseconds(5000));
  if (eos_) {
    // Partition p holds the decisions of engine p and the dead letters of input partition p.
    Result<void> ensured = client_->EnsureDecisionsTopic(
        decisions_topic_, std::max(input_partitions_, join_partitions_),
        DecisionsRetentionMs(*config_));
    if (!ensured.ok()) {
      log::Error("exactly_once needs the decisions topic", {{"error", ensured.error().message}});
      return false;
    }
    committer_ = NewTransactionalCommitter(*client_, partitions_, config_->inputs, [this] {
      metrics_.ProduceError("transaction", "transaction_failed");
    });
  } else {
    committer_ = NewAtLeastOnceCommitter(*client_, partitions_, config_->inputs);
  }
  if (!config_->trace_store_path.empty()) {
    // The trace store's changelog: partition p backs engine p's store (DESIGN §6).
    const std::string topic = config_->kafka.group_id + ".traces";
    const int partitions = std::max(input_partitions_, join_partitions_);
    if (embedded_) embedded_->CreateTopic(topic, partitions);
    Result<int> ensured = client_->EnsureChangelogTopic(topic, partitions);
    if (!ensured.ok()) {
      log::Error("trace.store needs its changelog topic", {{"error", ensured.error().message}});
      return false;
    }
    if (ensured.value() < partitions) {
      log::Error("the changelog topic has too few partitions",
                 {{"topic", topic}, {"partitions", ensured.value()}, {"needed", partitions}});
      return false;
    }
    stores_ = std::make_unique<TraceStores>(
        config_->trace_store_path + "/" + config_->kafka.group_id, topic);
  }
  broker_reachable_ = true;
  if (!StartAdmin()) return false;
  if (Result<void> s = client_->Subscribe(SubscribedTopics()); !s.ok()) {
    log::Error("cannot subscribe", {{"error", s.error().message}});
    return false;
  }
  config_mtime_ = FileMtime(options_.config_path);
  loop_at_ = clock_.Steady();
  log::Info("started", {{"bootstrap", bootstrap_},
                        {"group_id", config_->kafka.group_id},
                        {"guarantee", eos_ ? "exactly_once" : "at_least_once"},
                        {"instance", instance_->id()},
                        {"threads", workers_->threads()},
                        {"config_version", config_->rules->config_version}});
  return true;
}

// Marks every pair routed by earlier processes for these partitions, and puts their rate-limit
// buckets back as the last committed transaction left them (exactly-once). What this process
// knew of the buckets is dropped first: spending in an aborted transaction is re-done, if at
// all, when its input is read again.
bool Pipeline::SeedDecisions(const std::vector<int32_t>& numbers) {
  for (int32_t n : numbers) engines_->limits.Forget(n);
  Result<uint64_t> read = client_->ReadDecisions(
      decisions_topic_, numbers, [this](int32_t partition, const Decision& d) {
        Partition* p = partitions_.Find(partition);
        if (p == nullptr) return;
        if (d.bucket) {
          // Records are read in order: the latest state of a bucket wins.
          if (d.bucket->partition == partition) {
            engines_->limits.Restore(p->engine.rules(), partitions_.limit_partitions(), *d.bucket);
          }
        } else if (d.dead_letter_offset >= 0) {
          p->dead_lettered[InputOf(config_->inputs, d.dead_letter_topic)].insert(
              d.dead_letter_offset);
        } else {
          p->engine.SeedRouted(d.trace_id, d.rule, d.destination);
        }
      });
  if (!read.ok()) {
    log::Error("cannot read the decisions topic", {{"error", read.error().message}});
    return false;
  }
  log::Info(
      "decisions read",
      {{"topic", decisions_topic_}, {"partitions", numbers.size()}, {"records", read.value()}});
  return true;
}

bool Pipeline::RestoreStores(const std::vector<int32_t>& numbers) {
  if (!stores_) return true;
  for (int32_t n : numbers) {
    Partition* p = partitions_.Find(n);
    if (p == nullptr) continue;
    RestoreStats stats;
    Result<RocksTraceStore*> store = stores_->Restore(n, *client_, stats);
    if (!store.ok()) {
      log::Error("cannot restore the trace store",
                 {{"partition", n}, {"error", store.error().message}});
      return false;
    }
    p->engine.set_store(store.value());
    metrics_.TraceStoreRestored(stats.from_local ? "local" : "changelog", stats.records,
                                stats.seconds);
    log::Info("trace store restored", {{"partition", n},
                                       {"from", stats.from_local ? "local" : "changelog"},
                                       {"records", stats.records},
                                       {"traces", store.value()->size()},
                                       {"seconds", stats.seconds}});
  }
  return true;
}

// Closes partition `n`'s store cleanly, with the closed traces still in memory written to it
// first: the changelog has them, and a next owner starting from this store reads only its tail.
void Pipeline::CloseStore(int32_t n) {
  if (Partition* p = partitions_.Find(n)) p->engine.SaveClosed();
  stores_->Close(n, *client_);
}

void Pipeline::OnAssigned(const TopicPartitions& parts) {
  ProcessBatch();
  std::set<int32_t> numbers;
  for (const TopicPartition& tp : parts) {
    if (!partitions_.Owns(tp.partition)) numbers.insert(tp.partition);
    partitions_.Assign(config_->inputs, tp, config_->rules);
  }
  if (eos_ && !SeedDecisions({numbers.begin(), numbers.end()})) {
    // Without them a pair routed by the previous owner could be routed again: stop.
    fatal_ = true;
  }
  // Before the partitions route: late feedback must find the traces decided before.
  if (!RestoreStores({numbers.begin(), numbers.end()})) fatal_ = true;
  partitions_assigned_ = true;
  log::Info("partitions assigned", {{"count", parts.size()}});
}

// Revoked: commit what is safe, then drop the open traces uncommitted; the new owner rebuilds
// them from the committed offset.
void Pipeline::OnRevoked(const TopicPartitions& parts) {
  ProcessBatch();
  std::set<int32_t> revoked;
  for (const TopicPartition& tp : parts) revoked.insert(tp.partition);
  if (!eos_) {
    client_->Flush(milliseconds(10000));
    WriteReadyChangelog();
    client_->Flush(milliseconds(10000));
  }
  const bool committed = committer_->Commit(/*sync=*/true, &revoked);
  // Clean only when what it holds is committed and acknowledged; else the next owner rebuilds it.
  const bool settled = committed && client_->InFlight() == 0;
  SyncCounters();
  for (int32_t p : revoked) {
    if (stores_ && settled) CloseStore(p);
    partitions_.Erase(p);
  }
  partitions_assigned_ = false;
  log::Info("partitions revoked", {{"count", parts.size()}});
}

void Pipeline::OnClientError(rd_kafka_resp_err_t err, std::string_view reason, bool producer) {
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) broker_reachable_ = false;
  if (!producer && ClassifyKafkaError(err) == KafkaErrorClass::kFatal) {
    if (client_ != nullptr && client_->Fenced()) {
      rejoin_why_ = reason;
    } else {
      fatal_ = true;
    }
  }
  const std::string why = Redact(std::string(reason));
  if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
    // Retrying cannot fix credentials: say so and stop.
    log::Error("authentication failed; check the sasl.* / ssl.* settings in kafka.properties",
               {{"reason", why}});
    fatal_ = true;
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__SSL && reason.find("certificate verify failed") != reason.npos) {
    // Nor can retrying make the broker's certificate trusted.
    log::Error("TLS certificate verification failed; check ssl.ca.location in kafka.properties",
               {{"reason", why}});
    fatal_ = true;
    return;
  }
  // Stopping already: brokers down is the echo of the error that stops it, logged before.
  if (fatal_ && err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) return;
  log::Warn("kafka client error", {{"error", rd_kafka_err2str(err)}, {"reason", why}});
}

// Drops every partition's state (open traces, holds, committed offsets) after adding its
// counts to the totals; returns the partition numbers it held.
std::vector<int32_t> Pipeline::ForgetPartitions() {
  SyncCounters();
  return partitions_.Clear();
}

// A fenced member cannot consume or commit again; a process restart would rejoin with a new
// consumer and re-read from the committed offsets. Do that here, keeping the process (and
// its admin server, metrics and producer) up: abort the open transaction, forget every
// partition's state, replace the consumer. The new assignment seeds and re-reads as usual.
void Pipeline::Rejoin() {
  const std::string why = rejoin_why_;
  rejoin_why_.clear();
  const SteadyTime now = clock_.Steady();
  while (!rejoins_.empty() && now - rejoins_.front() > kRejoinWindow) rejoins_.pop_front();
  if (rejoins_.size() >= kMaxRejoins) {
    log::Error("fenced again: another process uses this group.instance.id",
               {{"why", why}, {"rejoins", rejoins_.size()}});
    fatal_ = true;
    return;
  }
  rejoins_.push_back(now);
  log::Warn("rejoining the group with a new consumer", {{"why", why}});
  if (!committer_->Reset()) {
    fatal_ = true;
    return;
  }
  ForgetPartitions();
  partitions_assigned_ = false;
  Result<void> replaced = client_->ReplaceConsumer();
  if (replaced.ok()) {
    replaced = client_->Subscribe(SubscribedTopics());
  }
  if (!replaced.ok()) {
    log::Error("cannot rejoin", {{"error", replaced.error().message}});
    fatal_ = true;
  }
}

void Pipeline::Recover() {
  const std::string why = committer_->rewind_reason();
  if (!committer_->Reset()) {
    fatal_ = true;
    return;
  }
  Rewind(why);
}

// Exactly-once recovery: forget every partition's state, seed the decisions again and seek the
// inputs back to their committed offsets, so what the aborted transaction held is decided
// again (and only what was not routed before is routed).
void Pipeline::Rewind(const std::string& why) {
  // Which topic-partitions the group gave this process, to seek them (and only them) back.
  TopicPartitions list;
  for (auto& [n, p] : partitions_.all()) {
    for (int input : kAllInputs) {
      if (p->assigned[input]) list.push_back({InputTopic(config_->inputs, input), n});
    }
  }
  const std::vector<int32_t> numbers = ForgetPartitions();
  log::Warn("rewinding to the committed offsets", {{"why", why}, {"partitions", numbers.size()}});
  if (numbers.empty()) return;
  for (int32_t n : numbers) partitions_.At(n, config_->rules);
  for (const TopicPartition& tp : list) partitions_.Assign(config_->inputs, tp, config_->rules);
  if (!SeedDecisions(numbers)) {
    fatal_ = true;
    return;
  }
  // The stores may hold decisions of what is read again: rebuilt from the changelog.
  if (!RestoreStores(numbers)) {
    fatal_ = true;
    return;
  }
  if (client_->Fenced()) {
    // A new consumer re-reads from the committed offsets anyway.
    rejoin_why_ = "fenced while rewinding";
    return;
  }
  Result<TopicPartitions> committed = client_->Committed(list);
  if (!committed.ok()) {
    log::Error("cannot read the committed offsets", {{"error", committed.error().message}});
    fatal_ = true;
    return;
  }
  for (TopicPartition& tp : committed.value()) {
    if (tp.offset < 0) tp.offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  if (Result<void> sought = client_->Seek(committed.value()); !sought.ok()) {
    log::Error("cannot seek to the committed offsets", {{"error", sought.error().message}});
    fatal_ = true;
  }
}

// Only what can change safely is swapped (DESIGN §6 Reload): the rules and what goes with them.
// The clients keep the topics, group and settings they were started with.
void Pipeline::Reload(const char* why) {
  if (options_.config_path == kStdinConfigPath) {
    log::Error("reload failed; the running config stays",
               {{"why", why},
                {"errors", "the config was read from stdin (-c -), which cannot be read again"}});
    metrics_.ConfigReload(false);
    return;
  }
  auto loaded = LoadConfigFile(options_.config_path);
  std::string errors;
  if (!loaded.ok()) {
    for (const ConfigError& e : loaded.error()) {
      errors += (errors.empty() ? "" : "; ") + e.ToString();
    }
  } else if (Result<void> reloadable = CheckReloadable(*config_, **loaded); !reloadable.ok()) {
    errors = reloadable.error().message;
  } else {
    if (embedded_) {
      Result<void> created = embedded_->CreateTopicsFor(**loaded);
      if (!created.ok()) log::Warn("embedded broker", {{"error", created.error().message}});
    }
    // A destination that does not exist would fail its first routed item: refuse it now, while
    // the running config still works.
    for (const std::string& topic : client_->MissingTopics(ConfigTopics(**loaded))) {
      errors += (errors.empty() ? "" : "; ") + ("topic " + topic + " does not exist");
    }
  }
  if (!errors.empty()) {
    log::Error("reload failed; the running config stays", {{"why", why}, {"errors", errors}});
    metrics_.ConfigReload(false);
    return;
  }
  config_ = *loaded;
  for (auto& [number, p] : partitions_.all()) p->engine.SetRuleSet(config_->rules);
  metrics_.ConfigReload(true);
  SyncCounters();
  log::Info("config reloaded", {{"why", why}, {"config_version", config_->rules->config_version}});
  LogConfigWarnings(*config_);
}

int Pipeline::Shutdown() {
  // Stop consuming; decide nothing early: open traces stay uncommitted and are re-read after a
  // restart. Flush what was routed, then commit what is safe — within kafka.shutdown_timeout,
  // so a broker that does not answer cannot hold the process past its supervisor's patience.
  log::Info("stopping");
  ProcessBatch();
  LogDeadLetters(dead_letter_log_.TakeHeld());
  const SteadyTime deadline =
      clock_.Steady() + std::chrono::nanoseconds(config_->kafka.shutdown_timeout_ns);
  auto left = [&] {
    return std::max(milliseconds(0),
                    std::chrono::duration_cast<milliseconds>(deadline - clock_.Steady()));
  };
  SyncCounters();
  if (!eos_) {
    client_->Flush(left());
    // Changelog records that waited for routed items just acknowledged.
    WriteReadyChangelog();
    client_->Flush(left());
  }
  const bool committed = committer_->Commit(/*sync=*/true, nullptr, left());
  const int unflushed = client_->InFlight();
  const bool clean = committed && unflushed == 0 && client_->CloseConsumer(left());
  // Each store is current to its changelog: a restart on this host starts from it.
  if (stores_ && clean) {
    while (!stores_->open().empty()) CloseStore(stores_->open().begin()->first);
  }
  if (!clean) {
    log::Warn(
        "shutdown_timeout passed or the broker is unreachable: what was not acknowledged "
        "and committed is read again after a restart",
        {{"unflushed", unflushed}});
    client_->Abandon();
  }
  log::Info("stopped", {{"routed", metrics_.routed()},
                        {"dead_lettered", metrics_.dead_lettered()},
                        {"produce_errors", metrics_.produce_errors()},
                        {"flushed", clean}});
  if (fatal_) return 1;
  return clean ? 0 : kExitUnflushed;
}

}  // namespace triaged
