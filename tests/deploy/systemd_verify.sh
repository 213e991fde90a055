#!/usr/bin/env bash
# `systemd-analyze verify` and `systemd-analyze security` on deploy/systemd/triaged.service,
# with ExecStart pointed at the binary under test (verify checks that the executables exist).
#
#   tests/deploy/systemd_verify.sh TRIAGED_BINARY
set -euo pipefail
unit="$(dirname "$0")/../../deploy/systemd/triaged.service"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/triaged|$(realpath "$1")|g" "$unit" >"$dir/triaged.service"
# verify prints problems and still exits 0 for some of them: any output is a failure.
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$dir/triaged.service" 2>&1 || echo "exit status $?")
if [[ -n "$out" ]]; then
  echo "$out" >&2
  exit 1
fi
# Hardened: systemd's own exposure score (0 = locked down, 10 = exposed) stays under 2 (20 on its 0-100 scale).
systemd-analyze security --offline=yes --threshold=20 --no-pager "$dir/triaged.service" |
  tail -n 1
echo "systemd-analyze verify: triaged.service ok"
