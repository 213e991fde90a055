#!/usr/bin/env bash
# The main job on the embedded default: `triaged run` with the example rules on the built-in
# broker (no Kafka install), fed by `triaged generate` with realistic spans and feedback of every
# shape. Shows the routed items arriving on the queue and dataset topics (read back with kcat)
# and the per-rule counters from /v1/rules.
#
#   scripts/demo.sh                 # about 20 s of traffic at 200 messages/s
#   DEMO_SECONDS=60 DEMO_RATE=1000 scripts/demo.sh
#   scripts/demo.sh --keep-running  # leave the daemon and a slow generator running (Ctrl-C stops)
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0
[[ "${1:-}" == "--keep-running" ]] && KEEP=1
SECONDS_OF_TRAFFIC=${DEMO_SECONDS:-20}
RATE=${DEMO_RATE:-200}
export TRIAGED_ADMIN=${TRIAGED_ADMIN:-127.0.0.1:9464}
ADMIN="http://$TRIAGED_ADMIN"

scripts/install-deps.sh

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIAGED_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target triaged >&2
TRIAGED="$BUILD_DIR/bin/triaged"
CONFIG=config/examples/rules.yaml
LOGS="$BUILD_DIR/demo"
mkdir -p "$LOGS"

say() { printf '\n== %s\n' "$*"; }

say "checking the rules ($CONFIG)"
"$TRIAGED" validate -c "$CONFIG"
"$TRIAGED" test -c "$CONFIG" config/examples/rules.tests.yaml | tail -1

say "starting triaged run on the embedded broker (logs: $LOGS/daemon.log)"
unset KAFKA_BOOTSTRAP  # the example config falls back to "embedded"
"$TRIAGED" run -c "$CONFIG" 2>"$LOGS/daemon.log" &
DAEMON=$!
GENERATOR=
cleanup() {
  [[ -n "$GENERATOR" ]] && kill "$GENERATOR" 2>/dev/null || true
  kill -TERM "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
}
trap cleanup EXIT

# Wait (with a deadline) for the embedded broker's address and for readiness.
BOOTSTRAP=
for _ in $(seq 1 300); do
  BOOTSTRAP=$(grep -o '"msg":"embedded broker listening","bootstrap":"[^"]*"' "$LOGS/daemon.log" |
              sed 's/.*"bootstrap":"//; s/"$//' || true)
  [[ -n "$BOOTSTRAP" ]] && curl -sf "$ADMIN/readyz" >/dev/null 2>&1 && break
  kill -0 "$DAEMON" 2>/dev/null || { cat "$LOGS/daemon.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$BOOTSTRAP" ]] || { echo "the daemon did not start; see $LOGS/daemon.log" >&2; exit 1; }
echo "embedded broker: $BOOTSTRAP   admin: $ADMIN   ready: $(curl -s "$ADMIN/readyz")"

say "generating ${SECONDS_OF_TRAFFIC}s of traffic at $RATE messages/s (spans and feedback of every shape)"
"$TRIAGED" generate -b "$BOOTSTRAP" --rate "$RATE" --duration "${SECONDS_OF_TRAFFIC}s" \
  --invalid 0.002 2>&1 | grep '"msg":"generated"'

# Traces close 2 s after their root span ended (root_grace); wait until none is open.
for _ in $(seq 1 150); do
  curl -s "$ADMIN/v1/rules" | grep -q '"traces_open":0,' && break
  sleep 0.1
done

TOPICS=(annotations.support-review annotations.agent-review datasets.regressions
        datasets.session-replay triaged.dead-letter)
say "routed items on the destination topics (read back with kcat)"
for t in "${TOPICS[@]}"; do
  printf '%-28s %6d messages\n' "$t" "$(kcat -C -b "$BOOTSTRAP" -t "$t" -o beginning -e -q | wc -l)"
done

say "one routed item from annotations.support-review (kcat -C -c 1, first 600 bytes)"
kcat -C -b "$BOOTSTRAP" -t annotations.support-review -o beginning -c 1 -q \
  -f 'headers: %h\nkey: %k\n%s\n' | cut -c1-600

say "per-rule counters (curl $ADMIN/v1/rules)"
RULES=$(curl -s "$ADMIN/v1/rules")
if command -v python3 >/dev/null; then
  python3 -c '
import json, sys
doc = json.load(sys.stdin)
print("%-18s %8s %12s %13s %7s" % ("rule", "matched", "sampled_out", "rate_limited", "routed"))
for r in doc["rules"]:
    print("%-18s %8d %12d %13d %7d" % (r["name"], r["matched"], r["sampled_out"], r["rate_limited"], r["routed"]))
print("open traces:", doc["traces_open"])' <<<"$RULES"
else
  echo "$RULES"
fi

say "a few metrics (curl $ADMIN/metrics)"
curl -s "$ADMIN/metrics" | grep -E '^triaged_(events_consumed_total|dead_lettered_total|routed_total)' | head -8 || true

if [[ $KEEP == 1 ]]; then
  say "still running: daemon and a generator at 20 messages/s; Ctrl-C stops both"
  echo "  kcat -C -b $BOOTSTRAP -t annotations.support-review"
  echo "  curl -sN '$ADMIN/v1/tap?rule=thumbs-down'"
  "$TRIAGED" generate -b "$BOOTSTRAP" --rate 20 --duration 24h 2>/dev/null &
  GENERATOR=$!
  wait "$GENERATOR" || true
fi
