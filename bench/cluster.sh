#!/usr/bin/env bash
# Cluster mode on one PostgreSQL 15 (a sandbox from scripts/pg-sandbox.sh in $WORK, fsync on), side by
# side in one run, medians of ROUNDS:
#  a. pgbench's own single-row INSERT rate (a 1 KB text row with a text primary key, one transaction
#     each) at the same client count as wrk: the ceiling the engine sets on this disk; and again at
#     the nodes' pool size (POOL and 2 x POOL clients), the concurrency the nodes put on the server;
#  b. durable PUT throughput (1 KB, bench/unique-put.lua) through 1 node and through 2 nodes (one
#     wrk per node at the same time, CONNECTIONS split between them, summed), with the WAL written
#     per operation;
#  c. GET throughput on COUNT loaded fragments (bench/random-get.lua) through 1 node and 2 nodes,
#     after both nodes' caches were warmed by reading every id once.
# The same total client count (CONNECTIONS) runs against 1 and 2 nodes, so the 2-node figure shows
# what a second node adds, not what more clients add. Everything runs on this one machine: wrk,
# the nodes and PostgreSQL share its cores.
#
# Knobs: ROUNDS (3), DURATION seconds per run (10), CONNECTIONS (64, even), COUNT fragments for GET
# (10000), POOL database connections per node (8), CACHE_BYTES per node (carmad's default when
# unset), CARMAD_BIN and CARMA_BIN (prebuilt binaries instead of a release build). Writes
# $RESULTS/cluster.json.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cluster-lib.sh"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
COUNT=${COUNT:-10000}
export DURATION
if [ "$CONNECTIONS" -lt 4 ] || [ $((CONNECTIONS % 2)) -ne 0 ]; then
  echo "CONNECTIONS must be even and at least 4 (it is split between two wrk runs of 2 threads)" >&2
  exit 2
fi
need wrk postgresql-15 postgresql-client-15
build_nodes
fresh_cluster_dir "$WORK/cluster"
start_pg "$WORK/cluster/pg"
here=$(cd "$(dirname "$0")" && pwd)
node_flags=(--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000)
[ -n "${CACHE_BYTES:-}" ] && node_flags+=(--cache-bytes "$CACHE_BYTES")
start_node 18091 node-a "${node_flags[@]}"
start_node 18092 node-b "${node_flags[@]}"

# a. pgbench's single-row INSERT, on a table of its own beside carmad's.
pg_sql -c "CREATE TABLE bench_rows (id text PRIMARY KEY, body text NOT NULL)" -c "CREATE SEQUENCE bench_rows_seq"
cat >"$WORK/cluster/insert.sql" <<'SQL'
INSERT INTO bench_rows (id, body) VALUES ('r' || nextval('bench_rows_seq'), repeat('x', 1024));
SQL

