#include "tools/commands.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "config/config.h"
#include "daemon/command_util.h"
#include "rules/decode.h"
#include "rules/routed_item.h"
#include "tools/input_lines.h"
#include "tools/replay.h"

namespace triaged {

namespace {

void WriteProblems(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* key,
                   const std::vector<ConfigError>& problems) {
  w.Key(key);
  w.StartArray();
  for (const ConfigError& e : problems) {
    w.StartObject();
    w.Key("file");
    w.String(e.file.c_str(), static_cast<rapidjson::SizeType>(e.file.size()));
    w.Key("line");
    w.Int(e.line);
    w.Key("column");
    w.Int(e.column);
    w.Key("message");
    w.String(e.message.c_str(), static_cast<rapidjson::SizeType>(e.message.size()));
    w.EndObject();
  }
  w.EndArray();
}

// A long replay's progress on stderr (as pv or rsync --progress show theirs): one line, rewritten
// on the first input line, then at most every 200 ms, and with the final counts at the end; erased
// before the summary.
class ReplayProgress {
 public:
  ReplayProgress(std::ostream& err, bool enabled) : err_(err), enabled_(enabled) {}

  void Update(const ReplayStats& stats, bool final = false) {
    if (!enabled_) return;
    const bool forced = final || stats.lines == 1;
    if (!forced && stats.lines % 1024 != 0) return;  // the clock read once per 1024 lines
    const auto now = std::chrono::steady_clock::now();
    if (!forced && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    err_ << "\rreplay: " << stats.lines << " lines, " << stats.routed_items << " routed, "
         << stats.invalid << " invalid";
    if (seconds >= 1)
      err_ << ", " << static_cast<uint64_t>(static_cast<double>(stats.lines) / seconds)
           << " lines/s";
    err_ << "\033[K" << std::flush;
  }
  void Erase() {
    if (enabled_) err_ << "\r\033[K" << std::flush;
  }

 private:
  std::ostream& err_;
  const bool enabled_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_;
};

}  // namespace

int RunValidate(const ValidateOptions& options, std::ostream& out, std::ostream& err) {
  auto loaded = LoadConfigFile(options.config_path);
  const Config* config = loaded.ok() ? loaded.value().get() : nullptr;
  const std::vector<ConfigError> none;
  const std::vector<ConfigError>& errors = loaded.ok() ? none : loaded.error();
  const std::vector<ConfigError>& warnings = config ? config->warnings : none;
  const bool ok = config != nullptr && !(options.deny_warnings && !warnings.empty());
  const std::string name =
      options.config_path == kStdinConfigPath ? std::string(kStdinConfigName) : options.config_path;
  if (options.json) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("config");
    w.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    w.Key("ok");
    w.Bool(ok);
    w.Key("rules");
    config ? w.Uint64(config->rules->rules.size()) : w.Null();
    w.Key("destinations");
    config ? w.Uint64(config->rules->destinations.size()) : w.Null();
    w.Key("config_version");
    config ? w.String(config->rules->config_version.c_str()) : w.Null();
    WriteProblems(w, "errors", errors);
    WriteProblems(w, "warnings", warnings);
    w.EndObject();
    out << buffer.GetString() << "\n";
    return ok ? kExitOk : kExitConfig;
  }
  for (const ConfigError& e : errors) err << e.ToString() << "\n";
  for (const ConfigError& e : warnings) err << e.ToString() << "\n";
  if (config == nullptr) return kExitConfig;
  if (!ok) {
    err << name << ": " << warnings.size() << (warnings.size() == 1 ? " warning" : " warnings")
        << ", refused by --deny-warnings\n";
    return kExitConfig;
  }
  const RuleSet& rules = *config->rules;
  out << name << ": ok (" << rules.rules.size() << " rules, " << rules.destinations.size()
      << " destinations, config_version " << rules.config_version.substr(0, 12);
  if (!warnings.empty()) {
    out << ", " << warnings.size() << (warnings.size() == 1 ? " warning" : " warnings");
  }
  out << ")\n";
  return kExitOk;
}

int RunReplay(const ReplayOptions& options, std::ostream& out, std::ostream& err) {
  if (StdinReadTwice("replay", options.config_path, options.inputs, err)) return kExitUsage;
  std::shared_ptr<const Config> config = LoadConfigOrReport(options.config_path, err);
  if (!config) return kExitConfig;
  std::ofstream dead_letters;
  if (!options.dead_letter_path.empty()) {
    dead_letters.open(options.dead_letter_path, std::ios::binary | std::ios::trunc);
    if (!dead_letters) {
      err << options.dead_letter_path << ": cannot write: " << std::strerror(errno) << "\n";
      return kExitNoInput;
    }
  }
  if (options.partitions < 1) {
    err << "replay: --partitions must be at least 1\n";
    return kExitUsage;
  }
  // Each routed item as one JSON line.
  Replayer replayer(
      config, [&out](const Route& route) { out << route.document << '\n'; }, true,
      options.partitions);
  if (!replayer.store_error().empty()) {
    err << "replay: no trace store (" << replayer.store_error()
        << "); closed traces stay in memory\n";
  }
  if (dead_letters.is_open()) {
    replayer.set_dead_letter_fn(
        [&](const DeadLetter& record) { dead_letters << DeadLetterToJson(record) << '\n'; });
  }
  ReplayProgress progress(err, options.progress);
  const bool read_all =
      ForEachInputLine(options.inputs, err, [&](std::string_view line, uint64_t n) {
        replayer.Line(line, n);
        progress.Update(replayer.stats());
      });
  replayer.Finish();
  out.flush();
  progress.Update(replayer.stats(), /*final=*/true);
  progress.Erase();
  if (options.summary) {
    err << (options.summary_json ? FormatReplaySummaryJson(replayer.engine(), replayer.stats())
                                 : FormatReplaySummary(replayer.engine(), replayer.stats()));
  }
  return read_all ? kExitOk : kExitNoInput;
}

}  // namespace triaged
