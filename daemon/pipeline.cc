// The message path of the pipeline: a consumed message is decoded, added to its partition's
// engine, and what the engine decided is produced (routed items, dead letters), holding the
// input offsets until the broker acknowledges them. Plus the loop's turn and its periodic work.
#include "daemon/pipeline.h"

#include <algorithm>
#include <chrono>

#include "daemon/ingest.h"
#include "daemon/kafka_errors.h"
#include "daemon/log.h"
#include "rules/annotation_schema.h"
#include "rules/event_record.h"
#include "rules/partitioner.h"

namespace triaged {

using std::chrono::seconds;

// What a delivery report needs to find its hold again, and what a refused record needs to be
// dead-lettered in its place. Owned by the client between Produce and the report (the
// message's opaque), then by the report's unique_ptr.
struct Pipeline::Delivery {
  int32_t partition;
  uint64_t generation;
  uint64_t ticket;
  bool routed_item = false;                        // else a dead letter or re-produced events
  std::optional<SteadyTime> routed_at;             // routed items
  std::string trace_id, rule, destination, topic;  // routed items (and re-produced: trace_id)
  // Dead letters and re-produced events: the input message's "topic/partition/offset".
  std::string origin;
  bool hop = false;        // events re-produced to the repartition topic
  bool changelog = false;  // a trace store changelog record
  // At-least-once with a trace store: the changelog record that waits for this routed item.
  std::shared_ptr<ChangelogGate> gate = nullptr;
  // The record's value, held here (not copied by the client) until its delivery report.
  std::string value{};
};

struct Pipeline::ChangelogGate {
  Pipeline* pipeline;
  ReadyChangelog ready;
  // The last routed item of the decision is done with: the record may go.
  ~ChangelogGate() { pipeline->ready_changelog_.push_back(std::move(ready)); }
};

void Pipeline::Step(milliseconds wait) {
  Backpressure();
  // Delivery reports are served between polls: while items are in flight to a reachable
  // broker, wait for input at most a millisecond so acknowledgements are seen (and holds
  // released) when they come; with the broker gone, do not spin.
  const milliseconds first =
      broker_reachable_ && client_->InFlight() > 0 ? std::min(wait, milliseconds(1)) : wait;
  // Then a batch: what is already fetched, without waiting, so the engines' deadlines, the
  // delivery reports and the periodic work below are served once per batch rather than once
  // per message. A batch ends early when the loop must act (a rewind, a rejoin, a failure),
  // and after kBatchTime, which bounds what it adds to the decision → ack latency.
  if (client_->Poll(first)) {
    const SteadyTime until = clock_.Steady() + kBatchTime;
    for (int n = 1; n < kBatchMessages; ++n) {
      if (fatal_ || !rejoin_why_.empty() || !committer_->rewind_reason().empty()) break;
      if (clock_.Steady() >= until || !client_->Poll(milliseconds(0))) break;
    }
  }
  ProcessBatch();
  WriteReadyChangelog();
  Tick();
  if (!rejoin_why_.empty()) Rejoin();
  if (!committer_->rewind_reason().empty()) Recover();
  loop_at_ = clock_.Steady();
}

void Pipeline::Produce(const std::string& topic, std::string_view key, std::string value,
                       const Headers& headers, std::unique_ptr<Delivery> delivery,
                       int32_t partition, bool tombstone) {
  if (delivery) delivery->value = std::move(value);
  const OutputRecord record{topic,
                            key,
                            delivery ? std::string_view(delivery->value) : std::string_view(value),
                            headers,
                            partition,
                            tombstone,
                            /*value_held=*/delivery != nullptr};
  while (true) {
    const rd_kafka_resp_err_t e = client_->Produce(record, delivery.get());
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
      delivery.release();  // handed back in the delivery report
      return;
    }
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      // Backpressure: serve delivery reports until there is room; never drop.
      client_->PollProducer(milliseconds(100));
      continue;
    }
    // Refused before it left (too large for message.max.bytes, say): as if the broker had.
    if (delivery) {
      OnDelivery(delivery.release(), e, topic);
      return;
    }
    metrics_.ProduceError(topic == decisions_topic_ ? "decisions" : topic, rd_kafka_err2name(e));
    committer_->ProduceFailed();
    log::Error("produce failed", {{"topic", topic}, {"error", rd_kafka_err2str(e)}});
    return;
  }
}

