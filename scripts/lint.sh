#!/usr/bin/env bash
# clang-tidy (.clang-tidy) over the project's sources, for developers (CI does not run it).
#   scripts/lint.sh [FILE...]
# Uses the compile_commands.json of BUILD_DIR (default: build), which every configure writes, e.g.
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTRIAGED_TESTS=ON
# Without FILEs: every *.cc of rules/ config/ daemon/ tests/ bench/ fuzz/ in that database (the
# headers are checked through them). LINT_JOBS parallel runs (default: nproc). Exits 1 if any
# finding is reported.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
JOBS=${LINT_JOBS:-$(nproc)}
db="$BUILD_DIR/compile_commands.json"
if [[ ! -f "$db" ]]; then
  echo "lint: no $db; configure a build there first (see the top of $0)" >&2
  exit 2
fi
command -v "$CLANG_TIDY" >/dev/null || {
  echo "lint: $CLANG_TIDY not found (scripts/install-deps.sh installs it)" >&2
  exit 2
}

if (( $# )); then
  files=("$@")
else
  mapfile -t files < <(python3 - "$db" "$PWD" <<'PY'
import json, os, sys
root = sys.argv[2]
seen = set()
for entry in json.load(open(sys.argv[1])):
    path = os.path.normpath(os.path.join(entry.get("directory", ""), entry["file"]))
    rel = os.path.relpath(path, root)
    if rel.split(os.sep)[0] in ("rules", "config", "daemon", "tests", "bench", "fuzz") \
            and rel.endswith(".cc") and rel not in seen:
        seen.add(rel)
        print(rel)
PY
  )
fi
if (( ${#files[@]} == 0 )); then
  echo "lint: no sources to check in $db" >&2
  exit 2
fi

echo "lint: clang-tidy on ${#files[@]} files with $db ($JOBS at a time)" >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
printf '%s\0' "${files[@]}" |
  xargs -0 -n 1 -P "$JOBS" "$CLANG_TIDY" -p "$BUILD_DIR" --quiet 2>/dev/null >"$out" || true
cat "$out"
findings=$(grep -E '^[^ ].*: (warning|error): ' "$out" | sort -u | wc -l)
echo "lint: $findings findings" >&2
[[ "$findings" == 0 ]]
