#!/usr/bin/env bash
# The sidecar image, built and run as a user runs it:
#   container.sh SOURCE-DIR DOKU-SNAPSIM MKCREDS
# Builds the image with packaging/container/podman.sh build (the command
# docs/deploy.md gives), then, against doku-snapsim on the host's loopback:
# - the sidecar: --read-only, --cap-drop=ALL, uid 10001, its secrets mounted
#   read-only, the state on a volume, the socket on a volume shared with an
#   "app" container (uid 1000, allowed by the ACL) that runs dokuctl: Health,
#   a customer bound and their GetBalance, a TopUp (journaled);
# - a uid the ACL does not admit (1001) is refused;
# - the daemon's uid and capabilities, the socket's and the state's modes;
# - the HEALTHCHECK passes, and fails while the daemon is stopped (SIGSTOP);
# - SIGHUP after a secret file was rotated: a wrong client secret is used
#   (DOKU refuses), the right one again after the next rotation;
# - podman stop (SIGTERM) drains a GetBalance in flight; the container exits 0;
# - a new container on the same state volume keeps the session and the journal;
# - a fleet: two sidecars on one PostgreSQL (on the host's loopback, made by
#   tests/tools/pg_run.sh: TLS verified against its CA, the role doku, its
#   password in a read-only mounted secret file), the state key shared: a
#   customer bound and their session opened through A is served through B, a
#   TopUp through B is journaled for A, and the two share one B2B token (DOKU
#   issued one; A's metrics count the lease, B's none); A's state volume stays
#   empty, B runs without one; the secrets stay out of the logs.
# Exits 77 (skipped), saying why, only when podman cannot run here. Every wait
# polls a state (socket, health, log line, inspect) with a bound; none sleeps
# for a guessed time. Containers, volumes and the image are removed at the end;
# the base and the build's dependency layers stay cached (podman.sh).
set -euo pipefail
top=$(realpath "$1")
snapsim=$(realpath "$2")
mkcreds=$(realpath "$3")
podman_sh=$top/packaging/container/podman.sh
started=$(date +%s)

skip() { echo "SKIP: $*"; exit 77; }
for tool in podman runc mmdebstrap curl jq; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps.sh installs it)"
done
[ "$(id -u)" -eq 0 ] || skip "the container test runs as root (rootful podman, mmdebstrap --mode=root)"
pm() { "$podman_sh" "$@"; }
if ! err=$(pm info 2>&1 >/dev/null); then
  skip "podman cannot run here: ${err##*$'\n'}"
fi
# The fleet's PostgreSQL: the whole test runs inside pg_run.sh (a throwaway
# cluster, started here, dropped when the test ends), with the caller's umask
# (pg_run.sh's is 077).
if [ -z "${DOKU_TEST_PG_CONNINFO:-}" ]; then
  command -v pg_virtualenv >/dev/null ||
    { echo "FAIL: pg_virtualenv is not installed (postgresql: scripts/install-deps.sh)" >&2; exit 1; }
  DOKU_TEST_UMASK=$(umask) exec bash "$top/tests/tools/pg_run.sh" bash "$(realpath "$0")" "$top" "$snapsim" "$mkcreds"
fi
umask "${DOKU_TEST_UMASK:-0022}"

id=$$
image=localhost/doku-bridge:test-$id
names=doku-bridge-test-$id # every container's name starts so
side=$names
sock_vol=doku-bridge-test-sock-$id
state_vol=doku-bridge-test-state-$id
# the fleet's: A's socket and state (as compose.yaml), B's socket (no state volume)
a_sock=doku-bridge-test-fleet-a-sock-$id
a_state=doku-bridge-test-fleet-a-state-$id
b_sock=doku-bridge-test-fleet-b-sock-$id
work=$(mktemp -d)
sim_pid=
before_images=$work/images-before

fail() {
  echo "FAIL: $*" >&2
  for c in $(pm ps -a --filter "name=^$names" --format '{{.Names}}'); do
    echo "---- podman logs $c (last 60 lines)" >&2
    pm logs --tail 60 "$c" >&2 || true
  done
  echo "---- doku-snapsim (last 30 lines)" >&2
  tail -n 30 "$work/snapsim.log" >&2 || true
  exit 1
}

