#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL server: tests/tools/pg_run.sh CMD [ARG...]
#
# Debian's pg_virtualenv (postgresql-common; works as root) makes a temporary
# cluster, with TLS on (a server certificate for localhost signed by a CA made
# here and thrown away with it), runs CMD with PGHOST/PGPORT/PGUSER/PGPASSWORD/
# PGDATABASE set to its superuser, and drops the cluster. Inside, the daemon's
# role is made as docs/fleet.md says: a non-superuser `doku` with only
#
#   CREATE ROLE doku LOGIN PASSWORD '...';            -- no SUPERUSER, CREATEDB, CREATEROLE
#   CREATE DATABASE doku;
#   REVOKE ALL ON DATABASE doku FROM PUBLIC;
#   GRANT CONNECT ON DATABASE doku TO doku;           -- (CONNECT, TEMPORARY not needed)
#   \c doku
#   REVOKE ALL ON SCHEMA public FROM PUBLIC;
#   CREATE SCHEMA doku AUTHORIZATION doku;            -- its own schema: it creates its tables
#                                                     -- there (first on its search_path,
#                                                     -- "$user") and owns them
#
# CMD sees, besides the PG* variables (the superuser's: tests use them to
# break things), DOKU_TEST_PG_CONNINFO (the daemon's connection string, TLS
# required, no password), DOKU_TEST_PG_PASSWORD_FILE (its password),
# DOKU_TEST_PG_CA (the CA, for sslmode=verify-full sslrootcert=...) and
# DOKU_TEST_PG_ADMIN (the superuser's connection string to the same database).
set -euo pipefail

if [ "${DOKU_PG_INSIDE:-}" != 1 ]; then
  [ $# -ge 1 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }
  command -v pg_virtualenv >/dev/null || { echo "pg_run: pg_virtualenv missing (apt-get install postgresql)" >&2; exit 2; }
  tmp=$(mktemp -d /tmp/doku-pg-XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  (
    cd "$tmp"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=doku-bridge test CA" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out server.crt 2>/dev/null
    rm -f ca.key server.csr san.ext
    chmod 600 server.key
  )
  chmod 755 "$tmp"
  # the server runs as postgres when we are root: its key must be its own
  if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    chown postgres "$tmp/server.key"
  fi
  # a port of its own: several of these run at once (ctest -j, worktrees), and
  # pg_virtualenv would give each the default 5432
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rc=0
  DOKU_PG_INSIDE=1 DOKU_PG_TMP="$tmp" pg_virtualenv -t -c "-p $port" \
    -o "ssl_cert_file=$tmp/server.crt" -o "ssl_key_file=$tmp/server.key" \
    "$0" "$@" || rc=$?
  exit "$rc"
fi

# inside the virtual environment
tmp=$DOKU_PG_TMP
# TLS on (pg_createcluster keeps its own ssl setting: turned on here, by a
# reload), then wait until a new connection sees it
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 100); do
  [ "$(psql -X -At -d postgres -c 'SHOW ssl')" = on ] && break
  sleep 0.05
done
[ "$(psql -X -At -d postgres -c 'SHOW ssl')" = on ] || { echo "pg_run: TLS did not come on" >&2; exit 1; }
pw=$(openssl rand -hex 16)
umask 077
printf '%s' "$pw" >"$tmp/doku.pw"
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
CREATE ROLE doku LOGIN PASSWORD '$pw';
CREATE DATABASE doku;
REVOKE ALL ON DATABASE doku FROM PUBLIC;
GRANT CONNECT ON DATABASE doku TO doku;
SQL
psql -X -q -v ON_ERROR_STOP=1 -d doku >/dev/null <<SQL
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA doku AUTHORIZATION doku;
SQL
export DOKU_TEST_PG_CONNINFO="host=localhost port=$PGPORT dbname=doku user=doku sslmode=require"
export DOKU_TEST_PG_PASSWORD_FILE="$tmp/doku.pw"
export DOKU_TEST_PG_CA="$tmp/ca.crt"
export DOKU_TEST_PG_ADMIN="host=${PGHOST:-localhost} port=$PGPORT dbname=doku user=$PGUSER"
unset DOKU_PG_INSIDE DOKU_PG_TMP
"$@"
