#!/usr/bin/env bash
# The main job: build everything, start doku-snapsim and doku-bridged with throwaway
# credentials in a temporary directory, walk one customer through the whole DOKU Wallet
# with dokuctl (scripts/wallet-flow.sh), and stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release
b=build/release
DOKUCTL=$PWD/$b/clients/c/dokuctl exec /usr/bin/python3 tests/tools/harness.py \
  --bridged "$b/bridged/doku-bridged" --snapsim "$b/tests/snapsim/doku-snapsim" \
  --mkcreds tests/tools/mkcreds.sh -- bash scripts/wallet-flow.sh