void Pipeline::Drain(Partition& p, Outbox& out) {
  // The latest changelog record of each trace that has routed items in this drain waits for
  // them (at-least-once); exactly-once writes it in the same transaction.
  std::map<std::string, std::shared_ptr<ChangelogGate>> gates;
  if (!eos_ && !out.changelog.empty()) {
    for (const Route& route : out.routes) gates.emplace(route.trace_id, nullptr);
    for (const ChangelogRecord& c : out.changelog) {
      auto gate = gates.find(c.trace_id);
      if (gate == gates.end()) continue;
      if (gate->second == nullptr) {
        gate->second.reset(new ChangelogGate{
            this, {p.number, p.generation, p.offsets.Hold(c.trace_id), true, c.trace_id, ""}});
      }
      gate->second->ready.record = c.record;
    }
  }
  for (Route& route : out.routes) {
    auto gate = gates.find(route.trace_id);
    Publish(p, route, gate == gates.end() ? nullptr : gate->second);
  }
  for (const ChangelogRecord& c : out.changelog) {
    if (gates.count(c.trace_id) > 0) continue;  // its gate writes it
    WriteChangelog(p, c.trace_id, c.record, p.offsets.Hold(c.trace_id));
  }
  // An evaluated trace no longer pins offsets by itself (its routed items above still do).
  for (const TraceKey& id : out.decided) p.offsets.Decided(id);
  const int64_t now_ns = UnixNanos(clock_.System());
  for (const ClosedTrace& closed : out.closed) {
    metrics_.ObserveDecisionLatency(static_cast<double>(now_ns - closed.deadline_ns) / 1e9);
  }
  out.clear();
}

void Pipeline::WriteChangelog(Partition& p, const std::string& trace_id, const std::string& record,
                              uint64_t ticket) {
  auto delivery = std::make_unique<Delivery>(Delivery{
      p.number, p.generation, ticket, false, std::nullopt, trace_id, "", "", stores_->topic(), ""});
  delivery->changelog = true;
  Produce(stores_->topic(), trace_id, record, {}, std::move(delivery), p.number,
          /*tombstone=*/record.empty());
}

void Pipeline::WriteReadyChangelog() {
  while (!ready_changelog_.empty()) {
    std::vector<ReadyChangelog> ready = std::move(ready_changelog_);
    ready_changelog_.clear();
    for (ReadyChangelog& r : ready) {
      Partition* p = partitions_.Find(r.partition);
      if (p == nullptr || p->generation != r.generation) continue;  // revoked or rewound
      if (!r.ok) {
        // A routed item failed: the rewind that follows decides the trace again.
        p->offsets.Release(r.ticket, false);
        continue;
      }
      WriteChangelog(*p, r.trace_id, r.record, r.ticket);
    }
  }
}

void Pipeline::Publish(Partition& p, Route& route, std::shared_ptr<ChangelogGate> gate) {
  if (!committer_->BeforeProduce()) return;
  const RuleSpec& rule = *route.rule;
  const DestinationSpec& dest = *route.destination;
  auto delivery = std::make_unique<Delivery>(
      Delivery{p.number, p.generation, p.offsets.Hold(route.trace_id), true, clock_.Steady(),
               route.trace_id, rule.name, dest.name, dest.topic, ""});
  delivery->gate = std::move(gate);
  status_.Routed(route);
  if (eos_) {
    // In the same transaction: the pair is routed, for whoever owns this partition next.
    const std::string id = RoutedItemId(route.trace_id, rule.name, dest.name);
    Produce(decisions_topic_, id, DecisionRecord(route), {}, nullptr, p.number);
    // And the limit buckets it spent, so the next owner goes on from the same fill.
    for (const BucketState& bucket : route.buckets) {
      Produce(decisions_topic_, BucketDecisionKey(bucket), BucketDecisionRecord(bucket), {},
              nullptr, p.number);
    }
    // Refused by the broker before the rewind that brought it back: dead-lettered this time.
    if (auto refused = refused_items_.find(id); refused != refused_items_.end()) {
      DeadLetterRefused(std::move(delivery), refused->second);
      return;
    }
  }
  if (admin_) admin_->Publish(rule.name, route.document);
  Produce(dest.topic, route.trace_id, std::move(route.document),
          {{"triaged-rule", rule.name}, {"triaged-destination", dest.name}}, std::move(delivery));
}

