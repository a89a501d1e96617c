#!/usr/bin/env bash
# trace_rpc.sh BUILD_DIR [TRACE]: the daemon's source files that one GetBalance
# and one TopUp pass through (TRACE: keep the raw trace there).
#
# BUILD_DIR is configured with -DDOKU_TRACE_CALLS=ON and has doku-bridged,
# doku-snapsim and dokuctl built. Like scripts/demo.sh, the test harness
# (tests/tools/harness.py) starts the sandbox and the daemon with throwaway
# credentials; the daemon writes the functions it enters to $DOKU_TRACE_FILE on
# each SIGUSR2 (tests/arch/trace_hook.c). Inside the harness (--inside), this
# script opens a customer session, warms up with one GetBalance and one TopUp,
# then marks (SIGUSR2), makes one GetBalance, marks, makes one TopUp and marks.
# Then tests/arch/trace_files.py prints the files of the two windows.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

# The daemon is done with a call a little after dokuctl has its reply (the
# write's callback, the connection's close): give it that before a mark. What
# a timer does in a window is in it too (the server's sweep every 2.5 s shows
# as server.c entered first by on_sweep).
SETTLE=0.1

if [[ ${1:-} != --inside ]]; then
  build=$(cd "${1:?usage: trace_rpc.sh BUILD_DIR [TRACE]}" && pwd)
  bin=$build/bridged/doku-bridged
  if ! nm "$bin" 2>/dev/null | grep ' T __cyg_profile_func_enter$' > /dev/null; then
    echo "trace_rpc: $bin has no trace hook: configure with -DDOKU_TRACE_CALLS=ON" >&2
    exit 2
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  DOKU_TRACE_FILE=$(realpath -m "${2:-$work/trace}")
  export DOKU_TRACE_FILE
  DOKUCTL=$build/clients/c/dokuctl /usr/bin/python3 "$root/tests/tools/harness.py" \
    --bridged "$bin" --snapsim "$build/tests/snapsim/doku-snapsim" \
    --mkcreds "$root/tests/tools/mkcreds.sh" -- bash "$0" --inside
  /usr/bin/python3 "$here/trace_files.py" --window 2=GetBalance --window 3=TopUp \
    "$DOKU_TRACE_FILE" "$bin"
  exit
fi

# ---- inside the harness: DOKUCTL, DOKU_BRIDGE_SOCKET, DOKU_SNAPSIM_CONTROL,
# DOKU_BRIDGED_PID and DOKU_TRACE_FILE are set.
ctl=${DOKUCTL:?}
control=http://${DOKU_SNAPSIM_CONTROL:?}/control
phone=0812$(printf '%08d' $((RANDOM * RANDOM % 100000000)))
run=$(date +%s)
pin=246810
out=$(mktemp)
trap 'rm -f "$out"' EXIT

call() {
  if ! "$ctl" "$@" > "$out"; then
    echo "trace_rpc: dokuctl $* failed" >&2
    exit 1
  fi
}
field() { jq -r "$1 // empty" "$out"; }
customer() { curl -fsS "$control/$1" -d "$2"; }
# mark N: SIGUSR2 to the daemon, and wait until it has written "mark N".
mark() {
  sleep "$SETTLE"
  kill -USR2 "${DOKU_BRIDGED_PID:?}"
  for _ in $(seq 200); do
    [[ $(tail -n 1 "${DOKU_TRACE_FILE:?}" 2>/dev/null) == "mark $1" ]] && return
    sleep 0.05
  done
  echo "trace_rpc: the daemon wrote no 'mark $1' to $DOKU_TRACE_FILE" >&2
  exit 1
}
balance() { call --customer budi get-balance "{\"partnerReferenceNo\":\"$1-$run\"}"; }
top_up() {
  call --customer budi top-up "{\"partnerReferenceNo\":\"$1-$run\",\"customerNumber\":\"$account\",\"amount\":{\"value\":\"10000.00\",\"currency\":\"IDR\"},\"sessionId\":\"web-$run\",\"notes\":\"trace\"}"
}

# A customer with a bound account and a session (as scripts/wallet-flow.sh).
call create-account "{\"partnerReferenceNo\":\"reg-$run\",\"name\":\"Budi Santoso\",\"phoneNo\":\"$phone\",\"email\":\"budi.$run@example.com\",\"redirectUrl\":\"https://shop.example/pin\"}"
reg_ref=$(field .referenceNo)
otp=$(curl -fsS "$control/otps?phoneNo=$phone" | jq -r '.[0].otp')
call verify-otp "{\"originalPartnerReferenceNo\":\"reg-$run\",\"originalReferenceNo\":\"$reg_ref\",\"otp\":\"$otp\"}"
account=$(customer pin "{\"phoneNo\":\"$phone\",\"pin\":\"$pin\"}" | jq -r .accountId)
call bind-account "{\"partnerReferenceNo\":\"bind-$run\",\"redirectUrl\":\"https://shop.example/bound\",\"successParams\":{\"accountId\":\"$phone\"}}"
customer bindings/approve "{\"linkId\":\"$(field .linkId)\",\"pin\":\"$pin\"}" > /dev/null
call inquire-account "{\"partnerReferenceNo\":\"bind-$run\"}"
call --customer budi open-customer-session "{\"authCode\":\"$(field .additionalInfo.authCode)\"}"

balance warm-bal
top_up warm-top
mark 1
balance bal
mark 2
top_up top
mark 3
