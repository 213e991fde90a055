#!/usr/bin/env bash
# scripts/man.sh writes triaged(1) with help2man; groff renders it without warnings, and the
# page holds every subcommand's usage and options as `triaged COMMAND --help` prints them.
#
#   man_page_test.sh TRIAGED SOURCE_DIR
set -euo pipefail
triaged=$1
source_dir=$2
fail() { echo "man_page_test: $*" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$source_dir/scripts/man.sh" "$triaged" "$dir/triaged.1"
head -c 200 "$dir/triaged.1" | grep -q '^\.TH TRIAGED "1"' || fail "no .TH TRIAGED 1 header"
groff -man -Tutf8 -ww -z "$dir/triaged.1" 2> "$dir/warnings"
[ ! -s "$dir/warnings" ] || fail "groff warns: $(cat "$dir/warnings")"
# Rendered without hyphenation or justification, one long line per paragraph, for grep.
MANWIDTH=1000 groff -man -Tutf8 -rLL=1000n -rHY=0 -P-cbou "$dir/triaged.1" > "$dir/page.txt"
grep -q "EXIT STATUS" "$dir/page.txt" || fail "no EXIT STATUS section"
commands=$("$triaged" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {print $1}')
for command in $commands; do
  grep -qF "Usage: triaged $command [OPTIONS]" "$dir/page.txt" || fail "no usage of $command"
  for option in $("$triaged" "$command" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
    grep -qF -- "$option" "$dir/page.txt" || fail "$command's $option is not in the page"
  done
done
echo "man_page_test: $(echo $commands | wc -w) subcommands in triaged(1), no groff warnings"
