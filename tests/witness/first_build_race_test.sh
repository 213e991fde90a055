#!/usr/bin/env bash
# Two witnesses started together on a checkout that has never built the jar (a fresh CI clone
# runs the producer tests in parallel): the second must wait for the first one's build, not run
# the plain jar `mvn package` writes before the shade plugin makes it runnable. Both write the
# same corpus, byte for byte.
#
#   first_build_race_test.sh SOURCE_DIR
set -euo pipefail
source_dir=$1
fail() { echo "first_build_race_test: $*" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# A copy without target/, with a lock of its own.
mkdir "$dir/witness" "$dir/tmp"
cp -r "$source_dir/tests/witness/otlp-java/pom.xml" "$source_dir/tests/witness/otlp-java/src" \
  "$source_dir/tests/witness/otlp-java/run.sh" "$dir/witness/"
export TMPDIR="$dir/tmp"
jar="$dir/witness/target/otlp-witness.jar"

"$dir/witness/run.sh" corpus "$dir/first" >"$dir/first.log" 2>&1 &
first=$!
# The second starts as soon as a jar is on disk (mid-build: the shade plugin is still to run),
# or once the first is done.
deadline=$((SECONDS + 600))
while [ ! -f "$jar" ] && kill -0 "$first" 2>/dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || fail "no jar after 600 s"
  sleep 0.05
done
"$dir/witness/run.sh" corpus "$dir/second" >"$dir/second.log" 2>&1 ||
  fail "the second witness failed: $(cat "$dir/second.log")"
wait "$first" || fail "the first witness failed: $(cat "$dir/first.log")"

files=$(cd "$dir/first" && ls)
[ -n "$files" ] || fail "the first witness wrote nothing"
diff -r "$dir/first" "$dir/second" >/dev/null || fail "the two witnesses wrote different corpora"
echo "first_build_race_test: two witnesses on one first build, same corpus ($(echo $files | wc -w) files)"
