#!/usr/bin/env python3
"""docs/examples/consumer.py against a real broker: every distinct routed item exactly once.

The routed items of the example corpus (`triaged replay` of config/examples/) are produced with
kcat, keyed by trace id, to a fresh topic of two partitions, with one item sent twice; the
consumer reads the topic to its end and must print each id once and count one duplicate.

Usage: consumer_example_test.py TRIAGED SOURCE_DIR   (broker: $KAFKA_BOOTSTRAP, else
scripts/kafka-dev.sh status)
"""
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic


def fail(message):
    print("consumer_example_test: " + message, file=sys.stderr)
    sys.exit(1)


def main(triaged, source):
    source = Path(source)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP") or subprocess.run(
        [str(source / "scripts/kafka-dev.sh"), "status"], capture_output=True, text=True
    ).stdout.strip()
    if not bootstrap:
        fail("no broker: set KAFKA_BOOTSTRAP or run scripts/kafka-dev.sh start")

    replay = subprocess.run(
        [triaged, "replay", "-q", "-c", str(source / "config/examples/rules.yaml"),
         str(source / "config/examples/events.jsonl")],
        capture_output=True, text=True, check=True, env={**os.environ, "KAFKA_BOOTSTRAP": "x"})
    items = [json.loads(line) for line in replay.stdout.splitlines()]
    if len(items) < 3:
        fail(f"the example corpus routes only {len(items)} items")
    ids = [i["id"] for i in items]
    if len(set(ids)) != len(ids):
        fail("replay itself produced a duplicate id")

    topic = "docs-consumer-example-" + uuid.uuid4().hex[:12]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(timeout=60)

    # kcat (an independent client) produces them, the second item twice, as a redelivery after
    # a restart would.
    lines = replay.stdout.splitlines()
    sent = lines[:2] + [lines[1]] + lines[2:]
    records = "".join(json.loads(line)["trace_id"] + "\t" + line + "\n" for line in sent)
    subprocess.run(["kcat", "-P", "-q", "-b", bootstrap, "-t", topic, "-K", "\t"],
                   input=records, text=True, check=True, timeout=60)

    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(source / "docs/examples/consumer.py"), "-b", bootstrap, "-t", topic,
         "-g", topic, "--from-beginning", "--exit-at-end", "--timeout", "120"],
        capture_output=True, text=True, timeout=180)
    if run.returncode != 0:
        fail(f"consumer exited {run.returncode}: {run.stderr}")
    printed = [line.split()[0] for line in run.stdout.splitlines()]
    if sorted(printed) != sorted(ids):
        fail(f"consumer printed {len(printed)} ids, expected the {len(ids)} distinct ones:\n"
             f"{run.stdout}")
    summary = f"{len(sent)} messages, {len(ids)} items, 1 duplicates, 0 skipped"
    if summary not in run.stderr:
        fail(f"expected '{summary}' on stderr, got: {run.stderr}")
    admin.delete_topics([topic])
    print(f"consumer_example_test: {len(sent)} messages, {len(ids)} distinct ids each printed "
          f"once ({time.monotonic() - started:.1f}s)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
