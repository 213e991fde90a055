#!/usr/bin/env bash
# The benchmark suite, one command: builds triaged in Release, generates a corpus, measures each
# figure side by side with its baseline in the same run, and writes bench/RESULTS.md.
#
#   bench/run.sh                  # 1M events; about 5 minutes on 2 cores after the build
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
#   peer             triaged ÷ a Kafka Streams application doing the same join and route
#                    (bench/peers/streams-router), throughput and peak RSS
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
# Wall seconds of a command (its stdout to $WORK/last.out), and its peak RSS in KiB.
timed() {
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$WORK/time" "$@" >"$WORK/last.out"
  t1=$(date +%s.%N)
  echo "$(elapsed "$t0" "$t1") $(tail -n 1 "$WORK/time")"
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
for ((i = 0; i < REPEAT; ++i)); do
  timed "$BUILD_DIR/bench/parse_baseline" "$WORK/corpus.jsonl" >>"$WORK/parse.times"
  timed "$TRIAGED" replay -q -c bench/rules.yaml "$WORK/corpus.jsonl" >>"$WORK/replay.times"
done
ROUTED_REPLAY=$(wc -l <"$WORK/last.out")
PARSE_S=$(cut -d' ' -f1 "$WORK/parse.times" | median)
REPLAY_S=$(cut -d' ' -f1 "$WORK/replay.times" | median)
REPLAY_KIB=$(cut -d' ' -f2 "$WORK/replay.times" | median)
record "{\"replay\":{\"parse_s\":$PARSE_S,\"replay_s\":$REPLAY_S,\"replay_peak_kib\":$REPLAY_KIB,\"routed\":$ROUTED_REPLAY,\"runs\":$REPEAT}}"

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
PARTITIONS=${BENCH_PARTITIONS:-4}
RUN_ID=$(date +%s)-$$
# Every topic up front (the broker does not auto-create), a JVM each, in parallel.
IN_SPANS=bench-$RUN_ID.spans
IN_FEEDBACK=bench-$RUN_ID.feedback
say "creating topics"
TOPICS=("$IN_SPANS" "$IN_FEEDBACK" "lat50-$RUN_ID.spans" "lat50-$RUN_ID.feedback"
  "lat10-$RUN_ID.spans" "lat10-$RUN_ID.feedback" "pass-$RUN_ID.spans"
  "pass-$RUN_ID.feedback" "peer-$RUN_ID.review" "peer-$RUN_ID.dataset")
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

# kcat reading both topics to /dev/null, both at once.
say "kcat consume"
kcat_consume() {
  kcat -b "$KAFKA_BOOTSTRAP" -C -t "$IN_SPANS" -o beginning -e -q >/dev/null &
  local a=$!
  kcat -b "$KAFKA_BOOTSTRAP" -C -t "$IN_FEEDBACK" -o beginning -e -q >/dev/null &
  local b=$!
  wait $a $b
}
export -f kcat_consume
export KAFKA_BOOTSTRAP IN_SPANS IN_FEEDBACK
timed bash -c kcat_consume >"$WORK/kcat.time"
KCAT_S=$(cut -d' ' -f1 "$WORK/kcat.time")

say "kcat pass-through"
kcat_pass() {
  kcat -b "$KAFKA_BOOTSTRAP" -C -t "$IN_SPANS" -o beginning -e -q -K $'\t' |
    kcat -b "$KAFKA_BOOTSTRAP" -P -t "pass-$RUN_ID.spans" -K $'\t' &
  local a=$!
  kcat -b "$KAFKA_BOOTSTRAP" -C -t "$IN_FEEDBACK" -o beginning -e -q -K $'\t' |
    kcat -b "$KAFKA_BOOTSTRAP" -P -t "pass-$RUN_ID.feedback" -K $'\t' &
  local b=$!
  wait $a $b
}
export -f kcat_pass
export RUN_ID
timed bash -c kcat_pass >"$WORK/pass.time"
PASS_S=$(cut -d' ' -f1 "$WORK/pass.time")

# The value of a metric family in a /metrics text (summed over its label sets).
metric() { awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { print s + 0 }'; }

# triaged run, from start until every message is consumed and every trace decided.
say "triaged run"
ADMIN_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run_triaged() {  # GROUP OUT [REPARTITION]; sets DAEMON_PID
  BENCH_SPANS=$IN_SPANS BENCH_FEEDBACK=$IN_FEEDBACK BENCH_OUT=$2 TRIAGED_GROUP_ID=$1 \
    TRIAGED_REPARTITION=${3:-auto} TRIAGED_ADMIN=127.0.0.1:$ADMIN_PORT \
    "$TRIAGED" run -c bench/rules.yaml >"$WORK/run-$1.out" 2>"$WORK/run-$1.log" &
  DAEMON_PID=$!
  PIDS+=("$DAEMON_PID")
}
# A fresh consumer group drains the pre-produced corpus topics: timed from the daemon's start
# (group join included) until every input message is consumed (triaged_events_consumed_total
# counts input messages, not their re-produced copies), no partition lags (the repartition
# topic's included: with the hop, events still in flight there would open traces later), and
# no trace is open, as seen by a refresh made more than a second after the last input message.
# Sets DRAIN_S, DRAIN_PEAK_KIB, DRAIN_ROUTED, DRAIN_REPARTITIONED.
drain_corpus() {  # GROUP OUT REPARTITION
  local t0 now m rss consumed open lag consumed_at= pid deadline
  t0=$(date +%s.%N)
  deadline=$(awk -v t="$t0" -v n="$CORPUS_LINES" 'BEGIN { printf "%d", t + 300 + n / 500 }')
  run_triaged "$1" "$2" "$3"
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
  DRAIN_ROUTED=$(metric triaged_routed_total <<<"$m")
  DRAIN_REPARTITIONED=$(metric triaged_events_repartitioned_total <<<"$m")
  kill -TERM "$pid"
  wait "$pid" || true
}
drain_corpus "bench-$RUN_ID" "out-$RUN_ID" auto
RUN_S=$DRAIN_S PEAK_KIB=$DRAIN_PEAK_KIB ROUTED_RUN=$DRAIN_ROUTED
# What the daemon spent waiting for traces to close, not working: the decision wait.
record "{\"end_to_end\":{\"kcat_consume_s\":$KCAT_S,\"kcat_pass_s\":$PASS_S,\"triaged_s\":$RUN_S,\"triaged_peak_kib\":$PEAK_KIB,\"routed\":$ROUTED_RUN,\"repartitioned\":$DRAIN_REPARTITIONED,\"repartition\":\"auto\",\"partitions\":$PARTITIONS,\"decision_wait_s\":1}}"

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
  REPARTITION_JSON+="${REPARTITION_JSON:+,}\"$mode\":{\"seconds\":$DRAIN_S,\"peak_kib\":$DRAIN_PEAK_KIB,\"routed\":$DRAIN_ROUTED,\"repartitioned\":$DRAIN_REPARTITIONED}"
  printf -v "ROUTED_$mode" %s "$DRAIN_ROUTED"
done
record "{\"repartition\":{$REPARTITION_JSON}}"
if ((ROUTED_never != ROUTED_always)); then
  say "FAILED: repartition: never routed $ROUTED_never items, always $ROUTED_always"
  KEEP_WORK=1
  say "the raw results stay in $WORK"
  exit 1
fi

# --- the Kafka Streams peer -------------------------------------------------------------------
say "Kafka Streams peer"
PEER_DIR=bench/peers/streams-router
(cd "$PEER_DIR" && mvn -q -B -DskipTests package 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2)
PEER_JAR=$PEER_DIR/target/streams-router.jar
timed java -jar "$PEER_JAR" "$KAFKA_BOOTSTRAP" "$IN_SPANS" "$IN_FEEDBACK" "peer-$RUN_ID" \
  "$CORPUS_LINES" "$WORK/peer-state" >"$WORK/peer.time" 2>"$WORK/peer.log"
PEER_S=$(cut -d' ' -f1 "$WORK/peer.time")
PEER_KIB=$(cut -d' ' -f2 "$WORK/peer.time")
PEER_ROUTED=$(grep -o '"routed":[0-9]*' "$WORK/last.out" | cut -d: -f2 || echo 0)
record "{\"peer\":{\"seconds\":$PEER_S,\"peak_kib\":$PEER_KIB,\"routed\":${PEER_ROUTED:-0}}}"

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
