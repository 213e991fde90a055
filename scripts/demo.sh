#!/usr/bin/env bash
# The main job on the bundled example: validates the example rules, then replays the example
# corpus (every input shape, a few malformed lines) through them. Routed items go to stdout as
# JSON lines, the per-rule summary to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIAGED_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target triaged >&2

TRIAGED="$BUILD_DIR/daemon/triaged"
# Progress on stderr; stdout carries only the routed items.
"$TRIAGED" validate -c config/examples/rules.yaml >&2
"$TRIAGED" test -c config/examples/rules.yaml config/examples/rules.tests.yaml >&2
"$TRIAGED" replay -c config/examples/rules.yaml config/examples/events.jsonl \
  --dead-letter "$BUILD_DIR/dead-letter.jsonl"
echo "dead letters: $BUILD_DIR/dead-letter.jsonl" >&2
