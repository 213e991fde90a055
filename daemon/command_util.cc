#include "daemon/command_util.h"

#include <ostream>

namespace triaged {

std::shared_ptr<const Config> LoadConfigOrReport(const std::string& path, std::ostream& err) {
  ConfigLoadResult loaded = LoadConfigFile(path);
  for (const ConfigError& e : loaded.errors) err << e.ToString() << "\n";
  return loaded.config;
}

}  // namespace triaged