void Pipeline::OnDelivery(void* opaque, rd_kafka_resp_err_t err, std::string_view topic) {
  std::unique_ptr<Delivery> d(static_cast<Delivery*>(opaque));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (d && d->routed_at) {
      metrics_.Routed(d->rule, d->destination);
      metrics_.ObserveRouteAckLatency(Seconds(clock_.Steady() - *d->routed_at));
    }
    Release(d.get(), true);
    return;
  }
  const std::string label = d && d->routed_item         ? d->destination
                            : d && d->hop               ? "repartition"
                            : d && d->changelog         ? "traces"
                            : topic == decisions_topic_ ? "decisions"
                                                        : "dead_letter";
  metrics_.ProduceError(label, rd_kafka_err2name(err));
  log::Error("delivery failed", {{"topic", topic},
                                 {"error", rd_kafka_err2str(err)},
                                 {"class", KafkaErrorClassName(ClassifyKafkaError(err))}});
  if (d && IsRecordRefused(err)) {
    Refused(std::move(d), std::string(topic) + ": " + rd_kafka_err2str(err));
    return;
  }
  committer_->ProduceFailed();  // exactly-once: the transaction is aborted, the input re-read
  // The hold stays, so nothing past this item is committed; a fatal producer cannot deliver
  // anything else: stop, and the restart re-reads from the committed offset.
  if (!eos_ && (ClassifyKafkaError(err) == KafkaErrorClass::kFatal || client_->ProducerFailed())) {
    fatal_ = true;
  }
  Release(d.get(), false);
}

void Pipeline::Release(const Delivery* d, bool delivered) {
  if (d == nullptr) return;
  if (d->gate && !delivered) d->gate->ready.ok = false;
  Partition* p = partitions_.Find(d->partition);
  if (p == nullptr || p->generation != d->generation) return;
  p->offsets.Release(d->ticket, delivered);
}

// A record the broker refuses for good (DESIGN §4 Size): a routed item goes to the dead-letter
// topic in its place, its hold moving to that record; a dead letter the dead-letter topic
// refuses is logged with its place and let go. Either way the partition moves on.
void Pipeline::Refused(std::unique_ptr<Delivery> d, const std::string& why) {
  if (d->changelog) {
    // The local store keeps the trace; only a new owner after a crash would miss it.
    log::Error("the changelog refused a trace record; only this host's store has it",
               {{"trace_id", d->trace_id}, {"topic", d->topic}, {"error", why}});
    Release(d.get(), true);
    return;
  }
  if (eos_) {
    // Its transaction cannot commit now; after the rewind the record is decided again and
    // dead-lettered (or, a dead letter, skipped) instead of being refused again.
    if (d->routed_item) {
      refused_items_[RoutedItemId(d->trace_id, d->rule, d->destination)] = why;
    } else if (d->hop) {
      refused_hops_.insert(d->origin + "/" + d->trace_id);
    } else {
      refused_dead_letters_.insert(d->origin);
    }
    committer_->ProduceFailed();
    return;
  }
  if (d->routed_item || d->hop) {
    DeadLetterRefused(std::move(d), why);
    return;
  }
  log::Error("the dead-letter topic refused a record; it is dropped",
             {{"origin", d->origin}, {"error", why}});
  Release(d.get(), true);
}

void Pipeline::DeadLetterRefused(std::unique_ptr<Delivery> item, const std::string& why) {
  MessageOrigin origin;
  origin.topic = item->topic;
  std::vector<std::pair<std::string, std::string>> extra;
  std::string place;
  if (item->hop) {
    // The input message's events of one trace, which the repartition topic would not take: the
    // input place says where the original bytes are.
    extra = {{"trace_id", item->trace_id}, {"input", item->origin}};
    place = item->origin + "/" + item->trace_id;
    log::Warn("re-produced events refused by the broker; dead-lettered",
              {{"input", item->origin}, {"trace_id", item->trace_id}, {"error", why}});
  } else {
    const std::string id = RoutedItemId(item->trace_id, item->rule, item->destination);
    extra = {{"id", id},
             {"trace_id", item->trace_id},
             {"rule", item->rule},
             {"destination", item->destination}};
    place = item->topic + "/" + id;
    log::Warn("routed item refused by the broker; dead-lettered",
              {{"id", id}, {"destination", item->destination}, {"error", why}});
  }
  const std::string record =
      DeadLetterToJson(triaged::DeadLetter{"produce_refused", why, origin, "", std::move(extra)},
                       config_->rules->max_item_bytes);
  metrics_.DeadLettered("produce_refused");
  auto delivery = std::make_unique<Delivery>(Delivery{
      item->partition, item->generation, item->ticket, false, std::nullopt, "", "", "", "", place});
  const std::string key = item->trace_id;
  Produce(config_->dead_letter_topic, key, record, {{"triaged-reason", "produce_refused"}},
          std::move(delivery));
}

