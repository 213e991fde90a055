#!/usr/bin/env bash
# The benchmark suite, one command: builds triaged in Release, generates a corpus, measures each
# figure side by side with its baseline in the same run, and writes bench/RESULTS.md.
#
#   bench/run.sh                  # 1M events; about 12 minutes on 2 cores after the build
#   bench/run.sh --tiny           # 3,000 events: checks that everything builds and runs
#   BENCH_EVENTS=200000 bench/run.sh
#
# Figures (each a ratio of two runs made here, one after the other, on the same input):
#   replay ceiling   triaged replay ÷ parse-only baseline (RapidJSON parse of every line)
#   OTLP protobuf    triaged replay of a witness corpus (tests/witness/otlp-java, the OpenTelemetry
#                    Java SDK's marshaler) as protobuf ÷ the same requests as OTLP/JSON, spans/s
#   end to end       triaged run draining the real broker ÷ kcat consuming the same topics,
#                    and ÷ a kcat consume→produce pass-through of every message
#   repartition hop  the same drain with inputs.repartition: always (every event through
#                    <group_id>.repartition) ÷ with never
#   peers            triaged ÷ a Kafka Streams application and an Apache Flink job doing the
#                    same join and route (bench/peers), throughput and peak RSS; both must
#                    route the same items as triaged replay
#   trace store      replay with a 7d window in memory ÷ in the trace store; the drain with the
#                    store; restore time from the local store and from the changelog
#   memory           RSS per open trace at 10k / 100k / 1M open traces ÷ raw span bytes
#   latency          p50/p99 routing decision → broker ack, at half the measured maximum rate
#   micro            Google Benchmark sweeps (bench/micro_bench.cc)
# Uses $KAFKA_BOOTSTRAP if set, else a broker of its own (scripts/kafka-dev.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TINY=0
[[ "${1:-}" == "--tiny" ]] && TINY=1
if ((TINY)); then
  EVENTS=${BENCH_EVENTS:-3000}
  MEMORY_POINTS=(${BENCH_MEMORY_POINTS:-100 1000})
  LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-3}
  REPEAT=1
  MICRO_ARGS=(--benchmark_min_time=0.001 --benchmark_filter='^BM_(Decode|Sample|Evaluate|Serialize|Decide)|TraceAssembly/1000/')
else
  EVENTS=${BENCH_EVENTS:-1000000}
  MEMORY_POINTS=(${BENCH_MEMORY_POINTS:-10000 100000 1000000})
  LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-30}
  REPEAT=${BENCH_REPEAT:-3}
  MICRO_ARGS=(--benchmark_min_time=0.2)
