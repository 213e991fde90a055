// libFuzzer entry point for the decode_otlp_proto target (see fuzz/targets.h).
#include <cstddef>
#include <cstdint>

#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  triaged::fuzz::DecodeOtlpProtoTarget(data, size);
  return 0;
}
