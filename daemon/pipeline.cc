#include "daemon/pipeline.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/admin_server.h"
#include "daemon/clock.h"
#include "daemon/command_util.h"
#include "daemon/committer.h"
#include "daemon/embedded_broker.h"
#include "daemon/exactly_once.h"
#include "daemon/ingest.h"
#include "daemon/kafka_client.h"
#include "daemon/kafka_errors.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/partitions.h"
#include "daemon/reload.h"
#include "daemon/status.h"
#include "daemon/version.h"
#include "rules/engine.h"

namespace triaged {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What a delivery report needs to find its hold again. Owned by librdkafka between produce and
// the report (the message's opaque), then by the report's unique_ptr.
struct Delivery {
  int32_t partition;
  uint64_t generation;
  uint64_t ticket;
  std::optional<SteadyTime> routed_at;  // routed items only
};

int64_t FileMtime(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// `transactional.id` of kafka.properties, else the instance's name.
std::string TransactionalIdOf(const Config& config, const InstanceId& instance) {
  auto it = config.kafka.properties.find("transactional.id");
  return it != config.kafka.properties.end() ? it->second : instance.id();
}

class Daemon {
 public:
  Daemon(const RunOptions& options, std::shared_ptr<const Config> config, const Clock& clock)
      : options_(options), config_(std::move(config)), clock_(clock), metrics_(kTriagedVersion) {}
  ~Daemon() {
    if (admin_) admin_->Stop();
    // The consumer first, then the decisions reader, then the producer; the embedded broker
    // (declared first) outlives them all.
    clients_.consumer.reset();
    clients_.decisions_reader.reset();
    clients_.producer.reset();
  }

  int Run();

  void OnDelivery(const rd_kafka_message_t* msg);
  void OnClientError(rd_kafka_resp_err_t err, const char* reason, bool producer);
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);

 private:
  bool Start();
  bool StartEmbeddedBroker();
  bool CreateConsumer();
  bool CreateProducer();
  bool Subscribe();
  bool CheckTopics();
  bool StartAdmin();
  bool SeedDecisions(const std::vector<int32_t>& numbers);
  // The consumer's fatal error is FENCED_INSTANCE_ID (another join with our instance id).
  bool FencedMember() const {
    return clients_.consumer != nullptr &&
           rd_kafka_fatal_error(clients_.consumer.get(), nullptr, 0) ==
               RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
  }

  void Handle(const rd_kafka_message_t* msg);
  // Acts on what partition `p`'s engine decided (outbox_), then empties it.
  void Drain(Partition& p);
  // Produces one routed item, holding its trace's offsets until it is acknowledged.
  void Publish(Partition& p, const Route& route);
  void DeadLetter(Partition& p, int input, const rd_kafka_message_t* msg, const Error& error);
  void Produce(const std::string& topic, std::string_view key, const std::string& value,
               const std::vector<std::pair<std::string, std::string>>& headers,
               std::unique_ptr<Delivery> delivery, int32_t partition = RD_KAFKA_PARTITION_UA);

  void Tick();
  void Backpressure();
  void Rejoin();
  void Recover();
  void Rewind(const std::string& why);
  std::vector<int32_t> ForgetPartitions();
  void Reload(const char* why);
  void Shutdown();
  void SyncCounters();
  void UpdateLag();

  RunOptions options_;
  std::shared_ptr<const Config> config_;
  const Clock& clock_;
  std::unique_ptr<EmbeddedBroker> embedded_;  // `bootstrap_servers: embedded`; outlives clients
  std::string bootstrap_;
  std::optional<InstanceId> instance_;
  bool eos_ = false;
  std::string decisions_topic_;
  int input_partitions_ = 0;
  KafkaClients clients_;
  int max_queued_ = 100'000;  // the producer's queue.buffering.max.messages
  // Rate limits and max_open_traces bound the process, not each partition; limits survive
  // rebalances.
  std::shared_ptr<EngineGroup> engines_ = std::make_shared<EngineGroup>();
  PartitionTable partitions_{engines_};
  std::unique_ptr<Committer> committer_;
  Outbox outbox_;  // what the engine being called decided; drained after each call

  SteadyTime last_commit_{};
  SteadyTime last_watch_{};
  int64_t config_mtime_ = 0;
  bool fatal_ = false;
  bool paused_ = false;  // consumption paused while the producer queue drains
  // The group fenced this member (static membership, after a coordinator restart): a new
  // consumer rejoins in the main loop, at most kMaxRejoins times in kRejoinWindow.
  std::string rejoin_why_;
  std::deque<SteadyTime> rejoins_;
  static constexpr size_t kMaxRejoins = 3;
  static constexpr auto kRejoinWindow = std::chrono::minutes(10);
  // When the main loop last went round: a loop stuck in a call to a broker that is gone is not
  // ready, whatever the last callback said.
  std::atomic<SteadyTime> loop_at_{SteadyTime{}};

  Metrics metrics_;
  StatusDocuments status_;
  std::unique_ptr<AdminServer> admin_;
  std::atomic<bool> broker_reachable_{false};
  std::atomic<bool> partitions_assigned_{false};
  // Totals over every partition this process has owned, by rule name.
  std::map<std::string, RuleCounters> rule_totals_;
  EngineCounters engine_totals_;
  int64_t lag_total_ = 0;
};

void ErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<Daemon*>(opaque)->OnClientError(static_cast<rd_kafka_resp_err_t>(err), reason,
                                              /*producer=*/false);
}

