#!/usr/bin/env bash
# Many namespaces on one embedded store: 10,000 namespaces x 100 agent-memory notes (1,000,000
# fragments of 60-200 bytes, written with batch writes), against a store holding only one of them.
# Measures: the load's rate, start-up (to /healthz, and until the text index is loaded), RSS once
# loaded, and a text query's latency in that one namespace on both stores, side by side (alternate
# rounds, medians of the rounds' p50s). A third store holds the same million notes in the one
# namespace default: what the namespaces themselves cost in start-up and memory.
#
# Without the model: embedding a million notes takes hours on this machine, and a query's
# embedding costs the same on both stores (bench/query.sh measures it); what a namespace's query
# costs beside 9,999 other namespaces is the ranking, which this measures.
#
# Tunables: NAMESPACES (10000), PER_NAMESPACE (100), ROUNDS (3), DURATION (10 s per round).
source "$(dirname "$0")/lib.sh"
NAMESPACES=${NAMESPACES:-10000}
PER=${PER_NAMESPACE:-100}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PROBE=u00042
build_release
fresh_dir "$WORK/namespaces"
notes="$BENCH_ROOT/bench/namespaces-notes.py"
python3 "$notes" corpus "$PROBE" "$PER" "$WORK/namespaces/queries.jsonl"
quiet=(--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000)

# The store with every namespace, and the one with only the probe's.
start_carmad 18095 "$WORK/namespaces/many" "${quiet[@]}"
load_started=$(date +%s.%N)
python3 "$notes" write http://127.0.0.1:18095 "$NAMESPACES" "$PER"
load_seconds=$(python3 -c "import time; print(round(time.time() - $load_started, 1))")
stop_carmad
start_carmad 18096 "$WORK/namespaces/one" "${quiet[@]}"
python3 "$notes" write http://127.0.0.1:18096 1 "$PER" --only "$PROBE"
stop_carmad
start_carmad 18097 "$WORK/namespaces/flat" "${quiet[@]}"
python3 "$notes" write http://127.0.0.1:18097 "$NAMESPACES" "$PER" --flat
stop_carmad

# start_measured PORT DIR OUT: starts carmad; writes "healthz_s index_s rss_mib" to OUT once the text
# index is loaded (not in a subshell: the EXIT trap there would stop carmad).
start_measured() {
  local port=$1 data=$2 out=$3 begin healthy indexed rss
  begin=$(date +%s.%N)
  start_carmad "$port" "$data" "${quiet[@]}"
  healthy=$(python3 -c "import time; print(time.time() - $begin)")
  until curl -fsS "http://127.0.0.1:$port/readyz" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["retrieval"]["text_index_ready"] else 1)'; do sleep 0.1; done
  indexed=$(python3 -c "import time; print(time.time() - $begin)")
  rss=$(awk '/VmRSS/ {print $2 / 1024}' "/proc/$CARMAD_PID/status")
  echo "$healthy $indexed $rss" >"$out"
}

start_measured 18097 "$WORK/namespaces/flat" "$WORK/namespaces/flat.start"
stop_carmad
start_measured 18095 "$WORK/namespaces/many" "$WORK/namespaces/many.start"; many_pid=$CARMAD_PID
start_measured 18096 "$WORK/namespaces/one" "$WORK/namespaces/one.start"; one_pid=$CARMAD_PID
many=$(cat "$WORK/namespaces/many.start")
one=$(cat "$WORK/namespaces/one.start")
for round in $(seq 1 "$ROUNDS"); do
  for store in many one; do
    port=$([ "$store" = many ] && echo 18095 || echo 18096)
    "$CARMA" load query --server "http://127.0.0.1:$port" --namespace "$PROBE" --corpus "$WORK/namespaces/queries.jsonl" \
      --connections 1 --duration "$DURATION" --json "$WORK/namespaces/$store-$round.json" >/dev/null
  done
done
kill -TERM "$many_pid" "$one_pid" 2>/dev/null || true
wait "$many_pid" "$one_pid" 2>/dev/null || true

python3 - "$WORK/namespaces" "$ROUNDS" "$NAMESPACES" "$PER" "$load_seconds" "$many" "$one" "$RESULTS/namespaces.json" "$(cat "$WORK/namespaces/flat.start")" <<'PY'
import json, statistics, sys
work, rounds, spaces, per, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
many, one, flat = ([float(x) for x in s.split()] for s in (sys.argv[6], sys.argv[7], sys.argv[9]))
def p50s(store):
    return [json.load(open(f"{work}/{store}-{r}.json"))["latency"]["p50_ms"] for r in range(1, rounds + 1)]
result = {
    "namespaces": spaces, "notes_per_namespace": per, "fragments": spaces * per, "load_seconds": load,
    "many": {"healthz_s": many[0], "text_index_s": many[1], "rss_mib": many[2], "query_p50_ms_rounds": p50s("many")},
    "one": {"healthz_s": one[0], "text_index_s": one[1], "rss_mib": one[2], "query_p50_ms_rounds": p50s("one")},
    "flat": {"healthz_s": flat[0], "text_index_s": flat[1], "rss_mib": flat[2]},
}
m, o = statistics.median(result["many"]["query_p50_ms_rounds"]), statistics.median(result["one"]["query_p50_ms_rounds"])
result["query_p50_ratio_many_over_one"] = m / o
json.dump(result, open(sys.argv[8], "w"), indent=1)
def secs(s): return f"{s:.1f} s" if s >= 1 else f"{s * 1000:.0f} ms"
print(f"| {spaces:,} namespaces x {per} notes ({spaces * per:,} fragments) | store with all of them | store with only one namespace | the same notes in one namespace |")
print("|---|---|---|---|")
print(f"| loaded (batch writes, 8 clients) | {secs(load)} ({spaces * per / load:,.0f} notes/s) | | |")
print(f"| start-up to /healthz | {secs(many[0])} | {secs(one[0])} | {secs(flat[0])} |")
print(f"| start-up until the text index is loaded | {secs(many[1])} | {secs(one[1])} | {secs(flat[1])} |")
print(f"| RSS once loaded | {many[2]:,.0f} MiB | {one[2]:,.0f} MiB | {flat[2]:,.0f} MiB |")
print(f"| text query in one namespace, p50 (median of {rounds} rounds) | {m:.2f} ms | {o:.2f} ms | |")
print(f"| ratio | {m / o:.2f} | 1 | |")
PY
