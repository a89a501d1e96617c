#!/usr/bin/env bash
# Install the Debian 12 packages doku-bridge needs to build, test and run, and
# the npm tools of its tests (tests/node).
# Idempotent: installs only what is missing (as root, or through sudo).
set -euo pipefail

packages=(
  build-essential gcc clang libclang-rt-14-dev cmake ninja-build pkg-config
  libuv1-dev libcurl4-openssl-dev libwolfssl-dev
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libcmocka-dev libinih-dev libjansson-dev libmicrohttpd-dev libsqlite3-dev libsystemd-dev
  # the fleet's shared state (bridged/state/store_postgres.c) and its tests' server
  libpq-dev postgresql
  # HTTP/2 for stock gRPC on the daemon's socket (bridged/io/h2.c)
  libnghttp2-dev
  python3 python3-protobuf python3-pytest python3-venv python3-setuptools python3-pip
  # stock gRPC clients of the tests: Python's grpcio, stubs by protoc's grpc_python_plugin;
  # descriptor.proto, which server reflection reads the compiled-in descriptors with;
  # the benchmark's stock gRPC C++ client and server (tests/bench/bench_grpc.cc)
  python3-grpcio protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  # Node.js for the npm tools of the tests (tests/node: buf, @grpc/grpc-js)
  nodejs
  openssl ca-certificates curl procps jq
  dpkg-dev file systemd shellcheck
  # the sidecar image and its test (packaging/container/podman.sh): podman with
  # runc, the base made with mmdebstrap (no registry)
  podman runc conmon golang-github-containers-common mmdebstrap debian-archive-keyring
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm: part of some Node.js packages (NodeSource's), Debian's own package beside Debian's.
if ! command -v npm >/dev/null; then
  echo "install-deps: installing npm" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

# The npm tools of the tests, exactly as tests/node/package-lock.json pins
# them (npm ci), unless that lock is what is installed already.
node=$(cd "$(dirname "$0")/../tests/node" && pwd)
if ! cmp -s "$node/package-lock.json" "$node/node_modules/.doku-installed-lock"; then
  echo "install-deps: npm ci in tests/node" >&2
  (cd "$node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$node/package-lock.json" "$node/node_modules/.doku-installed-lock"
fi