// The producer's fatal errors are handled where they surface (delivery reports, transaction
// calls: exit at-least-once, recover exactly-once); the consumer's stop the daemon.
void ProducerErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque) {
  static_cast<Daemon*>(opaque)->OnClientError(static_cast<rd_kafka_resp_err_t>(err), reason,
                                              /*producer=*/true);
}

void DeliveryReport(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<Daemon*>(opaque)->OnDelivery(msg);
}

void Rebalance(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
               void* opaque) {
  static_cast<Daemon*>(opaque)->OnRebalance(err, parts);
}

bool Daemon::StartEmbeddedBroker() {
  Result<std::unique_ptr<EmbeddedBroker>> broker = EmbeddedBroker::Start();
  if (broker.ok()) {
    if (auto created = broker.value()->CreateTopicsFor(*config_); !created.ok()) {
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

bool Daemon::CreateConsumer() {
  Result<KafkaHandle> consumer = NewGroupConsumer(*config_, bootstrap_, instance_->id(),
                                                  {this, ErrorCallback, Rebalance, nullptr});
  if (!consumer.ok()) {
    log::Error("cannot create consumer", {{"error", consumer.error().message}});
    return false;
  }
  clients_.consumer = std::move(consumer.value());
  return true;
}

bool Daemon::CreateProducer() {
  const std::string txn_id = eos_ ? TransactionalIdOf(*config_, *instance_) : "";
  Result<KafkaHandle> producer =
      NewProducer(*config_, bootstrap_, txn_id,
                  {this, ProducerErrorCallback, nullptr, DeliveryReport}, max_queued_);
  if (!producer.ok()) {
    log::Error("cannot create producer", {{"error", producer.error().message}});
    return false;
  }
  clients_.producer = std::move(producer.value());
  if (eos_) log::Info("transactions initialized", {{"transactional_id", txn_id}});
  return true;
}

bool Daemon::Subscribe() {
  PartitionList topics = NewPartitionList(2);
  rd_kafka_topic_partition_list_add(topics.get(), config_->inputs.spans_topic.c_str(),
                                    RD_KAFKA_PARTITION_UA);
  rd_kafka_topic_partition_list_add(topics.get(), config_->inputs.feedback_topic.c_str(),
                                    RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t e = rd_kafka_subscribe(clients_.consumer.get(), topics.get());
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::Error("cannot subscribe", {{"error", rd_kafka_err2str(e)}});
    return false;
  }
  return true;
}

// Both inputs must have the same partition count, or traces would not meet (DESIGN §1). A
// destination or dead-letter topic that does not exist is reported, not fatal: brokers with
// auto.create.topics.enable create it on the first produce.
bool Daemon::CheckTopics() {
  int counts[2] = {-1, -1};
  const std::string* names[2] = {&config_->inputs.spans_topic, &config_->inputs.feedback_topic};
  for (int i = 0; i < 2; ++i) {
    Result<int> count =
        PartitionCount(clients_.consumer.get(), *names[i], [this] { return fatal_; });
    if (!count.ok()) {
      if (!fatal_) {
        log::Error("cannot read topic metadata",
                   {{"topic", *names[i]}, {"error", count.error().message}});
      }
      return false;
    }
    counts[i] = count.value();
  }
  for (const std::string& topic : MissingTopics(clients_.consumer.get(), ConfigTopics(*config_))) {
    log::Warn(
        "output topic does not exist; producing to it fails unless the broker creates "
        "topics automatically",
        {{"topic", topic}});
  }
  input_partitions_ = counts[0];
  if (counts[0] != counts[1]) {
    log::Error(
        "input topics are not co-partitioned: spans and feedback must have the same "
        "partition count, keyed by trace id",
        {{"spans_topic", *names[0]},
         {"spans_partitions", counts[0]},
         {"feedback_topic", *names[1]},
         {"feedback_partitions", counts[1]}});
    return false;
  }
  return true;
}

bool Daemon::StartAdmin() {
  AdminProviders providers;
  providers.metrics = [this] { return metrics_.Serialize(); };
  providers.readiness = [this] {
    // A main loop stuck for seconds is waiting on a broker that does not answer.
    const bool looping = clock_.Steady() - loop_at_.load() < seconds(5);
    return Readiness{broker_reachable_.load() && looping, partitions_assigned_.load(), true};
  };
  providers.rules_json = [this] { return status_.rules_json(); };
  providers.status_json = [this] { return status_.status_json(); };
  admin_ = std::make_unique<AdminServer>(std::move(providers));
  Result<uint16_t> port = admin_->Start(config_->admin_listen);
  if (!port.ok()) {
    log::Error("cannot start the admin server",
               {{"listen", config_->admin_listen}, {"error", port.error().message}});
    return false;
  }
  log::Info("admin server listening", {{"listen", config_->admin_listen}, {"port", port.value()}});
  return true;
}

bool Daemon::Start() {
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

  if (!CreateConsumer() || !CheckTopics() || !CreateProducer()) return false;
  // Connects the producer to the cluster now rather than with the first routed item.
  ClusterAnswers(clients_.producer.get(), 5000);
  if (eos_) {
    Result<void> ensured = EnsureDecisionsTopic(clients_.producer.get(), decisions_topic_,
                                                input_partitions_, DecisionsRetentionMs(*config_));
    if (!ensured.ok()) {
      log::Error("exactly_once needs the decisions topic", {{"error", ensured.error().message}});
      return false;
    }
    Result<KafkaHandle> reader = NewDecisionsReader(*config_, bootstrap_);
    if (!reader.ok()) {
      log::Error("cannot create the decisions reader", {{"error", reader.error().message}});
      return false;
    }
    clients_.decisions_reader = std::move(reader.value());
    committer_ = NewTransactionalCommitter(
        clients_, partitions_, config_->inputs, [this] { metrics_.ProduceError(); },
        [this] { return CreateProducer(); });
  } else {
    committer_ = NewAtLeastOnceCommitter(clients_, partitions_, config_->inputs);
  }
  broker_reachable_ = true;
  if (!StartAdmin() || !Subscribe()) return false;
  config_mtime_ = FileMtime(options_.config_path);
  log::Info("started", {{"bootstrap", bootstrap_},
                        {"group_id", config_->kafka.group_id},
                        {"guarantee", eos_ ? "exactly_once" : "at_least_once"},
                        {"instance", instance_->id()},
                        {"config_version", config_->rules->config_version}});
  return true;
}

// Marks every pair routed by earlier processes for these partitions (exactly-once).
bool Daemon::SeedDecisions(const std::vector<int32_t>& numbers) {
  Result<uint64_t> read = ReadDecisions(
      clients_.decisions_reader.get(), decisions_topic_, numbers,
      [this](int32_t partition, const Decision& d) {
        Partition* p = partitions_.Find(partition);
        if (p == nullptr) return;
        if (d.dead_letter_offset >= 0) {
          const int input =
              d.dead_letter_topic == config_->inputs.spans_topic ? kSpansInput : kFeedbackInput;
          p->dead_lettered[input].insert(d.dead_letter_offset);
        } else {
          p->engine.SeedRouted(d.trace_id, d.rule, d.destination);
        }
      },
      120000);
  if (!read.ok()) {
    log::Error("cannot read the decisions topic", {{"error", read.error().message}});
    return false;
  }
  log::Info("decisions read", {{"topic", decisions_topic_},
                               {"partitions", numbers.size()},
                               {"records", read.value()}});
  return true;
}

void Daemon::OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    std::set<int32_t> numbers;
    for (int i = 0; i < parts->cnt; ++i) {
      if (!partitions_.Owns(parts->elems[i].partition)) numbers.insert(parts->elems[i].partition);
      partitions_.At(parts->elems[i].partition, config_->rules);
    }
    if (eos_ && !SeedDecisions({numbers.begin(), numbers.end()})) {
      // Without them a pair routed by the previous owner could be routed again: stop.
      fatal_ = true;
    }
    partitions_assigned_ = true;
    log::Info("partitions assigned", {{"count", parts->cnt}});
    rd_kafka_assign(clients_.consumer.get(), parts);
    return;
  }
  // Revoked: commit what is safe, then drop the open traces uncommitted; the new owner rebuilds
  // them from the committed offset.
  std::set<int32_t> revoked;
  for (int i = 0; i < parts->cnt; ++i) revoked.insert(parts->elems[i].partition);
  if (!eos_) rd_kafka_flush(clients_.producer.get(), 10000);
  committer_->Commit(/*sync=*/true, &revoked);
  SyncCounters();
  for (int32_t p : revoked) partitions_.Erase(p);
  partitions_assigned_ = false;
  log::Info("partitions revoked", {{"count", parts->cnt}});
  rd_kafka_assign(clients_.consumer.get(), nullptr);
}

void Daemon::Produce(const std::string& topic, std::string_view key, const std::string& value,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     std::unique_ptr<Delivery> delivery, int32_t partition) {
  while (true) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& [name, v] : headers) {
      rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), v.data(),
                          static_cast<ssize_t>(v.size()));
    }
    const rd_kafka_resp_err_t e = rd_kafka_producev(
        clients_.producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(delivery.get()), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      delivery.release();  // librdkafka hands it back in the delivery report
      return;
    }
    rd_kafka_headers_destroy(hdrs);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Backpressure: serve delivery reports until there is room; never drop.
      rd_kafka_poll(clients_.producer.get(), 100);
      continue;
    }
    metrics_.ProduceError();
    committer_->ProduceFailed();
    log::Error("produce failed", {{"topic", topic}, {"error", rd_kafka_err2str(e)}});
    // The hold stays: offsets are not committed past an item that was not produced.
    return;
  }
}