cleanup() {
  set +e
  for c in $(pm ps -a --filter "name=^$names" --format '{{.Names}}'); do
    pm rm -f -t 0 "$c" >/dev/null
  done
  pm volume rm -f "$sock_vol" "$state_vol" "$a_sock" "$a_state" "$b_sock" >/dev/null 2>&1
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null; fi
  # --no-prune: podman rmi would also remove the untagged parents, the cache.
  pm rmi --no-prune -f "$image" >/dev/null 2>&1
  # The images this build made, but the two dependency layers (the RUN apt-get
  # of each stage): they are the build's cache, like the base.
  if [ -f "$before_images" ]; then
    local left=1
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      [ "$left" -gt 0 ] || break
      left=0
      for img in $(pm images -a -q --no-trunc | sort -u | comm -13 "$before_images" -); do
        if pm history --no-trunc --format '{{.CreatedBy}}' "$img" 2>/dev/null |
          head -n 1 | grep -q 'apt-get update'; then
          continue
        fi
        pm rmi --no-prune "$img" >/dev/null 2>&1 || left=$((left + 1))
      done
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# poll SECONDS WHAT CMD...: run CMD until it succeeds, at most SECONDS.
poll() {
  local end=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || fail "timed out waiting for: $what"
    sleep 0.2
  done
}

echo "== build: packaging/container/podman.sh build $image"
pm images -a -q --no-trunc | sort -u >"$before_images"
t0=$(date +%s)
pm build "$image" >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "the image did not build"; }
echo "built in $(($(date +%s) - t0)) s; $(pm image inspect --format '{{.Size}}' "$image" | numfmt --to=si)B"

echo "== the image: no build stage, no compiler, no tests; every library found"
# shellcheck disable=SC2016 # (expanded in the container)
pm run --rm --network none --no-healthcheck --entrypoint sh "$image" -c '
  set -e
  for p in /build /src /staging /usr/bin/gcc /usr/bin/cc /usr/bin/cmake /usr/bin/doku-snapsim; do
    [ ! -e "$p" ] || { echo "$p is in the image"; exit 1; }
  done
  ! dpkg-query -W -f="\${Package}\n" | grep -E "^(gcc|cpp|cmake|ninja-build|.*-dev)$"
  ! ldd /usr/sbin/doku-bridged /usr/bin/dokuctl | grep -F "not found"
  [ "$(id -u):$(id -g)" = 10001:10001 ]' || fail "the image's content"
[ "$(pm image inspect --format '{{.Config.Healthcheck.Test}}' "$image")" != "[]" ] ||
  fail "the image has no HEALTHCHECK (built as OCI?)"

echo "== doku-snapsim on the host's loopback, throwaway credentials"
bash "$mkcreds" "$work/creds" >/dev/null
mkfifo "$work/sim.out"
"$snapsim" --listen 127.0.0.1:0 --control 127.0.0.1:0 \
  --tls-cert "$work/creds/server.pem" --tls-key "$work/creds/server.key" \
  --client-id "$(<"$work/creds/client-id")" \
  --client-secret-file "$work/creds/client-secret" \
  --partner-public-key "$work/creds/partner.pub" >"$work/sim.out" 2>"$work/snapsim.log" &
sim_pid=$!
exec 4<"$work/sim.out"
ready=
while read -r -t 30 -u 4 line; do
  if [[ $line == "doku-snapsim ready"* ]]; then ready=$line; break; fi
done
[ -n "$ready" ] || fail "doku-snapsim did not become ready"
cat <&4 >>"$work/snapsim.log" &
https=$(sed -n 's/.*https=\([^ ]*\).*/\1/p' <<<"$ready")
control=http://$(sed -n 's/.*control=\([^ ]*\).*/\1/p' <<<"$ready")/control

