#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster in one directory, for benchmarks, tests and trying cluster mode
# on one machine. Not for production: it trusts every connection from 127.0.0.1.
#
#   scripts/pg-sandbox.sh start DIR [PORT]   # initdb (first time) and start; prints the URL last
#   scripts/pg-sandbox.sh stop DIR           # pg_ctl stop -m fast
#   scripts/pg-sandbox.sh status DIR         # running or not, and the URL
#
# DIR/data is the cluster, DIR/postgres.log its log, and DIR itself holds the Unix socket (so psql -h
# DIR -p PORT works too). Without PORT a free one from 15432 up is taken; a restart reuses the port
# the cluster ran on last time unless another is given. The server listens on 127.0.0.1 only,
# with trust authentication for the role `postgres`, fsync and synchronous_commit on (benchmarks must
# pay for durability as production would), and max_connections=200. It creates the database
# `carma`. The last line on standard output is its URL, postgresql://postgres@127.0.0.1:PORT/carma;
# everything else goes to standard error. Running `start` on a running sandbox only prints the URL.
#
# PostgreSQL refuses to run as root, so when run as root this script makes the `postgres` user own
# DIR and runs the server binaries as that user (runuser); run as another user, it runs them as
# that user, who must own DIR. PG_BIN overrides /usr/lib/postgresql/15/bin.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=${PG_USER:-postgres}
FIRST_PORT=15432

die() { echo "pg-sandbox: $*" >&2; exit 1; }
say() { echo "pg-sandbox: $*" >&2; }

usage() {
  echo "usage: $0 start DIR [PORT] | stop DIR | status DIR" >&2
  exit 2
}

# as_pg CMD…: runs CMD as the server's user.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

check_binaries() {
  for tool in initdb pg_ctl postgres psql createdb pg_isready; do
    [ -x "$PG_BIN/$tool" ] || die "$PG_BIN/$tool not found: install postgresql-15 (apt-get install postgresql-15) or set PG_BIN"
  done
  if [ "$(id -u)" -eq 0 ]; then
    id -u "$PG_USER" >/dev/null 2>&1 || die "user '$PG_USER' does not exist (the postgresql-15 package creates it; or set PG_USER)"
  fi
}

# port_busy PORT: true when something accepts connections on 127.0.0.1:PORT.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  local port
  for port in $(seq "$FIRST_PORT" $((FIRST_PORT + 1000))); do
    # A stale socket file of another sandbox or server in /tmp or /run counts as taken too.
    if ! port_busy "$port" && [ ! -e "/tmp/.s.PGSQL.$port" ] && [ ! -e "/var/run/postgresql/.s.PGSQL.$port" ]; then
      echo "$port"
      return 0
    fi
  done
  die "no free port in $FIRST_PORT-$((FIRST_PORT + 1000))"
}

url_for() { echo "postgresql://postgres@127.0.0.1:$1/carma"; }

# running DATA: true when a server runs on DATA.
running() {
  as_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

# The port the cluster was last configured with (our settings file), or empty.
configured_port() {
  local conf=$1/conf.d/sandbox.conf
  [ -f "$conf" ] && sed -n "s/^port = \([0-9]*\)$/\1/p" "$conf" || true
}

write_settings() {
  local dir=$1 data=$2 port=$3
  mkdir -p "$data/conf.d"
  cat >"$data/conf.d/sandbox.conf" <<CONF
# Written by scripts/pg-sandbox.sh; rewritten on every start.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
# Durability stays as in production: benchmarks must pay for every commit's flush.
fsync = on
synchronous_commit = on
full_page_writes = on
wal_sync_method = fdatasync
shared_buffers = 256MB
# Fewer checkpoints in the middle of a benchmark (WAL is cheap to keep here).
max_wal_size = 4GB
checkpoint_timeout = 15min
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] '
CONF
  chown "$(stat -c %U "$data")" "$data/conf.d" "$data/conf.d/sandbox.conf"
}

