// `triaged run`: the long-running job. Consumes the spans and feedback topics in a consumer
// group, keeps one engine per partition (the two topics are co-partitioned, so partition p of
// both carries the same traces), produces routed items and dead letters, and commits offsets
// (DESIGN §6): at-least-once never past the first event of an undecided trace nor before the
// routed items of a decided trace are acknowledged; exactly-once in Kafka transactions.
//
// The Pipeline is the loop's state; Kafka is behind a KafkaClient (a fake in tests) and time
// behind a Clock. pipeline.cc holds the message path, membership.cc start, rebalances,
// recovery, reload and shutdown.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/admin_server.h"
#include "daemon/clock.h"
#include "daemon/committer.h"
#include "daemon/dead_letter_log.h"
#include "daemon/embedded_broker.h"
#include "daemon/exactly_once.h"
#include "daemon/kafka.h"
#include "daemon/metrics.h"
#include "daemon/partitions.h"
#include "daemon/status.h"
#include "daemon/trace_stores.h"
#include "daemon/worker_pool.h"
#include "rules/engine.h"

namespace triaged {

struct RunOptions {
  std::string config_path;
  bool watch = false;  // reload when the config file changes
};

// Exit code of a shutdown that could not flush and commit everything in time (EX_TEMPFAIL).
constexpr int kExitUnflushed = 75;

// Runs until SIGTERM/SIGINT; SIGHUP reloads the config. Returns the exit code.
int RunDaemon(const RunOptions& options, std::ostream& err);

// Makes the Kafka client for a bootstrap, an instance id and a transactional id ("" = none).
using KafkaClientFactory = std::function<Result<std::unique_ptr<KafkaClient>>(
    const Config& config, const std::string& bootstrap, const std::string& instance_id,
    const std::string& transactional_id, KafkaListener& listener)>;
KafkaClientFactory LibrdkafkaClientFactory();

class Pipeline final : public KafkaListener {
 public:
  Pipeline(RunOptions options, std::shared_ptr<const Config> config, const Clock& clock,
           KafkaClientFactory new_client);
  ~Pipeline() override;
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Connects, checks the topics, starts the admin server and subscribes. False: exit 1.
  bool Start();
  // One turn of the main loop: take a batch of messages (waiting at most `wait` for the first,
  // less while items are in flight), advance the engines to now, commit when a second has
  // passed, recover.
  void Step(milliseconds wait = milliseconds(100));
  // A batch is at most this many messages, taken in at most this long.
  static constexpr int kBatchMessages = 500;
  static constexpr milliseconds kBatchTime{5};
  // A smaller batch is prepared on the main thread alone.
  static constexpr size_t kParallelBatch = 64;
  // True once the daemon must stop (a fatal error).
  bool failed() const { return fatal_; }
  // Reloads the config file; a broken or non-reloadable config keeps the running one.
  void Reload(const char* why);
  // Stops consuming, flushes, commits what is safe. Returns the exit code.
  int Shutdown();

  Metrics& metrics() { return metrics_; }
  const StatusDocuments& status() const { return status_; }
  uint16_t admin_port() const { return admin_port_; }
  // The threads the partitions' engines run on (`threads:`).
  int threads() const { return workers_->threads(); }

  // KafkaListener
  void OnMessage(const InputMessage& message) override;
  void OnAssigned(const TopicPartitions& partitions) override;
  void OnRevoked(const TopicPartitions& partitions) override;
  void OnDelivery(void* opaque, rd_kafka_resp_err_t err, std::string_view topic) override;
  void OnClientError(rd_kafka_resp_err_t err, std::string_view reason, bool producer) override;

 private:
  bool StartEmbeddedBroker();
  bool CheckTopics();
  static int64_t RepartitionRetentionMs();
  bool StartAdmin();
  bool SeedDecisions(const std::vector<int32_t>& numbers);

