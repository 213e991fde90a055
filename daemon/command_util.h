// Loading a config for a command: `triaged run` and the offline commands report a broken config
// the same way.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace triaged {

// Loads a config, writing every error as `FILE:LINE:COL: message` to `err`; null on error.
std::shared_ptr<const Config> LoadConfigOrReport(const std::string& path, std::ostream& err);

// Logs each of the config's warnings (`validate` prints them) as a warn line.
void LogConfigWarnings(const Config& config);

// Whether `command` would read standard input twice: the config (`-c -`) and its events
// (`inputs` empty or naming `-`). If so, says so on `err`.
bool StdinReadTwice(const std::string& command, const std::string& config_path,
                    const std::vector<std::string>& inputs, std::ostream& err);

}  // namespace triaged
