#!/usr/bin/env bash
# Lints every shell script of packaging/ with shellcheck:  shellcheck.sh PACKAGING-DIR
set -euo pipefail
command -v shellcheck >/dev/null || { echo "SKIP: shellcheck is not installed"; exit 77; }
cd "$1"
shellcheck container/entrypoint.sh container/podman.sh debian/postinst debian/prerm debian/postrm tests/*.sh
echo "PASS"
