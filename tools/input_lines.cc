#include "tools/input_lines.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

namespace triaged {

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

}  // namespace triaged