# The mounted secrets, as compose.yaml says: the daemon's uid's, 0400.
make_secrets() { # DIR [FILE...]: the credentials, and those files
  mkdir -m 0755 "$1"
  cp "$work/creds/client-secret" "$work/creds/client-id" "$work/creds/ca.pem" "$1/"
  cp "$work/creds/partner.key" "$1/private-key.pem"
  [ $# -lt 2 ] || cp "${@:2}" "$1/"
  chown 10001:10001 "$1"/*
  chmod 0400 "$1"/*
}
secrets=$work/secrets
make_secrets "$secrets"

pm volume create "$sock_vol" >/dev/null
pm volume create "$state_vol" >/dev/null

# The sidecar as compose.yaml runs it (there, the app joins the socket's group
# with group_add; the base URL is DOKU's sandbox instead of doku-snapsim).
# STATE-VOLUME '': none (a fleet's member keeps nothing there).
start_sidecar() { # NAME [SOCKET-VOLUME STATE-VOLUME SECRETS [PODMAN-RUN-ARGS...]]
  local name=$1 sock=${2:-$sock_vol} state=${3-$state_vol} secret_dir=${4:-$secrets}
  shift $(($# < 4 ? $# : 4))
  if [ -n "$state" ]; then set -- -v "$state:/var/lib/doku-bridge" "$@"; fi
  pm run -d --name "$name" --network host --health-interval disable \
    --user 10001:10001 --read-only --cap-drop=ALL --security-opt no-new-privileges \
    -e DOKU_BASE_URL="https://$https" -e DOKU_CLIENT_UIDS=1000 \
    -e DOKU_SECRETS_DIR=/run/secrets/doku-bridge \
    -v "$secret_dir:/run/secrets/doku-bridge:ro" \
    -v "$sock:/run/doku-bridge" \
    --tmpfs /run/doku-bridged:rw,noexec,nosuid,nodev,size=1m,mode=0700,U \
    "$@" "$image" >/dev/null 2>"$work/run.err" || fail "podman run: $(<"$work/run.err")"
  poll 60 "$name healthy (HEALTHCHECK)" pm healthcheck run "$name"
}
# app [--user UID] [--socket VOLUME] DOKUCTL-ARGS...: dokuctl in an application's
# container (another uid, the socket's group), nothing shared but the socket's
# volume [$sock_vol].
app() {
  local user=1000 vol=$sock_vol
  if [ "$1" = --user ]; then user=$2; shift 2; fi
  if [ "$1" = --socket ]; then vol=$2; shift 2; fi
  pm run --rm --network none --no-healthcheck --user "$user:$user" --group-add 10001 \
    --read-only --cap-drop=ALL --security-opt no-new-privileges \
    -v "$vol:/run/doku-bridge" --entrypoint dokuctl "$image" "$@"
}
out=$work/out
call() { # dokuctl arguments: the reply in $out; fails on a non-zero status
  app "$@" >"$out" 2>"$work/err" || fail "dokuctl $* ($(<"$work/err"))"
}
field() { jq -r "$1 // empty" "$out"; }
customer() { curl -fsS "$control/$1" -d "$2"; }
pin=246810
# onboard SOCKET-VOLUME CUSTOMER TAG: a new DOKU account registered (OTP), its
# PIN set, bound, and its customer session opened as CUSTOMER, every call
# through the sidecar of SOCKET-VOLUME; its account id in $account.
onboard() {
  local vol=$1 ref=$2 tag=$3 phone reg_ref otp
  phone=0812$(printf '%08d' $((RANDOM * RANDOM % 100000000)))
  call --socket "$vol" create-account "{\"partnerReferenceNo\":\"reg-$tag\",\"name\":\"Budi Santoso\",\"phoneNo\":\"$phone\",\"email\":\"budi.$tag@example.com\",\"redirectUrl\":\"https://shop.example/pin\"}"
  reg_ref=$(field .referenceNo)
  otp=$(curl -fsS "$control/otps?phoneNo=$phone" | jq -r '.[0].otp')
  call --socket "$vol" verify-otp "{\"originalPartnerReferenceNo\":\"reg-$tag\",\"originalReferenceNo\":\"$reg_ref\",\"otp\":\"$otp\"}"
  account=$(customer pin "{\"phoneNo\":\"$phone\",\"pin\":\"$pin\"}" | jq -r .accountId)
  call --socket "$vol" bind-account "{\"partnerReferenceNo\":\"bind-$tag\",\"redirectUrl\":\"https://shop.example/bound\",\"successParams\":{\"accountId\":\"$phone\"}}"
  customer bindings/approve "{\"linkId\":\"$(field .linkId)\",\"pin\":\"$pin\"}" >/dev/null
  call --socket "$vol" inquire-account "{\"partnerReferenceNo\":\"bind-$tag\"}"
  call --socket "$vol" --customer "$ref" open-customer-session "{\"authCode\":\"$(field .additionalInfo.authCode)\"}"
}

echo "== the sidecar starts, read-only, without capabilities, as uid 10001"
t0=$(date +%s)
start_sidecar "$side"
echo "healthy in $(($(date +%s) - t0)) s"
[ "$(pm inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$side")" = true ] || fail "root fs not read-only"
# (names: uid and gid 10001 are doku-bridge in the image)
pm top "$side" user group capeff args >"$work/top"
grep -q 'doku-bridged' "$work/top" || fail "no doku-bridged in the container: $(<"$work/top")"
awk 'NR > 1 && $0 ~ /doku-bridged --config/ { if ($1 != "doku-bridge" || $2 != "doku-bridge") bad = 1; if ($3 != "none") bad = 1 } END { exit bad }' \
  "$work/top" || fail "the daemon runs with the wrong uid or capabilities: $(<"$work/top")"
# shellcheck disable=SC2016 # (expanded in the container)
perms=$(pm exec "$side" sh -c 'stat -c "%n %a %u:%g %F" /run/doku-bridge /run/doku-bridge/bridge.sock \
  /var/lib/doku-bridge/state /var/lib/doku-bridge/state/state.key /run/doku-bridged/doku-bridged \
  /run/doku-bridged/doku-bridged/credentials /run/doku-bridged/doku-bridged/credentials/client-secret')
echo "$perms"
while read -r path mode owner _; do
  case $path in
    /run/doku-bridge) want=750 ;;
    /run/doku-bridge/bridge.sock) want=660 ;;
    */state.key | */client-secret) want=600 ;;
    *) want=700 ;;
  esac
  [ "$mode" = "$want" ] || fail "$path has mode $mode, docs/deploy.md promises $want"
  [ "$owner" = 10001:10001 ] || fail "$path belongs to $owner, not 10001:10001"
