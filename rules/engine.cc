#include "rules/engine.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <algorithm>

#include "rules/partitioner.h"
#include "rules/sampling.h"
#include "rules/trace_record.h"

namespace triaged {
namespace {

uint64_t NameHash(std::string_view a, std::string_view b = {}) {
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  XXH64_update(&state, a.data(), a.size());
  if (!b.empty()) {
    const char zero = '\0';
    XXH64_update(&state, &zero, 1);
    XXH64_update(&state, b.data(), b.size());
  }
  return XXH64_digest(&state);
}

bool Contains(const std::vector<uint64_t>& v, uint64_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

std::string_view CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kDecisionWait: return "decision_wait";
    case CloseReason::kRootGrace: return "root_grace";
    case CloseReason::kMaxWait: return "max_wait";
    case CloseReason::kCapacity: return "max_open_traces";
    case CloseReason::kEndOfInput: return "end_of_input";
  }
  return "unknown";
}

std::string_view OutcomeName(RuleVerdict::Outcome outcome) {
  using O = RuleVerdict::Outcome;
  switch (outcome) {
    case O::kNoMatch: return "no_match";
    case O::kFilteredOut: return "filtered_out";
    case O::kShadowed: return "shadowed";
    case O::kAlreadyRouted: return "already_routed";
    case O::kSampledOut: return "sampled_out";
    case O::kRateLimited: return "rate_limited";
    case O::kRouted: return "routed";
    case O::kDestinationLimited: return "destination_limited";
  }
  return "unknown";
}

Engine::Engine(std::shared_ptr<const RuleSet> rules, std::shared_ptr<EngineGroup> group,
               LimitScope limits)
    : rules_(std::move(rules)),
      group_(group ? std::move(group) : std::make_shared<EngineGroup>()),
      limit_scope_(limits) {
  limit_scope_.partitions = std::max(limit_scope_.partitions, 1);
  rule_counters_.resize(rules_->rules.size());
  rule_hashes_ = HashRules(*rules_);
}

std::vector<Engine::RuleHashes> Engine::HashRules(const RuleSet& rs) {
  std::vector<RuleHashes> hashes(rs.rules.size());
  for (size_t r = 0; r < rs.rules.size(); ++r) {
    hashes[r].rule = NameHash(rs.rules[r].name);
    for (size_t d : rs.rules[r].destinations) {
      hashes[r].routes.push_back(NameHash(rs.rules[r].name, rs.destinations[d].name));
    }
  }
  return hashes;
}

Engine::~Engine() {
  group_->traces -= traces_.size();
  group_->tombstones -= tombstones_.size();
}

void Engine::SetRuleSet(std::shared_ptr<const RuleSet> rules) {
  sample_pins_.clear();  // indexed by the old rules
  std::vector<RuleCounters> counters(rules->rules.size());
  for (size_t i = 0; i < rules->rules.size(); ++i) {
    for (size_t j = 0; j < rules_->rules.size(); ++j) {
      if (rules_->rules[j].name == rules->rules[i].name) counters[i] = rule_counters_[j];
    }
  }
  rule_counters_ = std::move(counters);
  group_->limits.Reconfigure(*rules);
  rule_hashes_ = HashRules(*rules);
  rules_ = std::move(rules);
  // Deadlines depend on the trace settings: reschedule open traces, in the order they opened
  // (timers due at the same instant fire in the order they were scheduled).
  for (const auto& [id, gen] : open_order_) {
    auto it = traces_.find(id);
    if (it != traces_.end() && it->second.state == State::kOpen && it->second.order_gen == gen) {
      UpdateDeadline(it->second);
    }
  }
}

void Engine::Schedule(Entry& entry) {
  timers_.push(Timer{entry.deadline_ns, timer_seq_++, entry.key});
}

int64_t Engine::CloseDeadline(const Entry& entry) const {
  const TraceSettings& ts = rules_->trace;
  const int64_t last = entry.has_span ? entry.last_span_ns : entry.opened_ns;
  int64_t deadline = std::min(last + ts.decision_wait_ns, entry.opened_ns + ts.max_wait_ns);
  if (entry.has_root_end) deadline = std::min(deadline, entry.root_end_ns + ts.root_grace_ns);
  return deadline;
}

int64_t Engine::UpdateDeadline(Entry& entry) {
  // Most spans move the deadline later: the timer already queued stays, and when it fires it
  // is queued again at the deadline as it is then (Advance). Only an earlier deadline (a root
  // that ended, a trace just opened) queues a timer now.
  const int64_t deadline = CloseDeadline(entry);
  if (entry.deadline_ns < 0 || deadline < entry.deadline_ns) {
    entry.deadline_ns = deadline;
    Schedule(entry);
  }
  return deadline;
}

bool Engine::Postpone(Entry& entry) {
  if (entry.state != State::kOpen) return false;
  const int64_t deadline = CloseDeadline(entry);
  if (deadline <= entry.deadline_ns) return false;
  entry.deadline_ns = deadline;
  Schedule(entry);
  return true;
}

CloseReason Engine::ReasonFor(const Entry& entry) const {
  const TraceSettings& ts = rules_->trace;
  if (entry.has_root_end && entry.deadline_ns == entry.root_end_ns + ts.root_grace_ns) {
    return CloseReason::kRootGrace;
  }
  const int64_t last = entry.has_span ? entry.last_span_ns : entry.opened_ns;
  if (entry.deadline_ns == last + ts.decision_wait_ns) return CloseReason::kDecisionWait;
  return CloseReason::kMaxWait;
}

void Engine::Advance(int64_t now_ns, Outbox& out) {
  now_ns_ = std::max(now_ns_, now_ns);
  while (!timers_.empty() && timers_.top().at_ns <= now_ns_) {
    Timer timer = timers_.top();
    timers_.pop();
    auto it = traces_.find(timer.trace);
    if (it == traces_.end() || it->second.deadline_ns != timer.at_ns) continue;  // stale
    Entry& entry = it->second;
    if (Postpone(entry)) continue;  // the deadline moved on since this timer was queued
    if (entry.state == State::kOpen) {
      // Close at the deadline itself, so routed_at does not depend on when we looked.
      Close(entry, ReasonFor(entry), timer.at_ns, out);
    } else if (store_ != nullptr && entry.deadline_ns < entry.expires_ns) {
      Spill(timer.trace, timer.at_ns, out);
    } else {
      Evict(timer.trace, "expired", timer.at_ns, out);
    }
  }
  ExpireSessions(now_ns_);
  if (store_ != nullptr && now_ns_ >= next_store_expiry_ns_) {
    ExpireStored(now_ns_, out);
    next_store_expiry_ns_ = now_ns_ + kNanosPerSecond;  // a scan a second is plenty
  }
}

std::optional<int64_t> Engine::NextDeadline() {
  while (!timers_.empty()) {
    const Timer& t = timers_.top();
    auto it = traces_.find(t.trace);
    if (it == traces_.end() || it->second.deadline_ns != t.at_ns) {
      timers_.pop();  // stale
      continue;
    }
    Entry& entry = it->second;
    if (entry.state != State::kOpen || CloseDeadline(entry) <= t.at_ns) return t.at_ns;
    timers_.pop();
    Postpone(entry);
  }
  return std::nullopt;
}

void Engine::Close(Entry& entry, CloseReason reason, int64_t now_ns, Outbox& out) {
  entry.state = State::kClosed;
  --open_count_;
  ++counters_.traces_closed;
  if (!entry.has_span) ++counters_.closed_without_spans;
  if (observer_ != nullptr) observer_->OnClose(entry.trace, reason, now_ns);
  out.closed.push_back(ClosedTrace{reason, now_ns});
  entry.closed_ns = now_ns;
  entry.expires_ns = now_ns + rules_->trace.late_feedback_window_ns;
  NoteSession(entry, now_ns);
  Evaluate(entry, Trigger::kClose, now_ns, out);
  entry.deadline_ns = entry.expires_ns;
  if (store_ != nullptr) {
    entry.deadline_ns =
        now_ns + std::min(rules_->trace.hot_window_ns, rules_->trace.late_feedback_window_ns);
  }
  entry.order_gen = ++generation_;
  closed_order_.emplace_back(entry.key, entry.order_gen);
  Schedule(entry);
}

void Engine::Evict(const TraceKey& key, std::string_view reason, int64_t now_ns, Outbox& out) {
  auto it = traces_.find(key);
  if (it == traces_.end()) return;
  EvaluatePendingLate(it->second, now_ns, out);
  if (store_ != nullptr && it->second.state == State::kClosed) {
    store_->Delete(it->second.trace.id());
    out.changelog.push_back(ChangelogRecord{it->second.trace.id(), ""});
  }
  if (observer_ != nullptr) observer_->OnEvict(it->second.trace, reason, now_ns);
  if (it->second.state == State::kOpen) --open_count_;
  if (reason == "expired")
    ++counters_.evicted_expired;
  else
    ++counters_.evicted_capacity;
  Entry& entry = it->second;
  if (span_index_on_) {
    for (uint64_t hash : entry.trace.span_id_hashes()) {
      if (auto at = span_index_.find(hash); at != span_index_.end() && at->second == key) {
        span_index_.erase(at);
      }
    }
  }
  Tombstone tomb{std::move(entry.routed), std::move(entry.counted_match),
                 std::move(entry.counted_sampled_out), ++generation_};
  tombstone_order_.emplace_back(key, tomb.gen);
  if (tombstones_.insert_or_assign(key, std::move(tomb)).second) ++group_->tombstones;
  TrimTombstones();
  traces_.erase(it);
  --group_->traces;
}

void Engine::EvaluatePendingLate(Entry& entry, int64_t now_ns, Outbox& out) {
  // Late events of the message being added must not be lost when that same message evicts
  // their trace to make room: evaluate them first.
  if (auto p = std::find(pending_late_.begin(), pending_late_.end(), entry.key);
      p != pending_late_.end()) {
    pending_late_.erase(p);
    ++counters_.late_evaluations;
    Evaluate(entry, Trigger::kLateFeedback, now_ns, out);
  }
}

std::string Engine::EncodeRecord(const Entry& entry) const {
  TraceRecord record;
  record.trace_id = entry.trace.id();
  record.closed_ns = entry.closed_ns;
  record.expires_ns = entry.expires_ns;
  record.has_span = entry.has_span;
  record.routed = entry.routed;
  record.counted_match = entry.counted_match;
  record.counted_sampled_out = entry.counted_sampled_out;
  record.events.spans = entry.trace.spans();
  record.events.annotations = entry.trace.annotations();
  return EncodeTraceRecord(record);
}

void Engine::Persist(Entry& entry, Outbox& out) {
  // The changelog has every decision at once; the local store only what leaves memory (it
  // is rebuilt from the changelog when it cannot be trusted).
  out.changelog.push_back(ChangelogRecord{entry.trace.id(), EncodeRecord(entry)});
  entry.stored = false;
}

void Engine::Spill(const TraceKey& key, int64_t now_ns, Outbox& out) {
  auto it = traces_.find(key);
  if (it == traces_.end()) return;
  Entry& entry = it->second;
  EvaluatePendingLate(entry, now_ns, out);
  if (!entry.stored) {
    store_->Put(entry.trace.id(), EncodeRecord(entry), entry.expires_ns);
    entry.trace.Release();
  }
  if (span_index_on_) {
    for (uint64_t hash : entry.trace.span_id_hashes()) {
      if (auto at = span_index_.find(hash); at != span_index_.end() && at->second == key) {
        span_index_.erase(at);
      }
    }
  }
  ++counters_.stored;
  traces_.erase(it);
  --group_->traces;
}

size_t Engine::SaveClosed() {
  if (store_ == nullptr) return 0;
  size_t written = 0;
  for (auto& [id, entry] : traces_) {
    if (entry.state != State::kClosed || entry.stored) continue;
    store_->Put(entry.trace.id(), EncodeRecord(entry), entry.expires_ns);
    entry.stored = true;
    ++written;
  }
  return written;
}

Engine::Entry* Engine::Revive(const TraceKey& key, const std::string& trace_id, int64_t now_ns,
                              Outbox& out) {
  std::optional<std::string> bytes = store_->Get(trace_id);
  if (!bytes) return nullptr;
  Result<TraceRecord> decoded = DecodeTraceRecord(*bytes);
  if (!decoded.ok() || decoded.value().expires_ns <= now_ns) {
    if (!decoded.ok()) ++counters_.unreadable_records;
    return nullptr;
  }
  TraceRecord record = std::move(decoded).value();
  MakeRoom(now_ns, out);
  Entry& entry = traces_.try_emplace(key, key, trace_id).first->second;
  ++group_->traces;
  for (Span& span : record.events.spans) entry.trace.AddSpan(std::move(span));
  for (Annotation& a : record.events.annotations) entry.trace.AddAnnotation(std::move(a));
  entry.trace.Release();
  entry.state = State::kClosed;
  entry.has_span = record.has_span;
  entry.opened_ns = record.closed_ns;
  entry.closed_ns = record.closed_ns;
  entry.expires_ns = record.expires_ns;
  entry.routed = std::move(record.routed);
  entry.counted_match = std::move(record.counted_match);
  entry.counted_sampled_out = std::move(record.counted_sampled_out);
  entry.stored = true;  // the store holds it as it is
  // Pairs an earlier run routed (SeedRouted) join what the record says.
  if (auto tomb = tombstones_.find(key); tomb != tombstones_.end()) {
    for (uint64_t pair : tomb->second.routed) {
      if (!Contains(entry.routed, pair)) entry.routed.push_back(pair);
    }
    tombstones_.erase(tomb);
    --group_->tombstones;
  }
  if (span_index_on_) IndexSpans(entry.trace);
  entry.deadline_ns = std::min(now_ns + rules_->trace.hot_window_ns, entry.expires_ns);
  entry.order_gen = ++generation_;
  closed_order_.emplace_back(key, entry.order_gen);
  Schedule(entry);
  ++counters_.revived;
  return &entry;
}

void Engine::ExpireStored(int64_t now_ns, Outbox& out) {
  constexpr size_t kBatch = 4096;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> expired = store_->TakeExpired(now_ns, kBatch);
    for (auto& [id, bytes] : expired) {
      out.changelog.push_back(ChangelogRecord{id, ""});
      const TraceKey key(id);
      if (traces_.count(key) != 0) continue;  // back in memory: its own timer evicts it
      ++counters_.evicted_expired;
      // Routed state outlives the context, as for traces forgotten from memory.
      Result<TraceRecord> record = DecodeTraceRecord(bytes, /*with_events=*/false);
      if (!record.ok()) {
        ++counters_.unreadable_records;
        continue;
      }
      Tombstone tomb{std::move(record.value().routed), std::move(record.value().counted_match),
                     std::move(record.value().counted_sampled_out), ++generation_};
      tombstone_order_.emplace_back(key, tomb.gen);
      if (tombstones_.insert_or_assign(key, std::move(tomb)).second) ++group_->tombstones;
    }
    TrimTombstones();
    if (expired.size() < kBatch) return;
  }
}

