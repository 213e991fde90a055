#include "tools/commands.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "config/config.h"
#include "daemon/command_util.h"
#include "rules/decode.h"
#include "rules/routed_item.h"
#include "tools/input_lines.h"
#include "tools/replay.h"

namespace triaged {

int RunValidate(const ValidateOptions& options, std::ostream& out, std::ostream& err) {
  std::shared_ptr<const Config> config = LoadConfigOrReport(options.config_path, err);
  if (!config) return kExitConfig;
  const RuleSet& rules = *config->rules;
  out << config->path << ": ok (" << rules.rules.size() << " rules, " << rules.destinations.size()
      << " destinations, config_version " << rules.config_version.substr(0, 12) << ")\n";
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
  const bool read_all = ForEachInputLine(
      options.inputs, err, [&](std::string_view line, uint64_t n) { replayer.Line(line, n); });
  replayer.Finish();
  out.flush();
  if (options.summary) err << FormatReplaySummary(replayer.engine(), replayer.stats());
  return read_all ? kExitOk : kExitNoInput;
}

}  // namespace triaged
