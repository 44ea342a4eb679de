#!/usr/bin/env bash
# Cluster-mode repair throughput with 1 and 2 nodes claiming the work, on one PostgreSQL 15 (a
# sandbox from scripts/pg-sandbox.sh in $WORK, fsync on). COUNT fragments are loaded; then, in each
# round and for 1 node and then 2 nodes:
#  1. DAMAGE of them lose their payload row (DELETE FROM carma_payloads, as a lost page would),
#  2. each damaged id is read once through node A (each read answers a blank stub and queues a
#     repair; the nodes run with --cache-bytes 0 so that the read sees the database, not a body
#     cached when it was written),
#  3. POST /dream goes to every participating node, again and again, until
#     GET /fragments?status=blank&limit=1 lists no items; the time from the first POST to then is
#     the repair time (exact restores from carma_redundancy, claimed with SKIP LOCKED and a lease).
# Cycles do not start by themselves (long intervals and idle delay), and run unthrottled
# (--dream-duty-cycle 1) and without a scrub ({"scrub_fragments": 0}). In the 1-node runs node B is
# up but idle: it is never asked to dream. Medians of ROUNDS.
#
# Knobs: COUNT (2000), DAMAGE (500), ROUNDS (3), POOL database connections per node (8),
# REPAIR_TIMEOUT seconds per run (600), CARMAD_BIN and CARMA_BIN (prebuilt binaries instead of a
# release build). Writes $RESULTS/cluster-repair.json.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/cluster-lib.sh"
COUNT=${COUNT:-2000}
DAMAGE=${DAMAGE:-500}
ROUNDS=${ROUNDS:-3}
REPAIR_TIMEOUT=${REPAIR_TIMEOUT:-600}
if [ "$DAMAGE" -lt 1 ] || [ "$DAMAGE" -gt "$COUNT" ]; then
  echo "DAMAGE must be from 1 to COUNT ($COUNT)" >&2
  exit 2
fi
need postgresql-15 postgresql-client-15
build_nodes
fresh_cluster_dir "$WORK/cluster-repair"
start_pg "$WORK/cluster-repair/pg"
node_flags=(--cache-bytes 0 --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000 --dream-duty-cycle 1)
A=18093
B=18094
start_node "$A" node-a "${node_flags[@]}"
start_node "$B" node-b "${node_flags[@]}"
"$CARMA" load put --server "http://127.0.0.1:$A" --prefix f --count "$COUNT" --size 1000 --connections 32 >"$WORK/cluster-repair/load.json"
echo "loaded $COUNT fragments: $(grep -o '"requests_per_second": [0-9.]*' "$WORK/cluster-repair/load.json")" >&2

# damage SEED: deletes the payload rows of DAMAGE ids picked by SEED; sets DAMAGED (the ids).
damage() {
  mapfile -t DAMAGED < <(seq 0 $((COUNT - 1)) | sed 's/^/f/' | shuf -n "$DAMAGE" --random-source=<(yes "$1"))
  local list deleted
  list=$(printf "'%s'," "${DAMAGED[@]}")
  deleted=$(pg_sql -c "WITH gone AS (DELETE FROM carma_payloads WHERE id IN (${list%,}) RETURNING 1) SELECT count(*) FROM gone")
  [ "$deleted" = "$DAMAGE" ] || echo "warning: deleted $deleted payload rows, not $DAMAGE" >&2
}

# touch_damaged PORT: reads each damaged id once through a node; prints how many answered a blank.
touch_damaged() {
  local config="$WORK/cluster-repair/touch.curl"
  : >"$config"
  for id in "${DAMAGED[@]}"; do
    printf 'url = "http://127.0.0.1:%s/fragments/%s"\noutput = "/dev/null"\n' "$1" "$id" >>"$config"
  done
  curl -sS -K "$config" -w '%{http_code} %header{x-fragment-status}\n' | awk '$1 == 200 && $2 == "blank" {n++} END {print n + 0}'
}

# blanks_left PORT: true while the store lists at least one blank fragment.
blanks_left() {
  ! curl -fsS "http://127.0.0.1:$1/fragments?status=blank&limit=1" | grep -Eq '"items" *: *\[ *\]'
}

# repair PORT…: POST /dream to every given node until no blank is listed; prints the seconds taken.
repair() {
  local start now
  start=$(date +%s.%N)
  while true; do
    for port in "$@"; do
      curl -fsS -X POST -H 'Content-Type: application/json' -d '{"scrub_fragments": 0}' \
        "http://127.0.0.1:$port/dream" >/dev/null
    done
    blanks_left "$1" || break
    now=$(date +%s.%N)
    if awk -v s="$start" -v n="$now" -v t="$REPAIR_TIMEOUT" 'BEGIN { exit !(n - s > t) }'; then
      echo "repairs not done after $REPAIR_TIMEOUT s; blanks left: $(curl -fsS "http://127.0.0.1:$1/fragments?status=blank&limit=1000" | grep -o '"id"' | wc -l)" >&2
      exit 1
    fi
    sleep 0.05
  done
  now=$(date +%s.%N)
  awk -v s="$start" -v n="$now" 'BEGIN { printf "%.3f\n", n - s }'
}

