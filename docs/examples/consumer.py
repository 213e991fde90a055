#!/usr/bin/env python3
"""Reads routed items from triaged destination topics, each item once.

A starting point for a review queue or a dataset loader (docs/routed-items.md):
  - isolation.level=read_committed, so items of aborted transactions (exactly-once mode) are
    never seen;
  - deduplication by the routed item's `id` (XXH64 of trace, rule and destination): triaged
    delivers at least once, so after a restart or a rebalance an item may arrive twice;
  - offsets are stored only after an item was handled, so a crash of this consumer repeats
    items (which the next run deduplicates against what it sees) rather than losing them.

The set of seen ids lives in memory, bounded (--remember); a real consumer keeps it where its
results go (an upsert keyed by `id`, a unique index) so it survives restarts.

Needs Python 3 and confluent-kafka (Debian: python3-confluent-kafka; pip: confluent-kafka).

  consumer.py -b localhost:9092 -t annotations.support-review -g support-review-ui
  consumer.py -b localhost:9092 -t datasets.regressions --from-beginning --exit-at-end --json
"""
import argparse
import collections
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException

SCHEMA = "triaged.routed_item/v1"


class SeenIds:
    """The last `limit` ids, oldest forgotten first."""

    def __init__(self, limit):
        self.limit = limit
        self.ids = collections.OrderedDict()

    def add(self, item_id):
        """True when `item_id` is new."""
        if item_id in self.ids:
            self.ids.move_to_end(item_id)
            return False
        self.ids[item_id] = None
        if len(self.ids) > self.limit:
            self.ids.popitem(last=False)
        return True


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-b", "--bootstrap", required=True, help="Kafka bootstrap servers")
    p.add_argument("-t", "--topic", action="append", required=True,
                   help="a destination topic (repeat for several)")
    p.add_argument("-g", "--group", default="triaged-consumer-example", help="consumer group")
    p.add_argument("-X", dest="properties", action="append", default=[], metavar="KEY=VALUE",
                   help="a librdkafka property (security.protocol=SASL_SSL, ...)")
    p.add_argument("--from-beginning", action="store_true",
                   help="with no committed offset, start at the oldest message (else the newest)")
    p.add_argument("--exit-at-end", action="store_true",
                   help="exit once every assigned partition has been read to its end")
    p.add_argument("--max-messages", type=int, default=0, help="exit after N messages (0: no limit)")
    p.add_argument("--timeout", type=float, default=0,
                   help="exit with status 1 after this many seconds (0: never)")
    p.add_argument("--remember", type=int, default=1_000_000, help="ids kept for deduplication")
    p.add_argument("--json", action="store_true", help="print each new item as one JSON line")
    return p.parse_args(argv)


def handle(item, out, as_json):
    """What a real consumer does with a new item: here, print it."""
    if as_json:
        out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        out.write(f'{item["id"]} {item["rule"]} -> {item["destination"]} {item["trace_id"]}\n')
    out.flush()


def main(argv):
    args = parse_args(argv)
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        # Commit (in the background) only offsets stored after handling.
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "enable.partition.eof": args.exit_at_end,
    }
    for prop in args.properties:
        key, sep, value = prop.partition("=")
        if not sep:
            sys.exit(f"consumer: -X needs KEY=VALUE, got {prop!r}")
        conf[key] = value

    assigned, at_end = set(), set()

    def on_assign(consumer, partitions):
        assigned.update((p.topic, p.partition) for p in partitions)

    def on_revoke(consumer, partitions):
        for p in partitions:
            assigned.discard((p.topic, p.partition))
            at_end.discard((p.topic, p.partition))

    consumer = Consumer(conf)
    consumer.subscribe(args.topic, on_assign=on_assign, on_revoke=on_revoke)
    seen = SeenIds(args.remember)
    messages = duplicates = skipped = 0
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    status = 0
    try:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                print("consumer: timed out", file=sys.stderr)
                status = 1
                break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add((msg.topic(), msg.partition()))
                    if args.exit_at_end and assigned and at_end >= assigned:
                        break
                    continue
                raise KafkaException(msg.error())
            at_end.discard((msg.topic(), msg.partition()))
            messages += 1
            try:
                item = json.loads(msg.value())
                if item.get("schema") != SCHEMA or not isinstance(item.get("id"), str):
                    raise ValueError("not a " + SCHEMA)
            except ValueError as e:
                skipped += 1
                print(f"consumer: skipping {msg.topic()}/{msg.partition()}@{msg.offset()}: {e}",
                      file=sys.stderr)
            else:
                if seen.add(item["id"]):
                    handle(item, sys.stdout, args.json)
                else:
                    duplicates += 1
            consumer.store_offsets(message=msg)
            if args.max_messages and messages >= args.max_messages:
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()  # commits the stored offsets
    print(f"consumer: {messages} messages, {messages - duplicates - skipped} items, "
          f"{duplicates} duplicates, {skipped} skipped", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
