#!/usr/bin/env bash
# Runs the OTLP witness (README.md beside this file), building its jar first when it is missing
# or older than pom.xml or a source file.
#
#   tests/witness/otlp-java/run.sh corpus OUTDIR [--seed N] [--traces T]
#   tests/witness/otlp-java/run.sh produce --bootstrap HOST:PORT --topic T FILE [--key-from trace_id|none]
#
# Needs java 17+ and, for the build, mvn with Maven Central (or a warm ~/.m2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
jar="$here/target/otlp-witness.jar"

stale() {
  [[ ! -f "$jar" ]] || [[ -n "$(find "$here/pom.xml" "$here/src" -newer "$jar" -print -quit)" ]]
}

# The check takes the lock too: `mvn package` writes the plain jar to $jar before the shade
# plugin replaces it with the runnable one, so a witness that looked while another was building
# would run a jar with no main class.
if stale; then
  command -v mvn >/dev/null || { echo "run.sh: mvn is not installed (Debian: apt-get install maven)" >&2; exit 1; }
fi
exec 9>"${TMPDIR:-/tmp}/triaged-otlp-witness-$(id -u).lock"
flock 9
if stale; then
  log="$(mktemp)"
  if ! (cd "$here" && mvn -q -B -Dstyle.color=never package) >"$log" 2>&1; then
    # A failed build must not leave the plain jar looking fresh to the next run.
    rm -f "$jar"
    echo "run.sh: building the witness failed (mvn package in $here):" >&2
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^\[ERROR\] [^ ]' |
      grep -vE 'Re-run Maven|To see the full|For more information|\[Help 1\] http' | head -n 20 >&2 || true
    if grep -qE 'Could not (resolve|transfer|download)|Unknown host|Connection (refused|timed out)|Non-resolvable' "$log"; then
      echo "run.sh: Maven could not download the dependencies: Maven Central must be reachable (or ~/.m2 hold them)." >&2
    fi
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi
exec 9>&-

exec java -jar "$jar" "$@"
