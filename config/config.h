// The daemon's configuration (DESIGN §3): YAML turned into plain, validated, immutable structs
// plus the compiled RuleSet.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rules/decode.h"
#include "rules/result.h"
#include "rules/ruleset.h"

namespace triaged {

enum class Guarantee { kAtLeastOnce, kExactlyOnce };

struct KafkaConfig {
  std::string bootstrap_servers = "embedded";
  std::string group_id = "triaged";
  Guarantee guarantee = Guarantee::kAtLeastOnce;
  std::map<std::string, std::string> properties;  // passed to librdkafka as-is
  // How long SIGTERM waits for routed items to be acknowledged and offsets committed.
  int64_t shutdown_timeout_ns = 20'000'000'000;
  // How long a partition's commit point may stay behind input that is waiting before /readyz
  // says so (triaged_commit_stalled_seconds shows it in any case). Longer than trace.max_wait.
  int64_t commit_stall_timeout_ns = 600'000'000'000;
};

// How the join gets every event of a trace into one engine (DESIGN §1.4).
enum class Repartition {
  kAuto,    // events already on their trace's partition in place, the others through the hop
  kAlways,  // every event through the repartition topic
  kNever,   // trust the producers: both inputs keyed by trace id with one partitioner
};

struct InputsConfig {
  std::string spans_topic = "llm.spans";
  SpanShape spans_format = SpanShape::kAuto;
  std::string feedback_topic = "llm.feedback";
  FeedbackShape feedback_format = FeedbackShape::kAuto;
  Repartition repartition = Repartition::kAuto;
  int32_t repartition_partitions = 0;  // 0: the larger of the inputs' partition counts
  std::string repartition_topic = "triaged.repartition";  // `<kafka.group_id>.repartition`
};

// A config error, formatted as `FILE:LINE:COL: message`, or a warning, as
// `FILE:LINE:COL: warning: message`.
struct ConfigError {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string message;
  bool warning = false;
  std::string ToString() const;
};

struct Config {
  std::string path;
  KafkaConfig kafka;
  InputsConfig inputs;
  std::string dead_letter_topic = "triaged.dead-letter";
  std::string admin_listen = "127.0.0.1:9464";
  std::string admin_token_file;  // empty: no admin token
  // `trace.store.path`: the local trace store's directory (DESIGN §6); empty = closed traces
  // stay in memory.
  std::string trace_store_path;
  std::shared_ptr<const RuleSet> rules;  // destinations, rules, mode, trace settings, version
  // The threads the partitions' engines run on; 0 = one fewer than the cores available, at
  // least 1 (ThreadsFor).
  int threads = 0;
  // What loads but is likely a mistake (a destination no rule routes to, ...), in file order;
  // `validate --deny-warnings` refuses them.
  std::vector<ConfigError> warnings;
};

// `threads:` is at most this.
inline constexpr int kMaxThreads = 256;

// The path that names standard input (`-c -`), and the name its errors carry.
inline constexpr std::string_view kStdinConfigPath = "-";
inline constexpr std::string_view kStdinConfigName = "<stdin>";

// Loads and validates a config file, or standard input for kStdinConfigPath: the config (never
// null), or all errors found, in file order (never empty). `getenv` is injectable for tests
// (null = ::getenv).
using EnvLookup = const char* (*)(const char*);
Result<std::shared_ptr<const Config>, std::vector<ConfigError>> LoadConfigFile(
    const std::string& path, EnvLookup getenv_fn = nullptr);
Result<std::shared_ptr<const Config>, std::vector<ConfigError>> LoadConfigString(
    const std::string& text, const std::string& path, EnvLookup getenv_fn = nullptr);

// Parses `10s`, `250ms`, `5m`, `1h`, `2d` into nanoseconds; `4MiB`, `512KiB`, `1GiB`, `100` into
// bytes. Return false on a malformed value.
bool ParseDuration(std::string_view text, int64_t& out_ns);
bool ParseSize(std::string_view text, uint64_t& out_bytes);

// Lowercase hex SHA-256 of `data` (libcrypto), the config_version stamped on routed items.
std::string Sha256Hex(std::string_view data);

// A larger config file is refused before it is parsed.
constexpr size_t kMaxConfigBytes = size_t{4} << 20;

// Exit code for config errors (sysexits EX_CONFIG).
constexpr int kExitConfig = 78;

}  // namespace triaged