# repairs_done PORT: repairs this node has carried out so far (every tier and outcome).
repairs_done() { metric_sum "$1" carma_repairs_total; }

# statuses: the registry's statuses of the damaged ids, as "status:count …".
statuses() {
  local list
  list=$(printf "'%s'," "${DAMAGED[@]}")
  pg_sql -c "SELECT string_agg(status || ':' || n, ' ') FROM (SELECT status, count(*) AS n FROM carma_fragments WHERE id IN (${list%,}) GROUP BY status ORDER BY status) s" 2>/dev/null || echo unknown
}

# run_repair NAME SEED PORT…: one measurement; prints "seconds rate blanks share_a share_b".
run_repair() {
  local name=$1 seed=$2; shift 2
  damage "$seed"
  local blanks a0 b0 seconds a1 b1
  blanks=$(touch_damaged "$A")
  a0=$(repairs_done "$A"); b0=$(repairs_done "$B")
  seconds=$(repair "$@")
  a1=$(repairs_done "$A"); b1=$(repairs_done "$B")
  local rate
  rate=$(awk -v n="$DAMAGE" -v s="$seconds" 'BEGIN { printf "%.1f", n / s }')
  echo "$name: $DAMAGE damaged ($blanks read back as blanks), repaired in $seconds s: $rate repairs/s; node A did $(awk -v a="$a0" -v b="$a1" 'BEGIN {print b - a}'), node B $(awk -v a="$b0" -v b="$b1" 'BEGIN {print b - a}'); statuses now: $(statuses)" >&2
  echo "$seconds $rate $blanks $(awk -v a="$a0" -v b="$a1" 'BEGIN {print b - a}') $(awk -v a="$b0" -v b="$b1" 'BEGIN {print b - a}')"
}

one_s=(); one_r=(); two_s=(); two_r=(); blanks_seen=0; two_a=(); two_b=()
for round in $(seq 1 "$ROUNDS"); do
  read -r s r blanks _ _ < <(run_repair "round $round, 1 node" "one-$round" "$A")
  one_s+=("$s"); one_r+=("$r"); blanks_seen=$((blanks_seen + blanks))
  read -r s r blanks da db < <(run_repair "round $round, 2 nodes" "two-$round" "$A" "$B")
  two_s+=("$s"); two_r+=("$r"); blanks_seen=$((blanks_seen + blanks)); two_a+=("$da"); two_b+=("$db")
done
o_s=$(median "${one_s[@]}"); o_r=$(median "${one_r[@]}")
t_s=$(median "${two_s[@]}"); t_r=$(median "${two_r[@]}")
cat >"$RESULTS/cluster-repair.json" <<JSON
{"fragments": $COUNT, "damaged_per_run": $DAMAGE, "rounds": $ROUNDS, "pool_per_node": $POOL, "cores": $(nproc),
 "postgres": {"version": "$(pg_sql -c 'SHOW server_version')", "fsync": "$(pg_sql -c 'SHOW fsync')"},
 "blanks_read_back": $blanks_seen, "blanks_expected": $((2 * ROUNDS * DAMAGE)),
 "nodes_1": {"seconds_median": $o_s, "repairs_per_second_median": $o_r, "seconds": [$(IFS=,; echo "${one_s[*]}")]},
 "nodes_2": {"seconds_median": $t_s, "repairs_per_second_median": $t_r, "seconds": [$(IFS=,; echo "${two_s[*]}")],
   "repairs_by_node_a": [$(IFS=,; echo "${two_a[*]}")], "repairs_by_node_b": [$(IFS=,; echo "${two_b[*]}")]},
 "scaling_2_vs_1": $(ratio "$t_r" "$o_r")}
JSON
echo
echo "Repair of $DAMAGE lost payloads among $COUNT fragments (exact, from carma_redundancy), medians of $ROUNDS runs"
printf '| %-34s | %10s | %12s |\n' "nodes claiming repairs" "time" "repairs"
printf '| %-34s | %10s | %12s |\n' "---" "---" "---"
printf '| %-34s | %10s | %12s |\n' "1 node" "$(human_ms "$(awk -v s="$o_s" 'BEGIN {print s * 1000}')")" "$(human_rate "$o_r")"
printf '| %-34s | %10s | %12s |\n' "2 nodes" "$(human_ms "$(awk -v s="$t_s" 'BEGIN {print s * 1000}')")" "$(human_rate "$t_r")"
echo "2 nodes / 1 node: $(ratio "$t_r" "$o_r"); blanks read back $blanks_seen of $((2 * ROUNDS * DAMAGE)) expected"
echo "results: $RESULTS/cluster-repair.json"