Engine::Session& Engine::TouchSession(std::string_view session_id, int64_t now_ns) {
  Session& s = sessions_[session_id];
  const int64_t window = rules_->trace.late_feedback_window_ns;
  s.expires_ns = std::max(s.expires_ns, now_ns + window);
  // One queue entry per eighth of a window at most: a session outlives its last trace by up
  // to that, and the queue does not grow with every trace.
  if (s.queued_expiry_ns == 0 || s.expires_ns > s.queued_expiry_ns + window / 8) {
    s.queued_expiry_ns = s.expires_ns;
    session_expiry_.emplace_back(s.expires_ns, session_id);
  }
  return s;
}

void Engine::NoteSession(Entry& entry, int64_t now_ns) {
  const std::optional<std::string_view>& session_id = entry.trace.summary().session_id;
  if (!session_id || session_id->empty() || entry.in_session) return;
  Session& s = TouchSession(*session_id, now_ns);
  entry.in_session = true;
  ++s.trace_count;
  s.AddTrace(entry.key);
}

void Engine::AddSessionAnnotation(Annotation annotation, int64_t now_ns, Outbox& out) {
  Session& s = TouchSession(annotation.session_id, now_ns);
  if (std::find(s.annotations.begin(), s.annotations.end(), annotation) != s.annotations.end()) {
    return;  // the same feedback read again
  }
  s.annotations.push_back(std::move(annotation));
  // Every decided trace of the session is evaluated again; open ones see it when they close.
  s.ForEachTrace([&](const TraceKey& id) {
    auto it = traces_.find(id);
    Entry* entry = it != traces_.end() ? &it->second : nullptr;
    if (entry == nullptr && store_ != nullptr) entry = Revive(id, id.str(), now_ns, out);
    if (entry == nullptr || entry->state != State::kClosed) return;
    if (std::find(pending_late_.begin(), pending_late_.end(), id) == pending_late_.end()) {
      pending_late_.push_back(id);
    }
  });
}

