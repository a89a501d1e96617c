#!/usr/bin/env bash
# Tests of the sidecar's entrypoint, outside a container:
#   entrypoint.sh ENTRYPOINT [DOKU-BRIDGED MKCREDS]
# A fake doku-bridged copies what it was given and reports on a FIFO: "ready
# PID" (PID: the entrypoint's), "hup SECRET" (the client secret it would read
# on reload), "term". Every wait is bounded by `read -t` or `timeout`. Given
# the real daemon, its --check-config accepts the configuration written.
set -euo pipefail
entrypoint=$(realpath "$1")
bridged=${2:+$(realpath "$2")}
mkcreds=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }

cat >fake-bridged <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
[ "$1" = --config ] || exit 64
cp "$2" "$FAKE_DIR/config"
echo "$CREDENTIALS_DIRECTORY" >"$FAKE_DIR/credentials"
[ -z "${FAKE_START_EXIT:-}" ] || exit "$FAKE_START_EXIT"
sleep infinity &
sleeper=$!
trap 'kill "$sleeper" 2>/dev/null || true' EXIT
trap 'echo "hup $(<"$CREDENTIALS_DIRECTORY/client-secret")" >"$FAKE_DIR/out"' HUP
trap 'echo term >"$FAKE_DIR/out"; exit "${FAKE_EXIT:-0}"' TERM
echo "ready $PPID" >"$FAKE_DIR/out"
while :; do wait "$sleeper" || true; done
EOF
chmod +x fake-bridged
mkfifo out
exec 3<>out # held open for reading and writing: the fake's writes never block