void Pipeline::DeadLetter(Partition& p, int input, const InputMessage& msg, const Error& error) {
  if (eos_ && p.dead_lettered[input].count(msg.offset) > 0) return;  // sent by an earlier run
  const std::string where = std::string(msg.topic) + "/" + std::to_string(msg.partition) + "/" +
                            std::to_string(msg.offset);
  if (eos_ && refused_dead_letters_.count(where) > 0) return;  // refused before the rewind
  MessageOrigin origin;
  origin.topic = msg.topic;
  origin.partition = msg.partition;
  origin.offset = msg.offset;
  const std::string record = DeadLetterToJson(
      triaged::DeadLetter{error.reason, error.message, origin, msg.payload.value_or("")},
      config_->rules->max_item_bytes);
  if (!committer_->BeforeProduce()) return;
  auto delivery = std::make_unique<Delivery>(Delivery{p.number, p.generation,
                                                      p.offsets.HoldOffset(input, msg.offset),
                                                      false, std::nullopt, "", "", "", "", where});
  metrics_.DeadLettered(error.reason);
  metrics_.EventInvalid(InputName(input), error.reason);
  if (dead_letter_log_.Add(clock_.Steady(), error.reason)) {
    log::Warn("dead-lettered", {{"reason", error.reason},
                                {"topic", origin.topic},
                                {"partition", msg.partition},
                                {"offset", msg.offset}});
  }
  Produce(config_->dead_letter_topic, msg.key.value_or(""), record,
          {{"triaged-reason", error.reason}}, std::move(delivery));
  if (eos_) {
    Produce(decisions_topic_, DeadLetterDecisionKey(origin.topic, msg.partition, msg.offset),
            DeadLetterDecisionRecord(origin.topic, msg.partition, msg.offset), {}, nullptr,
            p.number);
  }
}

namespace {

bool SameId(std::string_view key, std::string_view lowercase_id) {
  if (key.size() != lowercase_id.size()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i] >= 'A' && key[i] <= 'Z' ? static_cast<char>(key[i] - 'A' + 'a') : key[i];
    if (c != lowercase_id[i]) return false;
  }
  return true;
}

}  // namespace

void Pipeline::OnMessage(const InputMessage& msg) {
  if (msg.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const KafkaErrorClass c = ClassifyKafkaError(msg.err);
    if (c == KafkaErrorClass::kFatal && client_->Fenced()) {
      rejoin_why_ = msg.error_text;
    } else if (c == KafkaErrorClass::kFatal) {
      log::Error("fatal consumer error", {{"error", msg.error_text}});
      fatal_ = true;
    } else if (c == KafkaErrorClass::kRetriable) {
      log::Warn("consumer error", {{"error", msg.error_text}});
    }
    return;
  }
  broker_reachable_ = true;
  Taken& m = batch_.emplace_back();
  m.input = InputOf(config_->inputs, msg.topic);
  m.partition = &partitions_.At(msg.partition, config_->rules);
  m.offset = msg.offset;
  m.now_ns = UnixNanos(clock_.System());
  m.topic = msg.topic;
  if (msg.key) m.key.emplace(*msg.key);
  if (msg.payload) m.payload.emplace(*msg.payload);
}

InputMessage Pipeline::Taken::View() const {
  InputMessage msg;
  msg.topic = topic;
  msg.partition = partition->number;
  msg.offset = offset;
  if (key) msg.key = *key;
  if (payload) msg.payload = *payload;
  return msg;
}

