#!/usr/bin/env bash
# Stock gRPC beside the native protocol in one run (issue 14):
#
#   tests/bench/grpc.sh [bench_grpc options...]
#
# Builds a release (build/bench, as run.sh does), starts doku-snapsim and
# doku-bridged (tests/tools/harness.py) and runs bench_grpc: Health calls/s
# with 64 in flight on one connection against the daemon's native protocol
# (the anchor), its gRPC path and a stock gRPC C++ callback server (started
# by bench_grpc on a Unix socket), with the same stock gRPC C++ client; CPU
# per call of the client and of each server. Prints the Markdown tables
# (docs/benchmarks.md, "Stock gRPC"); progress on stderr. Options pass
# through (--seconds, default 3; --rounds, default 3; --inflight, 64).
# About a minute, build excluded.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DOKU_BENCH_BUILD:-$root/build/bench}

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
cmake --build "$build" --target bench_grpc doku-bridged doku-snapsim >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
table=$work/table.md
python3 "$root/tests/tools/harness.py" --bridged "$build/bridged/doku-bridged" \
	--snapsim "$build/tests/snapsim/doku-snapsim" --mkcreds "$root/tests/tools/mkcreds.sh" \
	--workdir "$work/run" -- "$build/tests/bench/bench_grpc" --markdown "$table" "$@" >&2

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '-')
git -C "$root" diff --quiet HEAD 2>/dev/null || commit="$commit + local changes"
echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs ($cpu), $(uname -sr); commit $commit."
echo
echo '```'
echo "tests/bench/grpc.sh${*:+ $*}"
echo '```'
echo
cat "$table"
