#!/usr/bin/env bash
# GET throughput on cached ~1 KB fragments with random ids, against nginx serving the same response
# bodies as static files, alternating; then the same with 5% of the payload files deleted (served as
# blank stubs), which must stay within 5% of the clean figure with zero non-2xx answers.
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-5}
COUNT=${COUNT:-10000}
build_release
fresh_dir "$WORK/get" && mkdir -p "$WORK/get/www"
manual=(--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000)
start_carmad 18081 "$WORK/get/data" "${manual[@]}"
"$CARMA" load put --server http://127.0.0.1:18081 --prefix f --count "$COUNT" --size 1000 --connections 32 >/dev/null
python3 "$(dirname "$0")/fetch-bodies.py" 18081 f "$COUNT" "$WORK/get/www"
echo "body size: $(stat -c %s "$WORK/get/www/fragments/f0") bytes" >&2
start_nginx 18082 "$WORK/get/www"
export COUNT PREFIX=f
lua="$(dirname "$0")/random-get.lua"

c_rps=(); c_p99=(); n_rps=(); n_p99=(); c_bad=0
for round in $(seq 1 "$ROUNDS"); do
  read -r rps p99 non2xx errors < <(run_wrk carmad http://127.0.0.1:18081 -s "$lua")
  c_rps+=("$rps"); c_p99+=("$p99"); c_bad=$((c_bad + non2xx + errors))
  echo "round $round carmad: $rps req/s, p99 $p99 ms, non-2xx $non2xx" >&2
  read -r rps p99 non2xx errors < <(run_wrk nginx http://127.0.0.1:18082 -s "$lua")
  n_rps+=("$rps"); n_p99+=("$p99")
  echo "round $round nginx:  $rps req/s, p99 $p99 ms, non-2xx $non2xx" >&2
done

# Degraded: delete 5% of the payload files, restart (cold cache), read everything once so the
# damage is detected, then measure again. The dream engine is held off so blanks stay blanks.
stop_carmad
find "$WORK/get/data/payloads" -name "*.frag" | sort | shuf -n $((COUNT / 20)) --random-source=<(yes) | xargs rm -f
start_carmad 18081 "$WORK/get/data" "${manual[@]}"
"$CARMA" load get --server http://127.0.0.1:18081 --prefix f --count "$COUNT" --duration 5 --connections 16 >/dev/null || true
blanks=$(curl -fsS "http://127.0.0.1:18081/metrics" | awk '/^carma_fragments\{status="blank"\}/ {print $2}')
d_rps=(); d_p99=(); d_bad=0
for round in $(seq 1 "$ROUNDS"); do
  read -r rps p99 non2xx errors < <(run_wrk degraded http://127.0.0.1:18081 -s "$lua")
  d_rps+=("$rps"); d_p99+=("$p99"); d_bad=$((d_bad + non2xx + errors))
  echo "round $round carmad with 5% lost: $rps req/s, p99 $p99 ms, non-2xx $non2xx" >&2
done
cr=$(median "${c_rps[@]}"); cp=$(median "${c_p99[@]}"); nr=$(median "${n_rps[@]}"); np=$(median "${n_p99[@]}")
dr=$(median "${d_rps[@]}"); dp=$(median "${d_p99[@]}")
cat >"$RESULTS/get-vs-nginx.json" <<JSON
{"rounds": $ROUNDS, "duration_s": ${DURATION:-10}, "connections": 64, "fragments": $COUNT,
 "body_bytes": $(stat -c %s "$WORK/get/www/fragments/f0"),
 "carmad": {"rps_median": $cr, "p99_ms_median": $cp, "non2xx_or_errors": $c_bad},
 "nginx": {"rps_median": $nr, "p99_ms_median": $np},
 "carmad_5pct_lost": {"rps_median": $dr, "p99_ms_median": $dp, "non2xx_or_errors": $d_bad, "blank_fragments": ${blanks:-0}},
 "ratio_vs_nginx": $(ratio "$cr" "$nr"), "ratio_degraded_vs_clean": $(ratio "$dr" "$cr")}
JSON
echo "| run | req/s (median) | p99 ms (median) | non-2xx |"
echo "|---|---|---|---|"
echo "| carmad, cached 1 KB fragments | $cr | $cp | $c_bad |"
echo "| nginx, same bodies as files | $nr | $np | 0 |"
echo "| carmad, 5% payloads lost (${blanks:-?} blanks) | $dr | $dp | $d_bad |"
echo "carmad/nginx: $(ratio "$cr" "$nr"); degraded/clean: $(ratio "$dr" "$cr")"
