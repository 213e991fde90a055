// The decision engine: assembles traces from decoded events on an injected clock, closes them
// (decision_wait / root_grace / max_wait), evaluates every rule at close and again on late
// events, samples, applies rate limits and decides each (trace, rule, destination) at most once.
// It returns what it decided in an Outbox; it never does I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "rules/event.h"
#include "rules/rate_limit.h"
#include "rules/routed_item.h"
#include "rules/ruleset.h"
#include "rules/timer_queue.h"
#include "rules/trace.h"
#include "rules/trace_key.h"
#include "rules/trace_store.h"

namespace triaged {

enum class CloseReason { kDecisionWait, kRootGrace, kMaxWait, kCapacity, kEndOfInput };
std::string_view CloseReasonName(CloseReason reason);

// One routed (trace, rule, destination): the routed item's document and what a publisher needs
// to send it. Self-contained: it stays valid after the call that decided it and after a reload
// (`rules` keeps `rule` and `destination` alive).
struct Route {
  std::string trace_id;
  std::shared_ptr<const RuleSet> rules;
  const RuleSpec* rule = nullptr;
  const DestinationSpec* destination = nullptr;
  Trigger trigger = Trigger::kClose;
  int64_t routed_at_ns = 0;
  size_t span_count = 0;  // of the trace when it was routed
  size_t annotation_count = 0;
  std::string document;  // SerializeRoutedItem (DESIGN §4); empty without documents
  // The limit buckets this route took a token from, as they were after it: exactly-once hands
  // them to the partition's next owner with the decision (DESIGN §2.3).
  std::vector<BucketState> buckets;
};

// A trace that closed, for decision-latency accounting.
struct ClosedTrace {
  CloseReason reason = CloseReason::kDecisionWait;
  int64_t deadline_ns = 0;
};

// A write of the trace store's changelog (DESIGN §6): the record of a trace the engine decided,
// or, with an empty record, a trace that left the store (its late window is over).
struct ChangelogRecord {
  std::string trace_id;
  std::string record;  // EncodeTraceRecord; empty = delete
};

// What calls into an engine decided, appended in order; the caller drains it after each call
// (and clears it). Owned by the caller, so engines of different partitions can run on different
// threads, each with its own outbox.
struct Outbox {
  // `documents` false: routes carry no serialized document (tools that only count or explain).
  explicit Outbox(bool with_documents = true) : documents(with_documents) {}

  std::vector<Route> routes;
  // Every trace evaluated (at close or on a late event), in order; a trace may appear again.
  std::vector<TraceKey> decided;
  std::vector<ClosedTrace> closed;
  // With a trace store: what was written to it, in order, for the changelog.
  std::vector<ChangelogRecord> changelog;
  bool documents = true;

  bool empty() const {
    return routes.empty() && decided.empty() && closed.empty() && changelog.empty();
  }
  void clear() {
    routes.clear();
    decided.clear();
    closed.clear();
    changelog.clear();
  }
};

// What one rule did in one evaluation of one trace.
struct RuleVerdict {
  enum class Outcome {
    kNoMatch,             // `when` was false
    kFilteredOut,         // the config's `filter:` was false: no rule looked at the trace
    kShadowed,            // first_match: an earlier rule matched
    kAlreadyRouted,       // every destination was routed by an earlier evaluation
    kSampledOut,          // matched, but u >= sample rate
    kRateLimited,         // matched and sampled, but the rule's limit was spent
    kRouted,              // routed to at least one destination
    kDestinationLimited,  // matched and sampled, but every remaining destination's limit was spent
  };
  size_t rule = 0;
  Outcome outcome = Outcome::kNoMatch;
  double sample_unit = 0;       // u of §2.3 (when the rule matched)
  std::string sample_key;       // the key u was computed from
  std::vector<size_t> routed;   // destinations routed in this evaluation
  std::vector<size_t> limited;  // destinations skipped by their limit
};
std::string_view OutcomeName(RuleVerdict::Outcome outcome);

// Optional read-only hooks for tools that explain decisions (`triaged explain`, tests): they see
// the trace while it is unpacked. Not for acting on decisions (that is the Outbox's job).
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnClose(const Trace& /*trace*/, CloseReason /*reason*/, int64_t /*now_ns*/) {}
  virtual void OnEvaluation(const Trace& /*trace*/, Trigger /*trigger*/, int64_t /*now_ns*/,
                            const std::vector<RuleVerdict>& /*verdicts*/) {}
  virtual void OnEvict(const Trace& /*trace*/, std::string_view /*reason*/, int64_t /*now_ns*/) {}
};

