#!/usr/bin/env bash
# What can be checked of deploy/Dockerfile without a container engine: every Debian package it
# installs exists in Debian 12 (apt-cache, this machine's package lists), the runtime stage has
# the shared library package of everything the built binary links, and it runs as non-root
# with a health check on /healthz.
#
#   tests/deploy/dockerfile_check.sh TRIAGED_BINARY
set -euo pipefail
dockerfile="$(dirname "$0")/../../deploy/Dockerfile"
fail=0
# Package names of each `apt-get install` (continuation lines joined), per stage.
stage_packages() {
  awk -v want="$1" '/^FROM /{stage++} stage==want' "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
    grep 'apt-get install' | sed 's/.*--no-install-recommends//; s/&&.*//' | tr ' ' '\n' | grep -v '^$'
}
for p in $(stage_packages 1) $(stage_packages 2); do
  if ! apt-cache show "$p" >/dev/null 2>&1; then echo "no Debian package $p" >&2; fail=1; fi
done
runtime=$(stage_packages 2)
for lib in $(ldd "$1" | awk '$3 ~ /^\// {print $3}'); do
  pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true)
  pkg=${pkg%%:*}
  # Essential or pulled in by librdkafka1 or librocksdb7.8; sanitizer runtimes come from a test
  # build only.
  case "$pkg" in ""|libc6|libgcc-s1|libstdc++6|zlib1g|libssl3|libsasl2-2|liblz4-1|libzstd1|\
    libbz2-1.0|libsnappy1v5|libgflags2.2|libasan8|libubsan1) continue ;; esac
  grep -qx "$pkg" <<<"$runtime" || { echo "runtime stage lacks $pkg (for $lib)" >&2; fail=1; }
done
grep -q '^USER 10001' "$dockerfile" || { echo "the image must not run as root" >&2; fail=1; }
grep -q '^HEALTHCHECK .*' "$dockerfile" && grep -q '/healthz' "$dockerfile" ||
  { echo "no health check on /healthz" >&2; fail=1; }
((fail == 0)) && echo "Dockerfile: $(wc -w <<<"$runtime") runtime packages ok, non-root, health check"
exit $fail
