#!/usr/bin/env bash
# run_pytest.sh SOURCE_DIR WORK_DIR: install the Python package the way users
# do (a venv over Debian's /usr/bin/python3 with its site packages, pip
# --no-build-isolation, offline) from a copy of clients/python, then run its
# pytest suite with Debian's pytest. The integration tests run when
# $DOKU_BRIDGED, $DOKU_SNAPSIM, $DOKU_MKCREDS and $DOKU_HARNESS_DIR are set.
set -euo pipefail
src=${1:?usage: run_pytest.sh SOURCE_DIR WORK_DIR}
work=${2:?usage: run_pytest.sh SOURCE_DIR WORK_DIR}
rm -rf "$work"
mkdir -p "$work"
# a private copy: builds never write into the source tree, flavours never collide
cp -r "$src/clients/python" "$work/pkg"
rm -rf "$work/pkg/build" "$work/pkg"/*.egg-info "$work/pkg/dokubridge/_proto"
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
DOKUBRIDGE_PROTO_DIR="$src/proto" "$work/venv/bin/pip" install --quiet --no-build-isolation \
  --no-index --no-deps --disable-pip-version-check "$work/pkg"
cd "$work"   # not the package's directory: tests import the installed package
exec "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$work/pkg/tests"