void Pipeline::ProcessBatch() {
  if (batch_.empty() || processing_) return;
  processing_ = true;
  // Each partition's messages in the order they came, one task per partition.
  std::vector<std::vector<Taken*>> tasks;
  std::map<int32_t, size_t> task_of;
  for (Taken& m : batch_) {
    auto [it, added] = task_of.try_emplace(m.partition->number, tasks.size());
    if (added) tasks.emplace_back();
    tasks[it->second].push_back(&m);
  }
  busy_ = batch_.size() >= kParallelBatch;
  workers_->Run(
      tasks.size(),
      [&](size_t t) {
        for (Taken* m : tasks[t]) Prepare(*m);
      },
      busy_);
  for (Taken& m : batch_) Apply(m);
  batch_.clear();
  processing_ = false;
}

void Pipeline::Prepare(Taken& m) {
  const std::string_view payload = m.payload ? std::string_view(*m.payload) : std::string_view();
  Result<DecodedMessage> decoded = MakeError("empty_payload", "message has no payload");
  if (!payload.empty() && m.input == kRepartitionInput) {
    decoded = DecodeEventRecord(payload);
  } else if (!payload.empty()) {
    MessageOrigin origin;
    origin.topic = m.topic;
    if (m.key) origin.key = *m.key;
    decoded = DecodeInput(config_->inputs, origin, payload);
  }
  if (!decoded.ok()) {
    m.dead_letter = decoded.error();
    return;
  }
  DecodedMessage& events = decoded.value();
  // At the input, once (re-produced events were checked and counted there): annotations that
  // break their schema leave the message, which is dead-lettered once for them (DESIGN §1.5).
  if (m.input != kRepartitionInput) {
    const AnnotationSchemas& schemas = config_->rules->annotations;
    m.refused = CheckAnnotations(schemas, events);
    for (const Annotation& a : events.annotations) {
      m.annotations.emplace_back(AnnotationMetricName(schemas, a), AnnotationMetricSource(a));
    }
    if (m.refused && events.spans.empty() && events.annotations.empty()) {
      m.dead_letter = std::move(m.refused);
      m.refused.reset();
      return;
    }
  }
  if (!repartition_ || m.input == kRepartitionInput) {
    AddToEngine(m, std::move(events));
    return;
  }
  // The repartition hop (DESIGN §1.4): in place only what is provably home: keyed by its own
  // trace id, on the partition the daemon's partitioner gives it, in an input laid out like the
  // repartition topic. Anything else (no key, another partitioner, the other traces of a
  // multi-trace message) hops.
  DecodedMessage here;
  for (auto& [id, trace_events] : SplitByTrace(std::move(events))) {
    if (id.empty()) {
      // Session-scoped feedback: one copy to every partition, whose traces of the session it
      // concerns (DESIGN §1.2).
      DecodedMessage sessions, spans_only;
      for (Annotation& a : trace_events.annotations) {
        (a.span_id.empty() ? sessions : spans_only).annotations.push_back(std::move(a));
      }
      if (!sessions.annotations.empty()) {
        sessions.event_time_ns = trace_events.event_time_ns;
        const std::string key = "session:" + sessions.annotations.front().session_id;
        for (int32_t q = 0; q < join_partitions_; ++q) m.away.push_back({q, {key, sessions}});
      }
      if (spans_only.annotations.empty()) continue;
      // Span-only annotations: searched for on every partition, from their span's own.
      spans_only.event_time_ns = trace_events.event_time_ns;
      const std::string& span = spans_only.annotations.front().span_id;
      m.away.push_back({Murmur2Partition(span, join_partitions_), {span, std::move(spans_only)}});
      continue;
    }
    const int32_t home = Murmur2Partition(id, join_partitions_);
    if (in_place_[m.input] && home == m.partition->number && m.key && SameId(*m.key, id)) {
      if (here.spans.empty() && here.annotations.empty()) {
        here = std::move(trace_events);  // the one trace of most messages: moved whole
        continue;
      }
      for (Span& s : trace_events.spans) here.spans.push_back(std::move(s));
      for (Annotation& a : trace_events.annotations) here.annotations.push_back(std::move(a));
      here.event_time_ns = trace_events.event_time_ns;
    } else {
      m.away.push_back({home, {std::move(id), std::move(trace_events)}});
    }
  }
  if (!here.spans.empty() || !here.annotations.empty()) AddToEngine(m, std::move(here));
}

