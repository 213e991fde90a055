#include "tools/generate.h"

#include <librdkafka/rdkafka.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <ostream>
#include <vector>

#include "config/config.h"
#include "daemon/command_util.h"
#include "daemon/kafka_client.h"
#include "daemon/kafka_errors.h"
#include "daemon/log.h"
#include "tools/commands.h"
#include "tools/generate_traffic.h"

namespace triaged {

namespace {

constexpr int64_t kMs = 1'000'000;

// One line of --out: the event as kcat -J prints a consumed message (ts in milliseconds).
std::string Envelope(const std::string& topic, const GeneratedEvent& e) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto field = [&w](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  field("topic", topic);
  w.Key("ts");
  w.Int64(e.time_ns / kMs);
  field("key", e.key);
  field("payload", e.payload);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

struct ProducerStats {
  uint64_t delivered = 0, failed = 0;
  std::string last_error;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
  auto* stats = static_cast<ProducerStats*>(opaque);
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++stats->delivered;
  } else {
    ++stats->failed;
    stats->last_error = rd_kafka_err2str(msg->err);
  }
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int RunGenerate(const GenerateOptions& options, std::ostream& out, std::ostream& err) {
  if (!(options.rate > 0) || options.invalid_ratio < 0 || options.invalid_ratio > 1) {
    err << "generate: --rate must be > 0 and --invalid between 0 and 1\n";
    return kExitUsage;
  }
  if (options.duration_ns <= 0 && options.max_events == 0) {
    err << "generate: give --duration or --events (or both)\n";
    return kExitUsage;
  }
  GenerateOptions o = options;
  std::map<std::string, std::string> properties;
  if (!o.config_path.empty()) {
    std::shared_ptr<const Config> config = LoadConfigOrReport(o.config_path, err);
    if (!config) return kExitConfig;
    o.spans_topic = config->inputs.spans_topic;
    o.feedback_topic = config->inputs.feedback_topic;
    if (o.bootstrap.empty()) o.bootstrap = config->kafka.bootstrap_servers;
    properties = config->kafka.properties;
  }
  if (o.bootstrap.empty()) {
    if (const char* env = std::getenv("KAFKA_BOOTSTRAP")) o.bootstrap = env;
  }
  const bool to_file = !o.out_path.empty();
  if (!to_file && (o.bootstrap.empty() || o.bootstrap == "embedded")) {
    err << "generate: no broker: give -b HOST:PORT (a daemon on the embedded broker logs its "
           "address as \"embedded broker listening\"), or --out FILE\n";
    return kExitUsage;
  }

  TrafficOptions traffic;
  traffic.seed = o.seed;
  traffic.rate = o.rate;
  traffic.start_ns = o.start_ns != 0 ? o.start_ns : NowNs();
  traffic.invalid_ratio = o.invalid_ratio;
  TrafficGenerator gen(traffic);
  const int64_t stop_at = o.duration_ns > 0 ? traffic.start_ns + o.duration_ns : INT64_MAX;
  uint64_t emitted = 0;
  // Stops starting traces at the duration or the event budget; in-flight traces complete.
  auto next = [&](GeneratedEvent& e) {
    if (gen.PeekTime() >= stop_at || (o.max_events > 0 && emitted >= o.max_events)) gen.Finish();
    if (!gen.Next(e)) return false;
    ++emitted;
    return true;
  };

  const auto began = std::chrono::steady_clock::now();
  if (to_file) {
    std::ofstream file;
    std::ostream* sink = &out;
    if (o.out_path != "-") {
      file.open(o.out_path, std::ios::binary | std::ios::trunc);
      if (!file) {
        err << "generate: cannot write " << o.out_path << "\n";
        return kExitNoInput;
      }
      sink = &file;
    }
    GeneratedEvent e;
    while (next(e)) {
      *sink << Envelope(e.feedback ? o.feedback_topic : o.spans_topic, e) << '\n';
    }
    sink->flush();
  } else {
    // Stop on SIGTERM/SIGINT: flush what was produced, report, exit 0.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    ProducerStats stats;
    KafkaConf conf(rd_kafka_conf_new());
    char errstr[512];
    std::vector<std::pair<std::string, std::string>> settings = {
        {"bootstrap.servers", o.bootstrap},
        {"client.id", "triaged-generate"},
        {"enable.idempotence", "true"},
        {"linger.ms", "10"},
        // Java clients' partitioner, so co-partitioning matches what JVM producers would do.
        {"partitioner", "murmur2_random"}};
    for (const auto& kv : properties) settings.push_back(kv);
    for (const auto& [key, value] : settings) {
      if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof errstr) !=
          RD_KAFKA_CONF_OK) {
        err << "generate: " << key << ": " << errstr << "\n";
        return kExitUsage;
      }
    }
    RememberSecrets(properties);
    LogKafkaClientAsJson(conf.get());
    rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
    rd_kafka_conf_set_opaque(conf.get(), &stats);
    KafkaHandle handle(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr));
    if (!handle) {
      err << "generate: " << errstr << "\n";
      return kExitUsage;
    }
    conf.release();  // the handle owns it now
    rd_kafka_t* producer = handle.get();
    // Fail fast when nothing answers, rather than queueing forever.
    const rd_kafka_metadata_t* md = nullptr;
    const rd_kafka_resp_err_t reached = rd_kafka_metadata(producer, 0, nullptr, &md, 10000);
    KafkaMetadata metadata(md);
    if (reached != RD_KAFKA_RESP_ERR_NO_ERROR) {
      err << "generate: cannot reach the broker at " << o.bootstrap << "\n";
      return 69;  // EX_UNAVAILABLE
    }
    log::Info("generating", {{"bootstrap", o.bootstrap},
                             {"spans_topic", o.spans_topic},
                             {"feedback_topic", o.feedback_topic},
                             {"rate", o.burst ? log::Value("burst") : log::Value(o.rate)}});
    const timespec no_wait{0, 0};
    const int64_t wall0 = NowNs();
    GeneratedEvent e;
    bool stopped = false;
    while (!stopped && next(e)) {
      if (!o.burst && !gen.finished()) {
        // Paced in real time: an event goes out when its event time comes. Once no new traces
        // start, the feedback still pending goes out at once.
        const int64_t due = wall0 + (e.time_ns - traffic.start_ns);
        for (int64_t left = due - NowNs(); left > 0 && !stopped; left = due - NowNs()) {
          stopped = sigtimedwait(&signals, nullptr, &no_wait) > 0;
          rd_kafka_poll(producer, static_cast<int>(std::min<int64_t>(left / kMs + 1, 100)));
        }
        if (stopped) break;
      } else if ((emitted & 1023) == 0 && sigtimedwait(&signals, nullptr, &no_wait) > 0) {
        break;
      }
      const std::string& topic = e.feedback ? o.feedback_topic : o.spans_topic;
      while (true) {
        const rd_kafka_resp_err_t r = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(e.key.data(), e.key.size()),
            RD_KAFKA_V_VALUE(e.payload.data(), e.payload.size()),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (r == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (r != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          ++stats.failed;
          stats.last_error = rd_kafka_err2str(r);
          break;
        }
        rd_kafka_poll(producer, 50);  // backpressure: wait for deliveries
      }
      rd_kafka_poll(producer, 0);
    }
    rd_kafka_flush(producer, 30000);
    const int unsent = rd_kafka_outq_len(producer);
    handle.reset();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    const TrafficCounts& c = gen.counts();
    log::Info("generated", {{"traces", c.traces},
                            {"span_messages", c.span_messages},
                            {"spans", c.spans},
                            {"feedback_messages", c.feedback_messages},
                            {"invalid_messages", c.invalid},
                            {"delivered", stats.delivered},
                            {"failed", stats.failed + static_cast<uint64_t>(unsent)},
                            {"seconds", secs},
                            {"messages_per_second",
                             static_cast<double>(stats.delivered) / std::max(secs, 1e-9)}});
    if (stats.failed > 0 || unsent > 0) {
      log::Error("delivery failed",
                 {{"error", stats.last_error.empty() ? "timed out" : stats.last_error}});
      return kExitFailure;
    }
    return kExitOk;
  }
  const TrafficCounts& c = gen.counts();
  log::Info("generated", {{"traces", c.traces},
                          {"span_messages", c.span_messages},
                          {"spans", c.spans},
                          {"feedback_messages", c.feedback_messages},
                          {"invalid_messages", c.invalid},
                          {"file", o.out_path}});
  return kExitOk;
}

}  // namespace triaged