void Engine::ExpireSessions(int64_t now_ns) {
  while (!session_expiry_.empty() && session_expiry_.front().first <= now_ns) {
    auto it = sessions_.find(session_expiry_.front().second);
    if (it != sessions_.end() && it->second.expires_ns <= now_ns) sessions_.erase(it);
    session_expiry_.pop_front();
  }
}

void Engine::SeedRouted(const std::string& trace_id, std::string_view rule,
                        std::string_view destination) {
  const uint64_t key = NameHash(rule, destination);
  const TraceKey trace(trace_id);
  std::vector<uint64_t>* routed = nullptr;
  if (auto it = traces_.find(trace); it != traces_.end()) {
    routed = &it->second.routed;
  } else {
    auto [tomb, inserted] = tombstones_.try_emplace(trace);
    if (inserted) {
      tomb->second.gen = ++generation_;
      tomb->second.decided = false;
      tombstone_order_.emplace_back(trace, tomb->second.gen);
      ++group_->tombstones;
    }
    routed = &tomb->second.routed;
  }
  if (!Contains(*routed, key)) routed->push_back(key);
  TrimTombstones();
}

void Engine::TrimTombstones() {
  const uint64_t cap = std::max<uint64_t>(rules_->trace.max_open_traces, 1);
  auto live = [this](const std::pair<TraceKey, uint64_t>& e) {
    auto it = tombstones_.find(e.first);
    return it != tombstones_.end() && it->second.gen == e.second;
  };
  while (!tombstone_order_.empty() &&
         (group_->tombstones > cap || !live(tombstone_order_.front()))) {
    if (live(tombstone_order_.front())) {
      tombstones_.erase(tombstone_order_.front().first);
      --group_->tombstones;
    }
    tombstone_order_.pop_front();
  }
  // Stale entries behind the front (revived traces) are dropped once they outnumber the live.
  if (tombstone_order_.size() > 2 * tombstones_.size() + 64) {
    std::erase_if(tombstone_order_, [&](const auto& e) { return !live(e); });
  }
}