void Daemon::Drain(Partition& p) {
  for (const Route& route : outbox_.routes) Publish(p, route);
  // An evaluated trace no longer pins offsets by itself (its routed items above still do).
  for (const std::string& id : outbox_.decided) p.offsets.Decided(id);
  const int64_t now_ns = UnixNanos(clock_.System());
  for (const ClosedTrace& closed : outbox_.closed) {
    metrics_.ObserveDecisionLatency(static_cast<double>(now_ns - closed.deadline_ns) / 1e9);
  }
  outbox_.clear();
}

void Daemon::Publish(Partition& p, const Route& route) {
  if (!committer_->BeforeProduce()) return;
  const RuleSpec& rule = *route.rule;
  const DestinationSpec& dest = *route.destination;
  auto delivery = std::make_unique<Delivery>(
      Delivery{p.number, p.generation, p.offsets.Hold(route.trace_id), clock_.Steady()});
  metrics_.Routed(rule.name, dest.name);
  status_.Routed(route);
  admin_->Publish(rule.name, route.document);
  Produce(dest.topic, route.trace_id, route.document,
          {{"triaged-rule", rule.name}, {"triaged-destination", dest.name}}, std::move(delivery));
  if (eos_) {
    // In the same transaction: the pair is routed, for whoever owns this partition next.
    Produce(decisions_topic_, RoutedItemId(route.trace_id, rule.name, dest.name),
            DecisionRecord(route), {}, nullptr, p.number);
  }
}