  // The topics the group consumer reads: the inputs, and the repartition topic unless
  // `repartition: never`.
  std::vector<std::string> SubscribedTopics() const;
  // A message of this turn's batch: taken from the consumer (copied: the consumer's buffer
  // goes with the callback), then prepared on its partition's worker thread (decoded, checked,
  // split for the hop, added to the engine), then applied on the main thread in the order the
  // messages were consumed (offsets, what the engine decided, hops, dead letters, metrics).
  struct Taken {
    Partition* partition = nullptr;
    int input = kSpansInput;
    int64_t offset = 0;
    int64_t now_ns = 0;  // the engines' clock when it was taken
    std::string topic;
    std::optional<std::string> key, payload;
    // Prepare's results.
    std::optional<Error> dead_letter;  // the whole message is refused
    std::optional<Error> refused;      // some annotations broke their schema; the rest goes on
    std::vector<std::pair<std::string_view, std::string_view>> annotations;  // metric labels
    bool added = false;              // events were added to the engine: the fields below are set
    std::vector<TraceKey> ids;       // the traces the added events belong to
    std::vector<TraceKey> not_open;  // of those, the ones the engine did not keep open
    size_t spans = 0;
    int32_t span_lookups = 0;
    AddResult result;
    Outbox out;  // what the engine decided on the add
    // The hop: events re-produced to the repartition topic's partition of their trace.
    std::vector<std::pair<int32_t, std::pair<std::string, DecodedMessage>>> away;

    InputMessage View() const;
  };
  // Prepares and applies the batch taken so far; every callback but OnMessage calls it first,
  // so what it does sees the messages taken before it, as if each had been handled at once.
  void ProcessBatch();
  // On partition `m.partition`'s worker: touches only that partition's engine and `m`.
  void Prepare(Taken& m);
  void AddToEngine(Taken& m, DecodedMessage events);
  // On the main thread.
  void Apply(Taken& m);
  void ApplyAdd(Taken& m, const InputMessage& msg);
  // Re-produces one trace's events to partition `home` of the repartition topic, holding the
  // input message's offset until the broker acknowledges them.
  void Hop(Partition& p, int input, const InputMessage& msg, int32_t home,
           const std::string& trace_id, const DecodedMessage& events);
  // Acts on what partition `p`'s engine decided, then empties `out`.
  void Drain(Partition& p, Outbox& out);
  // A trace's changelog record that waits for the routed items of the same decision
  // (at-least-once): the changelog must never say a pair was routed before the broker has it.
  struct ChangelogGate;
  struct ReadyChangelog {
    int32_t partition;
    uint64_t generation, ticket;
    bool ok;
    std::string trace_id, record;
  };
  // Produces one routed item, holding its trace's offsets until it is acknowledged.
  // Its document is moved to the producer.
  void Publish(Partition& p, Route& route, std::shared_ptr<ChangelogGate> gate = nullptr);
  // Writes a trace's record (or, empty, its delete) to the changelog, holding `ticket` (its
  // trace's offsets) until it is acknowledged.
  void WriteChangelog(Partition& p, const std::string& trace_id, const std::string& record,
                      uint64_t ticket);
  void WriteReadyChangelog();
  // Opens and restores the trace stores of partitions `numbers` (DESIGN §6). False: exit.
  bool RestoreStores(const std::vector<int32_t>& numbers);
  // Closes partition `n`'s store cleanly (its hot traces written to it first).
  void CloseStore(int32_t n);
  void DeadLetter(Partition& p, int input, const InputMessage& msg, const Error& error);
  struct Delivery;
  void Release(const Delivery* delivery, bool delivered);
  void Refused(std::unique_ptr<Delivery> delivery, const std::string& why);
  void DeadLetterRefused(std::unique_ptr<Delivery> item, const std::string& why);
  void Produce(const std::string& topic, std::string_view key, std::string value,
               const Headers& headers, std::unique_ptr<Delivery> delivery, int32_t partition = -1,
               bool tombstone = false);

