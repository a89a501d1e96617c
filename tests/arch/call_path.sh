#!/usr/bin/env bash
# call_path.sh SOURCE_DIR BUILD_DIR: the files one GetBalance and one TopUp
# pass through, measured and bounded (issue 12: a call's path reads straight
# down). Configures BUILD_DIR with -DDOKU_TRACE_CALLS=ON (gcc, Release),
# builds doku-bridged, doku-snapsim and dokuctl there, runs
# tests/arch/trace_rpc.sh and fails when either call passes through more of
# the daemon's files (io/, state/, rpc/, daemon/; base/ and snap/ are the
# libraries under them) than the bounds below, which are today's counts:
# a call that takes a new file on its way must say so here.
set -euo pipefail
src=$(cd "${1:?usage: call_path.sh SOURCE_DIR BUILD_DIR}" && pwd)
build=${2:?usage: call_path.sh SOURCE_DIR BUILD_DIR}
declare -A bound=([GetBalance]=9 [TopUp]=12)

cmake -S "$src" -B "$build" -G Ninja -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release \
  -DDOKU_TRACE_CALLS=ON >/dev/null
cmake --build "$build" --target doku-bridged doku-snapsim dokuctl >/dev/null
out=$(bash "$src/tests/arch/trace_rpc.sh" "$build")
printf '%s\n' "$out"
status=0
for call in GetBalance TopUp; do
  n=$(printf '%s\n' "$out" | awk -v c="$call" '
    $1 == c { inside = 1; next }
    inside && /the daemon.s files/ { print $NF; exit }')
  if [[ -z $n ]]; then
    echo "call_path: no count of the daemon's files for $call" >&2
    status=1
  elif ((n > bound[$call])); then
    echo "call_path: $call passes through $n of the daemon's files (at most ${bound[$call]})" >&2
    status=1
  else
    echo "call_path: $call: $n of the daemon's files (at most ${bound[$call]})"
  fi
done
exit "$status"
