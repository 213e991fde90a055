#!/usr/bin/env bash
# Writes triaged(1), the man page, from the binary's own help (help2man, from Debian): the
# global options, then a COMMANDS section with every subcommand's --help, and pointers to the
# docs. View it with `man -l build/man/triaged.1`; install it as
# /usr/share/man/man1/triaged.1.
#
#   scripts/man.sh [TRIAGED [OUT]]     (defaults: build/bin/triaged, build/man/triaged.1)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
triaged=${1:-$root/build/bin/triaged}
out=${2:-$root/build/man/triaged.1}
command -v help2man >/dev/null || { echo "man.sh: help2man is not installed" >&2; exit 69; }
mkdir -p "$(dirname "$out")"
include=$(mktemp)
trap 'rm -f "$include"' EXIT

{
  echo "[COMMANDS]"
  "$triaged" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {print $1}' |
    while read -r command; do
      echo ".SS $command"
      echo ".nf"
      # Usage lines name the binary by its path; the page names it triaged. Backslashes and
      # leading dots or quotes would be roff requests.
      "$triaged" "$command" --help | sed -e "s|^Usage: [^ ]*|Usage: triaged|" \
        -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
      echo ".fi"
    done
  cat <<'ROFF'
[EXIT STATUS]
.TP
.B 0
success
.TP
.B 1
a rule test failed, an input file had unreadable lines, or the daemon failed
.TP
.B 64
a usage error (a bad option or value)
.TP
.B 66
an input file cannot be read
.TP
.B 78
the config (or a rule test file) is invalid, or has warnings under \-\-deny\-warnings
.TP
.B 106
a missing or malformed argument (CLI11)
[ENVIRONMENT]
.TP
.B TRIAGED_LOG_LEVEL
the log level when \-\-log\-level is not given
.TP
.B ${VAR}
a config file may refer to environment variables: ${VAR}, ${VAR:\-default}, ${VAR\-default},
${VAR:?message}; $$ is a literal dollar sign
[SEE ALSO]
The repository's docs/: rules.md (the rule language), config.md (every key), inputs.md,
routed\-items.md, operations.md.
.BR kcat (1),
.BR prometheus (1)
ROFF
} > "$include"

help2man --no-info --section=1 --name="route LLM traces and their feedback to review queues and datasets" \
  --include="$include" --output="$out" "$triaged"
echo "man.sh: wrote $out" >&2
