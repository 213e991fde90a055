#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang and runs each for FUZZ_SECONDS (default 15)
# on a scratch copy of its checked-in corpus (fuzz/corpus/TARGET). With FUZZ_RUNS=N each target
# instead runs N inputs from FUZZ_SEED (default 1): the same inputs on every machine, which is
# how scripts/test.sh runs them. A crash, leak, timeout or
# out-of-memory fails the run; the input that did it is copied to fuzz/regressions/TARGET/,
# where tests/fuzz/fuzz_regression_test.cc replays it in every test run from then on.
#
#   scripts/fuzz.sh                    # every target, 15 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh config expression
#   FUZZ_RUNS=20000 scripts/fuzz.sh      # deterministic
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${FUZZ_SECONDS:-15}
if [[ -n "${FUZZ_RUNS:-}" ]]; then
  BUDGET=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
  BUDGET_TEXT="$FUZZ_RUNS inputs from seed ${FUZZ_SEED:-1}"
else
  BUDGET=(-max_total_time="$SECONDS_PER_TARGET")
  BUDGET_TEXT="${SECONDS_PER_TARGET}s"
fi
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(decode_spans decode_otlp_proto decode_feedback replay_line config expression)

scripts/install-deps.sh
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTRIAGED_FUZZ=ON -DTRIAGED_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${TARGETS[@]/%/_fuzz}" >&2

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failed=0
for target in "${TARGETS[@]}"; do
  corpus="$WORK/$target"
  mkdir -p "$corpus" "$WORK/artifacts-$target"
  cp fuzz/corpus/"$target"/* "$corpus"/
  echo "fuzz: $target, $BUDGET_TEXT" >&2
  if ! "$BUILD_DIR/fuzz/${target}_fuzz" "$corpus" "${BUDGET[@]}" \
      -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$WORK/artifacts-$target/" 2>"$WORK/$target.log"; then
    failed=1
    mkdir -p fuzz/regressions/"$target"
    for a in "$WORK/artifacts-$target"/*; do
      [[ -e "$a" ]] || continue
      cp "$a" fuzz/regressions/"$target"/
      echo "fuzz: $target failed on fuzz/regressions/$target/$(basename "$a")" >&2
      echo "  reproduce: $BUILD_DIR/fuzz/${target}_fuzz fuzz/regressions/$target/$(basename "$a")" >&2
    done
    tail -n 40 "$WORK/$target.log" >&2
  else
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$WORK/$target.log" |
      sed "s/^/fuzz: $target /" >&2 || true
  fi
done
exit $failed