void Daemon::OnDelivery(const rd_kafka_message_t* msg) {
  std::unique_ptr<Delivery> d(static_cast<Delivery*>(msg->_private));
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    committer_->ProduceFailed();  // exactly-once: the transaction is aborted, the input re-read
    metrics_.ProduceError();
    log::Error("delivery failed",
               {{"topic", rd_kafka_topic_name(msg->rkt)},
                {"error", rd_kafka_err2str(msg->err)},
                {"class", KafkaErrorClassName(ClassifyKafkaError(msg->err))}});
    // The hold stays, so nothing past this item is committed; a fatal producer cannot deliver
    // anything else: stop, and the restart re-reads from the committed offset.
    if (!eos_ &&
        (ClassifyKafkaError(msg->err) == KafkaErrorClass::kFatal ||
         rd_kafka_fatal_error(clients_.producer.get(), nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)) {
      fatal_ = true;
    }
  }
  if (!d) return;
  if (d->routed_at && msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    metrics_.ObserveRouteAckLatency(Seconds(clock_.Steady() - *d->routed_at));
  }
  Partition* p = partitions_.Find(d->partition);
  if (p == nullptr || p->generation != d->generation) return;
  p->offsets.Release(d->ticket, msg->err == RD_KAFKA_RESP_ERR_NO_ERROR);
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
  if (!committer_->BeforeProduce()) return;
  auto delivery = std::make_unique<Delivery>(
      Delivery{p.number, p.generation, p.offsets.HoldOffset(input, msg->offset), std::nullopt});
  metrics_.DeadLettered();
  metrics_.EventInvalid(InputName(input), error.reason);
  log::Warn("dead-lettered", {{"reason", error.reason},
                              {"topic", origin.topic},
                              {"partition", msg->partition},
                              {"offset", msg->offset}});
  Produce(config_->dead_letter_topic,
          std::string_view(static_cast<const char*>(msg->key), msg->key ? msg->key_len : 0), record,
          {{"triaged-reason", error.reason}}, std::move(delivery));
  if (eos_) {
    Produce(decisions_topic_, DeadLetterDecisionKey(origin.topic, msg->partition, msg->offset),
            DeadLetterDecisionRecord(origin.topic, msg->partition, msg->offset), {}, nullptr,
            p.number);
  }
}

