#!/usr/bin/env bash
# Gate for a repository of routing rules: every config must validate without warnings
# (--deny-warnings), and every config with a sibling `*.tests.yaml` (rules.yaml ->
# rules.tests.yaml) must pass its rule tests. Run it in
# the CI of the repository that holds your rules, the way `vector validate` / `vector test` or
# `otelcol validate` are run.
#
#   deploy/rules-ci.sh [-b path/to/triaged] rules/*.yaml
set -euo pipefail

TRIAGED=${TRIAGED:-triaged}
if [ "${1:-}" = "-b" ]; then TRIAGED=$2; shift 2; fi
if [ $# -eq 0 ]; then
  echo "usage: $0 [-b TRIAGED_BINARY] CONFIG.yaml..." >&2
  exit 64
fi

status=0
for config in "$@"; do
  case "$config" in *.tests.yaml) continue ;; esac
  if ! "$TRIAGED" validate --deny-warnings -c "$config"; then status=1; continue; fi
  tests="${config%.yaml}.tests.yaml"
  if [ -f "$tests" ]; then
    "$TRIAGED" test -c "$config" "$tests" || status=1
  fi
done
exit $status