done <<<"$perms"

echo "== the app (uid 1000) through the shared socket: Health, a customer, GetBalance, TopUp"
call health '{}'
run=$id-$(date +%s)
onboard "$sock_vol" budi "$run"
call --customer budi get-balance "{\"partnerReferenceNo\":\"bal1-$run\"}"
[ "$(field .accountInfo.amount.value)" = 0.00 ] || fail "balance: $(<"$out")"
call --customer budi top-up "{\"partnerReferenceNo\":\"top-$run\",\"customerNumber\":\"$account\",\"amount\":{\"value\":\"150000.00\",\"currency\":\"IDR\"},\"sessionId\":\"web-$run\",\"notes\":\"welcome\"}"
call --customer budi get-balance "{\"partnerReferenceNo\":\"bal2-$run\"}"
[ "$(field .accountInfo.amount.value)" = 150000.00 ] || fail "balance after the top-up: $(<"$out")"

echo "== a uid the ACL does not admit (1001, in the socket's group) is refused"
rc=0
app --user 1001 health '{}' >"$out" 2>"$work/err" || rc=$?
[ "$rc" -ne 0 ] || fail "uid 1001 was served"
grep -q PERMISSION_DENIED "$work/err" || fail "uid 1001: exit $rc, $(<"$work/err")"

echo "== the HEALTHCHECK fails while the daemon is stopped"
# shellcheck disable=SC2016 # (expanded in the container)
daemon_pid=$(pm exec "$side" sh -c 'for p in /proc/[0-9]*; do
  case "$(tr "\0" " " <"$p/cmdline")" in doku-bridged\ --config*) echo "${p#/proc/}";; esac; done')
[ -n "$daemon_pid" ] || fail "no daemon process in the container"
pm exec "$side" sh -c "kill -STOP $daemon_pid"
if pm healthcheck run "$side" >/dev/null 2>&1; then
  pm exec "$side" sh -c "kill -CONT $daemon_pid"
  fail "the health check passed with the daemon stopped"
fi
pm exec "$side" sh -c "kill -CONT $daemon_pid"
poll 20 "healthy again" pm healthcheck run "$side"

echo "== SIGHUP after a rotated secret file: the entrypoint's copy, the daemon's reload"
rotate() { # CLIENT-SECRET: replaced as a Secret or compose updates it, then SIGHUP
  local reloads
  reloads=$(pm logs "$side" 2>&1 | grep -c 'configuration reloaded' || true)
  printf '%s' "$1" >"$secrets/.client-secret.new"
  chown 10001:10001 "$secrets/.client-secret.new"
  chmod 0400 "$secrets/.client-secret.new"
  mv -f "$secrets/.client-secret.new" "$secrets/client-secret"
  pm kill --signal HUP "$side" >/dev/null
  # shellcheck disable=SC2317
  reloaded() { [ "$(pm logs "$side" 2>&1 | grep -c 'configuration reloaded')" -gt "$reloads" ]; }
  poll 20 "the reload logged" reloaded
}
rotate "SK-wrong-$run"
[ "$(pm exec "$side" cat /run/doku-bridged/doku-bridged/credentials/client-secret)" = "SK-wrong-$run" ] ||
  fail "the entrypoint did not copy the rotated secret"
