#include "daemon/command_util.h"

#include <algorithm>
#include <ostream>

#include "daemon/log.h"

namespace triaged {

void LogConfigWarnings(const Config& config) {
  for (const ConfigError& w : config.warnings) {
    log::Warn("config warning", {{"warning", w.ToString()}});
  }
}

std::shared_ptr<const Config> LoadConfigOrReport(const std::string& path, std::ostream& err) {
  auto loaded = LoadConfigFile(path);
  if (loaded.ok()) return *std::move(loaded);
  for (const ConfigError& e : loaded.error()) err << e.ToString() << "\n";
  return nullptr;
}

bool StdinReadTwice(const std::string& command, const std::string& config_path,
                    const std::vector<std::string>& inputs, std::ostream& err) {
  if (config_path != kStdinConfigPath) return false;
  const bool events_from_stdin =
      inputs.empty() || std::find(inputs.begin(), inputs.end(), "-") != inputs.end();
  if (!events_from_stdin) return false;
  err << command << ": -c - reads the config from stdin; name the event files\n";
  return true;
}

}  // namespace triaged
