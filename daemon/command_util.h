// Loading a config for a command: `triaged run` and the offline commands report a broken config
// the same way.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>

#include "config/config.h"

namespace triaged {

// Loads a config, writing every error as `FILE:LINE:COL: message` to `err`; null on error.
std::shared_ptr<const Config> LoadConfigOrReport(const std::string& path, std::ostream& err);

}  // namespace triaged
