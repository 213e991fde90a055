#!/usr/bin/env bash
# The image scripts/image.sh builds, read back and run without a container engine: its config
# (user, entrypoint, cmd, env, port, stop signal, health check) from the OCI layout's JSON, its
# binary's shared libraries resolved inside it, then its root file system unpacked and run as
# user 10001 with the root read-only and writable only where deploy/k8s's Deployment mounts an
# emptyDir (tmpfs here; /tmp): validate, replay of the example corpus (mounted read-only; the output must equal
# the same binary's outside), and, on the broker (KAFKA_BOOTSTRAP, else scripts/kafka-dev.sh's), `run` until /readyz answers 200,
# then SIGTERM and exit 0.
#
#   tests/deploy/image_test.sh OCI_LAYOUT_DIR
# Needs root (mount namespaces), umoci, python3 (and python3-yaml), curl.
set -euo pipefail
layout=$1
src="$(cd "$(dirname "$0")/../.." && pwd)"
fail() { echo "image_test: $*" >&2; exit 1; }
work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the config, from the layout's own JSON (index -> manifest -> config)
python3 - "$layout" triaged >"$work/config.env" <<'EOF'
import json, os, shlex, sys
layout, tag = sys.argv[1:]
blob = lambda d: json.load(open(os.path.join(layout, "blobs", *d.split(":"))))
index = json.load(open(os.path.join(layout, "index.json")))
(desc,) = [m for m in index["manifests"]
           if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
manifest = blob(desc["digest"])
image = blob(manifest["config"]["digest"])
c = image["config"]
errors = []
def expect(what, got, want):
    if got != want: errors.append(f"{what}: {got!r}, want {want!r}")
expect("os/architecture", (image["os"], image["architecture"]), ("linux", "amd64"))
expect("User", c.get("User"), "10001:10001")
expect("Entrypoint", c.get("Entrypoint"), ["/usr/local/bin/triaged"])
expect("Cmd", c.get("Cmd"), ["run", "-c", "/etc/triaged/rules.yaml"])
expect("TRIAGED_ADMIN", [e for e in c.get("Env", []) if e.startswith("TRIAGED_ADMIN=")],
       ["TRIAGED_ADMIN=0.0.0.0:9464"])
expect("ExposedPorts", c.get("ExposedPorts"), {"9464/tcp": {}})
expect("StopSignal", c.get("StopSignal"), "SIGTERM")
hc = c.get("Healthcheck", {})
expect("Healthcheck.Test", hc.get("Test"),
       ["CMD-SHELL", "curl -fsS http://127.0.0.1:9464/healthz || exit 1"])
expect("Healthcheck.Interval", hc.get("Interval"), 15 * 10**9)
expect("Healthcheck.Retries", hc.get("Retries"), 3)
expect("layers", len(manifest["layers"]), len(image["rootfs"]["diff_ids"]))
if errors:
    sys.exit("image config: " + "; ".join(errors))
print("IMAGE_ENV=" + shlex.quote(" ".join(shlex.quote(e) for e in c["Env"])))
print("IMAGE_ARGV=" + shlex.quote(" ".join(shlex.quote(a) for a in c["Entrypoint"] + c["Cmd"])))
print("IMAGE_USER=" + c["User"])
EOF
source "$work/config.env"
echo "image_test: config ok (user $IMAGE_USER, $IMAGE_ARGV, health check)"

# The writable mounts of the run: those the Kubernetes Deployment declares (its emptyDirs), so
# a path the daemon writes that the Deployment lacks fails here too.
writable=$(python3 - "$src/deploy/k8s/base/deployment.yaml" <<'EOF'
import sys, yaml
pod = yaml.safe_load(open(sys.argv[1]))["spec"]["template"]["spec"]
scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
print(" ".join(m["mountPath"] for m in pod["containers"][0]["volumeMounts"]
               if m["name"] in scratch and not m.get("readOnly", False)))
EOF
)
[[ -n "$writable" ]] || fail "the Deployment declares no writable volume"

rootfs="$work/rootfs"
umoci raw unpack --image "$layout:triaged" "$rootfs" 2>/dev/null
[[ -x "$rootfs/usr/local/bin/triaged" && -f "$rootfs/etc/triaged/rules.yaml" ]] ||
  fail "the root file system lacks the binary or the rules"
libs=$(chroot "$rootfs" /usr/bin/ldd /usr/local/bin/triaged)
! grep -q 'not found' <<<"$libs" || fail "unresolved libraries in the image: $libs"
chroot "$rootfs" /usr/bin/curl --version >/dev/null || fail "no curl for the health check"
echo "image_test: $(grep -c '=> /' <<<"$libs") shared libraries resolve inside the image"

# Runs "$@" in the image: new mount and pid namespaces (the host's network, for the broker), the
# root bind-mounted read-only, a tmpfs on each of the Deployment's writable mounts, /proc, the host's /dev/{null,zero,random,urandom},
# config/examples read-only on /mnt; as $IMAGE_USER with the image's environment plus EXTRA_ENV.
in_image() {
  unshare --mount --pid --fork --propagation private bash -euc '
    r=$1; src=$2; user=$3; env=$4; writable=$5; shift 5
    mount --bind "$r" "$r"
    for w in $writable; do mkdir -p "$r$w"; mount -t tmpfs -o mode=1777,size=16m tmpfs "$r$w"; done
    mount -t proc proc "$r/proc"
    mount -t tmpfs -o mode=0755,size=1m tmpfs "$r/dev"
    for d in null zero random urandom; do touch "$r/dev/$d"; mount --bind "/dev/$d" "$r/dev/$d"; done
    mount --bind "$src/config/examples" "$r/mnt"
    mount -o remount,ro,bind "$r/mnt"
    mount -o remount,ro,bind "$r"
    eval "exec chroot --userspec=$user \"\$r\" /usr/bin/env -i $env \"\$@\""
  ' in_image "$rootfs" "$src" "$IMAGE_USER" "$IMAGE_ENV ${EXTRA_ENV:-}" "$writable" "$@"
}

out=$(in_image /bin/sh -c 'id -u; id -g; touch /x 2>&1 || true; touch /tmp/x && echo tmp-ok')
[[ "$out" == $'10001\n10001\n'*'Read-only file system'*$'\ntmp-ok' ]] ||
  fail "expected uid/gid 10001, a read-only root and a writable /tmp, got: $out"
echo "image_test: runs as 10001:10001, root read-only, writable only: $writable"

in_image /usr/local/bin/triaged validate -c /etc/triaged/rules.yaml >/dev/null ||
  fail "validate failed in the image"
in_image /usr/local/bin/triaged replay -c /etc/triaged/rules.yaml /mnt/events.jsonl \
  >"$work/routed.jsonl" 2>"$work/replay.err" || { cat "$work/replay.err" >&2; fail "replay failed"; }
"$rootfs/usr/local/bin/triaged" replay -c "$src/config/examples/rules.yaml" \
  "$src/config/examples/events.jsonl" >"$work/routed-host.jsonl" 2>/dev/null
[[ -s "$work/routed.jsonl" ]] || fail "replay in the image routed nothing"
cmp -s "$work/routed.jsonl" "$work/routed-host.jsonl" ||
  fail "replay in the image differs from the same binary's outside"
echo "image_test: validate ok; replay routed $(wc -l <"$work/routed.jsonl") items, as outside"

# The broker: KAFKA_BOOTSTRAP, else the running scripts/kafka-dev.sh one (ctest's fixture).
KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-$("$src/scripts/kafka-dev.sh" status 2>/dev/null | tail -n 1 || true)}
if [[ -z "$KAFKA_BOOTSTRAP" ]]; then
  echo "image_test: no broker (KAFKA_BOOTSTRAP, scripts/kafka-dev.sh), not running the daemon"
  exit 0
