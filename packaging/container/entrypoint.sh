#!/usr/bin/env bash
# The sidecar's entrypoint: turns the environment and the mounted secret files
# into doku-bridged's configuration, runs the daemon, and on SIGHUP copies the
# secrets again (after the mounted Secret was rotated) before passing the
# reload on. SIGTERM and SIGINT stop the daemon (with SIGTERM: a background
# job of a shell ignores SIGINT); it exits with the daemon's status.
#
# Mounted secrets (Kubernetes Secret files are group-readable symlinks, which
# the daemon refuses) are copied to private 0600 files in DOKU_PRIVATE_DIR,
# which becomes $CREDENTIALS_DIRECTORY: relative *_file paths name them.
#
# Environment [default]:
#   DOKU_CONFIG        a complete configuration file, used instead of the
#                      settings below; its relative *_file paths name secret files
#   DOKU_BASE_URL      the DOKU API base URL (required without DOKU_CONFIG)
#   DOKU_CLIENT_ID     the merchant's client id [the secret file client-id]
#   DOKU_CLIENT_UIDS   uids that may call, comma-separated (the app's container)
#   DOKU_CLIENT_GIDS   gids that may call, comma-separated
#   DOKU_CLIENT_METHODS  the methods they may call, comma-separated [*]
#   DOKU_SOCKET_GROUP  the socket's group [the daemon's group]
#   DOKU_STATE_POSTGRES  a member of a fleet (docs/fleet.md): the libpq connection
#                      string of the PostgreSQL the fleet shares, without a password
#                      (state_backend = postgres); needs the secret file state.key
#   DOKU_SECRETS_DIR   the mounted secrets: client-secret, private-key.pem,
#                      optional ca.pem and client-id; state.key (the state key:
#                      the same in every member of a fleet; without it, the daemon
#                      makes one in the state directory), db-password (the
#                      database's, with DOKU_STATE_POSTGRES) [/run/secrets/doku-bridge]
#   DOKU_SOCKET        on the volume shared with the app [/run/doku-bridge/bridge.sock]
#   DOKU_STATE_DIR     [/var/lib/doku-bridge/state] (made here unless on PostgreSQL,
#                      where nothing is kept in it)
#   DOKU_PRIVATE_DIR   private, preferably in memory [/run/doku-bridged]
#   DOKU_BRIDGED       the daemon [doku-bridged]
set -euo pipefail
umask 077

secrets=${DOKU_SECRETS_DIR:-/run/secrets/doku-bridge}
socket=${DOKU_SOCKET:-/run/doku-bridge/bridge.sock}
state_dir=${DOKU_STATE_DIR:-/var/lib/doku-bridge/state}
private=${DOKU_PRIVATE_DIR:-/run/doku-bridged}/doku-bridged
bridged=${DOKU_BRIDGED:-doku-bridged}
creds=$private/credentials

say() { echo "doku-bridge-entrypoint: $*" >&2; }
die() { say "$*"; exit 78; } # EX_CONFIG

# Copy every mounted secret to a private file (each replaced atomically).
copy_secrets() {
  local f
  for f in "$secrets"/*; do
    [ -f "$f" ] || continue
    install -m 0600 -- "$f" "$creds/.new" || return
    mv -f -- "$creds/.new" "$creds/${f##*/}" || return
  done
}

