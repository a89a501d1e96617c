#!/usr/bin/env bash
# The daemon under valgrind (memcheck, full leak check) through a short RPC and
# fault scenario: test_bridged_faults in its light mode (a few dozen calls on two
# connections, every fault kind, a restart of the simulator). valgrind's exit
# status 99 on any error makes the daemon's exit status, and so the test, fail.
# Exit 77 (skipped) when valgrind is not installed.
set -euo pipefail
test_bin=${1:?usage: valgrind.sh TEST_BINARY}
if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind not found: skipped"
  exit 77
fi
export DOKU_FAULTS_LIGHT=1
export DOKU_IT_DAEMON_WRAPPER="$(command -v valgrind) -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,possible --errors-for-leak-kinds=definite,possible --track-origins=yes"
exec "$test_bin"
