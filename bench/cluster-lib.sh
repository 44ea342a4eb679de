# shellcheck shell=bash
# Helpers for the cluster-mode benchmarks (bench/cluster.sh, bench/cluster-repair.sh). Source it
# after lib.sh: it adds a sandbox PostgreSQL (scripts/pg-sandbox.sh), carmad nodes on it, and
# stops both on exit.
PG_SANDBOX=$BENCH_ROOT/scripts/pg-sandbox.sh
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
POOL=${POOL:-8}
PG_DIR=
DATABASE_URL=
declare -A NODE_PIDS=()

cluster_cleanup() {
  cleanup
  if [ -n "$PG_DIR" ]; then "$PG_SANDBOX" stop "$PG_DIR" >/dev/null 2>&1 || true; fi
}
trap cluster_cleanup EXIT
# A signal ends the script through `exit`, so the EXIT trap above runs too.
trap 'exit 130' INT
trap 'exit 143' TERM

# build_nodes: build_release (lib.sh), or use prebuilt binaries when CARMAD_BIN and CARMA_BIN are set
# (a build elsewhere; nothing is built then).
build_nodes() {
  if [ -n "${CARMAD_BIN:-}" ]; then
    CARMAD=$CARMAD_BIN
    CARMA=${CARMA_BIN:?CARMA_BIN must be set with CARMAD_BIN}
    [ -x "$CARMAD" ] && [ -x "$CARMA" ] || { echo "CARMAD_BIN or CARMA_BIN is not executable" >&2; exit 2; }
  else
    build_release
  fi
}

# fresh_cluster_dir DIR: fresh_dir (lib.sh), after stopping a sandbox PostgreSQL a killed earlier run
# may have left running in DIR/pg.
fresh_cluster_dir() {
  if [ -f "$1/pg/data/PG_VERSION" ]; then "$PG_SANDBOX" stop "$1/pg" >/dev/null 2>&1 || true; fi
  fresh_dir "$1"
}

# start_pg DIR: a fresh sandbox PostgreSQL 15 in DIR; sets DATABASE_URL.
start_pg() {
  need postgresql-15 postgresql-client-15
  PG_DIR=$1
  DATABASE_URL=$("$PG_SANDBOX" start "$PG_DIR" | tail -1)
  echo "PostgreSQL: $DATABASE_URL ($(pg_sql -c 'SHOW server_version'), fsync $(pg_sql -c 'SHOW fsync'), synchronous_commit $(pg_sql -c 'SHOW synchronous_commit'))" >&2
}

# pg_sql ARGS…: psql on the sandbox, unaligned, tuples only, stopping at the first error.
pg_sql() {
  "$PG_BIN/psql" "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -tA "$@"
}

# wal_lsn: the server's current WAL position (two readings give the WAL written between them).
wal_lsn() { pg_sql -c 'SELECT pg_current_wal_lsn()'; }

# wal_kib_per_op BEFORE_LSN OPS: KiB of WAL written since BEFORE_LSN, per operation.
wal_kib_per_op() {
  local bytes
  bytes=$(pg_sql -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$1')")
  awk -v b="$bytes" -v n="$2" 'BEGIN { if (n <= 0) print 0; else printf "%.2f\n", b / 1024 / n }'
}

# start_node PORT NAME [flags…]: a carmad node on the sandbox database (cwd $WORK, so nothing lands
# in the repository), waiting until /readyz answers 200 (schema created or migrated, database up).
start_node() {
  local port=$1 name=$2; shift 2
  (cd "$WORK" && exec "$CARMAD" --port "$port" --database-url "$DATABASE_URL" --database-pool "$POOL" \
    --node-name "$name" --log-level warning "$@") >>"$WORK/carmad-$name.log" 2>&1 &
  NODE_PIDS[$port]=$!
  PIDS+=("$!")
  for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "${NODE_PIDS[$port]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "carmad node $name (port $port) did not become ready; log:" >&2
  tail -20 "$WORK/carmad-$name.log" >&2
  exit 1
}

stop_node() {
  local pid=${NODE_PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "NODE_PIDS[$1]"
}

# metric_sum PORT NAME: the sum of every series of metric NAME on a node's /metrics.
metric_sum() {
  curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $2} END {print s + 0}'
}

# max of the arguments
max_of() { printf '%s\n' "$@" | sort -g | tail -1; }
# sum of the arguments
sum_of() { printf '%s\n' "$@" | awk '{s += $1} END {printf "%.2f\n", s}'; }

# human_rate 1234.5 → "1,235/s"
human_rate() {
  printf '%.0f\n' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta' | sed 's|$|/s|'
}
# human_ms 1.734 → "1.7 ms"; 0.4213 → "0.42 ms"; 123.4 → "123 ms"; 2345 → "2.35 s"
human_ms() {
  awk -v v="$1" 'BEGIN {
    if (v + 0 >= 999.5) printf "%.2f s\n", v / 1000
    else if (v + 0 >= 99.95) printf "%.0f ms\n", v
    else if (v + 0 >= 0.995) printf "%.1f ms\n", v
    else printf "%.2f ms\n", v }'
}
