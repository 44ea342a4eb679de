#!/usr/bin/env bash
# GET throughput on cached ~1 KB fragments with random ids, against nginx serving the same response
# bodies as static files, alternating; then uncached (--cache-bytes 0: every GET reads its record from
# the log) against nginx again; then cached with 5% of the records zeroed (served as blank stubs),
# which must stay within 5% of the clean figure with zero non-2xx answers.
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

# Uncached: every GET reads and verifies its record from the primary log.
stop_carmad
start_carmad 18081 "$WORK/get/data" "${manual[@]}" --cache-bytes 0
u_rps=(); u_p99=(); un_rps=(); u_bad=0
for round in $(seq 1 "$ROUNDS"); do
  read -r rps p99 non2xx errors < <(run_wrk uncached http://127.0.0.1:18081 -s "$lua")
  u_rps+=("$rps"); u_p99+=("$p99"); u_bad=$((u_bad + non2xx + errors))
  echo "round $round carmad uncached: $rps req/s, p99 $p99 ms, non-2xx $non2xx" >&2
  read -r rps p99 non2xx errors < <(run_wrk nginx http://127.0.0.1:18082 -s "$lua")
  un_rps+=("$rps")
  echo "round $round nginx:  $rps req/s, p99 $p99 ms" >&2
done

# Degraded: zero 5% of the records (carmad faults, on the stopped store), restart (cold cache), read
# everything once so the damage is detected, then measure again. The dream engine is held off so
# blanks stay blanks.
stop_carmad
mapfile -t lost < <(seq 0 $((COUNT - 1)) | sed 's/^/f/' | shuf -n $((COUNT / 20)) --random-source=<(yes))
"$CARMAD" faults --data-dir "$WORK/get/data" zero "${lost[@]}" >&2
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
ur=$(median "${u_rps[@]}"); up=$(median "${u_p99[@]}"); unr=$(median "${un_rps[@]}")
cat >"$RESULTS/get-vs-nginx.json" <<JSON
{"rounds": $ROUNDS, "duration_s": ${DURATION:-10}, "connections": 64, "fragments": $COUNT,
 "body_bytes": $(stat -c %s "$WORK/get/www/fragments/f0"),
 "carmad": {"rps_median": $cr, "p99_ms_median": $cp, "non2xx_or_errors": $c_bad},
 "nginx": {"rps_median": $nr, "p99_ms_median": $np},
 "carmad_uncached": {"rps_median": $ur, "p99_ms_median": $up, "non2xx_or_errors": $u_bad, "nginx_rps_median_alongside": $unr,
   "ratio_vs_nginx": $(ratio "$ur" "$unr")},
 "carmad_5pct_lost": {"rps_median": $dr, "p99_ms_median": $dp, "non2xx_or_errors": $d_bad, "blank_fragments": ${blanks:-0}},
 "ratio_vs_nginx": $(ratio "$cr" "$nr"), "ratio_degraded_vs_clean": $(ratio "$dr" "$cr")}
JSON
echo "| run | req/s (median) | p99 ms (median) | non-2xx |"
echo "|---|---|---|---|"
echo "| carmad, cached 1 KB fragments | $cr | $cp | $c_bad |"
echo "| nginx, same bodies as files | $nr | $np | 0 |"
echo "| carmad, uncached (--cache-bytes 0), nginx alongside: $unr | $ur | $up | $u_bad |"
echo "| carmad, 5% records lost (${blanks:-?} blanks) | $dr | $dp | $d_bad |"
echo "carmad/nginx: $(ratio "$cr" "$nr"); uncached carmad/nginx: $(ratio "$ur" "$unr"); degraded/clean: $(ratio "$dr" "$cr")"
