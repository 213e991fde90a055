// Pieces shared by the subcommands.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace triaged {

// Loads a config, writing every error as `FILE:LINE:COL: message` to `err`; null on error.
std::shared_ptr<const Config> LoadConfigOrReport(const std::string& path, std::ostream& err);

// Calls `fn(line, line_no)` for each line of each input ("-" or no inputs = stdin). Returns
// false (after reporting it) if a file cannot be opened.
bool ForEachInputLine(const std::vector<std::string>& inputs, std::ostream& err,
                      const std::function<void(std::string_view, uint64_t)>& fn);

}  // namespace triaged
