#!/usr/bin/env python3
"""Checks that a peer routed the same items as `triaged replay` on the same corpus.

    check.py NAME REPLAY_ITEMS PEER_ITEMS...

REPLAY_ITEMS: `triaged replay` stdout (one routed item per line); PEER_ITEMS: the values the
peer wrote to its destination topics (kcat -C -e -f '%s\\n', one item per line). Items are
compared as sets of (destination, rule, trace id), and of (destination, trace id). Prints one
line per destination and a JSON summary line (last); exits 1 when the sets differ or an item
was written twice.
"""
import collections
import json
import sys


def items(paths):
    out = collections.Counter()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    d = json.loads(line)
                    out[(d["destination"], d["rule"], d["trace_id"])] += 1
    return out


def main():
    name, replay_path, peer_paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    replay, peer = items([replay_path]), items(peer_paths)
    r, p = set(replay), set(peer)
    duplicates = sum(n - 1 for n in peer.values() if n > 1)
    by_dest = {}
    for dest in sorted({k[0] for k in r | p}):
        rd = {k for k in r if k[0] == dest}
        pd = {k for k in p if k[0] == dest}
        by_dest[dest] = {"replay": len(rd), "peer": len(pd), "matched": len(rd & pd)}
    pairs_r = {(k[0], k[2]) for k in r}
    pairs_p = {(k[0], k[2]) for k in p}
    summary = {
        "peer": name,
        "replay_items": len(r),
        "peer_items": sum(peer.values()),
        "matched": len(r & p),
        "only_replay": len(r - p),
        "only_peer": len(p - r),
        "duplicates": duplicates,
        "destination_trace_pairs": {"replay": len(pairs_r), "peer": len(pairs_p), "matched": len(pairs_r & pairs_p)},
        "by_destination": by_dest,
    }
    for dest, c in by_dest.items():
        print(f"{name}: {dest}: replay {c['replay']}, peer {c['peer']}, matched {c['matched']}", file=sys.stderr)
    for k in sorted(r - p)[:5]:
        print(f"{name}: only in replay: {k}", file=sys.stderr)
    for k in sorted(p - r)[:5]:
        print(f"{name}: only in the peer: {k}", file=sys.stderr)
    print(json.dumps(summary, separators=(",", ":")))
    return 0 if r == p and duplicates == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
