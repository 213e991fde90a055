// mimalloc's options for every binary that links it (cmake/TriagedTargets.cmake adds this file
// to each executable): before main, unless the environment sets the option itself.
//
// Large OS pages: the engine's tables and traces are hundreds of MiB visited at random, and
// with 2 MiB pages (transparent huge pages, madvise'd) a replay of 300k bench events used 0.9×
// the CPU and 1/7 of the page faults, for 2% more peak resident memory.
#include <mimalloc.h>

#include <cstdlib>

namespace {

const bool kLargePages = [] {
  if (std::getenv("MIMALLOC_LARGE_OS_PAGES") == nullptr) {
    mi_option_set_enabled(mi_option_large_os_pages, true);
  }
  return true;
}();

}  // namespace
