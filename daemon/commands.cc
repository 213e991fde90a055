#include "daemon/commands.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "config/config.h"
#include "daemon/command_util.h"
#include "daemon/replay.h"
#include "rules/decode.h"
#include "rules/routed_item.h"

namespace triaged {

std::shared_ptr<const Config> LoadConfigOrReport(const std::string& path, std::ostream& err) {
  auto loaded = LoadConfigFile(path);
  if (loaded.ok()) return *std::move(loaded);
  for (const ConfigError& e : loaded.error()) err << e.ToString() << "\n";
  return nullptr;
}

bool ForEachInputLine(const std::vector<std::string>& inputs, std::ostream& err,
                      const std::function<void(std::string_view, uint64_t)>& fn) {
  std::vector<std::string> files = inputs;
  if (files.empty()) files.push_back("-");
  std::string line;
  for (const std::string& file : files) {
    std::ifstream in;
    std::istream* stream = &std::cin;
    if (file != "-") {
      in.open(file, std::ios::binary);
      if (!in) {
        err << file << ": cannot read: " << std::strerror(errno) << "\n";
        return false;
      }
      stream = &in;
    }
    uint64_t line_no = 0;
    while (std::getline(*stream, line)) fn(line, ++line_no);
  }
  return true;
}

int RunValidate(const ValidateOptions& options, std::ostream& out, std::ostream& err) {
  std::shared_ptr<const Config> config = LoadConfigOrReport(options.config_path, err);
  if (!config) return kExitConfig;
  const RuleSet& rules = *config->rules;
  out << options.config_path << ": ok (" << rules.rules.size() << " rules, "
      << rules.destinations.size() << " destinations, config_version "
      << rules.config_version.substr(0, 12) << ")\n";
  return kExitOk;
}

int RunReplay(const ReplayOptions& options, std::ostream& out, std::ostream& err) {
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
  // Each routed item as one JSON line.
  Replayer replayer(config, [&out](const Route& route) { out << route.document << '\n'; });
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
