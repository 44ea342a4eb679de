#!/usr/bin/env bash
# Dream-engine benchmarks on 100,000 fragments:
#  1. repair throughput: 5% of the payload files deleted, detected by reading every id once, then one
#     dream cycle with no throttling (--dream-duty-cycle 1) restores them from the redundancy copies;
#  2. foreground GET p99 with a cycle running (default duty cycle 0.5, repairing another 5% and
#     scrubbing the whole store) against without one, measured back to back after the same restart.
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-100000}
build_release
fresh_dir "$WORK/repair"
manual=(--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000)
data="$WORK/repair/data"
start_carmad 18083 "$data" "${manual[@]}"
"$CARMA" load put --server http://127.0.0.1:18083 --prefix f --count "$COUNT" --size 1000 --connections 64 >"$WORK/repair/load.json"
echo "loaded $COUNT fragments: $(grep -o '"requests_per_second": [0-9.]*' "$WORK/repair/load.json")" >&2

lose() {  # lose N: stop carmad, delete N payload files, wait for ext4 to settle
  stop_carmad
  find "$data/payloads" -name '*.frag' | sort | shuf -n "$1" --random-source=<(yes "$2") | xargs rm -f
  sync; sleep "${SETTLE_SECONDS:-35}"
}
dream() {  # dream BUDGET_JSON: run a cycle and print its report
  local id
  id=$(curl -fsS -X POST -H 'Content-Type: application/json' -d "$1" http://127.0.0.1:18083/dream | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  until curl -fsS "http://127.0.0.1:18083/dream/$id" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["state"] != "running" else 1)'; do
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:18083/dream/$id"
}

# 1. Throughput.
lost=$((COUNT / 20))
lose "$lost" a
start_carmad 18083 "$data" "${manual[@]}" --dream-duty-cycle 1
"$CARMA" load scan --server http://127.0.0.1:18083 --prefix f --count "$COUNT" --connections 16 >/dev/null
report=$(dream '{"scrub_fragments": 0}')
read -r recovered repair_ms total_ms < <(echo "$report" | python3 -c '
import json,sys; r=json.load(sys.stdin)
phase=[p for p in r["phases"] if p["name"]=="repair"][0]
print(r["outcomes"].get("recovered",0), phase["duration_ms"], r["duration_ms"])')
rate=$(awk -v n="$recovered" -v ms="$repair_ms" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
echo "repaired $recovered of $lost in $repair_ms ms: $rate fragments/s" >&2

# 2. GET p99 without and with a cycle, after the same restart.
lose "$lost" b
start_carmad 18083 "$data" "${manual[@]}"
"$CARMA" load scan --server http://127.0.0.1:18083 --prefix f --count "$COUNT" --connections 16 >/dev/null
export COUNT PREFIX=f
lua="$(dirname "$0")/random-get.lua"
read -r idle_rps idle_p99 idle_bad idle_err < <(run_wrk idle http://127.0.0.1:18083 -s "$lua")
curl -fsS -X POST -H 'Content-Type: application/json' -d "{\"scrub_fragments\": $COUNT}" http://127.0.0.1:18083/dream >"$WORK/repair/cycle2.json"
read -r busy_rps busy_p99 busy_bad busy_err < <(run_wrk busy http://127.0.0.1:18083 -s "$lua")
running=$(curl -fsS http://127.0.0.1:18083/dream | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
echo "GET without a cycle: $idle_rps req/s, p99 $idle_p99 ms; with a cycle: $busy_rps req/s, p99 $busy_p99 ms (cycle still $running at the end)" >&2
cat >"$RESULTS/repair.json" <<JSON
{"fragments": $COUNT, "lost": $lost,
 "repair": {"recovered": $recovered, "repair_phase_ms": $repair_ms, "cycle_ms": $total_ms, "fragments_per_second": $rate, "duty_cycle": 1},
 "get_without_cycle": {"rps": $idle_rps, "p99_ms": $idle_p99, "non2xx_or_errors": $((idle_bad + idle_err))},
 "get_during_cycle": {"rps": $busy_rps, "p99_ms": $busy_p99, "non2xx_or_errors": $((busy_bad + busy_err)), "cycle_state_at_end": "$running", "duty_cycle": 0.5},
 "p99_ratio": $(ratio "$busy_p99" "$idle_p99")}
JSON
echo "| measure | value |"
echo "|---|---|"
echo "| exact repairs, 100k store, 5% lost, no throttling | $recovered in $repair_ms ms ($rate fragments/s) |"
echo "| GET p99 without a cycle | $idle_p99 ms ($idle_rps req/s) |"
echo "| GET p99 while a cycle repairs 5% and scrubs the store (duty 0.5) | $busy_p99 ms ($busy_rps req/s) |"
echo "| ratio | $(ratio "$busy_p99" "$idle_p99") |"