void Engine::MakeRoom(int64_t now_ns, Outbox& out) {
  const uint64_t cap = std::max<uint64_t>(rules_->trace.max_open_traces, 1);
  while (group_->traces >= cap) {
    // Forget the oldest closed trace first; only then decide the oldest open one early.
    bool evicted = false;
    while (!closed_order_.empty() && !evicted) {
      auto [id, gen] = closed_order_.front();
      closed_order_.pop_front();
      auto it = traces_.find(id);
      if (it != traces_.end() && it->second.state == State::kClosed &&
          it->second.order_gen == gen) {
        if (store_ != nullptr) {
          Spill(id, now_ns, out);
        } else {
          Evict(id, "capacity", now_ns, out);
        }
        evicted = true;
      }
    }
    while (!evicted && !open_order_.empty()) {
      auto [id, gen] = open_order_.front();
      open_order_.pop_front();
      auto it = traces_.find(id);
      if (it != traces_.end() && it->second.state == State::kOpen && it->second.order_gen == gen) {
        Close(it->second, CloseReason::kCapacity, now_ns, out);
        if (store_ != nullptr) {
          Spill(id, now_ns, out);
        } else {
          Evict(id, "capacity", now_ns, out);
        }
        evicted = true;
      }
    }
    if (!evicted) return;
  }
}