fi
# `run` as the image's entrypoint and cmd, on a port and group of its own.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for t in llm.spans llm.feedback annotations.support-review annotations.agent-review \
  datasets.regressions datasets.session-replay triaged.dead-letter; do
  "$src/scripts/kafka-dev.sh" create-topic "$t" 4 >/dev/null 2>&1 || true
done
EXTRA_ENV="KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP TRIAGED_ADMIN=127.0.0.1:$port TRIAGED_GROUP_ID=image-test-$$" \
  eval in_image "$IMAGE_ARGV" >"$work/run.log" 2>&1 &
pid=$!
deadline=$((SECONDS + 90))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" == 200 ]]; do
  if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
    cat "$work/run.log" >&2
    fail "triaged run in the image never became ready"
  fi
  curl -s -o /dev/null --retry-connrefused --retry 1 --retry-delay 1 "http://127.0.0.1:$port/healthz" || true
done
# unshare forwards no signal: SIGTERM goes to the daemon itself (pid 1 of its namespace).
daemon=$(pgrep -P "$(pgrep -P "$pid" unshare || echo "$pid")" -x triaged || true)
[[ -n "$daemon" ]] || daemon=$(pgrep -f "image-test-$$" | head -1)
[[ -n "$daemon" ]] || fail "cannot find the daemon's pid"
kill -TERM "$daemon"
status=0
wait "$pid" || status=$?
pid=""
((status == 0)) || { cat "$work/run.log" >&2; fail "run exited $status after SIGTERM"; }
echo "image_test: run ready on /readyz, exited 0 on SIGTERM"