struct RuleCounters {
  uint64_t matched = 0;       // traces the rule matched (once per trace)
  uint64_t sampled_out = 0;   // matched traces not in the sample (once per trace)
  uint64_t rate_limited = 0;  // evaluations denied by the rule's or a destination's limit
  uint64_t routed = 0;        // routed items
};

struct EngineCounters {
  uint64_t traces_opened = 0;
  uint64_t traces_closed = 0;
  uint64_t late_evaluations = 0;
  uint64_t evicted_expired = 0;   // late_feedback_window over
  uint64_t evicted_capacity = 0;  // max_open_traces reached
  uint64_t spans_over_size = 0;   // spans refused by max_trace_bytes
  // Traces that closed with feedback and no span: decided on their feedback alone. Many of them
  // mean spans and feedback are not meeting (DESIGN §1.4).
  uint64_t closed_without_spans = 0;
  // The trace store: closed traces moved out of memory, brought back by a late event, and
  // records that could not be read back (counted, then treated as absent).
  uint64_t stored = 0;
  uint64_t revived = 0;
  uint64_t unreadable_records = 0;
};

// What Add() could not take.
struct AddResult {
  size_t spans_rejected = 0;  // refused because the trace would exceed max_trace_bytes
  // Span-only annotations (no trace id) whose span is in no trace this engine holds.
  std::vector<Annotation> unjoined;
};

// What the engines of one process (the daemon runs one per partition) share: the rate-limit
// buckets, by partition (each engine spends its partition's share, DESIGN §2.3), and the count
// of retained traces and tombstones, so max_open_traces bounds the process's memory rather than
// each partition's. An engine that
// needs room evicts its own oldest traces, so the sum stays within max_open_traces plus one
// per engine.
struct EngineGroup {
  RateLimits limits;
  // Atomic: the daemon's engines run on several threads (`threads:`).
  std::atomic<uint64_t> traces{0};      // open + closed within the late window, over every engine
  std::atomic<uint64_t> tombstones{0};  // routed state of forgotten traces, over every engine
};

