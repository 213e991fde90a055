#!/usr/bin/env bash
# clang-format over every tracked C++ source (*.cc, *.h), with the style of .clang-format.
#   scripts/format.sh            formats the files in place
#   scripts/format.sh --check    changes nothing; lists the files that are not formatted and
#                                exits 1 if there are any
# Fuzz corpora and regression inputs, and generated files, are left alone. CLANG_FORMAT picks the
# binary (default: clang-format; the style is tuned for version 14, which Debian 12 ships).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=fix
case "${1:-}" in
  --check) mode=check ;;
  "") ;;
  -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null; then
  echo "format: $CLANG_FORMAT not found (scripts/install-deps.sh installs it)" >&2
  exit 2
fi
version=$("$CLANG_FORMAT" --version | grep -o 'version [0-9]*' | grep -o '[0-9]*$' || true)
if [[ "$version" != 14 ]]; then
  echo "format: warning: $CLANG_FORMAT is version ${version:-unknown}; the style is checked with 14" >&2
fi

files=()
while IFS= read -r -d '' f; do
  case "$f" in
    fuzz/corpus/*|fuzz/regressions/*) continue ;;   # fuzzer inputs, not sources
    */generated/*|*.pb.h|*.pb.cc|*.gen.h|*.gen.cc) continue ;;
  esac
  [[ -f "$f" ]] && files+=("$f")
done < <(git ls-files -z -- '*.cc' '*.h')

if [[ "$mode" == fix ]]; then
  if (( ${#files[@]} )); then
    printf '%s\0' "${files[@]}" | xargs -0 -n 16 "$CLANG_FORMAT" -i --style=file
  fi
  exit 0
fi

unformatted=()
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" --style=file "$f" | cmp -s - "$f"; then
    unformatted+=("$f")
  fi
done
if (( ${#unformatted[@]} )); then
  printf '%s\n' "${unformatted[@]}"
  echo "format: ${#unformatted[@]} of ${#files[@]} files are not clang-formatted; run scripts/format.sh" >&2
  exit 1
fi
