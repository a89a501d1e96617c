#!/usr/bin/env bash
# The test command: install what is needed, then build and run every test twice,
# once hardened with gcc and once with clang under ASan+UBSan, both -Werror;
# then a short run of the fuzz targets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for flavour in release asan; do
  echo "== $flavour: build"
  bash scripts/build.sh "$flavour"
  echo "== $flavour: test"
  ctest --test-dir "build/$flavour" --output-on-failure -j"$(nproc)" --timeout 600
done

# A short libFuzzer run of each fuzz target over its corpus (tests/fuzz; ~30 s).
echo "== fuzz: build"
bash scripts/build.sh fuzz
echo "== fuzz: test"
ctest --test-dir build/fuzz -L fuzz --output-on-failure -j"$(nproc)" --timeout 120