void Daemon::Handle(const rd_kafka_message_t* msg) {
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
  Partition& p = partitions_.At(msg->partition, config_->rules);
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
    return;
  }
  std::vector<std::string> ids;
  for (const Span& s : decoded->spans) ids.push_back(s.trace_id);
  for (const Annotation& a : decoded->annotations) ids.push_back(a.trace_id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  p.offsets.Consumed(input, msg->offset, ids);
  const size_t spans = decoded->spans.size();
  const AddResult added =
      p.engine.Add(std::move(decoded.value()), UnixNanos(clock_.System()), outbox_);
  Drain(p);
  // A trace the engine did not keep open (evaluated at once as late, or refused) pins nothing.
  for (const std::string& id : ids) {
    if (!p.engine.IsOpen(id)) p.offsets.Decided(id);
  }
  if (added.spans_rejected > 0) {
    DeadLetter(p, input, msg, TraceTooLargeError(added.spans_rejected, spans));
  }
}

void Daemon::Tick() {
  const int64_t now_ns = UnixNanos(clock_.System());
  for (auto& [number, p] : partitions_.all()) {
    p->engine.Advance(now_ns, outbox_);
    Drain(*p);
  }
  rd_kafka_poll(clients_.producer.get(), 0);
  const SteadyTime now = clock_.Steady();
  if (now - last_commit_ >= seconds(1)) {
    committer_->Commit(/*sync=*/false);
    SyncCounters();
    UpdateLag();
    // Probe, so /readyz turns ready again once the cluster is back even with no traffic.
    if (!broker_reachable_ && ClusterAnswers(clients_.consumer.get(), 200)) {
      broker_reachable_ = true;
    }
    last_commit_ = now;
  }
  if (options_.watch && now - last_watch_ >= seconds(1)) {
    last_watch_ = now;
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
  const int queued = rd_kafka_outq_len(clients_.producer.get());
  const bool pause = paused_ ? queued > max_queued_ / 10 : queued >= max_queued_ / 2;
  if (!pause && !paused_) return;
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(clients_.consumer.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  PartitionList assigned(raw);
  // Re-applied while paused, so partitions assigned meanwhile are paused too.
  if (pause) {
    rd_kafka_pause_partitions(clients_.consumer.get(), assigned.get());
  } else {
    rd_kafka_resume_partitions(clients_.consumer.get(), assigned.get());
  }
  if (pause != paused_) {
    paused_ = pause;
    log::Warn(pause ? "producer queue full: consumption paused" : "consumption resumed",
              {{"queued", queued}});
  }
}

// Drops every partition's state (open traces, holds, committed offsets) after adding its
// counts to the totals; returns the partition numbers it held.
std::vector<int32_t> Daemon::ForgetPartitions() {
  SyncCounters();
  return partitions_.Clear();
}

// A fenced member cannot consume or commit again; a process restart would rejoin with a new
// consumer and re-read from the committed offsets. Do that here, keeping the process (and
// its admin server, metrics and producer) up: abort the open transaction, forget every
// partition's state, replace the consumer. The new assignment seeds and re-reads as usual.
void Daemon::Rejoin() {
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
  // No close: the group already replaced this member, and leaving would fence the new one.
  rd_kafka_destroy_flags(clients_.consumer.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  if (!CreateConsumer() || !Subscribe()) fatal_ = true;
}

void Daemon::Recover() {
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
void Daemon::Rewind(const std::string& why) {
  const std::vector<int32_t> numbers = ForgetPartitions();
  log::Warn("rewinding to the committed offsets", {{"why", why}, {"partitions", numbers.size()}});
  if (numbers.empty()) return;
  for (int32_t n : numbers) partitions_.At(n, config_->rules);
  if (!SeedDecisions(numbers)) {
    fatal_ = true;
    return;
  }
  PartitionList list = NewPartitionList();
  for (int32_t n : numbers) {
    rd_kafka_topic_partition_list_add(list.get(), config_->inputs.spans_topic.c_str(), n);
    rd_kafka_topic_partition_list_add(list.get(), config_->inputs.feedback_topic.c_str(), n);
  }
  if (FencedMember()) {
    // A new consumer re-reads from the committed offsets anyway.
    rejoin_why_ = "fenced while rewinding";
    return;
  }
  const rd_kafka_resp_err_t e = rd_kafka_committed(clients_.consumer.get(), list.get(), 60000);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    log::Error("cannot read the committed offsets", {{"error", rd_kafka_err2str(e)}});
    fatal_ = true;
    return;
  }
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].offset < 0) list->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  if (KafkaError se{rd_kafka_seek_partitions(clients_.consumer.get(), list.get(), 60000)}) {
    log::Error("cannot seek to the committed offsets", {{"error", rd_kafka_error_string(se.get())}});
    fatal_ = true;
  }
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
// publishes them (metrics, /v1/rules, /v1/status). Totals survive revocations and reloads.
void Daemon::SyncCounters() {
  uint64_t open_traces = 0;
  for (auto& [number, p] : partitions_.all()) {
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
    open_traces += p->engine.open_traces();
  }
  const RuleSet& rules = *config_->rules;
  std::vector<RuleCounters> ordered;
  for (const RuleSpec& r : rules.rules) ordered.push_back(rule_totals_[r.name]);
  metrics_.SyncRuleCounters(rules, ordered);
  metrics_.SyncEngineCounters(engine_totals_, open_traces);
  metrics_.SetMaxOpenTraces(rules.trace.max_open_traces);
  StatusFacts facts;
  facts.exactly_once = eos_;
  facts.broker_reachable = broker_reachable_.load();
  facts.partitions_assigned = partitions_assigned_.load();
  facts.partitions = partitions_.size();
  facts.traces_open = open_traces;
  facts.consumer_lag = lag_total_;
  status_.Rebuild(*config_, ordered, facts, metrics_);
}

// Lag per input partition: the high watermark librdkafka last saw minus the next offset to read.
void Daemon::UpdateLag() {
  lag_total_ = 0;
  for (auto& [number, p] : partitions_.all()) {
    for (int input : {kSpansInput, kFeedbackInput}) {
      const std::string& topic =
          input == kSpansInput ? config_->inputs.spans_topic : config_->inputs.feedback_topic;
      int64_t low = -1, high = -1;
      if (rd_kafka_get_watermark_offsets(clients_.consumer.get(), topic.c_str(), number, &low,
                                         &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
          high < 0) {
        continue;
      }
      const int64_t next = p->next_offset[input] >= 0 ? p->next_offset[input] : low;
      metrics_.SetConsumerLag(topic, number, std::max<int64_t>(0, high - next));
      lag_total_ += std::max<int64_t>(0, high - next);
    }
  }
}

// Only what can change safely is swapped (DESIGN §6 Reload): the rules and what goes with them.
// The clients keep the topics, group and settings they were started with.
void Daemon::Reload(const char* why) {
  auto loaded = LoadConfigFile(options_.config_path);
  std::string errors;
  if (!loaded.ok()) {
    for (const ConfigError& e : loaded.error()) {
      errors += (errors.empty() ? "" : "; ") + e.ToString();
    }
  } else if (Result<void> reloadable = CheckReloadable(*config_, **loaded); !reloadable.ok()) {
    errors = reloadable.error().message;
  }
  if (!errors.empty()) {
    log::Error("reload failed; the running config stays", {{"why", why}, {"errors", errors}});
    metrics_.ConfigReload(false);
    return;
  }
  if (embedded_) {
    Result<void> created = embedded_->CreateTopicsFor(**loaded);
    if (!created.ok()) log::Warn("embedded broker", {{"error", created.error().message}});
  }
  config_ = *loaded;
  for (auto& [number, p] : partitions_.all()) p->engine.SetRuleSet(config_->rules);
  metrics_.ConfigReload(true);
  SyncCounters();
  log::Info("config reloaded", {{"why", why}, {"config_version", config_->rules->config_version}});
}

void Daemon::Shutdown() {
  // Stop consuming; decide nothing early: open traces stay uncommitted and are re-read after a
  // restart. Flush what was routed, then commit what is safe.
  log::Info("stopping");
  SyncCounters();
  if (!eos_) rd_kafka_flush(clients_.producer.get(), 30000);
  committer_->Commit(/*sync=*/true);
  rd_kafka_consumer_close(clients_.consumer.get());
  log::Info("stopped", {{"routed", metrics_.routed()},
                        {"dead_lettered", metrics_.dead_lettered()},
                        {"produce_errors", metrics_.produce_errors()}});
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
  loop_at_ = clock_.Steady();
  while (true) {
    const int sig = sigtimedwait(&signals, nullptr, &no_wait);
    if (sig == SIGTERM || sig == SIGINT) break;
    if (sig == SIGHUP) Reload("SIGHUP");
    Backpressure();
    // Delivery reports are served between polls: while items are in flight to a reachable
    // broker, wait for input at most a millisecond so acknowledgements are seen (and holds
    // released) when they come; with the broker gone, do not spin.
    const int wait_ms = broker_reachable_ && rd_kafka_outq_len(clients_.producer.get()) > 0 ? 1 : 100;
    if (KafkaMessage msg{rd_kafka_consumer_poll(clients_.consumer.get(), wait_ms)}) {
      Handle(msg.get());
    }
    Tick();
    if (!rejoin_why_.empty()) Rejoin();
    if (!committer_->rewind_reason().empty()) Recover();
    loop_at_ = clock_.Steady();
    if (fatal_) break;
  }
  Shutdown();
  return fatal_ ? 1 : 0;
}

}  // namespace

int RunDaemon(const RunOptions& options, std::ostream& err) {
  std::shared_ptr<const Config> config = LoadConfigOrReport(options.config_path, err);
  if (!config) return kExitConfig;
  const RealClock clock;
  Daemon daemon(options, config, clock);
  return daemon.Run();
}

}  // namespace triaged