write_config() {
  local id=${DOKU_CLIENT_ID:-} pg=${DOKU_STATE_POSTGRES:-} v f
  [ -n "${DOKU_BASE_URL:-}" ] || die "DOKU_BASE_URL is not set (or mount a configuration as DOKU_CONFIG)"
  if [ -z "$id" ] && [ -f "$creds/client-id" ]; then
    id=$(<"$creds/client-id")
  fi
  [ -n "$id" ] || die "no client id: set DOKU_CLIENT_ID or put client-id in $secrets"
  for f in client-secret private-key.pem; do
    [ -f "$creds/$f" ] || die "$secrets/$f is missing"
  done
  [ -n "${DOKU_CLIENT_UIDS:-}${DOKU_CLIENT_GIDS:-}" ] ||
    die "no caller allowed: set DOKU_CLIENT_UIDS or DOKU_CLIENT_GIDS"
  if [ -n "$pg" ] && [ ! -f "$creds/state.key" ]; then
    die "DOKU_STATE_POSTGRES: $secrets/state.key is missing (the fleet's state key, the same in every sidecar)"
  fi
  # A line break would start a new line of the file, ';' a comment.
  for v in "$socket" "$state_dir" "$DOKU_BASE_URL" "$id" "${DOKU_SOCKET_GROUP:-}" \
    "${DOKU_CLIENT_UIDS:-}" "${DOKU_CLIENT_GIDS:-}" "${DOKU_CLIENT_METHODS:-}" "$pg"; do
    [[ $v != *[$'\n\r;']* ]] || die "not allowed in the configuration (line break or ';'): ${v@Q}"
  done
  if [ -z "$pg" ]; then
    mkdir -p -- "$state_dir" # 0700 by the umask
  fi
  {
    printf '[bridge]\nsocket = %s\nstate_dir = %s\n' "$socket" "$state_dir"
    if [ -n "$pg" ]; then
      printf 'state_backend = postgres\nstate_postgres = %s\n' "$pg"
      if [ -f "$creds/db-password" ]; then
        printf 'state_postgres_password_file = db-password\n'
      fi
    fi
    if [ -f "$creds/state.key" ]; then
      printf 'state_key_file = state.key\n'
    fi
    if [ -n "${DOKU_SOCKET_GROUP:-}" ]; then
      printf 'socket_group = %s\n' "$DOKU_SOCKET_GROUP"
    fi
    printf '\n[profile.default]\nbase_url = %s\nclient_id = %s\n' "$DOKU_BASE_URL" "$id"
    printf 'client_secret_file = client-secret\nprivate_key_file = private-key.pem\n'
    if [ -f "$creds/ca.pem" ]; then # (a relative ca_file is beside the configuration)
      printf 'ca_file = %s\n' "$creds/ca.pem"
    fi
    printf '\n[client.app]\n'
    if [ -n "${DOKU_CLIENT_UIDS:-}" ]; then
      printf 'uids = %s\n' "$DOKU_CLIENT_UIDS"
    fi
    if [ -n "${DOKU_CLIENT_GIDS:-}" ]; then
      printf 'gids = %s\n' "$DOKU_CLIENT_GIDS"
    fi
    printf 'methods = %s\nprofiles = default\n' "${DOKU_CLIENT_METHODS:-*}"
    # The health check (dokuctl health) runs as the daemon's own user.
    printf '\n[client.healthcheck]\nuids = %s\nmethods = Health\nprofiles = default\n' "$(id -u)"
  } >"$private/doku-bridged.conf"
}

rm -rf -- "$private"
mkdir -p -- "$creds" # 0700 by the umask
copy_secrets
if [ -n "${DOKU_CONFIG:-}" ]; then
  config=$DOKU_CONFIG
else
  write_config
  config=$private/doku-bridged.conf
fi
export CREDENTIALS_DIRECTORY=$creds

pid=
# shellcheck disable=SC2317 # (the handlers are called by trap)
on_hup() {
  if ! copy_secrets; then
    say "SIGHUP: the secrets could not be copied; the daemon keeps the ones it has"
    return
  fi
  if [ -n "$pid" ]; then kill -HUP "$pid"; fi
}
# shellcheck disable=SC2317
on_stop() {
  if [ -z "$pid" ]; then exit 143; fi
  kill -TERM "$pid"
}
trap on_hup HUP
trap on_stop TERM INT
"$bridged" --config "$config" &
pid=$!
# wait returns early for each trapped signal: wait again until the daemon is gone.
while kill -0 "$pid" 2>/dev/null; do
  wait "$pid" || true
done
rc=0
wait "$pid" || rc=$?
exit "$rc"
