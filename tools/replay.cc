#include "tools/replay.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rules/annotation_schema.h"
#include "store/rocks_trace_store.h"

namespace triaged {

Replayer::Replayer(std::shared_ptr<const Config> config, RouteFn on_route, bool documents,
                   int32_t limit_partitions)
    : config_(std::move(config)),
      on_route_(std::move(on_route)),
      outbox_(documents),
      engine_(config_->rules, nullptr, LimitScope{limit_partitions, -1}) {
  if (!config_->trace_store_path.empty()) {
    // The deployment keeps closed traces on disk: so does the replay, in a store of its own
    // (never the daemon's directory), gone when the replay is.
    const char* tmp = getenv("TMPDIR");
    std::string dir =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/triaged-replay-store.XXXXXX";
    if (mkdtemp(dir.data()) != nullptr) {
      Result<std::unique_ptr<RocksTraceStore>> store = RocksTraceStore::Open(dir + "/store");
      if (store.ok()) {
        store_dir_ = dir;
        store_ = std::move(store.value());
        engine_.set_store(store_.get());
      } else {
        std::filesystem::remove_all(dir);
        store_error_ = store.error().message;
      }
    } else {
      store_error_ = "cannot make a directory in " + dir;
    }
  }
}

Replayer::~Replayer() {
  store_.reset();
  if (!store_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(store_dir_, ignored);
  }
}

void Replayer::Drain() {
  stats_.routed_items += outbox_.routes.size();
  if (on_route_) {
    for (const Route& route : outbox_.routes) on_route_(route);
  }
  outbox_.clear();
}

void Replayer::Reject(const std::string& reason, const std::string& message,
                      const MessageOrigin& origin, std::string_view payload) {
  ++stats_.invalid;
  ++stats_.invalid_by_reason[reason];
  if (dead_letter_) dead_letter_(DeadLetter{reason, message, origin, payload});
}

void Replayer::Line(std::string_view line, uint64_t line_no) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;
  ++stats_.lines;
  ReplayLine parsed = ParseReplayLine(line, line_no);
  if (parsed.null_payload) {
    Reject("empty_payload", "message has no payload", parsed.origin, line);
    return;
  }
  if (parsed.error) {
    Reject(parsed.error->reason, parsed.error->message, parsed.origin, line);
    return;
  }
  Result<DecodedMessage> decoded = DecodeInput(config_->inputs, parsed.origin, parsed.payload);
  if (!decoded.ok()) {
    Reject(decoded.error().reason, decoded.error().message, parsed.origin, parsed.payload);
    return;
  }
  DecodedMessage& msg = decoded.value();
  // Annotations that break their schema (DESIGN §1.5) leave the message, which is dead-lettered
  // once for them; its other events go on.
  if (std::optional<Error> refused = CheckAnnotations(config_->rules->annotations, msg)) {
    Reject(refused->reason, refused->message, parsed.origin, parsed.payload);
    if (msg.spans.empty() && msg.annotations.empty()) return;
  }
  ++stats_.messages;
  stats_.spans += msg.spans.size();
  stats_.annotations += msg.annotations.size();
  // Event time: the event's own timestamps, else the Kafka timestamp, else "now".
  int64_t t = engine_.now();
  if (msg.event_time_ns) {
    t = *msg.event_time_ns;
  } else if (parsed.origin.timestamp_ms) {
    t = *parsed.origin.timestamp_ms * kNanosPerMilli;
  }
  const size_t total_spans = msg.spans.size();
  AddResult added = engine_.Add(std::move(msg), t, outbox_);
  Drain();
  if (added.spans_rejected > 0) {
    const Error error = TraceTooLargeError(added.spans_rejected, total_spans);
    Reject(error.reason, error.message, parsed.origin, parsed.payload);
  }
  if (!added.unjoined.empty()) {
    const Error error = UnjoinedError(added.unjoined, "in the replay");
    Reject(error.reason, error.message, parsed.origin, parsed.payload);
  }
}

void Replayer::Finish() {
  engine_.CloseAll(engine_.now(), outbox_);
  Drain();
}

std::string FormatReplaySummary(const Engine& engine, const ReplayStats& stats) {
  const RuleSet& rs = engine.rules();
  size_t width = 4;
  for (const RuleSpec& r : rs.rules) width = std::max(width, r.name.size());
  std::ostringstream out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-*s %10s %12s %13s %10s\n", static_cast<int>(width), "rule",
                "matched", "sampled_out", "rate_limited", "routed");
  out << buf;
  for (size_t i = 0; i < rs.rules.size(); ++i) {
    const RuleCounters& c = engine.rule_counters()[i];
    std::snprintf(buf, sizeof buf, "%-*s %10llu %12llu %13llu %10llu\n", static_cast<int>(width),
                  rs.rules[i].name.c_str(), static_cast<unsigned long long>(c.matched),
                  static_cast<unsigned long long>(c.sampled_out),
                  static_cast<unsigned long long>(c.rate_limited),
                  static_cast<unsigned long long>(c.routed));
    out << buf;
  }
  const EngineCounters& ec = engine.counters();
  out << "inputs: " << stats.lines << " lines, " << stats.messages << " messages (" << stats.spans
      << " spans, " << stats.annotations << " annotations), " << stats.invalid << " invalid";
  if (!stats.invalid_by_reason.empty()) {
    out << " (";
    bool first = true;
    for (const auto& [reason, n] : stats.invalid_by_reason) {
      out << (first ? "" : ", ") << reason << ": " << n;
      first = false;
    }
    out << ")";
  }
  out << "\ntraces: " << ec.traces_opened << " opened, " << ec.traces_closed << " closed, "
      << ec.late_evaluations << " late re-evaluations, " << ec.evicted_capacity
      << " evicted at capacity";
  if (engine.store() != nullptr) {
    out << ", " << ec.stored << " moved to the trace store, " << ec.revived << " brought back";
  }
  out << "\nrouted items: " << stats.routed_items << "\n";
  return out.str();
}

std::string FormatReplaySummaryJson(const Engine& engine, const ReplayStats& stats) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  const auto count = [&w](const char* key, uint64_t n) {
    w.Key(key);
    w.Uint64(n);
  };
  const RuleSet& rs = engine.rules();
  w.StartObject();
  w.Key("rules");
  w.StartArray();
  for (size_t i = 0; i < rs.rules.size(); ++i) {
    const RuleCounters& c = engine.rule_counters()[i];
    w.StartObject();
    w.Key("name");
    w.String(rs.rules[i].name.c_str(), static_cast<rapidjson::SizeType>(rs.rules[i].name.size()));
    count("matched", c.matched);
    count("sampled_out", c.sampled_out);
    count("rate_limited", c.rate_limited);
    count("routed", c.routed);
    w.EndObject();
  }
  w.EndArray();
  w.Key("inputs");
  w.StartObject();
  count("lines", stats.lines);
  count("messages", stats.messages);
  count("spans", stats.spans);
  count("annotations", stats.annotations);
  count("invalid", stats.invalid);
  w.Key("invalid_by_reason");
  w.StartObject();
  for (const auto& [reason, n] : stats.invalid_by_reason) count(reason.c_str(), n);
  w.EndObject();
  w.EndObject();
  const EngineCounters& ec = engine.counters();
  w.Key("traces");
  w.StartObject();
  count("opened", ec.traces_opened);
  count("closed", ec.traces_closed);
  count("late_evaluations", ec.late_evaluations);
  count("evicted_capacity", ec.evicted_capacity);
  count("stored", ec.stored);
  count("revived", ec.revived);
  w.EndObject();
  count("routed_items", stats.routed_items);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace triaged
