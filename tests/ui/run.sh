#!/usr/bin/env bash
# ctest StatusPage: a daemon on the embedded broker fed by the generator, its status page
# opened in headless Chromium (tests/ui/status_page.test.mjs). The screenshot is kept as
# ARTIFACTS/status-page.png.
#
#   tests/ui/run.sh TRIAGED_BINARY ARTIFACTS_DIR
set -euo pipefail
TRIAGED=$(realpath "$1")
mkdir -p "$2"; ARTIFACTS=$(realpath "$2")
cd "$(dirname "$0")"
[[ -d node_modules/playwright-core ]] || npm ci --no-audit --no-fund --silent

WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$WORK"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The benchmark rule set: 8 rules, 1 s decision wait, embedded broker unless KAFKA_BOOTSTRAP;
# support-review capped, so the page has a budget to show, and a filter.
sed 's|^\(  support-review: {kind: queue, *topic: ".*"\)}$|\1, limit: {max: 200, per: 1m}}|' \
  ../../bench/rules.yaml > "$WORK/rules.yaml"
grep -q 'limit: {max: 200' "$WORK/rules.yaml" || { echo "run.sh: no limit added" >&2; exit 1; }
echo 'filter: trace.name != "healthcheck"' >> "$WORK/rules.yaml"  # shown above the rules
env -u KAFKA_BOOTSTRAP TRIAGED_ADMIN=127.0.0.1:$PORT TRIAGED_GROUP_ID=ui-test \
  "$TRIAGED" run -c "$WORK/rules.yaml" 2>"$WORK/daemon.log" &
PIDS+=($!)

deadline=$((SECONDS + 60))
bootstrap=
until [[ -n "$bootstrap" ]]; do
  ((SECONDS < deadline)) || { cat "$WORK/daemon.log" >&2; exit 1; }
  bootstrap=$(grep -o '"embedded broker listening","bootstrap":"[^"]*"' "$WORK/daemon.log" |
    sed 's/.*"bootstrap":"//; s/"$//' || true)
  sleep 0.1
done
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
  ((SECONDS < deadline)) || { cat "$WORK/daemon.log" >&2; exit 1; }
  sleep 0.1
done
"$TRIAGED" generate -b "$bootstrap" --rate 300 --duration 60s --invalid 0.02 \
  2>"$WORK/generate.log" &
PIDS+=($!)

node status_page.test.mjs "http://127.0.0.1:$PORT/" 8 "$ARTIFACTS/status-page.png"
