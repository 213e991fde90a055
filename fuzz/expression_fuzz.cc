// libFuzzer entry point for the expression target (see fuzz/targets.h).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  triaged::fuzz::ExpressionTarget(data, size);
  return 0;
}
