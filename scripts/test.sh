#!/usr/bin/env bash
# Builds triaged with AddressSanitizer + UndefinedBehaviorSanitizer and -Werror, runs every
# test (ctest labels: unit, integration, fault), then each libFuzzer target on a fixed number of inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# A tree that is not clang-formatted fails here, before the build (scripts/format.sh fixes it).
scripts/format.sh --check

BUILD_DIR=${BUILD_DIR:-build-test}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DTRIAGED_SANITIZE=ON -DTRIAGED_WERROR=ON -DTRIAGED_TESTS=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
# The Release binary, built once: the image test (scripts/image.sh) packs it and the bench
# smoke below runs it (bench/run.sh configures build-bench the same way, so it builds nothing).
BENCH_BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
cmake -S . -B "$BENCH_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIAGED_BENCH=ON \
  -DTRIAGED_TESTS=OFF >/dev/null
cmake --build "$BENCH_BUILD_DIR" -j "$(nproc)"
export TRIAGED_IMAGE_BINARY=${TRIAGED_IMAGE_BINARY:-$PWD/$BENCH_BUILD_DIR/bin/triaged}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# A test that hangs fails after --timeout seconds (tests that need longer set TIMEOUT).
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 900 -j "$(nproc)" "$@"

# The fuzzers, briefly and reproducibly: every target runs FUZZ_RUNS inputs (default 20000;
# 0 skips) from a fixed seed on its corpus.
if [[ "${FUZZ_RUNS:-20000}" != 0 ]]; then
  FUZZ_RUNS=${FUZZ_RUNS:-20000} FUZZ_SEED=${FUZZ_SEED:-1} scripts/fuzz.sh
fi

# The benchmark suite on a tiny input: it still builds (Release) and runs, end to end. The
# figures of a real run are in bench/RESULTS.md (bench/run.sh); these mean nothing.
if [[ "${BENCH_SMOKE:-1}" != 0 ]]; then
  BENCH_RESULTS=$(mktemp /tmp/triaged-bench-smoke.XXXXXX.md) bench/run.sh --tiny
fi