rc=0
app --customer budi get-balance "{\"partnerReferenceNo\":\"bal-wrong-$run\"}" >"$out" 2>"$work/err" || rc=$?
[ "$rc" -eq 1 ] || fail "a call signed with the wrong secret: exit $rc ($(<"$work/err"))"
rotate "$(<"$work/creds/client-secret")"
call --customer budi get-balance "{\"partnerReferenceNo\":\"bal3-$run\"}"

echo "== podman stop (SIGTERM) drains a GetBalance in flight; the container exits 0"
curl -fsS "$control/faults" -d '{"path":"/snap-adapter/b2b2c/v1.0/balance-inquiry","kind":"delay","delayMs":3000,"count":1}' >/dev/null
app --customer budi get-balance "{\"partnerReferenceNo\":\"bal4-$run\"}" >"$work/inflight.out" 2>"$work/inflight.err" &
inflight=$!
# (a fault armed for one request leaves the list when that request takes it)
# shellcheck disable=SC2317
fault_fired() { [ "$(curl -fsS "$control/faults" | jq length)" = 0 ]; }
poll 30 "the GetBalance held by doku-snapsim" fault_fired
t0=$(date +%s)
pm stop -t 30 "$side" >/dev/null
rc=0
wait "$inflight" || rc=$?
[ "$rc" -eq 0 ] || fail "the call in flight was not drained: exit $rc ($(<"$work/inflight.err"))"
[ "$(jq -r .accountInfo.amount.value "$work/inflight.out")" = 150000.00 ] || fail "drained reply: $(<"$work/inflight.out")"
[ "$(pm inspect --format '{{.State.ExitCode}}' "$side")" = 0 ] ||
  fail "the container exited with $(pm inspect --format '{{.State.ExitCode}}' "$side")"
echo "stopped in $(($(date +%s) - t0)) s (the call held 3 s)"
if pm healthcheck run "$side" >/dev/null 2>&1; then fail "the health check passed with the sidecar stopped"; fi

echo "== a new container on the same state volume: the session and the journal are kept"
pm rm "$side" >/dev/null
start_sidecar "$side-2"
side=$side-2
call --customer budi get-balance "{\"partnerReferenceNo\":\"bal5-$run\"}"
[ "$(field .accountInfo.amount.value)" = 150000.00 ] || fail "balance after the restart: $(<"$out")"
call get-operation "{\"partnerReferenceNo\":\"top-$run\"}"
jq -e '.. | strings | select(test("DONE"))' "$out" >/dev/null || fail "the top-up's journal row: $(<"$out")"
pm stop -t 30 "$side" >/dev/null
[ "$(pm inspect --format '{{.State.ExitCode}}' "$side")" = 0 ] || fail "the second container's exit status"

echo "== a fleet: sidecars A and B on one PostgreSQL (the host's, verify-full), one state key"
fleet_started=$(date +%s)
# As compose.fleet.yaml adds: the secrets, plus the fleet's state key (one file
# for every member), the database's password and its CA; DOKU_STATE_POSTGRES,
# the connection string without the password. The host's loopback is the
# containers' (--network host); pg_run.sh's server certificate names localhost.
openssl rand -hex 32 >"$work/state.key"
cp "$DOKU_TEST_PG_PASSWORD_FILE" "$work/db-password"
cp "$DOKU_TEST_PG_CA" "$work/db-ca.pem"
fleet_secrets=$work/fleet-secrets
make_secrets "$fleet_secrets" "$work/state.key" "$work/db-password" "$work/db-ca.pem"
pg=${DOKU_TEST_PG_CONNINFO/sslmode=require/sslmode=verify-full}
[ "$pg" != "$DOKU_TEST_PG_CONNINFO" ] || fail "pg_run.sh's connection string: $pg"
pg="$pg sslrootcert=/run/secrets/doku-bridge/db-ca.pem"
echo "DOKU_STATE_POSTGRES=$pg"
counters() { curl -fsS "$control/counters" | jq -c .tokens; }
before=$(counters)
a=$names-fleet-a b=$names-fleet-b
for v in "$a_sock" "$a_state" "$b_sock"; do pm volume create "$v" >/dev/null; done
t0=$(date +%s)
start_sidecar "$a" "$a_sock" "$a_state" "$fleet_secrets" -e DOKU_STATE_POSTGRES="$pg"
start_sidecar "$b" "$b_sock" '' "$fleet_secrets" -e DOKU_STATE_POSTGRES="$pg"
echo "both healthy in $(($(date +%s) - t0)) s"
for c in "$a" "$b"; do
  pm logs "$c" >"$work/fleet.log" 2>&1
  grep -q "state: the fleet's PostgreSQL open" "$work/fleet.log" || fail "$c is not on the fleet's PostgreSQL"