void Pipeline::AddToEngine(Taken& m, DecodedMessage events) {
  m.added = true;
  m.ids.reserve(events.spans.size() + events.annotations.size());
  for (const Span& s : events.spans) m.ids.emplace_back(s.trace_id);
  for (const Annotation& a : events.annotations) {
    if (!a.trace_id.empty()) m.ids.emplace_back(a.trace_id);  // span-only ones join a trace below
  }
  std::sort(m.ids.begin(), m.ids.end());
  m.ids.erase(std::unique(m.ids.begin(), m.ids.end()), m.ids.end());
  m.spans = events.spans.size();
  m.span_lookups = events.span_lookups;
  Engine& engine = m.partition->engine;
  m.result = engine.Add(std::move(events), m.now_ns, m.out);
  // A trace the engine did not keep open (evaluated at once as late, or refused) pins nothing.
  for (const TraceKey& id : m.ids) {
    if (!engine.IsOpen(id)) m.not_open.push_back(id);
  }
}

void Pipeline::Apply(Taken& m) {
  Partition& p = *m.partition;
  const InputMessage msg = m.View();
  // Re-produced events were counted when their input message was read.
  if (m.input != kRepartitionInput) metrics_.EventConsumed(InputName(m.input));
  p.next_offset[m.input] = m.offset + 1;
  if (m.dead_letter) {
    p.offsets.Consumed(m.input, m.offset, {});
    DeadLetter(p, m.input, msg, *m.dead_letter);
    return;
  }
  for (const auto& [name, source] : m.annotations) metrics_.AnnotationIngested(name, source);
  if (m.added) {
    ApplyAdd(m, msg);
  } else {
    p.offsets.Consumed(m.input, m.offset, {});
  }
  if (!m.away.empty()) {
    // Counted by input message, as triaged_events_consumed_total is, so the two compare.
    metrics_.EventsRepartitioned(InputName(m.input));
    for (const auto& [home, trace] : m.away) {
      Hop(p, m.input, msg, home, trace.first, trace.second);
    }
  }
  if (m.refused) DeadLetter(p, m.input, msg, *m.refused);
}

void Pipeline::ApplyAdd(Taken& m, const InputMessage& msg) {
  Partition& p = *m.partition;
  p.offsets.Consumed(m.input, m.offset, m.ids);
  Drain(p, m.out);
  for (const TraceKey& id : m.not_open) p.offsets.Decided(id);
  AddResult& added = m.result;
  if (added.spans_rejected > 0) {
    DeadLetter(p, m.input, msg, TraceTooLargeError(added.spans_rejected, m.spans));
  }
  if (added.unjoined.empty()) return;
  // Span-only annotations whose span this engine does not hold: with the hop, the next
  // partition is searched, until every partition was; without it there is nowhere else.
  if (m.input == kRepartitionInput && m.span_lookups + 1 < join_partitions_) {
    DecodedMessage rest;
    rest.annotations = std::move(added.unjoined);
    rest.span_lookups = m.span_lookups + 1;
    const std::string key = rest.annotations.front().span_id;
    Hop(p, m.input, msg, (p.number + 1) % join_partitions_, key, rest);
    return;
  }
  DeadLetter(p, m.input, msg,
             UnjoinedError(added.unjoined,
                           repartition_
                               ? "on any of the " + std::to_string(join_partitions_) + " partitions"
                               : "on partition " + std::to_string(p.number)));
}