class Engine {
 public:
  // `group` null = the engine is alone. `limits`: which share of every limit it spends (the
  // default, one partition, is the whole limit).
  explicit Engine(std::shared_ptr<const RuleSet> rules,
                  std::shared_ptr<EngineGroup> group = nullptr, LimitScope limits = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Swaps the rule set at a tick boundary. Open traces, routed state (by rule and destination
  // name) and rate-limit buckets of rules that keep their names survive.
  void SetRuleSet(std::shared_ptr<const RuleSet> rules);
  const RuleSet& rules() const { return *rules_; }

  void set_observer(EngineObserver* observer) { observer_ = observer; }

  // Pins sampling, for rule tests (`sample: keep | drop`): a rule with kKeep keeps every
  // matched trace, one with kDrop drops every one, whatever u and the rate; indexed as
  // rules().rules, empty (the default, and after SetRuleSet) = sample as the config says.
  enum class SamplePin : uint8_t { kNone, kKeep, kDrop };
  void set_sample_pins(std::vector<SamplePin> pins) { sample_pins_ = std::move(pins); }

  // Closed traces past `trace.hot_window` leave memory for `store` (not owned; null = keep
  // them in memory until their late window is over), from which a late event brings them back
  // with full context (DESIGN §6 "Trace store"). Every evaluation of a closed trace writes its
  // record to Outbox::changelog; the store gets it when the trace leaves memory.
  void set_store(TraceStore* store) { store_ = store; }
  TraceStore* store() const { return store_; }
  // Writes each closed trace held in memory to the store as it is now (those the store does not
  // hold so already), keeping it in memory; returns how many it wrote. Before the store is
  // closed cleanly: a next owner that starts from it must find every trace the changelog has.
  size_t SaveClosed();

  // Moves the clock to `now_ns` (never backwards): closes traces whose deadline passed and
  // forgets closed traces whose late window is over. What is decided is appended to `out`.
  void Advance(int64_t now_ns, Outbox& out);

  // Adds a message's spans and annotations at `now_ns`; late events re-evaluate at once. An
  // annotation with a span id and no trace id joins the trace that holds that span (DESIGN
  // §1.2), else comes back in AddResult::unjoined.
  AddResult Add(DecodedMessage message, int64_t now_ns, Outbox& out);

  // Records that (rule, destination) was already routed for a trace by an earlier run (the
  // exactly-once decisions topic), so it is never routed again. The trace itself opens normally
  // when its events come. Seeds count against max_open_traces like forgotten traces.
  void SeedRouted(const std::string& trace_id, std::string_view rule, std::string_view destination);

  // Closes every open trace now (end of a replay).
  void CloseAll(int64_t now_ns, Outbox& out);

  // The earliest pending deadline (close or eviction), if any.
  std::optional<int64_t> NextDeadline();

  int64_t now() const { return now_ns_; }
  size_t open_traces() const { return open_count_; }
  // True while the trace is open (not yet decided).
  bool IsOpen(const TraceKey& trace_id) const {
    auto it = traces_.find(trace_id);
    return it != traces_.end() && it->second.state == State::kOpen;
  }
  size_t retained_traces() const { return traces_.size(); }
  // Close and expiry timers queued, stale ones included.
  size_t queued_timers() const { return timers_.size(); }
  const std::vector<RuleCounters>& rule_counters() const { return rule_counters_; }
  const EngineCounters& counters() const { return counters_; }
  const LimitScope& limit_scope() const { return limit_scope_; }

 private:
  enum class State { kOpen, kClosed };
  struct Entry {
    Entry(TraceKey k, std::string id) : key(std::move(k)), trace(std::move(id)) {}
    // The flags first, together: an entry is one node of the trace table, and a few bytes
    // less keep it in a smaller allocation class.
    TraceKey key;
    Trace trace;
    State state = State::kOpen;
    bool has_span = false;
    bool has_root_end = false;  // root_end_ns is set
    bool stored = false;        // the trace store holds the trace as it is now
    bool in_session = false;    // counted in its session's traces
    int64_t opened_ns = 0;
    int64_t last_span_ns = 0;
    int64_t root_end_ns = 0;  // when a root span that had ended arrived
    // Open: when its timer is due, at or before the close deadline (CloseDeadline). Closed:
    // when it leaves memory.
    int64_t deadline_ns = 0;
    int64_t closed_ns = 0;
    int64_t expires_ns = 0;               // closed: when the late window is over
    std::vector<uint64_t> routed;         // hashes of (rule, destination) names routed
    std::vector<uint64_t> counted_match;  // hashes of rule names counted as matched
    std::vector<uint64_t> counted_sampled_out;
    uint64_t order_gen = 0;  // matches the entry's place in open_order_ / closed_order_
  };
  struct Timer {
    int64_t at_ns;
    uint64_t seq;
    TraceKey trace;
    bool operator>(const Timer& o) const {
      return at_ns != o.at_ns ? at_ns > o.at_ns : seq > o.seq;
    }
  };

  // `id` is the text of `key`.
  Entry& Open(const TraceKey& key, const std::string& id, int64_t now_ns, Outbox& out, bool& late);
  void Schedule(Entry& entry);
  // When an open trace closes, as its events so far have it.
  int64_t CloseDeadline(const Entry& entry) const;
  // Queues a timer when the close deadline moved earlier; returns the deadline.
  int64_t UpdateDeadline(Entry& entry);
  // An open trace whose timer came due before its deadline: the timer is queued again at the
  // deadline (true), else false.
  bool Postpone(Entry& entry);
  void Close(Entry& entry, CloseReason reason, int64_t now_ns, Outbox& out);
  void Evict(const TraceKey& key, std::string_view reason, int64_t now_ns, Outbox& out);
  // Evaluates the late events of the message being added before their trace leaves memory.
  void EvaluatePendingLate(Entry& entry, int64_t now_ns, Outbox& out);
  // The trace store: a closed trace leaves memory (its record is in the store already); a late
  // event brings it back; records whose late window is over are deleted.
  void Persist(Entry& entry, Outbox& out);
  std::string EncodeRecord(const Entry& entry) const;
  void Spill(const TraceKey& key, int64_t now_ns, Outbox& out);
  Entry* Revive(const TraceKey& key, const std::string& id, int64_t now_ns, Outbox& out);
  void ExpireStored(int64_t now_ns, Outbox& out);
  // Sessions (DESIGN §2.1 `session.*`): the session-scoped feedback of each session and the
  // traces of it seen within the late window, so session feedback re-evaluates them.
  static constexpr size_t kMaxSessionTraces = 1000;
  struct Session {
    std::vector<Annotation> annotations;
    int64_t trace_count = 0;
    int64_t expires_ns = 0, queued_expiry_ns = 0;
    // The latest kMaxSessionTraces traces: in a vector (most sessions have a few, and a deque
    // would take a 512-byte block for them), a ring once full.
    void AddTrace(TraceKey key) {
      if (traces_.size() < kMaxSessionTraces) {
        if (traces_.empty()) traces_.reserve(4);
        traces_.push_back(std::move(key));
        return;
      }
      traces_[oldest_] = std::move(key);
      oldest_ = (oldest_ + 1) % kMaxSessionTraces;
    }
    // Oldest first.
    template <typename Fn>
    void ForEachTrace(Fn&& fn) const {
      for (size_t i = 0; i < traces_.size(); ++i) fn(traces_[(oldest_ + i) % traces_.size()]);
    }

   private:
    std::vector<TraceKey> traces_;
    size_t oldest_ = 0;
  };
  Session& TouchSession(std::string_view session_id, int64_t now_ns);
  void NoteSession(Entry& entry, int64_t now_ns);
  void AddSessionAnnotation(Annotation annotation, int64_t now_ns, Outbox& out);
  void ExpireSessions(int64_t now_ns);
  // Found by the std::string_view of a summary (Debian's Abseil has a string_view of its own).
  struct SessionIdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };
  struct SessionIdEq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };
  absl::node_hash_map<std::string, Session, SessionIdHash, SessionIdEq> sessions_;
  std::deque<std::pair<int64_t, std::string>> session_expiry_;  // (expiry, id); lazily cleaned
  void MakeRoom(int64_t now_ns, Outbox& out);
  void Evaluate(Entry& entry, Trigger trigger, int64_t now_ns, Outbox& out);
  CloseReason ReasonFor(const Entry& entry) const;

