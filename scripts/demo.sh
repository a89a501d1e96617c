#!/usr/bin/env bash
# The main job: a full DOKU Wallet flow against the bundled offline sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release
echo "demo: the daemon and the sandbox are not built yet (issues 3-5); the build above is the foundation."