  void Tick();
  // One line for the dead letters held back by dead_letter_log_, if any.
  static void LogDeadLetters(const std::optional<DeadLetterLog::Summary>& held);
  void Backpressure();
  void Rejoin();
  void Recover();
  void Rewind(const std::string& why);
  std::vector<int32_t> ForgetPartitions();
  void SyncCounters();
  void UpdateLag();
  // triaged_commit_stalled_seconds, and whether every partition's commits are advancing.
  void UpdateCommitStall();
  // The config file's modification time in nanoseconds, 0 when it cannot be read.
  static int64_t FileMtime(const std::string& path);

  RunOptions options_;
  std::shared_ptr<const Config> config_;
  const Clock& clock_;
  KafkaClientFactory new_client_;
  std::unique_ptr<EmbeddedBroker> embedded_;  // `bootstrap_servers: embedded`; outlives client_
  std::string bootstrap_;
  std::optional<InstanceId> instance_;
  bool eos_ = false;
  std::string decisions_topic_;
  int input_partitions_ = 0;
  // The repartition hop: off with `repartition: never`. `join_partitions_` is the repartition
  // topic's partition count; `in_place_[input]` says events of the input that are home may
  // skip the hop (`auto`, and the input has as many partitions as the repartition topic).
  bool repartition_ = false;
  int join_partitions_ = 0;
  bool in_place_[2] = {false, false};
  // Changelog records whose routed items were acknowledged, to write in the main loop. Before
  // client_: its delivery reports may fill it until it is gone.
  std::vector<ReadyChangelog> ready_changelog_;
  std::unique_ptr<KafkaClient> client_;
  // `trace.store`: the trace stores of the partitions owned, and their changelog.
  std::unique_ptr<TraceStores> stores_;
  // max_open_traces bounds the process, not each partition. Rate limits are split by join
  // partition (DESIGN §2.3); a partition's buckets survive a rebalance that gives it back to
  // this process (exactly-once replaces them with the committed state on assignment).
  std::shared_ptr<EngineGroup> engines_ = std::make_shared<EngineGroup>();
  PartitionTable partitions_{engines_};
  std::unique_ptr<Committer> committer_;
  std::vector<Taken> batch_;  // taken by this turn, not yet processed
  bool processing_ = false;   // ProcessBatch is running
  // This turn's batch was large enough for the pool (kParallelBatch): Tick advances the
  // engines on it too.
  bool busy_ = false;
  // The threads the partitions' engines run on (`threads:`).
  std::unique_ptr<WorkerPool> workers_;
  // Exactly-once: records the broker refused in an aborted transaction, by routed item id (and
  // why) and by input place ("topic/partition/offset") for dead letters; after the rewind they
  // are dead-lettered or skipped instead of refused again.
  std::map<std::string, std::string> refused_items_;
  std::set<std::string> refused_dead_letters_;
  // Likewise re-produced events the repartition topic refused, by "topic/partition/offset/trace".
  std::set<std::string> refused_hops_;

  DeadLetterLog dead_letter_log_;  // on clock_: the first at once, then one line per 10 s
  SteadyTime last_commit_{};
  SteadyTime last_watch_{};
  int64_t config_mtime_ = 0;
  bool fatal_ = false;
  bool paused_ = false;  // consumption paused while the producer queue drains
  // The group fenced this member (static membership, after a coordinator restart): a new
  // consumer rejoins in the main loop, at most kMaxRejoins times in kRejoinWindow.
  std::string rejoin_why_;
  std::deque<SteadyTime> rejoins_;
  // When the main loop last went round: a loop stuck in a call to a broker that is gone is not
  // ready, whatever the last callback said.
  std::atomic<SteadyTime> loop_at_{SteadyTime{}};

  Metrics metrics_;
  StatusDocuments status_;
  std::unique_ptr<AdminServer> admin_;
  uint16_t admin_port_ = 0;
  std::atomic<bool> broker_reachable_{false};
  std::atomic<bool> partitions_assigned_{false};
  std::atomic<bool> commits_advancing_{true};
  int64_t lag_total_ = 0;
};

}  // namespace triaged
