// The fuzz targets' bodies: one function per hostile-input entry point. libFuzzer calls them
// from fuzz/*_fuzz.cc (clang, scripts/fuzz.sh); tests/fuzz/fuzz_regression_test.cc runs every
// checked-in corpus file and every crash ever found through the same functions in the normal
// build. Each checks invariants beyond "does not crash" and aborts when one breaks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace triaged::fuzz {

void DecodeSpansTarget(const uint8_t* data, size_t size);      // every SpanShape
void DecodeOtlpProtoTarget(const uint8_t* data, size_t size);  // OTLP protobuf, pinned and auto
void DecodeFeedbackTarget(const uint8_t* data, size_t size);   // every FeedbackShape
void ReplayLineTarget(const uint8_t* data, size_t size);       // kcat envelopes, then decode
void ConfigTarget(const uint8_t* data, size_t size);           // the YAML config loader
void ExpressionTarget(const uint8_t* data, size_t size);       // compile, explain, evaluate

struct Target {
  const char* name;  // also the directory under fuzz/corpus and fuzz/regressions
  void (*run)(const uint8_t*, size_t);
};
const std::vector<Target>& Targets();

}  // namespace triaged::fuzz