# run_pgbench NAME CLIENTS: prints "tps p99_ms avg_ms transactions failed wal_kib_per_op".
run_pgbench() {
  local name=$1 clients=$2 jobs=2 logs="$WORK/cluster/pgbench-$1"
  [ "$clients" -ge 2 ] || jobs=1
  rm -rf "$logs" && mkdir -p "$logs"
  local before out
  before=$(wal_lsn)
  out=$("$PG_BIN/pgbench" -n -c "$clients" -j "$jobs" -T "$DURATION" -f "$WORK/cluster/insert.sql" \
    -l --log-prefix "$logs/log" "$DATABASE_URL" 2>&1) || { echo "$out" >&2; exit 1; }
  echo "$out" >"$WORK/pgbench-$name.txt"
  local tps avg n failed p99 wal
  tps=$(echo "$out" | awk '/^tps = / {print $3}')
  avg=$(echo "$out" | awk '/^latency average = / {print $4}')
  n=$(echo "$out" | awk '/number of transactions actually processed/ {print $6}')
  failed=$(echo "$out" | awk '/number of failed transactions/ {print $5}')
  # The per-transaction log: the third column is the latency in microseconds.
  p99=$(cat "$logs"/log.* | awk '{print $3}' | sort -n | awk '{a[NR] = $1} END {
    if (NR == 0) {print 0; exit}; i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f\n", a[i] / 1000}')
  wal=$(wal_kib_per_op "$before" "${n:-0}")
  rm -rf "$logs"
  echo "${tps:-0} ${p99:-0} ${avg:-0} ${n:-0} ${failed:-0} $wal"
}

# wrk_nodes NAME LUA PORT…: one wrk per node at the same time, CONNECTIONS split evenly between them;
# prints "rps_sum p99_ms_worst non2xx_sum errors_sum requests_sum wal_kib_per_op".
wrk_nodes() {
  local name=$1 lua=$2; shift 2
  local per=$((CONNECTIONS / $#)) i=0 pids=() before
  before=$(wal_lsn)
  for port in "$@"; do
    i=$((i + 1))
    run_wrk "$name-$i" "http://127.0.0.1:$port" -c "$per" -s "$lua" >"$WORK/cluster/$name-$i.out" &
    pids+=("$!")
  done
  wait "${pids[@]}"
  local rps=() p99=() bad=0 errors=0 requests=0 r p n e
  for j in $(seq 1 "$i"); do
    read -r r p n e <"$WORK/cluster/$name-$j.out"
    rps+=("$r"); p99+=("$p"); bad=$((bad + n)); errors=$((errors + e))
    requests=$((requests + $(awk '/requests in/ {print $1}' "$WORK/wrk-$name-$j.txt")))
  done
  echo "$(sum_of "${rps[@]}") $(max_of "${p99[@]}") $bad $errors $requests $(wal_kib_per_op "$before" "$requests")"
}

put_lua="$here/unique-put.lua"
get_lua="$here/random-get.lua"
export SIZE=1024

pg_tps=(); pg_p99=(); pg_avg=(); pg_wal=(); pg_failed=0
pool1_tps=(); pool2_tps=()
p1_rps=(); p1_p99=(); p1_wal=(); p1_bad=0
p2_rps=(); p2_p99=(); p2_wal=(); p2_bad=0
for round in $(seq 1 "$ROUNDS"); do
  read -r tps p99 avg n failed wal < <(run_pgbench insert "$CONNECTIONS")
  pg_tps+=("$tps"); pg_p99+=("$p99"); pg_avg+=("$avg"); pg_wal+=("$wal"); pg_failed=$((pg_failed + failed))
  echo "round $round pgbench INSERT, $CONNECTIONS clients: $tps tps, p99 $p99 ms, avg $avg ms, $wal KiB WAL per row, $failed failed" >&2
  read -r tps _ <  <(run_pgbench pool1 "$POOL")
  pool1_tps+=("$tps")
  read -r tps2 _ < <(run_pgbench pool2 $((2 * POOL)))
  pool2_tps+=("$tps2")
  echo "round $round pgbench INSERT at the pool size: $POOL clients $tps tps, $((2 * POOL)) clients $tps2 tps" >&2

  read -r rps p99 bad errors requests wal < <(wrk_nodes put1 "$put_lua" 18091)
  p1_rps+=("$rps"); p1_p99+=("$p99"); p1_wal+=("$wal"); p1_bad=$((p1_bad + bad + errors))
  echo "round $round PUT via 1 node: $rps req/s, p99 $p99 ms, $wal KiB WAL per PUT, non-2xx $bad, errors $errors" >&2
  read -r rps p99 bad errors requests wal < <(wrk_nodes put2 "$put_lua" 18091 18092)
  p2_rps+=("$rps"); p2_p99+=("$p99"); p2_wal+=("$wal"); p2_bad=$((p2_bad + bad + errors))
  echo "round $round PUT via 2 nodes: $rps req/s, p99 $p99 ms (worse node), $wal KiB WAL per PUT, non-2xx $bad, errors $errors" >&2
done
node_connections=$(pg_sql -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()")

# c. GET: COUNT fragments, every id read once through each node (warm caches), then random reads.
"$CARMA" load put --server http://127.0.0.1:18091 --prefix f --count "$COUNT" --size 1000 --connections 32 >"$WORK/cluster/load.json"
echo "loaded $COUNT fragments: $(grep -o '"requests_per_second": [0-9.]*' "$WORK/cluster/load.json")" >&2
"$CARMA" load scan --server http://127.0.0.1:18091 --prefix f --count "$COUNT" --connections 16 >/dev/null
"$CARMA" load scan --server http://127.0.0.1:18092 --prefix f --count "$COUNT" --connections 16 >/dev/null
export COUNT PREFIX=f
g1_rps=(); g1_p99=(); g1_bad=0
g2_rps=(); g2_p99=(); g2_bad=0
for round in $(seq 1 "$ROUNDS"); do
  read -r rps p99 bad errors _ < <(wrk_nodes get1 "$get_lua" 18091)
  g1_rps+=("$rps"); g1_p99+=("$p99"); g1_bad=$((g1_bad + bad + errors))
  echo "round $round GET via 1 node: $rps req/s, p99 $p99 ms, non-2xx $bad, errors $errors" >&2
  read -r rps p99 bad errors _ < <(wrk_nodes get2 "$get_lua" 18091 18092)
  g2_rps+=("$rps"); g2_p99+=("$p99"); g2_bad=$((g2_bad + bad + errors))
  echo "round $round GET via 2 nodes: $rps req/s, p99 $p99 ms (worse node), non-2xx $bad, errors $errors" >&2
done

pgt=$(median "${pg_tps[@]}"); pgp=$(median "${pg_p99[@]}"); pga=$(median "${pg_avg[@]}"); pgw=$(median "${pg_wal[@]}")
po1=$(median "${pool1_tps[@]}"); po2=$(median "${pool2_tps[@]}")
p1r=$(median "${p1_rps[@]}"); p1p=$(median "${p1_p99[@]}"); p1w=$(median "${p1_wal[@]}")
p2r=$(median "${p2_rps[@]}"); p2p=$(median "${p2_p99[@]}"); p2w=$(median "${p2_wal[@]}")
g1r=$(median "${g1_rps[@]}"); g1p=$(median "${g1_p99[@]}")
g2r=$(median "${g2_rps[@]}"); g2p=$(median "${g2_p99[@]}")
version=$(pg_sql -c 'SHOW server_version')
cat >"$RESULTS/cluster.json" <<JSON
{"rounds": $ROUNDS, "duration_s": $DURATION, "connections": $CONNECTIONS, "pool_per_node": $POOL,
 "cache_bytes": "${CACHE_BYTES:-default}", "body_bytes": 1024, "get_fragments": $COUNT, "cores": $(nproc),
 "postgres": {"version": "$version", "fsync": "$(pg_sql -c 'SHOW fsync')", "synchronous_commit": "$(pg_sql -c 'SHOW synchronous_commit')",
   "node_connections_after_put": $node_connections},
 "pgbench_insert": {"clients": $CONNECTIONS, "tps_median": $pgt, "p99_ms_median": $pgp, "latency_avg_ms_median": $pga,
   "wal_kib_per_row_median": $pgw, "failed": $pg_failed},
 "pgbench_insert_at_pool": {"clients_1_node": $POOL, "tps_1_node_median": $po1, "clients_2_nodes": $((2 * POOL)), "tps_2_nodes_median": $po2},
 "put": {"nodes_1": {"rps_median": $p1r, "p99_ms_median": $p1p, "wal_kib_per_put_median": $p1w, "non2xx_or_errors": $p1_bad},
         "nodes_2": {"rps_median": $p2r, "p99_ms_worst_node_median": $p2p, "wal_kib_per_put_median": $p2w, "non2xx_or_errors": $p2_bad},
         "scaling_2_vs_1": $(ratio "$p2r" "$p1r"), "ratio_1_node_vs_pgbench": $(ratio "$p1r" "$pgt"), "ratio_2_nodes_vs_pgbench": $(ratio "$p2r" "$pgt")},
 "get": {"nodes_1": {"rps_median": $g1r, "p99_ms_median": $g1p, "non2xx_or_errors": $g1_bad},
         "nodes_2": {"rps_median": $g2r, "p99_ms_worst_node_median": $g2p, "non2xx_or_errors": $g2_bad},
         "scaling_2_vs_1": $(ratio "$g2r" "$g1r")}}
JSON

row() { printf '| %-52s | %7s | %12s | %9s | %s |\n' "$@"; }
echo
echo "PostgreSQL $version, fsync on, $(nproc) cores shared by wrk, nodes and server; medians of $ROUNDS runs of ${DURATION} s"
row "run" "clients" "throughput" "p99" "non-2xx / errors; WAL per op"
row "---" "---" "---" "---" "---"
row "pgbench single-row INSERT, 1 KB (engine ceiling)" "$CONNECTIONS" "$(human_rate "$pgt")" "$(human_ms "$pgp")" "$pg_failed failed; $pgw KiB"
row "pgbench single-row INSERT, 1 node's pool" "$POOL" "$(human_rate "$po1")" "" ""
row "pgbench single-row INSERT, 2 nodes' pools" "$((2 * POOL))" "$(human_rate "$po2")" "" ""
row "durable PUT 1 KB, 1 node" "$CONNECTIONS" "$(human_rate "$p1r")" "$(human_ms "$p1p")" "$p1_bad; $p1w KiB"
row "durable PUT 1 KB, 2 nodes (p99 of the worse)" "$CONNECTIONS" "$(human_rate "$p2r")" "$(human_ms "$p2p")" "$p2_bad; $p2w KiB"
row "GET, $COUNT fragments, 1 node" "$CONNECTIONS" "$(human_rate "$g1r")" "$(human_ms "$g1p")" "$g1_bad"
row "GET, $COUNT fragments, 2 nodes (p99 of the worse)" "$CONNECTIONS" "$(human_rate "$g2r")" "$(human_ms "$g2p")" "$g2_bad"
echo "PUT: 2 nodes / 1 node $(ratio "$p2r" "$p1r"), 1 node / pgbench $(ratio "$p1r" "$pgt"); GET: 2 nodes / 1 node $(ratio "$g2r" "$g1r")"
echo "results: $RESULTS/cluster.json"
