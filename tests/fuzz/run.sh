#!/bin/sh
# A bounded libFuzzer run, for ctest (label "fuzz"): the committed corpus
# (seeds and regression inputs) first, then new inputs for at most
# FUZZ_TIME seconds (10) or FUZZ_RUNS executions (20000), whichever ends first.
# New inputs and any crash go to WORKDIR, never into the source tree.
#   run.sh FUZZER CORPUS WORKDIR [libFuzzer flags...]
set -eu
fuzzer=$1 corpus=$2 work=$3
shift 3
rm -rf "$work"
mkdir -p "$work/new"
exec "$fuzzer" -runs="${FUZZ_RUNS:-20000}" -max_total_time="${FUZZ_TIME:-10}" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/new" "$corpus"
