#!/usr/bin/env bash
# podman as this project builds and runs the sidecar image, with the flags a
# Debian 12 machine without a registry needs; docs/deploy.md and the container
# test (packaging/tests/container.sh) both go through this one script.
#
#   podman.sh base                 make debian:12-slim locally (mmdebstrap), unless
#                                  the cached one is already the image of that name
#   podman.sh build [TAG [ARGS]]   base, then podman build of the image from the
#                                  source tree this script is in [doku-bridge:0.1.0]
#   podman.sh ARGS...              podman ARGS with the engine flags; run and create
#                                  also get the limits
#
# The flags: --runtime runc --cgroup-manager cgroupfs (crun refuses hybrid
# cgroups), --network host for the build's apt-get, and explicit
# --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 (podman's defaults exceed
# what such a sandbox allows). Set DOKU_PODMAN_FLAGS='' (empty) for a machine
# that needs none of them, e.g. with a registry and cgroups v2.
#
# The base: `mmdebstrap --variant=minbase bookworm`, made the way debian:12-slim
# is (no documentation, man pages or locales; merged /usr without usrmerge;
# no apt lists), imported as docker.io/library/debian:12-slim so that the
# Containerfile's FROM finds it without a registry. The tarball is cached in
# $DOKU_CONTAINER_CACHE [/var/tmp/doku-bridge-container-cache] under the hash
# of the mmdebstrap command: a second run neither runs mmdebstrap nor imports
# again. Remove the directory to take Debian's updates.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${DOKU_CONTAINER_CACHE:-/var/tmp/doku-bridge-container-cache}
base_name=docker.io/library/debian:12-slim
engine=(--runtime runc --cgroup-manager cgroupfs)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
network=(--network host)
if [ "${DOKU_PODMAN_FLAGS-unset}" = "" ]; then
  engine=() limits=() network=()
fi

say() { echo "podman.sh: $*" >&2; }
pm() { podman "${engine[@]}" "$@"; }

# Every argument of mmdebstrap but the output: what makes the base.
mmdebstrap_args=(
  --variant=minbase --mode=root
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  --aptopt='APT::Install-Recommends "false"'
  bookworm
)
mirrors=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
# Fixed file times: the same packages give the same tarball.
source_date_epoch=1700000000

base_key() {
  printf '%s\n' "${mmdebstrap_args[@]}" "${mirrors[@]}" "$source_date_epoch" |
    sha256sum | cut -c1-16
}

base() {
  local key tar id label
  key=$(base_key)
  tar=$cache/debian-12-minbase-$key.tar
  if id=$(pm image inspect --format '{{.Id}}' "$base_name" 2>/dev/null); then
    label=$(pm image inspect --format '{{index .Config.Labels "org.doku-bridge.base"}}' "$base_name")
    if [ "$label" = "$key" ]; then
      say "base $base_name is the cached one ($key, ${id:0:12})"
      return
    fi
  fi
  if [ ! -f "$tar" ] || [ ! -s "$tar" ]; then
    command -v mmdebstrap >/dev/null || { say "mmdebstrap is not installed"; return 69; }
    mkdir -p "$cache"
    say "making the base with mmdebstrap (once; cached as $tar)"
    rm -rf "$tar" "$tar.part"
    # --format=tar: the ".part" name would otherwise make a directory.
    SOURCE_DATE_EPOCH=$source_date_epoch mmdebstrap --quiet --format=tar \
      "${mmdebstrap_args[@]}" "$tar.part" "${mirrors[@]}"
    tar -tf "$tar.part" >/dev/null || { say "mmdebstrap made no tarball"; return 70; }
    mv -f "$tar.part" "$tar"
  fi
  say "importing $tar as $base_name"
  pm import --quiet --change 'CMD ["bash"]' --change "LABEL org.doku-bridge.base=$key" \
    "$tar" "$base_name" >/dev/null
}

build() {
  local tag=${1:-doku-bridge:0.1.0}
  shift || true
  base
  # --pull=never: FROM is the local base. --format docker: an OCI image would
  # drop the HEALTHCHECK. The layers are kept (podman's default): the second
  # build reuses the two apt-get steps' layers.
  pm build "${network[@]}" "${limits[@]}" --pull=never --format docker \
    -f "$top/packaging/container/Containerfile" -t "$tag" "$@" "$top"
}

case "${1:-}" in
  base) base ;;
  build) shift; build "$@" ;;
  run|create) cmd=$1; shift; pm "$cmd" "${limits[@]}" "$@" ;;
  ""|-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  *) pm "$@" ;;
esac
