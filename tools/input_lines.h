// Reading the inputs of `replay` and `explain`: JSONL files (or stdin), line by line.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace triaged {

// Calls `fn(line, line_no)` for each line of each input ("-" or no inputs = stdin); `line` is
// valid for the call only. Returns false (after reporting it) if a file cannot be opened or
// read.
bool ForEachInputLine(const std::vector<std::string>& inputs, std::ostream& err,
                      const std::function<void(std::string_view, uint64_t)>& fn);

}  // namespace triaged