  std::shared_ptr<const RuleSet> rules_;
  EngineObserver* observer_ = nullptr;
  std::vector<SamplePin> sample_pins_;
  TraceStore* store_ = nullptr;
  int64_t next_store_expiry_ns_ = 0;
  int64_t now_ns_ = 0;
  // A Swiss table of nodes: one probe of a control group finds a trace, and an Entry& stays put
  // while others come and go. Its order of iteration is not to be relied on.
  absl::node_hash_map<TraceKey, Entry, TraceKeyHash> traces_;
  size_t open_count_ = 0;
  TimerQueue<Timer> timers_;
  uint64_t timer_seq_ = 0;
  // Opening / closing order, for eviction under max_open_traces (lazily cleaned).
  std::deque<std::pair<TraceKey, uint64_t>> open_order_, closed_order_;
  uint64_t generation_ = 0;
  // Traces with late events from the message being added, not yet re-evaluated.
  std::vector<TraceKey> pending_late_;
  // Routed (and counted) state of evicted traces, so late feedback after eviction is still
  // routed at most once and counted once; bounded FIFO of max_open_traces entries. The order
  // holds (id, generation): a tombstone taken back by a revived trace leaves a stale entry
  // behind, which must not drop a newer tombstone of the same id.
  struct Tombstone {
    std::vector<uint64_t> routed;
    std::vector<uint64_t> counted_match;
    std::vector<uint64_t> counted_sampled_out;
    uint64_t gen = 0;
    // False for routed state seeded from an earlier run (SeedRouted): the trace was not
    // forgotten here, its events may still come and open it normally.
    bool decided = true;
  };
  void TrimTombstones();
  absl::flat_hash_map<TraceKey, Tombstone, TraceKeyHash> tombstones_;
  std::deque<std::pair<TraceKey, uint64_t>> tombstone_order_;
  // Span id hash -> trace, for span-only annotations. Kept only once one has come (most
  // deployments never send one); entries go with their trace.
  void IndexSpans(const Trace& trace);
  const Entry* TraceOfSpan(std::string_view span_id) const;
  bool span_index_on_ = false;
  absl::flat_hash_map<uint64_t, TraceKey> span_index_;
  std::shared_ptr<EngineGroup> group_;
  LimitScope limit_scope_;
  std::vector<RuleCounters> rule_counters_;  // by index into rules_->rules
  // By index into rules_->rules: the hash of the rule's name, and of (rule, destination) for
  // each of its destinations in order: what Entry::routed and counted_* hold.
  struct RuleHashes {
    uint64_t rule = 0;
    std::vector<uint64_t> routes;
  };
  static std::vector<RuleHashes> HashRules(const RuleSet& rs);
  std::vector<RuleHashes> rule_hashes_;
  EngineCounters counters_;
};

}  // namespace triaged
