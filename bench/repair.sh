#!/usr/bin/env bash
# Dream-engine benchmarks on 100,000 fragments:
#  1. repair throughput: 5% of the records zeroed (carmad faults), detected by reading every id once,
#     then one dream cycle with no throttling (--dream-duty-cycle 1) restores them from the
#     redundancy log;
#  2. foreground GET p99 with a cycle running (default duty cycle 0.5, repairing another 5% and
#     scrubbing the whole store) against without one, measured back to back after the same restart;
#  3. scrub throughput: a whole pass over both logs with no throttling (records verified per second);
#  4. compaction throughput: three quarters of the fragments written again, then a cycle that only
#     compacts (records copied and bytes reclaimed per second).
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-100000}
build_release
fresh_dir "$WORK/repair"
manual=(--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000)
data="$WORK/repair/data"
start_carmad 18083 "$data" "${manual[@]}"
"$CARMA" load put --server http://127.0.0.1:18083 --prefix f --count "$COUNT" --size 1000 --connections 64 >"$WORK/repair/load.json"
echo "loaded $COUNT fragments: $(grep -o '"requests_per_second": [0-9.]*' "$WORK/repair/load.json")" >&2

lose() {  # lose N SEED: stop carmad, zero N fragments' records in the primary log
  stop_carmad
  mapfile -t ids < <(seq 0 $((COUNT - 1)) | sed 's/^/f/' | shuf -n "$1" --random-source=<(yes "$2"))
  "$CARMAD" faults --data-dir "$data" zero "${ids[@]}" >&2
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

# 3. Scrub: one pass over both logs, no throttling, nothing to repair.
stop_carmad
start_carmad 18083 "$data" "${manual[@]}" --dream-duty-cycle 1
dream '{"scrub_fragments": 0}' >/dev/null
report=$(dream "{\"scrub_fragments\": $((2 * COUNT)), \"max_seconds\": 600}")
read -r scrubbed scrub_ms < <(echo "$report" | python3 -c '
import json,sys; r=json.load(sys.stdin)
phase=[p for p in r["phases"] if p["name"]=="scrub"][0]
print(r["scrubbed"], phase["duration_ms"])')
scrub_rate=$(awk -v n="$scrubbed" -v ms="$scrub_ms" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
echo "scrubbed $scrubbed records in $scrub_ms ms: $scrub_rate records/s" >&2

# 4. Compaction: three quarters written again leave the old segments mostly garbage.
"$CARMA" load put --server http://127.0.0.1:18083 --prefix f --count $((COUNT * 3 / 4)) --size 1000 --connections 64 >/dev/null
before=$(du -sb "$data" | cut -f1)
report=$(dream '{"scrub_fragments": 0}')
read -r copied reclaimed segments compact_ms < <(echo "$report" | python3 -c '
import json,sys; r=json.load(sys.stdin)
phase=[p for p in r["phases"] if p["name"]=="compact"][0]
c=r.get("compaction") or {}
print(c.get("records_copied",0), c.get("bytes_reclaimed",0), c.get("segments_removed",0), phase["duration_ms"])')
after=$(du -sb "$data" | cut -f1)
copy_rate=$(awk -v n="$copied" -v ms="$compact_ms" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
reclaim_rate=$(awk -v b="$reclaimed" -v ms="$compact_ms" 'BEGIN { printf "%.1f", b / 1048576 / (ms / 1000) }')
echo "compacted $segments segments in $compact_ms ms: $copied records copied ($copy_rate/s), $reclaimed bytes reclaimed ($reclaim_rate MiB/s); data dir $before -> $after bytes" >&2

cat >"$RESULTS/repair.json" <<JSON
{"fragments": $COUNT, "lost": $lost,
 "repair": {"recovered": $recovered, "repair_phase_ms": $repair_ms, "cycle_ms": $total_ms, "fragments_per_second": $rate, "duty_cycle": 1},
 "get_without_cycle": {"rps": $idle_rps, "p99_ms": $idle_p99, "non2xx_or_errors": $((idle_bad + idle_err))},
 "get_during_cycle": {"rps": $busy_rps, "p99_ms": $busy_p99, "non2xx_or_errors": $((busy_bad + busy_err)), "cycle_state_at_end": "$running", "duty_cycle": 0.5},
 "p99_ratio": $(ratio "$busy_p99" "$idle_p99"),
 "scrub": {"records": $scrubbed, "ms": $scrub_ms, "records_per_second": $scrub_rate, "duty_cycle": 1},
 "compaction": {"segments": $segments, "records_copied": $copied, "bytes_reclaimed": $reclaimed, "ms": $compact_ms,
   "records_per_second": $copy_rate, "mib_reclaimed_per_second": $reclaim_rate, "data_dir_bytes_before": $before, "data_dir_bytes_after": $after}}
JSON
echo "| measure | value |"
echo "|---|---|"
echo "| exact repairs, 100k store, 5% lost, no throttling | $recovered in $repair_ms ms ($rate fragments/s) |"
echo "| GET p99 without a cycle | $idle_p99 ms ($idle_rps req/s) |"
echo "| GET p99 while a cycle repairs 5% and scrubs the store (duty 0.5) | $busy_p99 ms ($busy_rps req/s) |"
echo "| ratio | $(ratio "$busy_p99" "$idle_p99") |"
echo "| scrub, both logs, no throttling | $scrub_rate records/s ($scrubbed in $scrub_ms ms) |"
echo "| compaction, no throttling | $segments segments: $copy_rate records/s copied, $reclaim_rate MiB/s reclaimed |"