Engine::Entry& Engine::Open(const TraceKey& key, const std::string& trace_id, int64_t now_ns,
                            Outbox& out, bool& late) {
  if (auto it = traces_.find(key); it != traces_.end()) {
    late = it->second.state == State::kClosed;
    return it->second;
  }
  if (store_ != nullptr) {
    if (Entry* revived = Revive(key, trace_id, now_ns, out)) {
      late = true;
      return *revived;
    }
  }
  MakeRoom(now_ns, out);
  auto it = traces_.try_emplace(key, key, trace_id).first;
  ++group_->traces;  // not there before: found above
  Entry& entry = it->second;
  entry.opened_ns = now_ns;
  if (auto tomb = tombstones_.find(key); tomb != tombstones_.end()) {
    entry.routed = std::move(tomb->second.routed);
    entry.counted_match = std::move(tomb->second.counted_match);
    entry.counted_sampled_out = std::move(tomb->second.counted_sampled_out);
    const bool decided = tomb->second.decided;
    tombstones_.erase(tomb);  // its place in tombstone_order_ goes stale
    --group_->tombstones;
    if (decided) {
      // The trace was decided and forgotten: this event is late, its context is gone.
      entry.state = State::kClosed;
      entry.closed_ns = now_ns;
      entry.expires_ns = now_ns + rules_->trace.late_feedback_window_ns;
      entry.deadline_ns = entry.expires_ns;
      entry.order_gen = ++generation_;
      closed_order_.emplace_back(key, entry.order_gen);
      Schedule(entry);
      late = true;
      return entry;
    }
  }
  ++counters_.traces_opened;
  ++open_count_;
  entry.order_gen = ++generation_;
  open_order_.emplace_back(key, entry.order_gen);
  late = false;
  entry.deadline_ns = -1;
  UpdateDeadline(entry);
  return entry;
}