fi
BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
OUT=${BENCH_RESULTS:-bench/RESULTS.md}
WORK=$(mktemp -d /tmp/triaged-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [[ -n "${OWN_BROKER:-}" ]] && KAFKA_BOOTSTRAP= scripts/kafka-dev.sh stop >/dev/null 2>&1
  [[ -n "${KEEP_WORK:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "bench: $*" >&2; }

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIAGED_BENCH=ON \
  -DTRIAGED_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" >&2
TRIAGED=$BUILD_DIR/bin/triaged
RESULTS=$WORK/results.jsonl
record() { echo "$1" >>"$RESULTS"; }
START=2026-11-01T00:00:00Z

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# Wall seconds of a command (its stdout to $WORK/last.out), its peak RSS in KiB, and the CPU
# seconds (user + system, every thread and waited-for child) it used.
timed() {
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M %U %S' -o "$WORK/time" "$@" >"$WORK/last.out"
  t1=$(date +%s.%N)
  echo "$(elapsed "$t0" "$t1") $(tail -n 1 "$WORK/time" | awk '{ printf "%s %.2f", $1, $2 + $3 }')"
}
# CPU seconds (user + system, every thread) a running process has used so far; 0 if gone.
CLK_TCK=$(getconf CLK_TCK)
proc_cpu() {
  awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" \
    2>/dev/null || echo 0
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- corpus -----------------------------------------------------------------------------------
say "corpus: $EVENTS events"
"$TRIAGED" generate --rate 1000 --events "$EVENTS" --start "$START" -o "$WORK/corpus.jsonl" \
  2>"$WORK/generate.log"
CORPUS_LINES=$(wc -l <"$WORK/corpus.jsonl")
CORPUS_BYTES=$(stat -c %s "$WORK/corpus.jsonl")
record "{\"corpus\":{\"events\":$CORPUS_LINES,\"bytes\":$CORPUS_BYTES,\"seed\":1,\"start\":\"$START\"}}"

# --- replay ceiling ---------------------------------------------------------------------------
say "replay ceiling ($REPEAT runs each, alternating)"
: >"$WORK/replay.times"; : >"$WORK/parse.times"
# One untimed run of each first: the corpus just written is still being flushed, and on a VM
# the first process to touch this much memory also pays for the host mapping it.
"$BUILD_DIR/bench/parse_baseline" "$WORK/corpus.jsonl" >/dev/null
"$TRIAGED" replay -q -c bench/rules.yaml "$WORK/corpus.jsonl" >/dev/null
for ((i = 0; i < REPEAT; ++i)); do
  timed "$BUILD_DIR/bench/parse_baseline" "$WORK/corpus.jsonl" >>"$WORK/parse.times"
  timed "$TRIAGED" replay -q -c bench/rules.yaml "$WORK/corpus.jsonl" >>"$WORK/replay.times"
done
ROUTED_REPLAY=$(wc -l <"$WORK/last.out")
PARSE_S=$(cut -d' ' -f1 "$WORK/parse.times" | median)
REPLAY_S=$(cut -d' ' -f1 "$WORK/replay.times" | median)
REPLAY_KIB=$(cut -d' ' -f2 "$WORK/replay.times" | median)
PARSE_CPU=$(cut -d' ' -f3 "$WORK/parse.times" | median)
REPLAY_CPU=$(cut -d' ' -f3 "$WORK/replay.times" | median)
record "{\"replay\":{\"parse_s\":$PARSE_S,\"replay_s\":$REPLAY_S,\"replay_peak_kib\":$REPLAY_KIB,\"parse_cpu\":$PARSE_CPU,\"replay_cpu\":$REPLAY_CPU,\"routed\":$ROUTED_REPLAY,\"runs\":$REPEAT}}"

# --- the trace store: replay ------------------------------------------------------------------
# The same corpus with late_feedback_window 7d: closed traces kept in memory, and moved to the
# trace store (RocksDB, default hot_window 5m) — against the bench's 10m window in memory above.
# The store must not change what is routed.
sed 's/^  late_feedback_window: 10m$/  late_feedback_window: 7d/' bench/rules.yaml >"$WORK/rules-7d.yaml"
sed "s|^  max_open_traces: 2000000\$|&\\n  store: {path: $WORK/store}|" "$WORK/rules-7d.yaml" \
  >"$WORK/rules-7d-store.yaml"
grep -q '^  store: ' "$WORK/rules-7d-store.yaml" || { say "FAILED: cannot derive the store config"; exit 1; }
# What was routed, but for config_version (the two configs differ by their trace section).
routed_sum() { sed -E 's/"config_version":"[0-9a-f]+",?//' "$WORK/last.out" | sort | md5sum; }
say "trace store: replay, 7d window in memory vs in the store ($REPEAT runs each, alternating)"
: >"$WORK/replay-7d.times"; : >"$WORK/replay-store.times"
for ((i = 0; i < REPEAT; ++i)); do
  timed "$TRIAGED" replay -q -c "$WORK/rules-7d.yaml" "$WORK/corpus.jsonl" >>"$WORK/replay-7d.times"
  routed_sum >"$WORK/replay-7d.sum"
  timed "$TRIAGED" replay -q -c "$WORK/rules-7d-store.yaml" "$WORK/corpus.jsonl" >>"$WORK/replay-store.times"
  routed_sum >"$WORK/replay-store.sum"
done
ROUTED_STORE=$(wc -l <"$WORK/last.out")
"$TRIAGED" replay -c "$WORK/rules-7d-store.yaml" "$WORK/corpus.jsonl" >/dev/null 2>"$WORK/replay-store.summary"
STORE_MOVED=$(sed -n 's/.*, \([0-9]*\) moved to the trace store.*/\1/p' "$WORK/replay-store.summary")
STORE_BACK=$(sed -n 's/.*moved to the trace store, \([0-9]*\) brought back.*/\1/p' "$WORK/replay-store.summary")
if ! cmp -s "$WORK/replay-7d.sum" "$WORK/replay-store.sum"; then
  say "FAILED: the replay with the trace store routes other items than the replay without"
  KEEP_WORK=1
  exit 1
fi
median_of() { cut -d' ' -f"$2" "$WORK/$1.times" | median; }
record "{\"store_replay\":{\"memory_7d_s\":$(median_of replay-7d 1),\"memory_7d_peak_kib\":$(median_of replay-7d 2),\"store_7d_s\":$(median_of replay-store 1),\"store_7d_peak_kib\":$(median_of replay-store 2),\"routed\":$ROUTED_STORE,\"moved\":${STORE_MOVED:-0},\"brought_back\":${STORE_BACK:-0},\"runs\":$REPEAT}}"

# --- OTLP protobuf vs OTLP/JSON -----------------------------------------------------------------
# One witness corpus (an encoder sharing no code with triaged), the same requests in both
# encodings: otlp-json.jsonl holds OTLP/JSON lines, otlp-proto.jsonl the protobuf bytes as
# payload_base64 envelopes. Spans only (the feedback would cost both runs alike).
WITNESS_TRACES=$((EVENTS / 25))
((WITNESS_TRACES < 50)) && WITNESS_TRACES=50
say "OTLP witness corpus: $WITNESS_TRACES traces"
tests/witness/otlp-java/run.sh corpus "$WORK/otlp" --seed 1 --traces "$WITNESS_TRACES" \
  >"$WORK/witness.log" 2>&1 || { cat "$WORK/witness.log" >&2; exit 1; }
# Untimed, with the summary: what each encoding decodes to (spans, dead letters).
otlp_summary() {  # NAME: sets OTLP_SPANS OTLP_INVALID
  "$TRIAGED" replay -c bench/rules.yaml "$WORK/otlp/$1.jsonl" >/dev/null 2>"$WORK/$1.summary"
  OTLP_SPANS=$(sed -n 's/^inputs: .*(\([0-9]*\) spans.*/\1/p' "$WORK/$1.summary")
  OTLP_INVALID=$(sed -n 's/^inputs: .*), \([0-9]*\) invalid.*/\1/p' "$WORK/$1.summary")
}
otlp_summary otlp-json
JSON_SPANS=${OTLP_SPANS:-0} JSON_INVALID=${OTLP_INVALID:-0}
otlp_summary otlp-proto
PROTO_SPANS=${OTLP_SPANS:-0} PROTO_INVALID=${OTLP_INVALID:-0}
say "OTLP/JSON vs protobuf replay ($REPEAT runs each, alternating)"
: >"$WORK/otlp-json.times"; : >"$WORK/otlp-proto.times"
for ((i = 0; i < REPEAT; ++i)); do
  timed "$TRIAGED" replay -q -c bench/rules.yaml "$WORK/otlp/otlp-json.jsonl" >>"$WORK/otlp-json.times"
  JSON_ROUTED=$(wc -l <"$WORK/last.out")
  timed "$TRIAGED" replay -q -c bench/rules.yaml "$WORK/otlp/otlp-proto.jsonl" >>"$WORK/otlp-proto.times"
  PROTO_ROUTED=$(wc -l <"$WORK/last.out")
done
JSON_S=$(cut -d' ' -f1 "$WORK/otlp-json.times" | median)
PROTO_S=$(cut -d' ' -f1 "$WORK/otlp-proto.times" | median)
JSON_KIB=$(cut -d' ' -f2 "$WORK/otlp-json.times" | median)
PROTO_KIB=$(cut -d' ' -f2 "$WORK/otlp-proto.times" | median)
record "{\"otlp\":{\"traces\":$WITNESS_TRACES,\"seed\":1,\"requests\":$(wc -l <"$WORK/otlp/otlp-json.jsonl"),\"json_bytes\":$(stat -c %s "$WORK/otlp/otlp-json.jsonl"),\"proto_bytes\":$(cat "$WORK"/otlp/otlp-proto/*.bin | wc -c),\"json\":{\"seconds\":$JSON_S,\"peak_kib\":$JSON_KIB,\"spans\":$JSON_SPANS,\"invalid\":$JSON_INVALID,\"routed\":$JSON_ROUTED},\"proto\":{\"seconds\":$PROTO_S,\"peak_kib\":$PROTO_KIB,\"spans\":$PROTO_SPANS,\"invalid\":$PROTO_INVALID,\"routed\":$PROTO_ROUTED},\"runs\":$REPEAT}}"
say "OTLP replay: JSON ${JSON_SPANS} spans, ${JSON_INVALID} invalid, ${JSON_ROUTED} routed; protobuf ${PROTO_SPANS} spans, ${PROTO_INVALID} invalid, ${PROTO_ROUTED} routed"
if ((JSON_ROUTED != PROTO_ROUTED || JSON_SPANS != PROTO_SPANS || JSON_INVALID != 0 || PROTO_INVALID != 0)); then
  say "FAILED: the OTLP/JSON and protobuf encodings of the same requests replay differently"
  cat "$WORK/otlp-json.summary" "$WORK/otlp-proto.summary" >&2
  KEEP_WORK=1
  say "the raw results stay in $WORK"
  exit 1
fi

# --- memory -----------------------------------------------------------------------------------
for n in "${MEMORY_POINTS[@]}"; do
  say "memory: $n open traces"
  record "{\"memory\":$("$BUILD_DIR/bench/memory_bench" "$n")}"
done

# --- micro ------------------------------------------------------------------------------------
say "micro-benchmarks"
"$BUILD_DIR/bench/micro_bench" "${MICRO_ARGS[@]}" --benchmark_format=console \
  --benchmark_out="$WORK/micro.json" --benchmark_out_format=json >"$WORK/micro.txt" 2>/dev/null

# --- the real broker --------------------------------------------------------------------------
if [[ -z "${KAFKA_BOOTSTRAP:-}" ]]; then
  say "starting a broker of our own"
  OWN_BROKER=1
  export KAFKA_DEV_DIR=$WORK/kafka
  KAFKA_BOOTSTRAP=$(scripts/kafka-dev.sh start 2>"$WORK/kafka.log" | tail -n 1)
fi
export KAFKA_BOOTSTRAP
# The broker's own CPU is counted next to each client's when the broker is scripts/kafka-dev.sh's
# (ours, or the dev broker $KAFKA_BOOTSTRAP points at); with another broker it is not known.
BROKER_PID=$(cat "${KAFKA_DEV_DIR:-/tmp/triaged-kafka-$UID}/kafka.pid" 2>/dev/null || true)
if [[ -z "$BROKER_PID" ]] || ! tr '\0' ' ' <"/proc/$BROKER_PID/cmdline" 2>/dev/null |
  grep -q 'kafka\.Kafka'; then
  BROKER_PID=
fi
broker_cpu() { if [[ -n "$BROKER_PID" ]]; then proc_cpu "$BROKER_PID"; else echo null; fi; }
# The broker's CPU seconds between two broker_cpu readings (null when unknown).
broker_spent() { [[ "$1" == null ]] && echo null || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
PARTITIONS=${BENCH_PARTITIONS:-4}
RUN_ID=$(date +%s)-$$
# Every topic up front (the broker does not auto-create), a JVM each, in parallel.
IN_SPANS=bench-$RUN_ID.spans
IN_FEEDBACK=bench-$RUN_ID.feedback
say "creating topics"
TOPICS=("$IN_SPANS" "$IN_FEEDBACK" "lat50-$RUN_ID.spans" "lat50-$RUN_ID.feedback"
  "lat10-$RUN_ID.spans" "lat10-$RUN_ID.feedback" "pass-$RUN_ID.spans"
  "pass-$RUN_ID.feedback")
for d in support-review agent-review regressions session-replay dead-letter; do
  TOPICS+=("out-$RUN_ID.$d")
done
TOPIC_PIDS=()
for t in "${TOPICS[@]}"; do
  scripts/kafka-dev.sh create-topic "$t" "$PARTITIONS" >/dev/null 2>>"$WORK/topics.log" &
  TOPIC_PIDS+=($!)
done
for pid in "${TOPIC_PIDS[@]}"; do wait "$pid" || { cat "$WORK/topics.log" >&2; exit 1; }; done
say "producing the corpus to $KAFKA_BOOTSTRAP ($IN_SPANS, $IN_FEEDBACK)"
"$TRIAGED" generate -b "$KAFKA_BOOTSTRAP" --spans-topic "$IN_SPANS" --feedback-topic "$IN_FEEDBACK" \
  --burst --rate 1000 --events "$EVENTS" --start "$START" 2>"$WORK/produce.log"

# The value of a metric family in a /metrics text (summed over its label sets).
metric() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { print s + 0 }'; }

# triaged run, from start until every message is consumed and every trace decided.
ADMIN_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run_triaged() {  # GROUP OUT [REPARTITION [CONFIG]]; sets DAEMON_PID
  BENCH_SPANS=$IN_SPANS BENCH_FEEDBACK=$IN_FEEDBACK BENCH_OUT=$2 TRIAGED_GROUP_ID=$1 \
    TRIAGED_REPARTITION=${3:-auto} TRIAGED_ADMIN=127.0.0.1:$ADMIN_PORT \
    "$TRIAGED" run -c "${4:-bench/rules.yaml}" >>"$WORK/run-$1.out" 2>>"$WORK/run-$1.log" &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
}
# A fresh consumer group drains the pre-produced corpus topics: timed from the daemon's start
# (group join included) until every input message is consumed (triaged_events_consumed_total
# counts input messages, not their re-produced copies), no partition lags (the repartition
# topic's included: with the hop, events still in flight there would open traces later), and
# no trace is open, as seen by a refresh made more than a second after the last input message.
# Sets DRAIN_S, DRAIN_PEAK_KIB, DRAIN_ROUTED, DRAIN_REPARTITIONED, and DRAIN_CPU / DRAIN_BROKER_CPU
# (CPU seconds of the daemon, and of the broker meanwhile).
drain_corpus() {  # GROUP OUT REPARTITION [CONFIG]
  local t0 now m rss consumed open lag consumed_at= pid deadline b0
  b0=$(broker_cpu)
  t0=$(date +%s.%N)
  deadline=$(awk -v t="$t0" -v n="$CORPUS_LINES" 'BEGIN { printf "%d", t + 300 + n / 500 }')
  run_triaged "$1" "$2" "$3" "${4:-}"
  pid=$DAEMON_PID
  DRAIN_PEAK_KIB=0
  while true; do
    m=$(curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" || true)
    now=$(date +%s.%N)
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    ((${rss:-0} > DRAIN_PEAK_KIB)) && DRAIN_PEAK_KIB=$rss
    consumed=$(metric triaged_events_consumed_total <<<"$m")
    open=$(metric triaged_traces_open <<<"$m")
    lag=$(metric triaged_consumer_lag <<<"$m")
    # The gauges are refreshed each second: trust zeros only from a refresh made after the last
    # message was consumed.
    if [[ -z "$consumed_at" ]] && ((consumed >= CORPUS_LINES)); then consumed_at=$now; fi
    if [[ -n "$consumed_at" ]] && ((open == 0 && lag == 0)) &&
      awk -v a="$consumed_at" -v b="$now" 'BEGIN { exit !(b - a > 1.1) }'; then
      break
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/run-$1.log" >&2; exit 1; }
    if ((${now%.*} > deadline)); then
      say "FAILED: $1 (repartition: $3) did not finish: consumed $consumed of $CORPUS_LINES, $open traces open, lag $lag"
      KEEP_WORK=1
      exit 1
    fi
    sleep 0.1
  done
  DRAIN_S=$(elapsed "$t0" "$(date +%s.%N)")
  DRAIN_CPU=$(proc_cpu "$pid")
  DRAIN_BROKER_CPU=$(broker_spent "$b0" "$(broker_cpu)")
  DRAIN_ROUTED=$(metric triaged_routed_total <<<"$m")
  DRAIN_REPARTITIONED=$(metric triaged_events_repartitioned_total <<<"$m")
  kill -TERM "$pid"
  wait "$pid" || true
}
# One untimed drain first, by a group of its own: the broker's first consumer group creates
# __consumer_offsets, and its JVM has not yet compiled the paths a group consumer and a producer of
# routed items take. Measured here (after a sync), the first of two identical drains of the 1M
# corpus took 18.6 s with the broker at 10.1 CPU-s, the second 14.6 s with the broker at 4.2.
say "warm-up drain (untimed)"
drain_corpus "warm-$RUN_ID" "out-$RUN_ID" auto
WARM_JSON="{\"seconds\":$DRAIN_S,\"cpu\":$DRAIN_CPU,\"broker_cpu\":$DRAIN_BROKER_CPU,\"routed\":$DRAIN_ROUTED}"
WARM_ROUTED=$DRAIN_ROUTED

# kcat reading both topics to /dev/null, both at once.
kcat_consume() {
  kcat -b "$KAFKA_BOOTSTRAP" -C -t "$IN_SPANS" -o beginning -e -q >/dev/null &
  local a=$!
  kcat -b "$KAFKA_BOOTSTRAP" -C -t "$IN_FEEDBACK" -o beginning -e -q >/dev/null &
  local b=$!
  wait $a $b
}
# kcat re-producing every message of both topics, both at once.
kcat_pass() {
  kcat -b "$KAFKA_BOOTSTRAP" -C -t "$IN_SPANS" -o beginning -e -q -K $'\t' |
    kcat -b "$KAFKA_BOOTSTRAP" -P -t "pass-$RUN_ID.spans" -K $'\t' &
  local a=$!
  kcat -b "$KAFKA_BOOTSTRAP" -C -t "$IN_FEEDBACK" -o beginning -e -q -K $'\t' |
    kcat -b "$KAFKA_BOOTSTRAP" -P -t "pass-$RUN_ID.feedback" -K $'\t' &
  local b=$!
  wait $a $b
}
export -f kcat_consume kcat_pass
export KAFKA_BOOTSTRAP IN_SPANS IN_FEEDBACK RUN_ID
# $REPEAT rounds of kcat consume, kcat pass-through and a triaged drain (a fresh group each), and
# the median of each figure: the same drain repeated on this VM ranges over 1.3x (12.9-17.6 s),
# most after another client's writes, so one drain against one kcat run says little.
: >"$WORK/e2e.rounds"
for round in $(seq 1 "$REPEAT"); do
  say "end to end, round $round of $REPEAT: kcat consume, kcat pass-through, triaged run"
  B0=$(broker_cpu)
  read -r kcat_s _ kcat_cpu < <(timed bash -c kcat_consume)
  kcat_broker=$(broker_spent "$B0" "$(broker_cpu)")
  B0=$(broker_cpu)
  read -r pass_s _ pass_cpu < <(timed bash -c kcat_pass)
  pass_broker=$(broker_spent "$B0" "$(broker_cpu)")
  drain_corpus "bench-$RUN_ID-$round" "out-$RUN_ID" auto
  say "round $round: kcat ${kcat_s}s, pass-through ${pass_s}s, triaged ${DRAIN_S}s (${DRAIN_ROUTED} routed)"
  echo "$kcat_s $kcat_cpu $kcat_broker $pass_s $pass_cpu $pass_broker $DRAIN_S $DRAIN_PEAK_KIB $DRAIN_CPU $DRAIN_BROKER_CPU $DRAIN_ROUTED $DRAIN_REPARTITIONED" >>"$WORK/e2e.rounds"
done
col() { awk -v c="$1" '{ print $c }' "$WORK/e2e.rounds" | median; }
KCAT_S=$(col 1) KCAT_CPU=$(col 2) KCAT_BROKER_CPU=$(col 3)
PASS_S=$(col 4) PASS_CPU=$(col 5) PASS_BROKER_CPU=$(col 6)
RUN_S=$(col 7) PEAK_KIB=$(col 8) RUN_CPU=$(col 9) RUN_BROKER_CPU=$(col 10)
ROUTED_RUN=$(col 11) RUN_REPARTITIONED=$(col 12)
RUN_ROUNDS_S=$(awk '{ printf "%s%s", (NR > 1 ? "," : ""), $7 }' "$WORK/e2e.rounds")
# Every drain must route as many items as the warm-up did.
if awk -v w="$WARM_ROUTED" '$11 != w { bad = 1 } END { exit !bad }' "$WORK/e2e.rounds"; then
  say "FAILED: the end-to-end drains routed different items: warm-up $WARM_ROUTED, rounds $(awk '{ print $11 }' "$WORK/e2e.rounds" | tr '\n' ' ')"
  KEEP_WORK=1
  exit 1
fi
# What the daemon spent waiting for traces to close, not working: the decision wait.
record "{\"end_to_end\":{\"runs\":$REPEAT,\"triaged_runs_s\":[$RUN_ROUNDS_S],\"kcat_consume_s\":$KCAT_S,\"kcat_pass_s\":$PASS_S,\"triaged_s\":$RUN_S,\"triaged_peak_kib\":$PEAK_KIB,\"cpu\":{\"kcat_consume\":$KCAT_CPU,\"kcat_consume_broker\":$KCAT_BROKER_CPU,\"kcat_pass\":$PASS_CPU,\"kcat_pass_broker\":$PASS_BROKER_CPU,\"triaged\":$RUN_CPU,\"triaged_broker\":$RUN_BROKER_CPU},\"routed\":$ROUTED_RUN,\"repartitioned\":$RUN_REPARTITIONED,\"repartition\":\"auto\",\"partitions\":$PARTITIONS,\"decision_wait_s\":1,\"warm_up\":$WARM_JSON}}"

# --- the repartition hop ------------------------------------------------------------------------
# The same topics twice more, each with a fresh group: `never` (the engines join on the inputs'
# partitions) and `always` (every input event re-produced to <group>.repartition, created by the
# daemon, keyed by trace id; the engines join only from there). Same destination topics: the
# routed counts come from each daemon's metrics.
REPARTITION_JSON=
for mode in never always; do
  say "triaged run, repartition: $mode"
  drain_corpus "rp$mode-$RUN_ID" "out-$RUN_ID" "$mode"
  say "repartition $mode: ${DRAIN_S}s, ${DRAIN_ROUTED} routed, ${DRAIN_REPARTITIONED} events repartitioned"
  REPARTITION_JSON+="${REPARTITION_JSON:+,}\"$mode\":{\"seconds\":$DRAIN_S,\"peak_kib\":$DRAIN_PEAK_KIB,\"cpu\":$DRAIN_CPU,\"broker_cpu\":$DRAIN_BROKER_CPU,\"routed\":$DRAIN_ROUTED,\"repartitioned\":$DRAIN_REPARTITIONED}"
  printf -v "ROUTED_$mode" %s "$DRAIN_ROUTED"
done
record "{\"repartition\":{$REPARTITION_JSON}}"
if ((ROUTED_never != ROUTED_always)); then
  say "FAILED: repartition: never routed $ROUTED_never items, always $ROUTED_always"
  KEEP_WORK=1
  say "the raw results stay in $WORK"
  exit 1
fi

# --- engine threads -----------------------------------------------------------------------------
# The same topics drained by a fresh group with an engine thread per core (`threads: N`), against
# the `never` drain above (`threads:` at its default, one fewer than the cores; the same work as
# the end-to-end drain, which repartitioned nothing). Both must
# route the same items.
ALL_THREADS=$(nproc)
say "triaged run, threads: $ALL_THREADS"
{ echo "threads: $ALL_THREADS"; cat bench/rules.yaml; } >"$WORK/run-threads.yaml"
drain_corpus "thr-$RUN_ID" "out-$RUN_ID" auto "$WORK/run-threads.yaml"
DEFAULT_THREADS=$(grep -o '"msg":"started".*"threads":[0-9]*' "$WORK/run-rpnever-$RUN_ID.log" |
  grep -o '"threads":[0-9]*' | cut -d: -f2)
say "threads: $ALL_THREADS: ${DRAIN_S}s, ${DRAIN_ROUTED} routed; threads: ${DEFAULT_THREADS} (the default): $(grep -o '"never":{"seconds":[0-9.]*' "$RESULTS" | cut -d: -f3)s"
record "{\"threads\":{\"all\":$ALL_THREADS,\"default\":${DEFAULT_THREADS:-0},\"seconds\":$DRAIN_S,\"peak_kib\":$DRAIN_PEAK_KIB,\"cpu\":$DRAIN_CPU,\"broker_cpu\":$DRAIN_BROKER_CPU,\"routed\":$DRAIN_ROUTED}}"
if ((DRAIN_ROUTED != ROUTED_never)); then
  say "FAILED: threads: $ALL_THREADS routed $DRAIN_ROUTED items, the default $ROUTED_never"
  KEEP_WORK=1
  exit 1
fi

# --- the trace store on the broker --------------------------------------------------------------
# The same topics drained by a fresh group with the 7d window and the trace store (every closed
# trace's record in <group>.traces), against the end-to-end drain above (10m, in memory). Then
# the restore a new owner does before it routes: the group restarted on the same store (closed
# cleanly: current, only the changelog's tail read), then on an empty store directory (as on
# another host, or after a crash: rebuilt from the whole changelog). Timed by the daemon
# (triaged_trace_store_restore_seconds, summed over the partitions).
# The daemon runs the hot window on its own clock, and the drain plays ~17 minutes of traffic
# (at 1000 events/s) in well under a minute: a hot window of 10 s stands for the default 5m.
STORE_GROUP=store-$RUN_ID
sed -e "s|$WORK/store|$WORK/run-store|" -e 's|^  store: |  hot_window: 10s\n  store: |' \
  "$WORK/rules-7d-store.yaml" >"$WORK/run-store.yaml"
say "triaged run, 7d window with the trace store"
drain_corpus "$STORE_GROUP" "out-$RUN_ID" auto "$WORK/run-store.yaml"
STORE_RUN_S=$DRAIN_S STORE_RUN_KIB=$DRAIN_PEAK_KIB STORE_RUN_ROUTED=$DRAIN_ROUTED
STORE_RUN_CPU=$DRAIN_CPU STORE_RUN_BROKER_CPU=$DRAIN_BROKER_CPU
# Starts the store group's daemon on CONFIG, waits until every partition's store is restored and
# the daemon is ready, and reads its metrics (RESTORE_METRICS); then stops it.
restore_once() {  # CONFIG
  local m= n deadline
  deadline=$(($(date +%s) + 600))
  run_triaged "$STORE_GROUP" "out-$RUN_ID" auto "$1"
  while true; do
    m=$(curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" || true)
    n=$(metric triaged_trace_store_restore_seconds_count <<<"$m")
    if ((n >= PARTITIONS)) && curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null; then
      # The store gauges are refreshed each second.
      sleep 1.2
      m=$(curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics")
      break
    fi
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$WORK/run-$STORE_GROUP.log" >&2; exit 1; }
    if (($(date +%s) > deadline)); then
      say "FAILED: the trace store was not restored: $n of $PARTITIONS partitions"
      KEEP_WORK=1
      exit 1
    fi
    sleep 0.1
  done
  RESTORE_METRICS=$m
  kill -TERM "$DAEMON_PID"
  wait "$DAEMON_PID" || true
}
# The value of the series of a /metrics text that start with PREFIX (name and labels), summed.
series() { awk -v m="$1" 'index($1, m) == 1 { s += $NF } END { print s + 0 }'; }
restore_figures() {  # FROM: prints the JSON of one restore
  local seconds records traces bytes
  seconds=$(series "triaged_trace_store_restore_seconds_sum{from=\"$1\"}" <<<"$RESTORE_METRICS")
  records=$(series "triaged_trace_store_restored_records_total{from=\"$1\"}" <<<"$RESTORE_METRICS")
  traces=$(metric triaged_trace_store_records <<<"$RESTORE_METRICS")
  bytes=$(metric triaged_trace_store_disk_bytes <<<"$RESTORE_METRICS")
  echo "{\"seconds\":$seconds,\"records\":$records,\"traces\":$traces,\"disk_bytes\":$bytes}"
}
say "trace store: restore from the local store"
restore_once "$WORK/run-store.yaml"
RESTORE_LOCAL=$(restore_figures local)
say "trace store: restore from the changelog"
sed "s|$WORK/run-store|$WORK/run-store-empty|" "$WORK/run-store.yaml" >"$WORK/run-store-empty.yaml"
restore_once "$WORK/run-store-empty.yaml"
RESTORE_CHANGELOG=$(restore_figures changelog)
STORE_DIR_BYTES=$(du -sb "$WORK/run-store" | cut -f1)
record "{\"store_run\":{\"seconds\":$STORE_RUN_S,\"cpu\":$STORE_RUN_CPU,\"broker_cpu\":$STORE_RUN_BROKER_CPU,\"peak_kib\":$STORE_RUN_KIB,\"routed\":$STORE_RUN_ROUTED,\"dir_bytes\":$STORE_DIR_BYTES,\"local\":$RESTORE_LOCAL,\"changelog\":$RESTORE_CHANGELOG}}"
say "trace store: run ${STORE_RUN_S}s, local restore $RESTORE_LOCAL, changelog restore $RESTORE_CHANGELOG"

# --- the Kafka Streams peer -------------------------------------------------------------------
# Two JVM peers doing triaged's job (bench/peers): Kafka Streams (streams-router) and Apache
# Flink in a local mini-cluster (flink-router). They share router-core: the decoding of every
# input shape, bench/rules.yaml's rules, XXH64 sampling, and triaged's close / late-feedback /
# routed-once semantics on the arrival clock, as `triaged run` applies them. Each drains the
# pre-produced topics, timed from JVM start until every message is consumed and every trace
# decided; then what it wrote to its destination topics is checked against `triaged replay` of
# the corpus, item by item (bench/peers/check.py): the bench fails when they differ.
# JVM flags, stated: the machine's cores, the throughput collector, a heap of 4x the corpus bytes
# and at least 1 GiB (both peers hold each trace's messages for the late-feedback window, as
# triaged does).
say "JVM peers: building"
(cd bench/peers && mvn -q -B -DskipTests package 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2)
STREAMS_JAR=bench/peers/streams-router/target/streams-router.jar
FLINK_JAR=bench/peers/flink-router/target/flink-router.jar
PEER_HEAP_MIB=$((CORPUS_BYTES * 4 / 1048576))
((PEER_HEAP_MIB < 1024)) && PEER_HEAP_MIB=1024
PEER_JVM=(-XX:ActiveProcessorCount="$(nproc)" -Xmx"${PEER_HEAP_MIB}m" -XX:+UseParallelGC)
PEER_DESTINATIONS=(support-review agent-review regressions session-replay)
PEER_TOPICS=()
for p in streams flink; do
  for d in "${PEER_DESTINATIONS[@]}"; do PEER_TOPICS+=("$p-$RUN_ID.$d"); done
done
java -cp "$STREAMS_JAR" dev.triaged.peer.CreateTopics "$KAFKA_BOOTSTRAP" "$PARTITIONS" \
  "${PEER_TOPICS[@]}" 2>>"$WORK/topics.log" || { cat "$WORK/topics.log" >&2; exit 1; }
"$TRIAGED" replay -q -c bench/rules.yaml "$WORK/corpus.jsonl" >"$WORK/replay-items.jsonl"
# What NAME-$RUN_ID.* hold against the replay's items (counts per destination on stderr).
# Sets CHECK_JSON.
peer_check() {  # NAME
  local d
  : >"$WORK/$1-items.jsonl"
  for d in "${PEER_DESTINATIONS[@]}"; do
    kcat -b "$KAFKA_BOOTSTRAP" -C -t "$1-$RUN_ID.$d" -o beginning -e -q -f '%s\n' \
      >>"$WORK/$1-items.jsonl"
  done
  if ! CHECK_JSON=$(python3 bench/peers/check.py "$1" "$WORK/replay-items.jsonl" \
    "$WORK/$1-items.jsonl"); then
    say "FAILED: the $1 peer did not route the items triaged replay routes"
    KEEP_WORK=1
    say "the raw results stay in $WORK"
    exit 1
  fi
}
# Runs a peer with timed; sets PEER_S PEER_KIB PEER_CPU PEER_BROKER_CPU PEER_ROUTED PEER_RUN (its
# summary line).
run_peer() {  # NAME JAR ARGS...
  local name=$1 jar=$2 b0
  shift 2
  b0=$(broker_cpu)
  if ! timed java "${PEER_JVM[@]}" -jar "$jar" "$@" >"$WORK/$name.time" 2>"$WORK/$name.log"; then
    tail -n 30 "$WORK/$name.log" >&2
    say "FAILED: the $name peer"
    KEEP_WORK=1
    exit 1
  fi
  PEER_S=$(cut -d' ' -f1 "$WORK/$name.time")
  PEER_KIB=$(cut -d' ' -f2 "$WORK/$name.time")
  PEER_CPU=$(cut -d' ' -f3 "$WORK/$name.time")
  PEER_BROKER_CPU=$(broker_spent "$b0" "$(broker_cpu)")
  PEER_RUN=$(tail -n 1 "$WORK/last.out")
  PEER_ROUTED=$(grep -o '"routed":[0-9]*' <<<"$PEER_RUN" | cut -d: -f2)
}
say "Kafka Streams peer (${PEER_JVM[*]})"
run_peer streams "$STREAMS_JAR" "$KAFKA_BOOTSTRAP" "$IN_SPANS" "$IN_FEEDBACK" "streams-$RUN_ID" \
  "$CORPUS_LINES" "$WORK/peer-state"
peer_check streams
say "Kafka Streams peer: ${PEER_S}s, ${PEER_ROUTED} routed"
record "{\"peer\":{\"seconds\":$PEER_S,\"peak_kib\":$PEER_KIB,\"cpu\":$PEER_CPU,\"broker_cpu\":$PEER_BROKER_CPU,\"routed\":${PEER_ROUTED:-0},\"jvm\":\"${PEER_JVM[*]}\",\"summary\":$PEER_RUN,\"check\":$CHECK_JSON}}"

say "Flink peer (${PEER_JVM[*]})"
run_peer flink "$FLINK_JAR" "$KAFKA_BOOTSTRAP" "$IN_SPANS" "$IN_FEEDBACK" "flink-$RUN_ID" "$(nproc)"
peer_check flink
say "Flink peer: ${PEER_S}s, ${PEER_ROUTED} routed"
record "{\"flink_peer\":{\"seconds\":$PEER_S,\"peak_kib\":$PEER_KIB,\"cpu\":$PEER_CPU,\"broker_cpu\":$PEER_BROKER_CPU,\"routed\":${PEER_ROUTED:-0},\"jvm\":\"${PEER_JVM[*]}\",\"summary\":$PEER_RUN,\"check\":$CHECK_JSON}}"

# --- latency at half (and a tenth of) the maximum rate ------------------------------------------
latency_at() {  # PERCENT: of the end-to-end rate measured above
  local rate run=lat$1-$RUN_ID
  rate=$(awk -v n="$CORPUS_LINES" -v s="$RUN_S" -v p="$1" 'BEGIN { r = int(n / s * p / 100); print (r < 10 ? 10 : r) }')
  say "latency at $rate msg/s ($1% of the maximum) for ${LATENCY_SECONDS}s"
  IN_SPANS=$run.spans IN_FEEDBACK=$run.feedback
  run_triaged "$run" "out-$RUN_ID"
  until curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null; do sleep 0.1; done
  # Paced traffic for LATENCY_SECONDS (the generator would go on sending late feedback for two
  # more minutes; it is stopped instead), then the last traces' decision wait and acks.
  timeout -s INT "$LATENCY_SECONDS" "$TRIAGED" generate -b "$KAFKA_BOOTSTRAP" \
    --spans-topic "$IN_SPANS" --feedback-topic "$IN_FEEDBACK" --rate "$rate" \
    --duration "${LATENCY_SECONDS}s" 2>"$WORK/$run-generate.log" || true
  sleep 3
  curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/latency-$1.metrics"
  kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true
  record "{\"latency\":{\"percent\":$1,\"rate\":$rate,\"seconds\":$LATENCY_SECONDS,\"metrics\":\"latency-$1.metrics\"}}"
}
latency_at 50
latency_at 10

# --- the report -------------------------------------------------------------------------------
say "writing $OUT"
if ! python3 bench/report.py --results "$RESULTS" --micro "$WORK/micro.json" --work "$WORK" \
  --triaged "$TRIAGED" --tiny "$TINY" >"$OUT.new"; then
  KEEP_WORK=1
  say "the report failed; the raw results stay in $WORK"
  exit 1
fi
mv "$OUT.new" "$OUT"
say "done: $OUT"
