#!/usr/bin/env bash
# Give the tests a real PostgreSQL 15 + pgvector 0.8.0 server on 127.0.0.1.
#
# Idempotent: installs only what is missing (fast when all is there), reuses a running cluster.
# Debian 12 has no pgvector package, so the extension is built from the trixie source package
# against postgresql-server-dev-15 (a temporary deb-src entry, removed afterwards).
# Writes `export FACEPLUS_TEST_DATABASE_URL=...` to $FACEPLUS_PG_DIR/env and prints it on stdout;
# all progress goes to stderr. Usage from .ci/run:
#     .ci/postgres.sh >/dev/null
#     source /tmp/faceplus-pg/env
set -euo pipefail

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_DIR=${FACEPLUS_PG_DIR:-/tmp/faceplus-pg}
PG_PORT=${FACEPLUS_PG_PORT:-54329}
PG_DB=${FACEPLUS_PG_DB:-faceplus_test}
PGVECTOR_VERSION=0.8.0

log() { echo "[postgres.sh] $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

apt_mirror() {
  # The mirror apt already uses (deb822 first, then the one-line format).
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

install_postgres() {
  local missing=()
  [ -x "$PG_BIN/postgres" ] || missing+=("postgresql-$PG_MAJOR")
  [ -x "$PG_BIN/pg_config" ] && [ -d "/usr/include/postgresql/$PG_MAJOR/server" ] \
    || missing+=("postgresql-server-dev-$PG_MAJOR")
  command -v make >/dev/null 2>&1 && command -v gcc >/dev/null 2>&1 || missing+=(build-essential)
  command -v dpkg-source >/dev/null 2>&1 || missing+=(dpkg-dev)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
}

pgvector_installed() {
  [ -f "/usr/share/postgresql/$PG_MAJOR/extension/vector--$PGVECTOR_VERSION.sql" ] \
    && [ -f "/usr/lib/postgresql/$PG_MAJOR/lib/vector.so" ]
}

install_pgvector() {
  pgvector_installed && return 0
  local src_list=/etc/apt/sources.list.d/faceplus-pgvector-src.sources
  local build
  build=$(mktemp -d /tmp/pgvector-build.XXXXXX)
  log "building pgvector from the trixie source package on $(apt_mirror)"
  as_root tee "$src_list" >/dev/null <<EOF
Types: deb-src
URIs: $(apt_mirror)
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Whatever happens, the trixie entry must not stay behind.
  trap 'as_root rm -f "$src_list"' EXIT
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  (cd "$build" && apt-get source -q pgvector >&2)
  as_root rm -f "$src_list"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || true
  trap - EXIT
  local dir
  dir=$(find "$build" -maxdepth 1 -mindepth 1 -type d -name 'pgvector-*' | head -n1)
  [ -n "$dir" ] || { log "apt-get source pgvector produced no source tree"; exit 1; }
  make -C "$dir" -j"$(nproc)" PG_CONFIG="$PG_BIN/pg_config" >&2
  as_root make -C "$dir" install PG_CONFIG="$PG_BIN/pg_config" >&2
  rm -rf "$build"
  pgvector_installed || { log "pgvector $PGVECTOR_VERSION not found after the build (other version?)"; exit 1; }
}

as_pg() {
  # initdb/postgres refuse to run as root: use the postgres system user there.
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_cluster() {
  local data=$PG_DIR/data
  mkdir -p "$PG_DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_DIR"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initdb $data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >&2
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$PG_DIR/server.log" -w -t 60 start \
      -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200 -c fsync=off -c synchronous_commit=off" >&2
  fi
  local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
  if [ "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE $PG_DB" >&2
  fi
  "${psql[@]}" -d "$PG_DB" -c "CREATE EXTENSION IF NOT EXISTS vector" >&2
}

install_postgres
install_pgvector
start_cluster
URL="postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB"
echo "export FACEPLUS_TEST_DATABASE_URL=$URL" >"$PG_DIR/env"
chmod a+r "$PG_DIR/env"
log "ready: $URL (source $PG_DIR/env)"
cat "$PG_DIR/env"