AddResult Engine::Add(DecodedMessage message, int64_t now_ns, Outbox& out) {
  Advance(now_ns, out);
  now_ns = now_ns_;
  AddResult result;
  // Group by trace so one message re-evaluates a late trace once, after all its events.
  pending_late_.clear();
  std::vector<TraceKey> touched_open;
  auto touch = [](std::vector<TraceKey>& v, const TraceKey& key) {
    if (std::find(v.begin(), v.end(), key) == v.end()) v.push_back(key);
  };
  for (Span& span : message.spans) {
    const TraceKey key(span.trace_id);
    // Checked before opening: a span too large for an empty trace must not open (or revive) a
    // trace that would then be decided on nothing.
    auto existing = traces_.find(key);
    const size_t bytes = existing == traces_.end() ? 0 : existing->second.trace.bytes();
    if (bytes + span.bytes > rules_->trace.max_trace_bytes) {
      ++result.spans_rejected;
      ++counters_.spans_over_size;
      continue;
    }
    bool late = false;
    Entry& entry = Open(key, span.trace_id, now_ns, out, late);
    if (!late) {
      entry.has_span = true;
      entry.last_span_ns = now_ns;
      // Root grace runs from when the root was seen to have ended (its arrival), on the engine's
      // one clock: producers' clocks may be skewed, and replayed events may be old.
      if (span.is_root() && span.end_ns) {
        entry.root_end_ns = now_ns;
        entry.has_root_end = true;
      }
    }
    if (span_index_on_) span_index_.insert_or_assign(SpanIdHash(span.span_id), key);
    entry.trace.AddSpan(std::move(span));
    touch(late ? pending_late_ : touched_open, key);
  }
  for (Annotation& annotation : message.annotations) {
    if (annotation.trace_id.empty() && annotation.span_id.empty() &&
        !annotation.session_id.empty()) {
      AddSessionAnnotation(std::move(annotation), now_ns, out);
      continue;
    }
    if (annotation.trace_id.empty()) {
      if (!span_index_on_) {
        span_index_on_ = true;
        for (const auto& [id, e] : traces_) IndexSpans(e.trace);
      }
      const Entry* trace = TraceOfSpan(annotation.span_id);
      if (trace == nullptr) {
        result.unjoined.push_back(std::move(annotation));
        continue;
      }
      annotation.trace_id = trace->trace.id();
    }
    const TraceKey key(annotation.trace_id);
    bool late = false;
    Entry& entry = Open(key, annotation.trace_id, now_ns, out, late);
    // With a store, a decided trace that sees the very same annotation again (an input read
    // again after a restart, by a new owner that restored the trace) keeps one copy.
    const auto& held = entry.trace.annotations();
    if (!(store_ != nullptr && late &&
          std::find(held.begin(), held.end(), annotation) != held.end())) {
      entry.trace.AddAnnotation(std::move(annotation));
    }
    touch(late ? pending_late_ : touched_open, key);
  }
  for (const TraceKey& id : touched_open) {
    auto it = traces_.find(id);
    if (it == traces_.end() || it->second.state != State::kOpen) continue;
    const int64_t deadline = UpdateDeadline(it->second);
    if (deadline <= now_ns) {
      it->second.deadline_ns = deadline;  // what ReasonFor reads
      Close(it->second, ReasonFor(it->second), now_ns, out);
    }
  }
  const std::vector<TraceKey> touched_late = std::move(pending_late_);
  pending_late_.clear();
  for (const TraceKey& id : touched_late) {
    auto it = traces_.find(id);
    if (it == traces_.end()) continue;
    ++counters_.late_evaluations;
    Evaluate(it->second, Trigger::kLateFeedback, now_ns, out);
  }
  return result;
}

