#!/usr/bin/env bash
# Two builds of carmad side by side in one run: an earlier commit (OLD_REF, default the last commit
# before the backend contract moved into FragmentCore) and this tree. Rounds alternate old and new
# on fresh data directories so that both see the same machine state; medians are reported.
#  - PUT: durable 1 KB PUTs, 64 connections (wrk, unique ids), requests/s and p99;
#  - GET: random GETs over COUNT fragments served from the cache, requests/s and p99 (after a
#    pass that is not counted);
#  - query: POST /query (words only, no model), 16 connections, requests/s and p99 (likewise: the
#    text index takes in the load during the first pass, and queries slow as it grows);
#  - repair: 5% of the records zeroed in the primary log, found by reading every id, then one
#    dream cycle restores them from the redundancy log: fragments/s.
source "$(dirname "$0")/lib.sh"
OLD_REF=${OLD_REF:-53fad90}
COUNT=${COUNT:-20000}
ROUNDS=${ROUNDS:-3}
export DURATION=${DURATION:-8}
build_release
NEW_CARMAD=$CARMAD
need wrk
old_src="$WORK/old-src"
if [ ! -d "$old_src" ]; then
  git -C "$BENCH_ROOT" worktree add -q --detach "$old_src" "$OLD_REF"
fi
git -C "$old_src" checkout -q --detach "$OLD_REF"
(cd "$old_src" && swift build -c release --product carmad --scratch-path "$WORK/old-build" >/dev/null)
OLD_CARMAD="$WORK/old-build/release/carmad"
manual=(--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000 --dream-duty-cycle 1)

query_lua="$WORK/query.lua"
cat >"$query_lua" <<'LUA'
local words = {"restore", "segment", "memory", "network", "socket", "file", "process", "signal", "repair", "cache"}
request = function()
  local a = words[math.random(#words)]
  local b = words[math.random(#words)]
  return wrk.format("POST", "/query", {["Content-Type"] = "application/json"},
    '{"text": "' .. a .. ' ' .. b .. '", "mode": "text", "k": 10}')
end
LUA

# one_round NAME BINARY PORT: prints "put_rps put_p99 get_rps get_p99 query_rps query_p99 repair_rate"
one_round() {
  local name=$1 port=$3 data="$WORK/compare/$1"
  CARMAD=$2
  SETTLE_SECONDS=5 fresh_dir "$data"
  start_carmad "$port" "$data/store" "${manual[@]}"
  read -r put_rps put_p99 _ _ < <(run_wrk "put-$name" "http://127.0.0.1:$port" -s "$(dirname "$0")/unique-put.lua")
  "$CARMA" load put --server "http://127.0.0.1:$port" --prefix f --count "$COUNT" --size 1000 --connections 64 >/dev/null
  # A first pass of each (not counted) warms the cache and lets the text index take in the load.
  COUNT=$COUNT PREFIX=f run_wrk "get-$name-warm" "http://127.0.0.1:$port" -s "$(dirname "$0")/random-get.lua" >/dev/null
  read -r get_rps get_p99 _ _ < <(COUNT=$COUNT PREFIX=f run_wrk "get-$name" "http://127.0.0.1:$port" -s "$(dirname "$0")/random-get.lua")
  run_wrk "query-$name-warm" "http://127.0.0.1:$port" -c16 -s "$query_lua" >/dev/null
  read -r query_rps query_p99 _ _ < <(run_wrk "query-$name" "http://127.0.0.1:$port" -c16 -s "$query_lua")
  stop_carmad
  mapfile -t ids < <(seq 0 $((COUNT - 1)) | sed 's/^/f/' | shuf -n $((COUNT / 20)) --random-source=<(yes seed))
  "$CARMAD" faults --data-dir "$data/store" zero "${ids[@]}" >/dev/null 2>&1
  start_carmad "$port" "$data/store" "${manual[@]}"
  "$CARMA" load scan --server "http://127.0.0.1:$port" --prefix f --count "$COUNT" --connections 16 >/dev/null
  local id report
  id=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"scrub_fragments": 0}' "http://127.0.0.1:$port/dream" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  until curl -fsS "http://127.0.0.1:$port/dream/$id" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["state"] != "running" else 1)'; do sleep 0.2; done
  report=$(curl -fsS "http://127.0.0.1:$port/dream/$id")
  local rate
  rate=$(echo "$report" | python3 -c '
import json,sys; r=json.load(sys.stdin)
phase=[p for p in r["phases"] if p["name"]=="repair"][0]
print("%.0f" % (r["outcomes"].get("recovered",0) / max(phase["duration_ms"], 1) * 1000))')
  stop_carmad
  echo "$put_rps $put_p99 $get_rps $get_p99 $query_rps $query_p99 $rate"
}

declare -A series
for round in $(seq 1 "$ROUNDS"); do
  for name in old new; do
    binary=$OLD_CARMAD; [ "$name" = new ] && binary=$NEW_CARMAD
    read -r a b c d e f g < <(one_round "$name" "$binary" 18090)
    echo "round $round $name: PUT $a req/s (p99 $b ms), GET $c req/s (p99 $d ms), query $e req/s (p99 $f ms), repair $g fragments/s" >&2
    series[$name.put]+="$a "; series[$name.put_p99]+="$b "; series[$name.get]+="$c "; series[$name.get_p99]+="$d "
    series[$name.query]+="$e "; series[$name.query_p99]+="$f "; series[$name.repair]+="$g "
  done
done
python3 - "$RESULTS/compare-builds.json" "$OLD_REF" "$COUNT" "$ROUNDS" \
  "${series[old.put]}" "${series[new.put]}" "${series[old.put_p99]}" "${series[new.put_p99]}" \
  "${series[old.get]}" "${series[new.get]}" "${series[old.get_p99]}" "${series[new.get_p99]}" \
  "${series[old.query]}" "${series[new.query]}" "${series[old.query_p99]}" "${series[new.query_p99]}" \
  "${series[old.repair]}" "${series[new.repair]}" <<'PY'
import json, statistics, sys
out, ref, count, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
values = [[float(x) for x in s.split()] for s in sys.argv[5:]]
names = ["put_rps", "put_p99_ms", "get_rps", "get_p99_ms", "query_rps", "query_p99_ms", "repair_per_s"]
result = {"old_ref": ref, "fragments": count, "rounds": rounds}
for i, name in enumerate(names):
    old, new = statistics.median(values[2 * i]), statistics.median(values[2 * i + 1])
    result[name] = {"old": old, "new": new, "new_over_old": round(new / old, 3) if old else None}
json.dump(result, open(out, "w"), indent=1)
label = {"put_rps": "PUT req/s", "put_p99_ms": "PUT p99 ms", "get_rps": "GET req/s", "get_p99_ms": "GET p99 ms",
         "query_rps": "query req/s", "query_p99_ms": "query p99 ms", "repair_per_s": "repair fragments/s"}
print("medians of %d rounds, old = %s, new = this tree" % (rounds, ref))
for name in names:
    r = result[name]
    print("  %-20s old %10.1f   new %10.1f   new/old %.2f" % (label[name], r["old"], r["new"], r["new_over_old"] or 0))
PY
