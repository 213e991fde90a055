// The decision engine: assembles traces from decoded events on an injected clock, closes them
// (decision_wait / root_grace / max_wait), evaluates every rule at close and again on late
// events, samples, applies rate limits and decides each (trace, rule, destination) at most once.
// It returns what it decided in an Outbox; it never does I/O.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rules/event.h"
#include "rules/rate_limit.h"
#include "rules/routed_item.h"
#include "rules/ruleset.h"
#include "rules/trace.h"

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
};

// A trace that closed, for decision-latency accounting.
struct ClosedTrace {
  CloseReason reason = CloseReason::kDecisionWait;
  int64_t deadline_ns = 0;
};

// What calls into an engine decided, appended in order; the caller drains it after each call
// (and clears it). Owned by the caller, so engines of different partitions can run on different
// threads, each with its own outbox.
struct Outbox {
  // `documents` false: routes carry no serialized document (tools that only count or explain).
  explicit Outbox(bool with_documents = true) : documents(with_documents) {}

  std::vector<Route> routes;
  // Every trace evaluated (at close or on a late event), in order; a trace may appear again.
  std::vector<std::string> decided;
  std::vector<ClosedTrace> closed;
  bool documents = true;

  bool empty() const { return routes.empty() && decided.empty() && closed.empty(); }
  void clear() {
    routes.clear();
    decided.clear();
    closed.clear();
  }
};

// What one rule did in one evaluation of one trace.
struct RuleVerdict {
  enum class Outcome {
    kNoMatch,             // `when` was false
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
};

// What Add() could not take.
struct AddResult {
  size_t spans_rejected = 0;  // refused because the trace would exceed max_trace_bytes
  // Span-only annotations (no trace id) whose span is in no trace this engine holds.
  std::vector<Annotation> unjoined;
};

// What the engines of one process (the daemon runs one per partition) share: the rate-limit
// buckets, so a limit caps the process, and the count of retained traces and tombstones, so
// max_open_traces bounds the process's memory rather than each partition's. An engine that
// needs room evicts its own oldest traces, so the sum stays within max_open_traces plus one
// per engine.
struct EngineGroup {
  RateLimits limits;
  uint64_t traces = 0;      // open + closed within the late window, over every engine
  uint64_t tombstones = 0;  // routed state of forgotten traces, over every engine
};

class Engine {
 public:
  // `group` null = the engine is alone.
  explicit Engine(std::shared_ptr<const RuleSet> rules,
                  std::shared_ptr<EngineGroup> group = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Swaps the rule set at a tick boundary. Open traces, routed state (by rule and destination
  // name) and rate-limit buckets of rules that keep their names survive.
  void SetRuleSet(std::shared_ptr<const RuleSet> rules);
  const RuleSet& rules() const { return *rules_; }

  void set_observer(EngineObserver* observer) { observer_ = observer; }

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
  bool IsOpen(const std::string& trace_id) const {
    auto it = traces_.find(trace_id);
    return it != traces_.end() && it->second.state == State::kOpen;
  }
  size_t retained_traces() const { return traces_.size(); }
  const std::vector<RuleCounters>& rule_counters() const { return rule_counters_; }
  const EngineCounters& counters() const { return counters_; }

 private:
  enum class State { kOpen, kClosed };
  struct Entry {
    explicit Entry(std::string id) : trace(std::move(id)) {}
    Trace trace;
    State state = State::kOpen;
    int64_t opened_ns = 0;
    int64_t last_span_ns = 0;
    bool has_span = false;
    std::optional<int64_t> root_end_ns;
    int64_t deadline_ns = 0;              // close deadline (open) or eviction time (closed)
    std::vector<uint64_t> routed;         // hashes of (rule, destination) names routed
    std::vector<uint64_t> counted_match;  // hashes of rule names counted as matched
    std::vector<uint64_t> counted_sampled_out;
    uint64_t order_gen = 0;  // matches the entry's place in open_order_ / closed_order_
  };
  struct Timer {
    int64_t at_ns;
    uint64_t seq;
    std::string trace_id;
    bool operator>(const Timer& o) const {
      return at_ns != o.at_ns ? at_ns > o.at_ns : seq > o.seq;
    }
  };

  Entry& Open(const std::string& trace_id, int64_t now_ns, Outbox& out, bool& late);
  void Schedule(Entry& entry);
  void UpdateDeadline(Entry& entry);
  void Close(Entry& entry, CloseReason reason, int64_t now_ns, Outbox& out);
  void Evict(const std::string& trace_id, std::string_view reason, int64_t now_ns, Outbox& out);
  void MakeRoom(int64_t now_ns, Outbox& out);
  void Evaluate(Entry& entry, Trigger trigger, int64_t now_ns, Outbox& out);
  CloseReason ReasonFor(const Entry& entry) const;

  std::shared_ptr<const RuleSet> rules_;
  EngineObserver* observer_ = nullptr;
  int64_t now_ns_ = 0;
  std::unordered_map<std::string, Entry> traces_;
  size_t open_count_ = 0;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  uint64_t timer_seq_ = 0;
  // Opening / closing order, for eviction under max_open_traces (lazily cleaned).
  std::deque<std::pair<std::string, uint64_t>> open_order_, closed_order_;
  uint64_t generation_ = 0;
  // Traces with late events from the message being added, not yet re-evaluated.
  std::vector<std::string> pending_late_;
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
  std::unordered_map<std::string, Tombstone> tombstones_;
  std::deque<std::pair<std::string, uint64_t>> tombstone_order_;
  // Span id hash -> trace id, for span-only annotations. Kept only once one has come (most
  // deployments never send one); entries go with their trace.
  void IndexSpans(const Trace& trace);
  const std::string* TraceOfSpan(std::string_view span_id) const;
  bool span_index_on_ = false;
  std::unordered_map<uint64_t, std::string> span_index_;
  std::shared_ptr<EngineGroup> group_;
  std::vector<RuleCounters> rule_counters_;  // by index into rules_->rules
  EngineCounters counters_;
};

}  // namespace triaged
