#!/usr/bin/env bash
# The Debian packages: built by cpack from the build tree, unpacked with
# dpkg -x into a scratch root, and checked there:
#   deb.sh BUILD-DIR WORK-DIR
# - each package holds its files, with the dependencies, conffiles, maintainer
#   scripts and shlibs it needs;
# - every shared library an installed executable needs comes from a package
#   named in its Depends:;
# - the installed doku-bridged --version, dokuctl --help and doku-snapsim
#   --help run; a program builds and runs against libdokubridge-dev's
#   pkg-config file, headers and library.
set -euo pipefail
for tool in cpack dpkg-deb dpkg-shlibdeps file readelf pkg-config cc; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
build=$(realpath "$1")
work=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")
root=$work/root
echo "== cpack"
cpack --config "$build/CPackConfig.cmake" -B "$work" >"$work/cpack.log" 2>&1 ||
  fail "cpack: $(cat "$work/cpack.log")"

deb() { # PACKAGE: its .deb
  local f
  f=$(find "$work" -maxdepth 1 -name "${1}_*.deb")
  [ -n "$f" ] || fail "no package $1"
  echo "$f"
}
field() { dpkg-deb -f "$(deb "$1")" "$2"; } # PACKAGE FIELD
has() { # PACKAGE PATH...: PACKAGE holds each PATH
  local p=$1 contents
  shift
  contents=$(dpkg-deb -c "$(deb "$p")" | awk '{ print $6 }')
  for f in "$@"; do
    grep -qxF "./$f" <<<"$contents" || fail "$p does not hold /$f"
  done
}
owner() { # LIBRARY: the package that holds it (merged /usr: either spelling)
  local p out
  for p in "$1" "${1#/usr}" "/usr$1"; do
    if out=$(dpkg -S "$p" 2>/dev/null); then
      echo "${out%%:*}"
      return
    fi
  done
  return 1
}
depends_on() { # PACKAGE RELATION: Depends: has RELATION, or a relation on the package it names
  local deps
  deps=$(field "$1" Depends | sed 's/, /\n/g')
  grep -qxF "$2" <<<"$deps"$'\n'"$(cut -d' ' -f1 <<<"$deps")" ||
    fail "$1 does not depend on $2: $(field "$1" Depends)"
}

for p in doku-bridge libdokubridge libdokubridge-dev doku-snapsim; do
  dpkg-deb -x "$(deb "$p")" "$root"
  has "$p" "usr/share/doc/$p/copyright"
done
version=$(field doku-bridge Version)
libdir=$(dirname "$(cd "$root" && find usr/lib -name 'libdokubridge.so.0')")

echo "== contents, relations, conffiles, maintainer scripts"
has doku-bridge usr/sbin/doku-bridged usr/bin/dokuctl \
  usr/lib/systemd/system/doku-bridged.service usr/lib/systemd/system/doku-bridged.socket \
  usr/lib/sysusers.d/doku-bridge.conf usr/lib/tmpfiles.d/doku-bridge.conf \
  etc/doku-bridge/doku-bridged.conf usr/share/man/man8/doku-bridged.8 \
  usr/share/man/man1/dokuctl.1 usr/share/doc/doku-bridge/deploy.md
has libdokubridge "$libdir/libdokubridge.so.0"
has libdokubridge-dev usr/include/dokubridge.h "$libdir/libdokubridge.so" \
  "$libdir/pkgconfig/dokubridge.pc"
has doku-snapsim usr/bin/doku-snapsim usr/share/man/man1/doku-snapsim.1
depends_on doku-bridge procps
depends_on libdokubridge-dev "libdokubridge (= $version)"
depends_on libdokubridge-dev libprotobuf-c-dev
control=$work/control
dpkg-deb -e "$(deb doku-bridge)" "$control"
grep -qxF /etc/doku-bridge/doku-bridged.conf "$control/conffiles" || fail "doku-bridge: conffiles"
for s in postinst prerm postrm; do
  [ -x "$control/$s" ] || fail "doku-bridge: no executable $s"
done
rm -r "$control"
dpkg-deb -e "$(deb libdokubridge)" "$control"
grep -q '^libdokubridge 0 libdokubridge' "$control/shlibs" || fail "libdokubridge: shlibs"
grep -q ldconfig "$control/postinst" || fail "libdokubridge: postinst does not run ldconfig"
# The unit starts the packaged daemon (the unit is rendered for /usr at install time).
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$root/usr/lib/systemd/system/doku-bridged.service")
[ "$exec_start" = /usr/sbin/doku-bridged ] || fail "ExecStart= runs $exec_start"

echo "== Depends: names the package of every library an executable needs (NEEDED)"
for p in doku-bridge libdokubridge doku-snapsim; do
  for f in $(dpkg-deb -c "$(deb "$p")" | awk '$1 ~ /^-..x/ || $6 ~ /\.so\./ { print $6 }'); do
    [[ $(file -L "$root/$f") == *'ELF '*'dynamically linked'* ]] || continue
    paths=$(LD_LIBRARY_PATH=$root/$libdir ldd "$root/$f")
    for so in $(readelf -d "$root/$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      lib=$(awk -v so="$so" '$1 == so && $3 ~ /^\// { print $3 }' <<<"$paths")
      [ -n "$lib" ] || fail "$f needs $so, which is not found"
      [[ $lib != "$root"/* ]] || continue # one of ours
      pkg=$(owner "$lib") || fail "$f needs $lib, which no package holds"
      depends_on "$p" "$pkg"
    done
  done
done

echo "== the installed executables run"
export LD_LIBRARY_PATH=$root/$libdir
out=$("$root/usr/sbin/doku-bridged" --version) || fail "doku-bridged --version"
[[ $out == *"${version%%-*}"* ]] || fail "doku-bridged --version says '$out', not $version"
out=$("$root/usr/bin/dokuctl" --help) || fail "dokuctl --help"
[[ $out == *health* ]] || fail "dokuctl --help does not list health"
"$root/usr/bin/doku-snapsim" --help >/dev/null || fail "doku-snapsim --help"

echo "== a program built with libdokubridge-dev"
export PKG_CONFIG_PATH=$root/$libdir/pkgconfig
in_root() { # PATH from dokubridge.pc, in the scratch root (a relocatable .pc is there already)
  if [[ $1 == "$root"/* ]]; then echo "$1"; else echo "$root$1"; fi
}
pc_include=$(in_root "$(pkg-config --variable=includedir dokubridge)")
pc_lib=$(in_root "$(pkg-config --variable=libdir dokubridge)")
[ -f "$pc_include/dokubridge.h" ] || fail "dokubridge.pc: includedir $pc_include has no dokubridge.h"
[ -e "$pc_lib/libdokubridge.so" ] || fail "dokubridge.pc: libdir $pc_lib has no libdokubridge.so"
cat >"$work/client.c" <<'EOF'
#include <dokubridge.h>
#include <stdio.h>
int main(void) { return puts(dokubridge_code_name(DOKUBRIDGE_UNAVAILABLE)) < 0; }
EOF
# shellcheck disable=SC2046 # pkg-config's output is a list of words
cc -o "$work/client" "$work/client.c" -I"$pc_include" -L"$pc_lib" \
  $(pkg-config --libs-only-l dokubridge) || fail "cannot build against libdokubridge-dev"
[ "$("$work/client")" = UNAVAILABLE ] || fail "the program built against libdokubridge-dev"
echo "PASS"
