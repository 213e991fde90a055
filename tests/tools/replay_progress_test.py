#!/usr/bin/env python3
"""`triaged replay` shows its progress on stderr when stderr is a terminal, and only then.

stderr is a pseudo-terminal (Python's pty module): the progress line is written with `\\r` and
erased (`\\r` + `ESC[K`) before the summary; it ends with the final counts. With stderr a pipe,
or with -q, there is no progress line. The routed items on stdout are the same in every case.

Usage: replay_progress_test.py TRIAGED SOURCE_DIR
"""
import os
import pty
import subprocess
import sys
from pathlib import Path


def check(cond, what):
    if not cond:
        sys.exit(f"replay_progress_test: {what}")


def on_terminal(args):
    """Runs args with stderr on a pseudo-terminal: (exit code, stdout, what the terminal got)."""
    main_fd, sub_fd = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sub_fd, stdin=subprocess.DEVNULL)
    os.close(sub_fd)
    out = proc.stdout.read()
    got = b""
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        got += chunk
    os.close(main_fd)
    return proc.wait(), out, got.decode()


def main(triaged, source):
    source = Path(source)
    events = source / "config/examples/events.jsonl"
    lines = len(events.read_text().splitlines())
    args = [triaged, "replay", "-c", str(source / "config/examples/rules.yaml"), str(events)]
    piped = subprocess.run(args, capture_output=True, text=True)
    check(piped.returncode == 0, f"replay exited {piped.returncode}: {piped.stderr}")
    check("\r" not in piped.stderr, "progress written to a pipe")

    code, out, tty = on_terminal(args)
    check(code == 0, f"replay on a terminal exited {code}: {tty}")
    check(out.decode() == piped.stdout, "routed items differ on a terminal")
    check("\rreplay: 1 lines, " in tty, f"no progress at the first line: {tty!r}")
    final = f"\rreplay: {lines} lines, "
    check(final in tty, f"no final progress ({final!r}): {tty!r}")
    erased = tty.rindex("\r\x1b[K")
    check(erased > tty.rindex(final), "the progress line is not erased at the end")
    check("routed items: " in tty[erased:], "the summary does not follow the progress line")

    code, _, quiet = on_terminal(args[:2] + ["-q"] + args[2:])
    check(code == 0 and "replay:" not in quiet, f"-q still shows progress: {quiet!r}")
    print(f"replay_progress_test: progress on a terminal only ({len(tty)} bytes)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