void Engine::IndexSpans(const Trace& trace) {
  const TraceKey key(trace.id());
  for (uint64_t hash : trace.span_id_hashes()) span_index_.insert_or_assign(hash, key);
}

const Engine::Entry* Engine::TraceOfSpan(std::string_view span_id) const {
  auto at = span_index_.find(SpanIdHash(span_id));
  if (at == span_index_.end()) return nullptr;
  auto it = traces_.find(at->second);
  if (it == traces_.end() || !it->second.trace.HasSpan(span_id)) return nullptr;
  // A hash is not an id: the trace must really hold a span of that id.
  const Trace& trace = it->second.trace;
  bool holds = false;
  trace.ForEachSpan([&](const PackedSpan::Fields& s) {
    holds = s.span_id() == span_id;
    return !holds;
  });
  return holds ? &it->second : nullptr;
}

void Engine::CloseAll(int64_t now_ns, Outbox& out) {
  Advance(now_ns, out);
  // Close in opening order so the output does not depend on hash-map iteration.
  while (!open_order_.empty()) {
    auto [id, gen] = open_order_.front();
    open_order_.pop_front();
    auto it = traces_.find(id);
    if (it != traces_.end() && it->second.state == State::kOpen && it->second.order_gen == gen) {
      Close(it->second, CloseReason::kEndOfInput, now_ns_, out);
    }
  }
}

