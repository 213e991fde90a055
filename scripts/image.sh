#!/usr/bin/env bash
# Builds the triaged container image without a container engine: a Debian 12 root file system
# with the runtime packages of deploy/Dockerfile's second stage (mmdebstrap), the binary and the
# example rules on top, as an OCI image layout (umoci).
#
#   scripts/image.sh [-b TRIAGED_BINARY] [-o OUT_DIR] [--archive]
#
# TRIAGED_BINARY defaults to build-release/bin/triaged, built (Release) when missing. OUT_DIR
# (default build-release/image) receives oci/ (the layout, tag "triaged") and, with --archive,
# triaged.oci.tar (an oci-archive: `skopeo copy oci-archive:triaged.oci.tar docker://...`).
#
# The image config is the Dockerfile's: user 10001:10001, entrypoint /usr/local/bin/triaged,
# cmd `run -c /etc/triaged/rules.yaml`, TRIAGED_ADMIN=0.0.0.0:9464, port 9464/tcp, stop signal
# SIGTERM. The OCI image config has no health check: the Dockerfile's is written as Docker's
# extension field config.Healthcheck (what BuildKit writes in an OCI image, and what Docker and
# Podman read), in the same form.
#
# The root file system (a tar, ~150 MB) is cached in ${TRIAGED_CACHE:-$HOME/.cache/triaged},
# keyed by the package list and the options below; a cold build takes a few minutes (downloads
# from the machine's apt sources), a cached one seconds. Delete the tar to pick up Debian's
# point releases.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
out=build-release/image
archive=0
while (($#)); do
  case "$1" in
    -b) binary=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --archive) archive=1; shift ;;
    *) echo "usage: scripts/image.sh [-b TRIAGED_BINARY] [-o OUT_DIR] [--archive]" >&2; exit 64 ;;
  esac
done
log() { printf 'image: %s\n' "$*" >&2; }

# Tools, from Debian (as scripts/install-deps.sh installs them).
missing=()
for p in mmdebstrap umoci python3 binutils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# scripts/test.sh hands the Release binary it built for the bench over in TRIAGED_IMAGE_BINARY.
[[ -n "$binary" ]] || binary=${TRIAGED_IMAGE_BINARY:-}
if [[ -z "$binary" ]]; then
  binary=build-release/bin/triaged
  if [[ ! -x "$binary" ]]; then
    log "building $binary (Release)"
    cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTRIAGED_TESTS=OFF >/dev/null
    cmake --build build-release --target triaged
  fi
fi
[[ -x "$binary" ]] || { echo "image: no binary at $binary" >&2; exit 1; }

# The runtime packages: those of the Dockerfile's second stage, so the two cannot drift.
packages=$(awk '/^FROM /{stage++} stage==2' deploy/Dockerfile | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
  grep 'apt-get install' | sed 's/.*--no-install-recommends//; s/&&.*//' | tr ' ' '\n' |
  grep -v '^$' | sort | paste -sd, -)
# Like debian:12-slim: essential packages and apt, no documentation, man pages or locales; the
# user and group 10001 the Dockerfile's USER names.
mmdebstrap_args=(--variant=apt --mode=root --format=tar "--include=$packages"
  "--dpkgopt=path-exclude=/usr/share/doc/*" "--dpkgopt=path-include=/usr/share/doc/*/copyright"
  "--dpkgopt=path-exclude=/usr/share/man/*" "--dpkgopt=path-exclude=/usr/share/locale/*"
  "--dpkgopt=path-exclude=/usr/share/info/*"
  '--customize-hook=chroot "$1" groupadd --system --gid 10001 triaged'
  '--customize-hook=chroot "$1" useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin triaged'
  '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*'
  bookworm)
cache="${TRIAGED_CACHE:-$HOME/.cache/triaged}"
key=$(printf '%s\n' "${mmdebstrap_args[@]}" | sha256sum | cut -c1-16)
rootfs="$cache/rootfs-bookworm-$key.tar"
if [[ ! -s "$rootfs" ]]; then
  mkdir -p "$cache"
  log "root file system: mmdebstrap bookworm with $packages"
  mmdebstrap --quiet "${mmdebstrap_args[@]}" "$rootfs.partial" 2> >(grep -v 'SYS_UID_MAX' >&2)
  mv "$rootfs.partial" "$rootfs"
else
  log "root file system: cached $rootfs"
fi

layout="$out/oci"
rm -rf "$layout"
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$binary" "$stage/usr/local/bin/triaged"
strip "$stage/usr/local/bin/triaged"
install -D -m 0644 config/examples/rules.yaml "$stage/etc/triaged/rules.yaml"

umoci init --layout "$layout"
umoci new --image "$layout:triaged"
umoci raw add-layer --image "$layout:triaged" --history.created_by "mmdebstrap bookworm" "$rootfs"
umoci insert --image "$layout:triaged" --history.created_by "triaged" \
  "$stage/usr/local/bin/triaged" /usr/local/bin/triaged
umoci insert --image "$layout:triaged" --history.created_by "the example rules" \
  "$stage/etc/triaged" /etc/triaged
umoci config --image "$layout:triaged" --no-history \
  --config.user 10001:10001 \
  --config.entrypoint /usr/local/bin/triaged \
  --config.cmd run --config.cmd -c --config.cmd /etc/triaged/rules.yaml \
  --config.env TRIAGED_ADMIN=0.0.0.0:9464 \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.exposedports 9464/tcp \
  --config.stopsignal SIGTERM \
  --config.workingdir / \
  --architecture amd64 --os linux
# The health check, as Docker's config.Healthcheck (durations in nanoseconds), from the
# Dockerfile's HEALTHCHECK line; the config blob is rewritten and the manifest and index follow.
python3 - "$layout" triaged <<'EOF'
import hashlib, json, os, re, sys

layout, tag = sys.argv[1:]
def blob(digest):
    return os.path.join(layout, "blobs", *digest.split(":"))
def put(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(blob(digest), "wb") as f:
        f.write(data)
    return digest, len(data)

text = open("deploy/Dockerfile").read().replace("\\\n", " ")
line = re.search(r"^HEALTHCHECK (.*)$", text, re.M).group(1)
ns = {"s": 10**9, "m": 60 * 10**9}
check = {"Test": ["CMD-SHELL", line.split(" CMD ", 1)[1].strip()]}
for flag, field in (("interval", "Interval"), ("timeout", "Timeout"),
                    ("start-period", "StartPeriod"), ("retries", "Retries")):
    m = re.search(r"--%s=(\d+)([sm]?)" % flag, line)
    check[field] = int(m.group(1)) * (ns[m.group(2)] if m.group(2) else 1)

index = json.load(open(os.path.join(layout, "index.json")))
for desc in index["manifests"]:
    if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag:
        continue
    manifest = json.load(open(blob(desc["digest"])))
    config = json.load(open(blob(manifest["config"]["digest"])))
    config["config"]["Healthcheck"] = check
    manifest["config"]["digest"], manifest["config"]["size"] = put(config)
    desc["digest"], desc["size"] = put(manifest)
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump(index, f, separators=(",", ":"))
EOF
umoci gc --layout "$layout"
if ((archive)); then
  tar -C "$layout" -cf "$out/triaged.oci.tar" .
  log "oci-archive: $out/triaged.oci.tar"
fi
log "OCI image layout: $layout (tag triaged), $(du -sh "$layout" | cut -f1)"
echo "$layout:triaged"