done

echo "== a customer bound and their session opened through A, served through B"
fleet_run=$run-fleet
onboard "$a_sock" siti "$fleet_run"
call --socket "$b_sock" --customer siti get-balance "{\"partnerReferenceNo\":\"fbal1-$fleet_run\"}"
[ "$(field .accountInfo.amount.value)" = 0.00 ] || fail "balance through B: $(<"$out")"
call --socket "$b_sock" --customer siti top-up "{\"partnerReferenceNo\":\"ftop-$fleet_run\",\"customerNumber\":\"$account\",\"amount\":{\"value\":\"25000.00\",\"currency\":\"IDR\"},\"sessionId\":\"web-$fleet_run\",\"notes\":\"fleet\"}"
echo "== through A again: the balance B topped up, the TopUp in the journal"
call --socket "$a_sock" --customer siti get-balance "{\"partnerReferenceNo\":\"fbal2-$fleet_run\"}"
[ "$(field .accountInfo.amount.value)" = 25000.00 ] || fail "balance through A after B's top-up: $(<"$out")"
call --socket "$a_sock" get-operation "{\"partnerReferenceNo\":\"ftop-$fleet_run\"}"
jq -e '.. | strings | select(test("DONE"))' "$out" >/dev/null || fail "B's top-up in A's journal: $(<"$out")"

echo "== one B2B token for both: DOKU issued one, one customer token (A's open)"
after=$(counters)
echo "doku-snapsim's tokens before: $before, after: $after"
# shellcheck disable=SC2016 # (jq's variables)
jq -en --argjson x "$before" --argjson y "$after" \
  '$y.b2b - $x.b2b == 1 and $y.b2b2c - $x.b2b2c == 1 and $y.refreshed == $x.refreshed' >/dev/null ||
  fail "the fleet's tokens: before $before, after $after"
metric() { # SOCKET-VOLUME NAME: the value of the metric NAME of that sidecar
  app --socket "$1" metrics '{}' | jq -r .text | awk -v n="$2" '$1 == n { print $2 }'
}
fleet_metrics() { # NAME SOCKET-VOLUME LEASES: the B2B leases it took, its database up
  local leases up
  leases=$(metric "$2" doku_bridge_fleet_leases_total) || fail "dokuctl metrics through $1"
  up=$(metric "$2" doku_bridge_fleet_db_up) || fail "dokuctl metrics through $1"
  echo "$1: doku_bridge_fleet_leases_total $leases, doku_bridge_fleet_db_up $up"
  if [ "$leases" != "$3" ] || [ "$up" != 1 ]; then
    fail "$1's metrics: doku_bridge_fleet_leases_total '$leases' (wanted $3), doku_bridge_fleet_db_up '$up'"
  fi
}
fleet_metrics A "$a_sock" 1
fleet_metrics B "$b_sock" 0

echo "== the fleet stops cleanly; A's state volume is empty; no secret in its logs"
for c in "$a" "$b"; do
  pm stop -t 30 "$c" >/dev/null
  [ "$(pm inspect --format '{{.State.ExitCode}}' "$c")" = 0 ] || fail "$c exited with $(pm inspect --format '{{.State.ExitCode}}' "$c")"
  pm logs "$c" >"$work/fleet.log" 2>&1
  for f in "$work/db-password" "$work/state.key" "$work/creds/client-secret"; do
    if grep -qF "$(<"$f")" "$work/fleet.log"; then fail "$c logged the secret ${f##*/}"; fi
  done
done
state_left=$(ls -A "$(pm volume inspect --format '{{.Mountpoint}}' "$a_state")")
[ -z "$state_left" ] || fail "A's state volume holds: $state_left"
echo "the fleet's phase in $(($(date +%s) - fleet_started)) s"

echo "PASS in $(($(date +%s) - started)) s"
