#!/usr/bin/env bash
# The benchmarks of doku-bridge in one command (issue 8):
#
#   tests/bench/run.sh [bench_bridge options...]
#
# Builds a release (build/bench, -O2, no sanitizers), runs bench_bridge (the
# IPC hop beside a bare-socket floor, pinned and unpinned; GetBalance through
# the daemon beside libcurl straight to doku-snapsim; token requests; RSS)
# and writes docs/benchmarks.md: the tables, the command, the date and the
# machine. Options pass through to bench_bridge (--seconds, --calls,
# --e2e-calls, --e2e-seconds, --conns). Bounded: about two minutes.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DOKU_BENCH_BUILD:-$root/build/bench}
out=${DOKU_BENCH_OUT:-$root/docs/benchmarks.md}
notes=$root/tests/bench/benchmarks-notes.md

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
cmake --build "$build" --target bench_bridge doku-bridged doku-snapsim >/dev/null

table=$(mktemp)
trap 'rm -f "$table"' EXIT
"$build/tests/bench/bench_bridge" --markdown "$table" "$@"

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
{
	echo "# Benchmarks"
	echo
	echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs ($cpu), $(uname -sr)," \
	     "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) of memory;" \
	     "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '-')$(
	     git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' + local changes')."
	echo
	echo "Reproduce with one command (builds a release in build/bench, about two minutes):"
	echo
	echo '```'
	echo "tests/bench/run.sh${*:+ $*}"
	echo '```'
	echo
	echo "All runs are bounded by count and time; the first tenth of each run is a warm-up"
	echo "and not measured. \"pinned\": both processes on CPU 0 (sched_setaffinity). CPU us/call:"
	echo "this process's getrusage plus the server's /proc/PID/stat (daemon, or echo process),"
	echo "divided by the calls. \"vs floor\": the bare ping-pong of the same shape (Health) or"
	echo "the direct libcurl run (GetBalance)."
	echo
	cat "$table"
	if [ -f "$notes" ]; then
		echo
		cat "$notes"
	fi
} >"$out"
echo "wrote $out"