void Pipeline::Hop(Partition& p, int input, const InputMessage& msg, int32_t home,
                   const std::string& trace_id, const DecodedMessage& events) {
  const std::string where = std::string(msg.topic) + "/" + std::to_string(msg.partition) + "/" +
                            std::to_string(msg.offset);
  if (!committer_->BeforeProduce()) return;
  // Each record holds the input message's offset until the broker has it.
  const auto held = [&] {
    return std::make_unique<Delivery>(
        Delivery{p.number, p.generation, p.offsets.HoldOffset(input, msg.offset), false,
                 std::nullopt, trace_id, "", "", config_->inputs.repartition_topic, where, true});
  };
  if (eos_ && refused_hops_.count(where + "/" + trace_id) > 0) {
    // Refused before the rewind: dead-lettered this time.
    DeadLetterRefused(held(), "the repartition topic refused the events");
    return;
  }
  // One record per trace; a trace too large for one record (a protobuf batch re-encoded as
  // JSON grows) is cut into several, so none is refused for its size.
  std::vector<std::string> values{EncodeEventRecord(events)};
  const size_t limit = config_->rules->max_item_bytes;
  if (values[0].size() > limit && events.spans.size() + events.annotations.size() > 1) {
    values.clear();
    DecodedMessage piece;
    auto flush = [&] {
      if (piece.spans.empty() && piece.annotations.empty()) return;
      piece.event_time_ns = events.event_time_ns;
      piece.span_lookups = events.span_lookups;
      values.push_back(EncodeEventRecord(piece));
      piece = DecodedMessage{};
    };
    size_t size = 0;
    for (const Span& s : events.spans) {
      const size_t n = EncodeEventRecord(DecodedMessage{{s}, {}, std::nullopt}).size();
      if (size + n > limit / 2) {
        flush();
        size = 0;
      }
      piece.spans.push_back(s);
      size += n;
    }
    for (const Annotation& a : events.annotations) {
      const size_t n = EncodeEventRecord(DecodedMessage{{}, {a}, std::nullopt}).size();
      if (size + n > limit / 2) {
        flush();
        size = 0;
      }
      piece.annotations.push_back(a);
      size += n;
    }
    flush();
  }
  for (const std::string& value : values) {
    Produce(config_->inputs.repartition_topic, trace_id, value, {}, held(), home);
  }
}

void Pipeline::LogDeadLetters(const std::optional<DeadLetterLog::Summary>& held) {
  if (!held) return;
  log::Warn("dead-lettered",
            {{"count", held->count}, {"reasons", log::Value::Json(held->ReasonsJson())}});
}

