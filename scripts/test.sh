#!/usr/bin/env bash
# Builds triaged with AddressSanitizer + UndefinedBehaviorSanitizer and -Werror, runs every
# test (ctest labels: unit, integration, fault), then each libFuzzer target for a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

BUILD_DIR=${BUILD_DIR:-build-test}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DTRIAGED_SANITIZE=ON -DTRIAGED_WERROR=ON -DTRIAGED_TESTS=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"

# The fuzzers, briefly: every target on its corpus for FUZZ_SECONDS (default 10; 0 skips).
if [[ "${FUZZ_SECONDS:-10}" != 0 ]]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
fi