# A Secret mounted the way Kubernetes mounts it: world-readable files behind
# symlinks into a ..data directory, swapped atomically on update.
secret_generation() { # NAME CLIENT-SECRET
  mkdir "secrets/$1"
  printf '%s' "$2" >"secrets/$1/client-secret"
  printf 'KEY\n' >"secrets/$1/private-key.pem"
  printf 'BRN-0001-42' >"secrets/$1/client-id"
  printf 'CA\n' >"secrets/$1/ca.pem"
  chmod 0644 "secrets/$1"/*
  ln -sfn "$1" secrets/..data_tmp
  mv -T secrets/..data_tmp secrets/..data
}
mkdir secrets
secret_generation ..gen1 SK-first
for f in client-secret private-key.pem client-id ca.pem; do ln -s "..data/$f" "secrets/$f"; done

export DOKU_SECRETS_DIR=$work/secrets DOKU_PRIVATE_DIR=$work/private \
  DOKU_STATE_DIR=$work/state/s DOKU_SOCKET=$work/shared/bridge.sock \
  DOKU_BRIDGED=$work/fake-bridged FAKE_DIR=$work \
  DOKU_BASE_URL=https://api-sandbox.doku.com DOKU_CLIENT_UIDS=1000,1001
unset DOKU_CONFIG DOKU_CLIENT_ID DOKU_CLIENT_GIDS DOKU_CLIENT_METHODS DOKU_SOCKET_GROUP \
  CREDENTIALS_DIRECTORY

expect() { # LINE-PREFIX: the fake's next report starts with it; sets $reply
  read -r -t 10 -u 3 reply || fail "no report from the fake daemon (wanted '$1')"
  [[ $reply == "$1"* ]] || fail "the fake daemon reported '$reply', wanted '$1'"
}
start() { # the entrypoint in the background: $ep is timeout's pid
  rm -f config credentials
  timeout 30 "$entrypoint" &
  ep=$!
}
finish() { # STATUS: the entrypoint exits with STATUS
  local rc=0
  wait "$ep" || rc=$?
  [ "$rc" -eq "$1" ] || fail "the entrypoint exited with $rc, wanted $1"
}
refused() { # MESSAGE VAR=VALUE...: the entrypoint refuses to start
  local msg=$1 err rc=0
  shift
  rm -f config
  err=$(timeout 10 env "$@" "$entrypoint" 2>&1) || rc=$?
  [ "$rc" -eq 78 ] || fail "$*: exit $rc, wanted 78 ($err)"
  [[ $err == *"$msg"* ]] || fail "$*: message '$err', wanted '$msg'"
  [ ! -e config ] || fail "$*: the daemon was started"
}

echo "== a configuration from the environment and the mounted secrets"
start
expect ready
pid=${reply#ready }
diff -u - config <<EOF || fail "generated configuration"
[bridge]
socket = $work/shared/bridge.sock
state_dir = $work/state/s

[profile.default]
base_url = https://api-sandbox.doku.com
client_id = BRN-0001-42
client_secret_file = client-secret
private_key_file = private-key.pem
ca_file = $work/private/doku-bridged/credentials/ca.pem

[client.app]
uids = 1000,1001
methods = *
profiles = default

[client.healthcheck]
uids = $(id -u)
methods = Health
profiles = default
EOF
creds=$(<credentials)
[ "$creds" = "$work/private/doku-bridged/credentials" ] || fail "CREDENTIALS_DIRECTORY=$creds"
for f in client-secret private-key.pem ca.pem; do
  [ "$(stat -c %a "$creds/$f")" = 600 ] || fail "$f is not private: $(stat -c %a "$creds/$f")"
  [ ! -L "$creds/$f" ] || fail "$f is a symlink"
  cmp -s "$creds/$f" "secrets/$f" || fail "$f differs from the mounted secret"
done
for d in "$creds" "$work/private/doku-bridged" state/s; do
  [ "$(stat -c %a "$d")" = 700 ] || fail "$d has mode $(stat -c %a "$d")"
done

echo "== SIGHUP after a rotation: the new secret is copied before the daemon reloads"
secret_generation ..gen2 SK-second
kill -HUP "$pid"
expect "hup SK-second"

echo "== SIGTERM is passed on; the daemon's status is the entrypoint's"
kill -TERM "$pid"
expect term
finish 0

FAKE_EXIT=3 start
expect ready
kill -TERM "${reply#ready }"
expect term
finish 3

echo "== a daemon that fails at start"
FAKE_START_EXIT=5 start
finish 5

echo "== a mounted configuration is used as it is"
printf '[bridge]\n; mounted\n' >mounted.conf
DOKU_CONFIG=$work/mounted.conf DOKU_BASE_URL='' DOKU_CLIENT_UIDS='' start
expect ready
cmp -s config mounted.conf || fail "the mounted configuration was not used"
[ -f "$(<credentials)/client-secret" ] || fail "no secrets copied with DOKU_CONFIG"
echo "== SIGINT stops the daemon with SIGTERM"
kill -INT "${reply#ready }"
expect term
finish 0

echo "== a member of a fleet: PostgreSQL, the fleet's state key, the database's password"
mkdir fleet-secrets
cp -L secrets/client-secret secrets/private-key.pem secrets/client-id fleet-secrets/
printf '%064d\n' 7 >fleet-secrets/state.key
printf 'db-pw' >fleet-secrets/db-password
chmod 0400 fleet-secrets/*
pg='host=db.example port=5432 dbname=doku user=doku sslmode=verify-full sslrootcert=/run/secrets/doku-bridge/db-ca.pem'
rm -rf state
DOKU_SECRETS_DIR=$work/fleet-secrets DOKU_STATE_POSTGRES=$pg start
expect ready
diff -u - config <<EOF || fail "generated configuration of a fleet member"
[bridge]
socket = $work/shared/bridge.sock
state_dir = $work/state/s
state_backend = postgres
state_postgres = $pg
state_postgres_password_file = db-password
state_key_file = state.key

[profile.default]
base_url = https://api-sandbox.doku.com
client_id = BRN-0001-42
client_secret_file = client-secret
private_key_file = private-key.pem

[client.app]
uids = 1000,1001
methods = *
profiles = default

[client.healthcheck]
uids = $(id -u)
methods = Health
profiles = default
EOF
creds=$(<credentials)
for f in state.key db-password; do
  [ "$(stat -c %a "$creds/$f")" = 600 ] || fail "$f is not private: $(stat -c %a "$creds/$f")"
  cmp -s "$creds/$f" "fleet-secrets/$f" || fail "$f differs from the mounted secret"
done
# (nothing is kept there: a read-only root needs no volume for it)
[ ! -e state ] || fail "the state directory was made for a member of a fleet"
kill -TERM "${reply#ready }"
expect term
finish 0
refused "state.key is missing" DOKU_STATE_POSTGRES="$pg"
refused "not allowed in the configuration" DOKU_SECRETS_DIR="$work/fleet-secrets" \
  DOKU_STATE_POSTGRES=$'host=db\nstate_backend = sqlite'

echo "== settings refused"
refused "DOKU_BASE_URL is not set" DOKU_BASE_URL=
refused "no caller allowed" DOKU_CLIENT_UIDS=
refused "not allowed in the configuration" DOKU_CLIENT_ID=$'BRN-1\n[client.evil]\nuids = 0'
refused "not allowed in the configuration" DOKU_CLIENT_GIDS='100 ; comment'
rm secrets/private-key.pem
refused "private-key.pem is missing"

if [ -n "$bridged" ]; then
  echo "== the real daemon accepts the configuration and the secrets' copies"
  bash "$mkcreds" creds >/dev/null
  mkdir real-secrets
  cp creds/client-secret creds/client-id creds/ca.pem real-secrets/
  cp creds/partner.key real-secrets/private-key.pem
  chmod 0644 real-secrets/*
  printf '#!/bin/sh\nexec "%s" "$@" --check-config\n' "$bridged" >check-bridged
  chmod +x check-bridged
  out=$(DOKU_SECRETS_DIR=$work/real-secrets DOKU_BRIDGED=$work/check-bridged \
    timeout 20 "$entrypoint" 2>&1) || fail "doku-bridged --check-config: $out"
  echo "$out"
  echo "== ... and a fleet member's"
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >real-secrets/state.key
  printf 'db-pw' >real-secrets/db-password
  chmod 0644 real-secrets/*
  out=$(DOKU_SECRETS_DIR=$work/real-secrets DOKU_BRIDGED=$work/check-bridged \
    DOKU_STATE_POSTGRES="host=db.example dbname=doku user=doku sslmode=verify-full" \
    timeout 20 "$entrypoint" 2>&1) || fail "doku-bridged --check-config (fleet): $out"
  echo "$out"
fi

echo "PASS"
