#!/bin/sh
# buf of tests/node (npm @bufbuild/buf, pinned in its package-lock.json),
# run at the top of the source tree, where buf.yaml is.
#   buf.sh SOURCE_DIR buf-arguments...
set -eu
src=$1
shift
buf=$src/tests/node/node_modules/.bin/buf
if [ ! -x "$buf" ]; then
  echo "buf.sh: $buf is missing: run scripts/install-deps.sh (npm ci in tests/node)" >&2
  exit 1
fi
cd "$src"
exec "$buf" "$@"