void Pipeline::Tick() {
  const int64_t now_ns = UnixNanos(clock_.System());
  std::vector<Partition*> parts;
  for (auto& [number, p] : partitions_.all()) parts.push_back(p.get());
  std::vector<Outbox> decided(parts.size());
  workers_->Run(
      parts.size(), [&](size_t i) { parts[i]->engine.Advance(now_ns, decided[i]); }, busy_);
  busy_ = false;
  for (size_t i = 0; i < parts.size(); ++i) Drain(*parts[i], decided[i]);
  client_->PollProducer(milliseconds(0));
  const SteadyTime now = clock_.Steady();
  LogDeadLetters(dead_letter_log_.Due(now));
  if (now - last_commit_ >= seconds(1)) {
    committer_->Commit(/*sync=*/false);
    SyncCounters();
    UpdateLag();
    UpdateCommitStall();
    // Probe, so /readyz turns ready again once the cluster is back even with no traffic.
    if (!broker_reachable_ && client_->ClusterAnswers(milliseconds(200))) broker_reachable_ = true;
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
void Pipeline::Backpressure() {
  const int queued = client_->InFlight();
  const int max_queued = client_->max_queued();
  const bool pause = paused_ ? queued > max_queued / 10 : queued >= max_queued / 2;
  if (!pause && !paused_) return;
  // Re-applied while paused, so partitions assigned meanwhile are paused too.
  client_->PauseAssigned(pause);
  if (pause != paused_) {
    paused_ = pause;
    log::Warn(pause ? "producer queue full: consumption paused" : "consumption resumed",
              {{"queued", queued}});
  }
}

// Hands each partition engine's counts since the last sync to the probe, then publishes the
// totals (/v1/rules, /v1/status). Totals survive revocations and reloads.
void Pipeline::SyncCounters() {
  // An engine's counts only grow, except for a rule a reload re-created, which restarts at zero.
  auto delta = [](uint64_t now, uint64_t seen) { return now - std::min(now, seen); };
  uint64_t open_traces = 0;
  for (auto& [number, p] : partitions_.all()) {
    const RuleSet& prs = p->engine.rules();
    const auto& counters = p->engine.rule_counters();
    for (size_t i = 0; i < prs.rules.size() && i < counters.size(); ++i) {
      RuleCounters& seen = p->synced_rules[prs.rules[i].name];
      const RuleCounters& now = counters[i];
      metrics_.AddRuleCounts(
          prs.rules[i].name,
          {delta(now.matched, seen.matched), delta(now.sampled_out, seen.sampled_out),
           delta(now.rate_limited, seen.rate_limited), delta(now.routed, seen.routed)});
      seen = now;
    }
    const EngineCounters& ec = p->engine.counters();
    metrics_.TraceEvicted("expired", ec.evicted_expired - p->synced_engine.evicted_expired);
    metrics_.TraceEvicted("capacity", ec.evicted_capacity - p->synced_engine.evicted_capacity);
    metrics_.TracesWithoutSpans(ec.closed_without_spans - p->synced_engine.closed_without_spans);
    metrics_.TraceStoreMoves("to_store", ec.stored - p->synced_engine.stored);
    metrics_.TraceStoreMoves("to_memory", ec.revived - p->synced_engine.revived);
    metrics_.TraceStoreUnreadable(ec.unreadable_records - p->synced_engine.unreadable_records);
    p->synced_engine = ec;
    open_traces += p->engine.open_traces();
  }
  if (stores_) {
    uint64_t records = 0, disk_bytes = 0;
    for (const auto& [number, store] : stores_->open()) {
      records += store->size();
      disk_bytes += store->disk_bytes();
    }
    metrics_.SetTraceStore(records, disk_bytes);
  }
  const RuleSet& rules = *config_->rules;
  const std::vector<RuleCounters> totals = metrics_.RuleTotals(rules);
  metrics_.SetTracesOpen(open_traces);
  if (admin_)
    metrics_.SyncAdminCounts(admin_->tap_clients_dropped(), admin_->connections_refused());
  metrics_.SetMaxOpenTraces(rules.trace.max_open_traces);
  StatusFacts facts;
  facts.exactly_once = eos_;
  facts.broker_reachable = broker_reachable_.load();
  facts.partitions_assigned = partitions_assigned_.load();
  facts.partitions = partitions_.size();
  facts.traces_open = open_traces;
  facts.consumer_lag = lag_total_;
  facts.now_ns = UnixNanos(clock_.System());
  for (const DestinationSpec& d : rules.destinations) {
    if (!d.limit) continue;
    DestinationBudget& budget = facts.budgets[d.name];
    for (auto& [number, p] : partitions_.all()) {
      const LimitScope& scope = p->engine.limit_scope();
      const TokenBucket* bucket = engines_->limits.FindDestination(scope.partition, d.name);
      const TokenBucket full(*d.limit, scope.partitions);
      budget.capacity += full.capacity();
      budget.left += bucket ? bucket->TokensAt(facts.now_ns) : full.capacity();
    }
  }
  status_.Rebuild(*config_, totals, facts, metrics_);
}

// A commit point that stays behind consumed input is normal while a trace is open (up to
// trace.max_wait); far longer means something holds the partition.
void Pipeline::UpdateCommitStall() {
  const SteadyTime now = clock_.Steady();
  const auto limit = std::chrono::nanoseconds(config_->kafka.commit_stall_timeout_ns);
  bool advancing = true;
  for (auto& [number, p] : partitions_.all()) {
    for (int input : kAllInputs) {
      if (!p->assigned[input]) continue;
      const std::optional<int64_t> at = p->offsets.Committable(input);
      if (at != p->commit_point[input] || p->commit_point_since[input] == SteadyTime{}) {
        p->commit_point[input] = at;
        p->commit_point_since[input] = now;
      }
      const bool behind = p->next_offset[input] >= 0 && at.value_or(-1) < p->next_offset[input];
      const auto stalled = behind ? now - p->commit_point_since[input] : SteadyTime::duration{};
      metrics_.SetCommitStalled(InputTopic(config_->inputs, input), number, Seconds(stalled));
      if (stalled > limit) advancing = false;
    }
  }
  commits_advancing_ = advancing;
}

// Lag per input partition: the high watermark last seen minus the next offset to read.
void Pipeline::UpdateLag() {
  lag_total_ = 0;
  for (auto& [number, p] : partitions_.all()) {
    for (int input : kAllInputs) {
      if (!p->assigned[input]) continue;
      const std::string& topic = InputTopic(config_->inputs, input);
      const auto marks = client_->Watermarks(topic, number);
      if (!marks) continue;
      const auto [low, high] = *marks;
      const int64_t next = p->next_offset[input] >= 0 ? p->next_offset[input] : low;
      metrics_.SetConsumerLag(topic, number, std::max<int64_t>(0, high - next));
      lag_total_ += std::max<int64_t>(0, high - next);
    }
  }
}

}  // namespace triaged
