#!/usr/bin/env bash
# Installs the build and test dependencies of triaged from Debian 12's packages.
# Idempotent: does nothing (and needs no network) when everything is already installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev libboost-dev rapidjson-dev prometheus-cpp-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev libre2-dev libspdlog-dev
  libcli11-dev libprotobuf-dev protobuf-compiler librocksdb-dev libmimalloc-dev libabsl-dev
  kcat prometheus curl openssl
  openjdk-17-jdk-headless maven python3 time
  python3-yaml python3-jsonschema python3-confluent-kafka
  clang libclang-rt-14-dev clang-format clang-tidy
  chromium systemd
  mmdebstrap umoci
  help2man groff-base bash-completion
)
# Node.js for the status page's browser test: Debian's, unless a node is already installed.
command -v node >/dev/null && command -v npm >/dev/null || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