void Engine::Evaluate(Entry& entry, Trigger trigger, int64_t now_ns, Outbox& out) {
  using O = RuleVerdict::Outcome;
  const RuleSet& rs = *rules_;
  const Trace& trace = entry.trace;
  // The trace and its feedback as every routed item of this evaluation writes them.
  RoutedItemBody body;
  // The session the rules read (`session.*`), for the length of this evaluation.
  SessionView session;
  if (const std::optional<std::string_view>& sid = trace.summary().session_id) {
    if (auto it = sessions_.find(*sid); it != sessions_.end()) {
      for (const Annotation& a : it->second.annotations) session.annotations.push_back(&a);
      session.trace_count = it->second.trace_count;
      trace.set_session(&session);
    }
  }
  std::vector<RuleVerdict> verdicts;
  verdicts.reserve(rs.rules.size());
  bool matched_earlier = false;
  const bool filtered_out = rs.filter && !rs.filter->Matches(trace);
  // The share of the limits this trace spends: its partition's (DESIGN §2.3).
  int32_t limit_partition = -1;
  auto share = [&] {
    if (limit_partition < 0) {
      limit_partition = limit_scope_.partition >= 0 ? limit_scope_.partition
                        : limit_scope_.partitions > 1
                            ? Murmur2Partition(trace.id(), limit_scope_.partitions)
                            : 0;
    }
    return limit_partition;
  };
  for (size_t r = 0; r < rs.rules.size(); ++r) {
    const RuleSpec& rule = rs.rules[r];
    RuleCounters& counters = rule_counters_[r];
    RuleVerdict& v = verdicts.emplace_back();
    v.rule = r;
    if (filtered_out) {
      v.outcome = O::kFilteredOut;
      continue;
    }
    if (!rule.when || !rule.when->Matches(trace)) {
      v.outcome = O::kNoMatch;
      continue;
    }
    if (rs.mode == RoutingMode::kFirstMatch && matched_earlier) {
      v.outcome = O::kShadowed;
      continue;
    }
    matched_earlier = true;
    const RuleHashes& hashes = rule_hashes_[r];
    const uint64_t rule_hash = hashes.rule;
    bool all_routed = true;
    for (uint64_t route : hashes.routes) {
      if (!Contains(entry.routed, route)) all_routed = false;
    }
    if (all_routed) {
      v.outcome = O::kAlreadyRouted;
      continue;
    }
    if (!Contains(entry.counted_match, rule_hash)) {
      entry.counted_match.push_back(rule_hash);
      ++counters.matched;
    }
    // Sampling: the key is trace.id unless sample_key names a field that is present.
    v.sample_key = trace.id();
    if (rule.sample_key) {
      ExprValue key = rule.sample_key->Evaluate(trace);
      if (key.kind == ExprValue::Kind::kString) v.sample_key = key.s;
    }
    v.sample_unit = SampleUnit(SampleHash(v.sample_key, rule.sample_salt));
    const SamplePin pin = r < sample_pins_.size() ? sample_pins_[r] : SamplePin::kNone;
    if (pin == SamplePin::kDrop ||
        (pin != SamplePin::kKeep && !IsSampled(v.sample_unit, rule.sample_rate))) {
      v.outcome = O::kSampledOut;
      if (!Contains(entry.counted_sampled_out, rule_hash)) {
        entry.counted_sampled_out.push_back(rule_hash);
        ++counters.sampled_out;
      }
      continue;
    }
    // The rule's limit counts traces: its token is spent when a destination first takes the
    // trace, not when every destination refused it, nor again to finish a partly routed trace.
    bool charged = false;
    for (uint64_t route : hashes.routes) {
      if (Contains(entry.routed, route)) charged = true;
    }
    if (rule.limit && !charged &&
        !group_->limits.Rule(share(), limit_scope_.partitions, rule).Available(now_ns)) {
      v.outcome = O::kRateLimited;
      ++counters.rate_limited;
      continue;
    }
    const size_t first_route = out.routes.size();
    for (size_t i = 0; i < rule.destinations.size(); ++i) {
      const size_t d = rule.destinations[i];
      const DestinationSpec& dest = rs.destinations[d];
      const uint64_t key = hashes.routes[i];
      if (Contains(entry.routed, key)) continue;
      TokenBucket* dest_bucket =
          dest.limit ? &group_->limits.Destination(share(), limit_scope_.partitions, dest)
                     : nullptr;
      if (dest_bucket != nullptr && !dest_bucket->TryTake(now_ns)) {
        v.limited.push_back(d);
        continue;
      }
      entry.routed.push_back(key);
      v.routed.push_back(d);
      ++counters.routed;
      Route& route = out.routes.emplace_back();
      route.trace_id = trace.id();
      route.rules = rules_;
      route.rule = &rule;
      route.destination = &dest;
      route.trigger = trigger;
      route.routed_at_ns = now_ns;
      route.span_count = trace.span_count();
      route.annotation_count = trace.annotations().size();
      if (dest_bucket != nullptr) {
        route.buckets.push_back(BucketState{share(), LimitKind::kDestination, dest.name,
                                            dest_bucket->tokens(), dest_bucket->at_ns()});
      }
      if (out.documents) {
        route.document = SerializeRoutedItem(
            RoutedItem{&trace, &rule, &dest, trigger, now_ns, rs.config_version}, rs.max_item_bytes,
            &body);
      }
    }
    if (!v.routed.empty()) {
      if (rule.limit && !charged) {
        TokenBucket& bucket = group_->limits.Rule(share(), limit_scope_.partitions, rule);
        bucket.TryTake(now_ns);
        // On the rule's first route of this evaluation, which is what spent the token.
        out.routes[first_route].buckets.push_back(
            BucketState{share(), LimitKind::kRule, rule.name, bucket.tokens(), bucket.at_ns()});
      }
      v.outcome = O::kRouted;
    } else {
      v.outcome = O::kDestinationLimited;
    }
    if (!v.limited.empty()) ++counters.rate_limited;
  }
  if (observer_ != nullptr) observer_->OnEvaluation(trace, trigger, now_ns, verdicts);
  out.decided.push_back(entry.key);
  trace.set_session(nullptr);
  if (store_ != nullptr && entry.state == State::kClosed) Persist(entry, out);
  // Back to its packed form until late feedback (if any) evaluates it again.
  trace.Release();
}

}  // namespace triaged
