#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into bench/RESULTS.md (on stdout)."""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess


def sh(cmd):
    try:
        out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
        return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else "?"
    except Exception:  # noqa: BLE001 - a missing tool is reported as "?"
        return "?"


def histogram_quantile(q, buckets):
    """Prometheus' histogram_quantile over [(le, cumulative count)], linear within a bucket."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    if total == 0:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-12)
        prev_le, prev_count = le, count
    return buckets[-1][0]


def latency(path):
    buckets = []
    with open(path) as f:
        for line in f:
            m = re.match(r'triaged_route_ack_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
            if m:
                buckets.append((float(m.group(1)), float(m.group(2))))
    if not buckets:
        return None, None, 0
    return histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets), int(max(c for _, c in buckets))


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return model, os.cpu_count(), mem_kib / 1024 / 1024


def ok(value, goal, higher_is_better=True):
    if value is None:
        return "n/a"
    met = value >= goal if higher_is_better else value <= goal
    return "yes" if met else "**no**"


def cpu_table(events, replay, e2e, hop, store_run, peer, flink, threads=None):
    """(rows of the CPU table, figure rows): from the runs whose CPU-seconds were recorded."""
    rows, figures = [], []
    if "replay_cpu" in replay:
        rows.append(("parse-only baseline", replay["parse_s"], replay["parse_cpu"], None))
        rows.append(("triaged replay", replay["replay_s"], replay["replay_cpu"], None))
    cpu = e2e.get("cpu")
    if not cpu:
        return rows, figures
    rows.append(("kcat consume (both topics)", e2e["kcat_consume_s"], cpu["kcat_consume"], cpu["kcat_consume_broker"]))
    rows.append(("kcat consume→produce", e2e["kcat_pass_s"], cpu["kcat_pass"], cpu["kcat_pass_broker"]))
    rows.append(("triaged run", e2e["triaged_s"], cpu["triaged"], cpu["triaged_broker"]))
    if hop and "cpu" in hop["never"]:
        for mode in ("never", "always"):
            rows.append((f"triaged run, repartition: {mode}", hop[mode]["seconds"], hop[mode]["cpu"],
                         hop[mode]["broker_cpu"]))
    if threads:
        rows.append((f"triaged run, threads: {threads['all']}", threads["seconds"], threads["cpu"],
                     threads["broker_cpu"]))
    if store_run and "cpu" in store_run:
        rows.append(("triaged run, 7d with the trace store", store_run["seconds"], store_run["cpu"],
                     store_run["broker_cpu"]))
    ours = events / max(cpu["triaged"], 1e-9)
    for name, p in (("Kafka Streams peer", peer), ("Flink peer", flink)):
        if p and "cpu" in p:
            rows.append((name, p["seconds"], p["cpu"], p["broker_cpu"]))
            figures.append((f"vs {name} (events per CPU-second)", ours, name, events / max(p["cpu"], 1e-9), 5))
    figures.append(("run vs kcat consume→produce (events per CPU-second)", ours, "kcat",
                    events / max(cpu["kcat_pass"], 1e-9), None))
    return rows, figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--micro", required=True)
    ap.add_argument("--work", required=True, help="bench/run.sh's scratch directory")
    ap.add_argument("--triaged", required=True)
    ap.add_argument("--tiny", default="0")
    args = ap.parse_args()

    r = {"memory": [], "latency": []}
    raw_lines = []
    with open(args.results) as f:
        for line in f:
            raw_lines.append(line.rstrip())
            obj = json.loads(line)
            for k, v in obj.items():
                if k in ("memory", "latency"):
                    r[k].append(v)
                else:
                    r[k] = v

    corpus, replay, e2e, peer = r["corpus"], r["replay"], r["end_to_end"], r["peer"]
    otlp, hop = r.get("otlp"), r.get("repartition")
    store_replay, store_run = r.get("store_replay"), r.get("store_run")
    events = corpus["events"]
    model, cores, mem_gib = machine()

    out = []
    w = out.append
    w("# Benchmark results")
    w("")
    w(f"Written by `bench/run.sh`{' --tiny (a smoke run: the figures mean nothing)' if args.tiny == '1' else ''} "
      f"on {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. Every ratio "
      "compares two runs made one after the other in the same run of the script, on the same "
      "input and machine; absolute times on these shared machines mean little.")
    w("")
    w("## Machine and versions")
    w("")
    w(f"- CPU: {model}, {cores} cores; memory {mem_gib:.1f} GiB; {platform.system()} {platform.release()}")
    w(f"- triaged: {sh('git describe --always --dirty')} (Release, {sh('c++ --version')})")
    w(f"- librdkafka {sh('pkg-config --modversion rdkafka')}; kcat: {sh('kcat -V 2>&1 | head -1')}")
    w(f"- Apache Kafka 3.9.2, KRaft, single node (scripts/kafka-dev.sh); {e2e['partitions']} partitions per topic")
    w(f"- Java: {sh('java -version 2>&1 | head -1')}; Kafka Streams 3.9.2 (bench/peers/streams-router); "
      "Apache Flink 2.2.0 with flink-connector-kafka 5.0.0-2.2 (bench/peers/flink-router); "
      "OpenTelemetry Java SDK 1.66.0 (tests/witness/otlp-java)")
    w("")
    w("## Corpus")
    w("")
    w(f"`triaged generate --rate 1000 --events {events} --seed 1 --start {corpus['start']}`: "
      f"{events:,} messages (spans and feedback of every shape), {corpus['bytes'] / 1e6:.1f} MB as "
      "kcat JSONL envelopes. Rule set: `bench/rules.yaml` (the example policy, 8 rules, no rate limits).")
    if otlp:
        w("")
        w(f"OTLP witness corpus: `tests/witness/otlp-java/run.sh corpus OUT --seed {otlp['seed']} "
          f"--traces {otlp['traces']:,}` (the OpenTelemetry Java SDK's own marshaler, no code shared with "
          f"triaged): {otlp['requests']:,} `ExportTraceServiceRequest`s holding {otlp['json']['spans']:,} spans, "
          f"{otlp['json_bytes'] / 1e6:.1f} MB as OTLP/JSON lines (`otlp-json.jsonl`), "
          f"{otlp['proto_bytes'] / 1e6:.1f} MB as protobuf, written as base64 envelopes "
          "(`otlp-proto.jsonl`, what `triaged replay` reads for binary messages).")
    w("")
    w("## Figures")
    w("")
    w("| figure | triaged | baseline | ratio | goal | met |")
    w("|---|---|---|---|---|---|")
    # Throughput rows: (figure, triaged seconds, baseline name, baseline seconds, goal or None).
    throughput = [
        ("replay ceiling (events/s)", replay["replay_s"], "parse-only", replay["parse_s"], 0.5),
        ("end to end on the broker (msg/s)", e2e["triaged_s"], "kcat consume", e2e["kcat_consume_s"], 0.5),
        ("end to end vs pass-through (msg/s)", e2e["triaged_s"], "kcat consume→produce", e2e["kcat_pass_s"], None),
        ("vs Kafka Streams peer (msg/s)", e2e["triaged_s"], "peer", peer["seconds"], 3),
    ]
    flink = r.get("flink_peer")
    if flink:
        throughput.append(("vs Flink peer (msg/s)", e2e["triaged_s"], "Flink peer", flink["seconds"], 3))
    for figure, ours, name, theirs, goal in throughput:
        ratio = theirs / max(ours, 1e-3)
        w(f"| {figure} | {events / max(ours, 1e-3):,.0f} | {name} {events / max(theirs, 1e-3):,.0f} | {ratio:.2f} | "
          f"{'≥ ' + str(goal) if goal else '—'} | {ok(ratio, goal) if goal else '—'} |")
    if otlp:
        js, ps = otlp["json"], otlp["proto"]
        ratio = js["seconds"] / max(ps["seconds"], 1e-3)
        w(f"| OTLP protobuf vs OTLP/JSON, replay (spans/s) | protobuf {ps['spans'] / max(ps['seconds'], 1e-3):,.0f} | "
          f"OTLP/JSON {js['spans'] / max(js['seconds'], 1e-3):,.0f} | {ratio:.2f} | — | — |")
    if hop:
        nv, al = hop["never"], hop["always"]
        ratio = nv["seconds"] / max(al["seconds"], 1e-3)
        w(f"| repartition hop: always vs never, end to end (msg/s) | always {events / max(al['seconds'], 1e-3):,.0f} | "
          f"never {events / max(nv['seconds'], 1e-3):,.0f} | {ratio:.2f} | ≥ 0.5 | {ok(ratio, 0.5)} |")
        rss = al["peak_kib"] / max(nv["peak_kib"], 1)
        w(f"| repartition hop: peak RSS always vs never (MiB) | always {al['peak_kib'] / 1024:,.0f} | "
          f"never {nv['peak_kib'] / 1024:,.0f} | {rss:.2f} | — | — |")
    if r.get("threads") and hop:
        th, nv = r["threads"], hop["never"]
        ratio = nv["seconds"] / max(th["seconds"], 1e-3)
        w(f"| engine threads: {th['all']} (every core) vs {th['default']} (the default), end to end (msg/s) | "
          f"{th['all']} threads {events / max(th['seconds'], 1e-3):,.0f} | "
          f"{th['default']} thread{'s' if th['default'] != 1 else ''} "
          f"{events / max(nv['seconds'], 1e-3):,.0f} | {ratio:.2f} | — | — |")
    def rate_row(figure, ours, ours_s, base, base_s):  # one run ÷ another, in messages/s
        w(f"| {figure} (msg/s) | {ours} {events / max(ours_s, 1e-3):,.0f} | {base} "
          f"{events / max(base_s, 1e-3):,.0f} | {base_s / max(ours_s, 1e-3):.2f} | — | — |")

    def rss_row(figure, ours, ours_kib, base, base_kib, goal=None):  # peak RSS, lower is better
        ratio = ours_kib / max(base_kib, 1)
        w(f"| {figure}: peak RSS (MiB) | {ours} {ours_kib / 1024:,.0f} | {base} {base_kib / 1024:,.0f} | "
          f"{ratio:.2f} | {'≤ ' + str(goal) if goal else '—'} | {ok(ratio, goal, False) if goal else '—'} |")

    if store_replay:
        sr = store_replay
        rate_row("trace store, replay 7d window", "store", sr["store_7d_s"], "in memory", sr["memory_7d_s"])
        rss_row("trace store, replay 7d window", "store", sr["store_7d_peak_kib"], "in memory",
                sr["memory_7d_peak_kib"])
        rss_row("trace store, replay 7d with the store vs 10m in memory", "7d", sr["store_7d_peak_kib"], "10m",
                replay["replay_peak_kib"], 2)
    if store_run:
        sr = store_run
        rate_row("trace store, end to end on the broker", "7d, store", sr["seconds"], "10m, in memory",
                 e2e["triaged_s"])
        rss_row("trace store, end to end", "7d, store", sr["peak_kib"], "10m, in memory", e2e["triaged_peak_kib"])
        for source, label in (("local", "the local store"), ("changelog", "the changelog")):
            x = sr[source]
            basis = x["traces"] if source == "local" else x["records"]
            per = x["seconds"] / basis * 1e5 if basis else None
            value = f"{per:.2f}" if per is not None else "n/a"
            w(f"| trace store: restore from {label} (s per 100k {'traces' if source == 'local' else 'records'}) | "
              f"{value} | — | — | — | — |")
    mem = e2e["triaged_peak_kib"] / max(peer["peak_kib"], 1)
    w(f"| peak RSS vs the peer (MiB) | {e2e['triaged_peak_kib'] / 1024:,.0f} | peer {peer['peak_kib'] / 1024:,.0f} | "
      f"{mem:.2f} | ≤ 0.25 | {ok(mem, 0.25, False)} |")
    if flink:
        mem = e2e["triaged_peak_kib"] / max(flink["peak_kib"], 1)
        w(f"| peak RSS vs the Flink peer (MiB) | {e2e['triaged_peak_kib'] / 1024:,.0f} | "
          f"Flink peer {flink['peak_kib'] / 1024:,.0f} | {mem:.2f} | ≤ 0.25 | {ok(mem, 0.25, False)} |")
    for m in r["memory"]:
        w(f"| memory at {m['open_traces']:,} open traces (bytes/trace) | {m['bytes_per_trace']:,.0f} | "
          f"raw spans {m['raw_span_bytes_per_trace']:,.0f} | {m['ratio_to_raw_spans']:.2f} | ≤ 1.5 | "
          f"{ok(m['ratio_to_raw_spans'], 1.5, False)} |")
    lat_counts = []
    for lat in r["latency"]:
        p50, p99, count = latency(os.path.join(args.work, lat["metrics"]))
        lat_counts.append(f"{count:,} items at {lat['percent']}%")
        goal = "p99 ≤ 50" if lat["percent"] == 50 else "—"
        met = ok(p99 * 1e3 if p99 is not None else None, 50, False) if lat["percent"] == 50 else "—"
        value = f"{p50 * 1e3:.1f} / {p99 * 1e3:.1f}" if p99 is not None else "nothing routed"
        w(f"| latency decision→ack p50 / p99 (ms), {lat['percent']}% of max = {lat['rate']:,} msg/s | "
          f"{value} | — | — | {goal} | {met} |")
    cpu_rows = cpu_table(events, replay, e2e, hop, store_run, peer, flink, r.get("threads"))
    for figure, ours, base, base_eps, goal in cpu_rows[1]:
        ratio = ours / max(base_eps, 1e-9)
        w(f"| {figure} | {ours:,.0f} | {base} {base_eps:,.0f} | {ratio:.2f} | "
          f"{'≥ ' + str(goal) if goal else '—'} | {ok(ratio, goal) if goal else '—'} |")
    w("")
    if cpu_rows[0]:
        w("## CPU")
        w("")
        w("CPU-seconds are user + system time of every thread (`/usr/bin/time` for a command, `/proc/PID/stat` "
          "for the daemon, read when its drain is done); the broker's are its own over the same run (the "
          "single-node broker serves every client alike). Events per CPU-second count the corpus's messages.")
        w("")
        w("| run | wall (s) | CPU (s) | events per CPU-second | broker CPU (s) | events per CPU-second, with the broker |")
        w("|---|---|---|---|---|---|")
        for name, wall, cpu, broker in cpu_rows[0]:
            eps = f"{events / cpu:,.0f}" if cpu else "n/a"
            both = f"{events / (cpu + broker):,.0f}" if cpu and broker is not None else "n/a"
            w(f"| {name} | {wall:.2f} | {cpu:.2f} | {eps} | {'n/a' if broker is None else f'{broker:.2f}'} | {both} |")
        w("")
    w("How each is measured:")
    w("- replay ceiling: wall time of `triaged replay -q -c bench/rules.yaml CORPUS` against "
      f"`bench/parse_baseline CORPUS` (RapidJSON parse of every line), median of {replay['runs']} runs each, "
      f"alternating, after one untimed run of each. Replay routed {replay['routed']:,} items; its peak RSS was {replay['replay_peak_kib'] / 1024:,.0f} MiB.")
    w("- end to end: the corpus pre-produced to two co-partitioned topics; `triaged run` timed from "
      "its start (group join included) until every message is consumed, no partition lags and every trace decided "
      f"(`decision_wait` 1 s included), routing {int(e2e['routed']):,} items; against two `kcat -C -e` "
      "(one per topic, concurrently) to /dev/null, and against `kcat -C | kcat -P` of every message.")
    if e2e.get("runs"):
        runs = ", ".join(f"{x:.1f}" for x in e2e.get("triaged_runs_s", []))
        rounds = f"Median of {e2e['runs']} rounds" if e2e["runs"] > 1 else "One round"
        w(f"  {rounds} of the three in turn, each drain by a fresh group (the drains: {runs} s); "
          "every figure of the row, CPU-seconds included, is its own median.")
    if e2e.get("warm_up"):
        wu = e2e["warm_up"]
        broker = "" if wu["broker_cpu"] is None else f", the broker {wu['broker_cpu']:.1f} CPU-s"
        w(f"  The rounds run after one untimed drain by a group of its own ({wu['seconds']:.1f} s, "
          f"{wu['cpu']:.1f} CPU-s{broker}, {int(wu['routed']):,} items routed; the bench fails when it "
          "routes other items than the timed drains): the broker's first consumer group creates "
          "`__consumer_offsets` and its JVM compiles the group consumer's and the producer's paths, "
          "which would otherwise be charged to whichever client runs first.")
    if otlp:
        js, ps = otlp["json"], otlp["proto"]
        w("- OTLP protobuf: wall time of `triaged replay -q -c bench/rules.yaml` on `otlp-json.jsonl` against "
          f"`otlp-proto.jsonl` (the same requests, spans only), median of {otlp['runs']} runs each, alternating; "
          "spans/s is the spans decoded (from an untimed run's summary) ÷ that time, the ratio protobuf ÷ JSON. "
          f"OTLP/JSON: {js['spans']:,} spans, {js['invalid']:,} invalid, {js['routed']:,} items routed, peak RSS "
          f"{js['peak_kib'] / 1024:,.0f} MiB; protobuf: {ps['spans']:,} spans, {ps['invalid']:,} invalid, "
          f"{ps['routed']:,} items routed, peak RSS {ps['peak_kib'] / 1024:,.0f} MiB (the bench fails when the "
          "two differ). The protobuf side includes what replay does and a Kafka message does not need: "
          "parsing each envelope line and decoding its base64.")
    if hop:
        nv, al = hop["never"], hop["always"]
        w("- repartition hop: after the end-to-end run, the same pre-produced topics drained twice more by a "
          "fresh consumer group each, timed as above, once with `inputs.repartition: never` (the engines join "
          "on the input partitions) and once with `always` (every input event re-produced to "
          "`<group_id>.repartition`, created by the daemon, and joined only from there; the drain also waits "
          "for that topic's consumer lag to reach 0). "
          f"never: {nv['seconds']:.1f} s, {int(nv['routed']):,} items routed, "
          f"{int(nv['repartitioned']):,} events repartitioned; always: {al['seconds']:.1f} s, "
          f"{int(al['routed']):,} items routed, {int(al['repartitioned']):,} events repartitioned "
          "(`triaged_events_repartitioned_total`; the bench fails when the routed counts differ). Both times "
          "include the fixed costs of a drain (group join, the 1 s decision wait, the 1 s metrics refresh), "
          "which bring the ratio towards 1 on a small corpus. The "
          f"end-to-end run above (`auto`) repartitioned {int(e2e.get('repartitioned', 0)):,} events.")
    if r.get("threads") and hop:
        th = r["threads"]
        w(f"- engine threads: after the repartition drains, the same topics drained by a fresh group with "
          f"`threads: {th['all']}` (an engine thread per core), timed as above, routing {int(th['routed']):,} "
          f"items, against the `never` drain (`threads:` at its default, {th['default']}: one fewer than the "
          "cores; the same work as the end-to-end drain, which repartitioned nothing, with the broker's cache "
          "as warm). The bench fails when the routed counts differ.")
    def checked(p):
        c = p.get("check")
        if not c:
            return ""
        dests = ", ".join(f"{d} {v['peer']:,}" for d, v in sorted(c["by_destination"].items()))
        return (f" The bench checked them against `triaged replay` of the corpus: {c['matched']:,} of "
                f"{c['replay_items']:,} (destination, rule, trace) items matched, {c['only_peer']:,} extra, "
                f"{c['duplicates']:,} written twice ({dests}).")
    w("- peers: two JVM applications doing triaged's job, sharing `bench/peers/router-core` (the decoding "
      "of every input shape, the rules of `bench/rules.yaml` written out, XXH64 sampling as DESIGN §2.3 "
      "including `sample_key: trace.session_id`, retries counted as errors, routed-once state per "
      "(trace, rule, destination), and triaged's close and late-feedback semantics on the arrival clock, "
      "as `triaged run` uses it). `bench/peers/streams-router`: Kafka Streams (Processor API; a compact "
      "binary trace summary and the messages in two in-memory state stores, caching on, no changelog, as "
      "triaged runs here without a trace store; wall-clock punctuation for the deadlines; at-least-once). "
      "`bench/peers/flink-router`: Apache Flink, DataStream API in a local mini-cluster (bounded "
      "KafkaSource to the end offsets at start, keyBy(trace id), a KeyedProcessFunction with keyed state on "
      "the heap backend and timers, one side output and KafkaSink per destination). Each is timed from JVM "
      "start until it has consumed every message and decided every trace (the Flink job ends with its "
      "bounded input: the final watermark closes the traces still open); peak RSS by `/usr/bin/time`. "
      f"JVM flags: `{peer.get('jvm', 'defaults')}` (the machine's cores, the throughput collector, a heap "
      "of 4× the corpus bytes and at least 1 GiB: both peers hold each trace's messages for the "
      f"late-feedback window, as triaged does). Kafka Streams routed {peer['routed']:,} items."
      + checked(peer)
      + (f" Flink routed {flink['routed']:,} items." + checked(flink) if flink else ""))
    if store_replay:
        sr = store_replay
        w("- trace store, replay: `triaged replay -q` of the corpus with `bench/rules.yaml` changed to "
          "`late_feedback_window: 7d`, once with closed traces in memory and once with `trace.store` "
          f"(RocksDB, `hot_window` 5m of event time), median of {sr['runs']} runs each, alternating; both "
          f"routed the same {sr['routed']:,} items (the bench fails when they differ). With the store, "
          f"{sr['moved']:,} traces moved to disk and {sr['brought_back']:,} were brought back by a late event.")
    if store_run:
        sr = store_run
        lo, cl = sr["local"], sr["changelog"]
        w("- trace store, end to end: the pre-produced topics drained by a fresh group with the 7d window and "
          f"`trace.store` (`hot_window` 10 s: the daemon runs it on its own clock, and the drain plays ~17 minutes of "
          f"traffic in well under one), timed as the end-to-end run (10m, in memory), routing {int(sr['routed']):,} items; "
          "every closed trace's record goes to `<group_id>.traces`. Then the restore a partition's new owner "
          "does before it routes, timed by the daemon (`triaged_trace_store_restore_seconds`, summed over the "
          f"{e2e['partitions']} partitions): the group restarted on its cleanly closed store ({lo['seconds']:.3f} s "
          f"for {int(lo['traces']):,} traces held, {int(lo['records']):,} changelog records read, "
          f"{lo['disk_bytes'] / 1e6:.1f} MB on disk), and on an empty store directory, rebuilt from the whole "
          f"changelog ({cl['seconds']:.3f} s for {int(cl['records']):,} records, {int(cl['traces']):,} traces "
          f"held after). Store directory after the drain: {sr['dir_bytes'] / 1e6:.1f} MB.")
    w("- memory: `bench/memory_bench N`: generated traffic decoded into one engine whose traces never "
      "close, RSS growth ÷ N, against the raw JSON bytes of the span messages held.")
    w("- latency: a fresh `triaged run` fed by `triaged generate --rate R` (R = 50% and 10% of the "
      "end-to-end rate above) for "
      f"{r['latency'][0]['seconds'] if r['latency'] else 0} s; quantiles of `triaged_route_ack_latency_seconds` "
      f"({'; '.join(lat_counts)}), interpolated as `histogram_quantile` does.")
    w("")
    w("## Micro-benchmarks (Google Benchmark)")
    w("")
    w("| benchmark | time (ns) | throughput |")
    w("|---|---|---|")
    with open(args.micro) as f:
        micro = json.load(f)
    for b in micro["benchmarks"]:
        extra = []
        if "bytes_per_second" in b:
            extra.append(f"{b['bytes_per_second'] / 1e6:,.0f} MB/s")
        if "items_per_second" in b:
            extra.append(f"{b['items_per_second']:,.0f} items/s")
        if "ns_per_rule" in b:
            extra.append(f"{b['ns_per_rule']:.1f} ns per rule per trace")
        w(f"| {b['name']} | {b['real_time']:,.0f} | {', '.join(extra)} |")
    w("")
    w("## Raw results")
    w("")
    w("```")
    out.extend(raw_lines)
    w("```")
    print("\n".join(out))


if __name__ == "__main__":
    main()
