#include "tools/input_lines.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>

namespace triaged {

namespace {

// The lines of `fd`, read a MiB at a time: each line is a view into the buffer, which grows
// only for a longer line. A last line without a newline is a line too.
bool ForEachLine(int fd, const std::string& name, std::ostream& err,
                 const std::function<void(std::string_view, uint64_t)>& fn) {
  std::string buffer(size_t{1} << 20, '\0');
  size_t begin = 0, end = 0;
  uint64_t line_no = 0;
  while (true) {
    if (const void* nl = std::memchr(buffer.data() + begin, '\n', end - begin)) {
      const size_t at = static_cast<size_t>(static_cast<const char*>(nl) - buffer.data());
      fn(std::string_view(buffer.data() + begin, at - begin), ++line_no);
      begin = at + 1;
      continue;
    }
    if (begin > 0) {
      std::memmove(buffer.data(), buffer.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    if (end == buffer.size()) buffer.resize(buffer.size() * 2);
    const ssize_t n = ::read(fd, buffer.data() + end, buffer.size() - end);
    if (n < 0) {
      if (errno == EINTR) continue;
      err << name << ": cannot read: " << std::strerror(errno) << "\n";
      return false;
    }
    if (n == 0) {
      if (end > 0) fn(std::string_view(buffer.data(), end), ++line_no);
      return true;
    }
    end += static_cast<size_t>(n);
  }
}

}  // namespace

bool ForEachInputLine(const std::vector<std::string>& inputs, std::ostream& err,
                      const std::function<void(std::string_view, uint64_t)>& fn) {
  std::vector<std::string> files = inputs;
  if (files.empty()) files.push_back("-");
  for (const std::string& file : files) {
    if (file == "-") {
      if (!ForEachLine(STDIN_FILENO, "<stdin>", err, fn)) return false;
      continue;
    }
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      err << file << ": cannot read: " << std::strerror(errno) << "\n";
      return false;
    }
    const bool read = ForEachLine(fd, file, err, fn);
    ::close(fd);
    if (!read) return false;
  }
  return true;
}

}  // namespace triaged
