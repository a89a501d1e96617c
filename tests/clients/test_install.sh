#!/usr/bin/env bash
# test_install.sh BUILD_DIR SOURCE_DIR WORK_DIR: install the C client (the
# components "lib", "dev" and "daemon") into a scratch prefix and build the C example against the installed libdokubridge
# through pkg-config, shared and static; both must run and report the daemon
# unreachable (exit 1, UNAVAILABLE) for a socket that does not exist.
set -euo pipefail
build=${1:?} src=${2:?} work=${3:?}
rm -rf "$work"
for component in lib dev daemon; do
  cmake --install "$build" --prefix "$work/prefix" --component "$component" >/dev/null
done
libdir=$(find "$work/prefix" -name dokubridge.pc -printf '%h\n' | head -1)
export PKG_CONFIG_PATH="$libdir"
test -f "$work/prefix/include/dokubridge.h"
test -f "$work/prefix/include/doku/wallet/v1/wallet.pb-c.h"
test -f "$work/prefix/include/doku/bridge/v1/bridge.pb-c.h"
test -x "$work/prefix/bin/dokuctl"
cc=${CC:-cc}
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/balance" "$src/clients/c/examples/balance.c" \
  $(pkg-config --cflags --libs dokubridge)
"$cc" -std=c11 -Wall -Wextra -Werror -o "$work/balance-static" "$src/clients/c/examples/balance.c" \
  $(pkg-config --cflags dokubridge) "$(dirname "$libdir")/libdokubridge.a" \
  $(pkg-config --libs libprotobuf-c)
for exe in "$work/balance" "$work/balance-static"; do
  set +e
  out=$(LD_LIBRARY_PATH="$(dirname "$libdir")" DOKU_BRIDGE_SOCKET=/nonexistent/bridge.sock \
        "$exe" cust-1 ref-1 2>&1)
  rc=$?
  set -e
  if [ "$rc" -ne 1 ] || ! grep -q UNAVAILABLE <<<"$out"; then
    echo "FAIL: $exe: exit $rc: $out" >&2
    exit 1
  fi
done
# the shared library needs nothing but libprotobuf-c and libc
if ldd "$(dirname "$libdir")/libdokubridge.so" | grep -vE 'libprotobuf-c|libc\.so|linux-vdso|ld-linux|libasan|libubsan|libm\.|libdl|libpthread|librt|libgcc_s|libstdc' | grep -q '=>'; then
  echo "FAIL: libdokubridge.so links more than libprotobuf-c:" >&2
  ldd "$(dirname "$libdir")/libdokubridge.so" >&2
  exit 1
fi
echo "install: ok"
