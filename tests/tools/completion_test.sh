#!/usr/bin/env bash
# deploy/bash-completion/triaged against the binary: the subcommands and each one's options are
# exactly those `triaged --help` and `triaged COMMAND --help` list, and completing in a real bash
# (with Debian's bash-completion loaded, and without it) offers them and the options' values.
#
#   completion_test.sh TRIAGED SOURCE_DIR
set -euo pipefail
triaged=$1
script=$2/deploy/bash-completion/triaged
fail() { echo "completion_test: $*" >&2; exit 1; }

sorted() { tr ' ' '\n' | grep -v '^$' | sort -u | tr '\n' ' '; }

# The subcommands of --help, and of the script.
from_help=$("$triaged" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {print $1}' | sorted)
from_script=$(sed -n 's/^  local commands="\(.*\)"$/\1/p' "$script" | sorted)
[ -n "$from_help" ] || fail "no subcommands in triaged --help"
[ "$from_help" = "$from_script" ] || fail "subcommands: --help has '$from_help', the script '$from_script'"

# Each subcommand's options.
for command in $from_help; do
  help_options=$("$triaged" "$command" --help |
    grep -oE '^ +(-[a-zA-Z],)?--?[a-z][a-z-]*' | tr ',' ' ' | tr -s ' ' '\n' | sorted)
  script_options=$(awk -v c="    $command)" 'index($0, c) == 1 {on = 1} on {print} on && /;;/ {exit}' \
    "$script" | sed -n 's/.*options="//; s/".*//; p' | tr '\n' ' ' | sed 's/^ *[a-z]*) *//' | sorted)
  [ "$help_options" = "$script_options" ] ||
    fail "$command: --help has '$help_options', the script '$script_options'"
done

# Completing: COMP_WORDS as bash builds them for "triaged WORD... CUR".
complete_words() {
  local with_lib=$1; shift
  bash --norc --noprofile -c '
    if [ "$1" = yes ]; then source /usr/share/bash-completion/bash_completion; fi
    source "$2"; shift 2
    COMP_WORDS=(triaged "$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
    _triaged triaged "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$with_lib" "$script" "$@"
}
expect() {
  local want=$1; shift
  for lib in no yes; do
    if [ $lib = yes ] && [ ! -f /usr/share/bash-completion/bash_completion ]; then
      fail "bash-completion is not installed (scripts/install-deps.sh installs it)"
    fi
    got=$(complete_words $lib "$@")
    [ "$got" = "$want" ] || fail "completing 'triaged $*' (bash-completion: $lib): got '$got', want '$want'"
  done
}
expect "validate " va
expect "test " te
expect "--deny-warnings " validate --d
expect "json text " validate --output ""
expect "junit text " test --output ""
expect "json text " replay --summary ""
expect "debug error info trace warn " --log-level ""
expect "replay " --log-level warn rep
expect "--quiet " replay --q
echo "completion_test: $(echo $from_help | wc -w) subcommands, options and values complete"
