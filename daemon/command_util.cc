#include "daemon/command_util.h"

#include <ostream>

namespace triaged {

std::shared_ptr<const Config> LoadConfigOrReport(const std::string& path, std::ostream& err) {
  auto loaded = LoadConfigFile(path);
  if (loaded.ok()) return *std::move(loaded);
  for (const ConfigError& e : loaded.error()) err << e.ToString() << "\n";
  return nullptr;
}

}  // namespace triaged
