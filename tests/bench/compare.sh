#!/usr/bin/env bash
# Two daemons side by side in one run (before and after a change):
#
#   tests/bench/compare.sh BASE_DAEMON [bench_bridge options...]
#
# Builds this tree's release (build/bench, as run.sh does) and runs
# bench_bridge --quick --daemon-b BASE_DAEMON: A is this tree's doku-bridged,
# B is BASE_DAEMON (e.g. a Release build of the commit before the change),
# both started on one simulator with one set of credentials. Every Health and
# GetBalance-via-the-daemon row runs for both daemons, back to back (A first
# in even rounds, B first in odd ones: neither always runs second), in each
# of 3 rounds (--rounds N), beside the floors (bare ping-pong, direct libcurl)
# measured in the same round, so that the machine's noise hits both alike.
# Use an even number of rounds for balance; the same binary twice as
# BASE_DAEMON shows the harness's own noise (B/A ~1.00).
# The GetBalance rows (issue 15) are 1, 16 and 64 callers, each as blocking
# clients (a thread each) and as one epoll client (a connection each), each
# beside the direct libcurl client of the same shape; CPU per call of the
# caller, of each daemon and of doku-snapsim apart. --only e2e: those alone.
# Prints on stdout (Markdown) the medians across the rounds of every row and
# the table "B vs A": the median (min-max) of the rounds' ratios B/A of
# calls/s, p50 and CPU per call, ~1.00 when nothing changed. Progress goes to
# stderr. Options after BASE_DAEMON pass through and override --quick's
# (--rounds, --seconds, --e2e-calls, --e2e-seconds, --only ipc|e2e). About
# three minutes on 2 cores.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -x "$1" ] || [ -d "$1" ]; then
	echo "usage: $0 BASE_DAEMON [bench_bridge options...] (BASE_DAEMON: a doku-bridged binary)" >&2
	exit 2
fi
base=$(realpath "$1")
shift

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${DOKU_BENCH_BUILD:-$root/build/bench}

start=$(date +%s)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
cmake --build "$build" --target bench_bridge doku-bridged doku-snapsim >/dev/null

table=$(mktemp)
trap 'rm -f "$table"' EXIT
# cmocka's lines and the per-round figures go to stderr; the tables come from --markdown
"$build/tests/bench/bench_bridge" --quick --daemon-b "$base" --markdown "$table" "$@" >&2

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '-')
git -C "$root" diff --quiet HEAD 2>/dev/null || commit="$commit + local changes"
echo "# A/B: this tree (A) vs $base (B)"
echo
echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) CPUs ($cpu), $(uname -sr);" \
     "A is commit $commit, built in $build."
echo
echo '```'
echo "tests/bench/compare.sh $base${*:+ $*}"
echo '```'
echo
cat "$table"
echo >&2 "compare.sh: $(( $(date +%s) - start )) s, build included"
