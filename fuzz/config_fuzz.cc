// libFuzzer entry point for the config target (see fuzz/targets.h).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  triaged::fuzz::ConfigTarget(data, size);
  return 0;
}