start() {
  local dir=$1 requested=${2:-} port=${2:-}
  if [ -n "$requested" ] && ! { [[ "$requested" =~ ^[0-9]+$ ]] && [ "$requested" -ge 1 ] && [ "$requested" -le 65535 ]; }; then
    die "PORT must be a number from 1 to 65535, not '$requested'"
  fi
  check_binaries
  dir=$(realpath -m "$dir")
  # A Unix socket path is at most 107 bytes: DIR/.s.PGSQL.NNNNN (and its .lock) must fit.
  [ ${#dir} -le 90 ] || die "$dir is too long for a Unix socket path (at most 90 characters); use a shorter DIR"
  # Only an empty or new directory, or one this script made: it is chowned and chmod 0700 below.
  if [ -e "$dir" ]; then
    [ -d "$dir" ] || die "$dir exists and is not a directory"
    if [ ! -e "$dir/.pg-sandbox" ] && [ -n "$(ls -A "$dir")" ]; then
      die "$dir is not empty and is not a sandbox made by this script; give a new or empty directory"
    fi
  fi
  mkdir -p "$dir" || die "cannot create $dir"
  dir=$(cd "$dir" && pwd -P)
  touch "$dir/.pg-sandbox"
  local data=$dir/data

  if [ -f "$data/PG_VERSION" ] && running "$data"; then
    local current
    current=$(configured_port "$data")
    if [ -n "$port" ] && [ "$port" != "$current" ]; then
      die "already running in $dir on port $current, not $port (stop it first: $0 stop $dir)"
    fi
    say "already running in $dir on port $current"
    url_for "$current"
    return 0
  fi

  if [ "$(id -u)" -eq 0 ]; then
    chown "$PG_USER": "$dir"
    chmod 0700 "$dir"
    as_pg test -w "$dir" -a -x "$dir" ||
      die "user $PG_USER cannot reach $dir (a parent directory is not searchable by it); use a DIR under a world-searchable path such as /tmp or /srv"
  fi

  if [ ! -f "$data/PG_VERSION" ]; then
    if [ -e "$data" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
      die "$data exists, is not empty and holds no PostgreSQL cluster; remove it or choose another DIR"
    fi
    local version
    version=$("$PG_BIN/postgres" --version)
    say "initdb $data ($version)"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=trust >"$dir/initdb.log" 2>&1 ||
      { tail -20 "$dir/initdb.log" >&2; die "initdb failed (whole log: $dir/initdb.log)"; }
    # Local socket and 127.0.0.1 only; no ::1, no other address.
    cat >"$data/pg_hba.conf" <<HBA
# Written by scripts/pg-sandbox.sh: a throw-away cluster, trust on loopback only.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
HBA
    echo "include_dir = 'conf.d'" >>"$data/postgresql.conf"
  elif [ "$(head -1 "$data/PG_VERSION")" != 15 ]; then
    die "$data holds a PostgreSQL $(head -1 "$data/PG_VERSION") cluster, this script runs 15"
  fi

  [ -n "$port" ] || port=$(configured_port "$data")
  if [ -z "$port" ] || port_busy "$port"; then
    if [ -n "$requested" ]; then die "port $requested on 127.0.0.1 is in use"; fi
    port=$(free_port)
  fi
  write_settings "$dir" "$data" "$port"

  say "starting on 127.0.0.1:$port (log: $dir/postgres.log)"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 start >/dev/null 2>&1; then
    tail -20 "$dir/postgres.log" >&2 || true
    die "PostgreSQL did not start (log: $dir/postgres.log)"
  fi
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 10 || die "PostgreSQL started but does not answer on 127.0.0.1:$port"
  local exists
  exists=$("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'carma'")
  if [ "$exists" != 1 ]; then
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres carma || die "createdb carma failed"
    say "created database carma"
  fi
  url_for "$port"
}

# existing DIR: sets dir (absolute) and data for a sandbox that start made, or dies.
existing() {
  [ -d "$1" ] || die "$1 does not exist"
  dir=$(cd "$1" && pwd -P)
  data=$dir/data
  [ -f "$data/PG_VERSION" ] || die "$dir holds no sandbox cluster ($data/PG_VERSION missing)"
  check_binaries
}

stop() {
  local dir data
  existing "$1"
  if ! running "$data"; then
    say "not running in $dir"
    return 0
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null || die "pg_ctl stop failed (log: $dir/postgres.log)"
  say "stopped ($dir)"
}

status() {
  local dir data
  existing "$1"
  if running "$data"; then
    say "running in $dir"
    url_for "$(configured_port "$data")"
  else
    say "not running in $dir"
    return 3
  fi
}

case "${1:-}" in
  start) [ $# -ge 2 ] && [ $# -le 3 ] || usage; start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  status) [ $# -eq 2 ] || usage; status "$2" ;;
  *) usage ;;
esac
