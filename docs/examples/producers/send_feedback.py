#!/usr/bin/env python3
"""Sends feedback events, one JSON object per line on stdin, to triaged's feedback topic.

Each event is keyed by its trace id (`trace_id`, or Langfuse's `traceId`), lowercased, and placed
with librdkafka's `murmur2_random` partitioner: the placement triaged uses (Java's default), so
with `inputs.repartition: auto` the event is joined where it lands, without the repartition hop.

    echo '{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","thumbs":"down"}' |
      python3 send_feedback.py -b localhost:9092 -t llm.feedback

Needs confluent-kafka (Debian 12: apt-get install python3-confluent-kafka). -X passes librdkafka
properties, e.g. -X security.protocol=SASL_SSL -X sasl.mechanisms=PLAIN ...
"""
import argparse
import json
import sys

from confluent_kafka import Producer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-b", "--bootstrap", default="localhost:9092")
    ap.add_argument("-t", "--topic", default="llm.feedback")
    ap.add_argument("-X", dest="props", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    conf = {
        "bootstrap.servers": args.bootstrap,
        "partitioner": "murmur2_random",  # librdkafka's default is consistent_random (CRC32)
        "enable.idempotence": True,       # acks=all, no duplicates on retry
    }
    for prop in args.props:
        key, _, value = prop.partition("=")
        conf[key] = value
    producer = Producer(conf)

    errors = []
    sent = 0
    for line_no, line in enumerate(sys.stdin, 1):
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError as e:
            print(f"send_feedback: line {line_no}: not JSON ({e})", file=sys.stderr)
            return 1
        trace_id = event.get("trace_id") or event.get("traceId") if isinstance(event, dict) else None
        key = trace_id.lower() if isinstance(trace_id, str) else None
        while True:
            try:
                producer.produce(args.topic, value=line.encode(), key=key,
                                 on_delivery=lambda err, _msg: err and errors.append(err))
                break
            except BufferError:  # the local queue is full: let deliveries drain
                producer.poll(0.5)
        producer.poll(0)
        sent += 1

    undelivered = producer.flush(30)
    if errors or undelivered:
        print(f"send_feedback: {len(errors) + undelivered} of {sent} events not delivered"
              f"{': ' + str(errors[0]) if errors else ''}", file=sys.stderr)
        return 1
    print(f"sent {sent} events to {args.topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
