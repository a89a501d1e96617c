#!/usr/bin/env bash
# The systemd files, checked by systemd's own tools offline in a scratch root
# (the rendered units, systemd's targets, stub executables):
#   units.sh SYSTEMD-DIR (packaging/systemd) WORK-DIR
# - systemd-analyze verify says nothing about either unit;
# - systemd-analyze security rates the service's exposure at most MAX_EXPOSURE;
# - sysusers.d creates the user, tmpfiles.d the socket's directory (0750, the user's).
set -euo pipefail
MAX_EXPOSURE=15 # tenths: 1.5 on systemd-analyze's 0-10 scale
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
src=$(realpath "$1")
root=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf "$root"
units=$root/usr/lib/systemd/system
mkdir -p "$units" "$root/usr/sbin" "$root/usr/bin" "$root/etc"
ln -s usr/bin "$root/bin"
cp /usr/lib/systemd/system/*.target "$units/"
cmake -DPREFIX=/usr -DSBINDIR=sbin -DOUT="$units/doku-bridged.service" -P "$src/render.cmake"
cp "$src/doku-bridged.socket" "$units/"
for exe in usr/sbin/doku-bridged usr/bin/kill; do
  printf '#!/bin/sh\n' >"$root/$exe"
  chmod 0755 "$root/$exe"
done

echo "== systemd-analyze verify"
out=$(systemd-analyze verify --root="$root" --man=no doku-bridged.service doku-bridged.socket 2>&1) ||
  fail "verify: $out"
[ -z "$out" ] || fail "verify: $out"

echo "== systemd-analyze security"
security=$(systemd-analyze security --offline=true --root="$root" \
  --threshold="$MAX_EXPOSURE" doku-bridged.service 2>&1) ||
  fail "security: $(grep -v '✓' <<<"$security")"
grep 'Overall exposure level' <<<"$security"

echo "== sysusers.d and tmpfiles.d"
systemd-sysusers --root="$root" "$src/doku-bridge.sysusers"
uid=$(awk -F: '$1 == "doku-bridge" { print $3 }' "$root/etc/passwd")
[ -n "$uid" ] || fail "sysusers.d did not create the user doku-bridge"
systemd-tmpfiles --root="$root" --create "$src/doku-bridge.tmpfiles"
perm=$(stat -c '%a %u %g' "$root/run/doku-bridge")
gid=$(awk -F: '$1 == "doku-bridge" { print $3 }' "$root/etc/group")
[ "$perm" = "750 $uid $gid" ] || fail "/run/doku-bridge is '$perm', wanted '750 $uid $gid'"
echo "PASS"
