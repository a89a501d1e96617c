#!/usr/bin/env bash
# Configure and build one flavour of doku-bridge.
#   scripts/build.sh release   gcc, -Werror, hardened, call graphs (tests/arch) -> build/release
#   scripts/build.sh asan      clang, ASan+UBSan, -Werror      -> build/asan
#   scripts/build.sh fuzz      clang, ASan+UBSan, the libFuzzer targets only -> build/fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
targets=()
case "$flavour" in
  release) args=(-DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDOKU_CALLGRAPH=ON) ;;
  asan)    args=(-DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DDOKU_SANITIZE=ON) ;;
  fuzz)    args=(-DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DDOKU_SANITIZE=ON -DDOKU_FUZZ=ON)
           targets=(--target fuzz) ;;
  *) echo "usage: $0 [release|asan|fuzz]" >&2; exit 2 ;;
esac
cmake -S . -B "build/$flavour" -G Ninja -DDOKU_WERROR=ON "${args[@]}" >/dev/null
cmake --build "build/$flavour" -j"$(nproc)" "${targets[@]}"
