#!/usr/bin/env bash
# carmad's small fixed JSON route (/healthz) against nginx serving the same bytes as a static file,
# alternating, ROUNDS times DURATION seconds each, wrk -t2 -c64. Prints medians and the ratio.
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-5}
build_release
fresh_dir "$WORK/http" && mkdir -p "$WORK/http/www"
start_carmad 18081 "$WORK/http/data"
curl -fsS http://127.0.0.1:18081/healthz >"$WORK/http/www/healthz"
start_nginx 18082 "$WORK/http/www"
cmp <(curl -fsS http://127.0.0.1:18081/healthz) <(curl -fsS http://127.0.0.1:18082/healthz)
keepalive_ok http://127.0.0.1:18081/healthz && ka_carmad=yes || ka_carmad=no
keepalive_ok http://127.0.0.1:18082/healthz && ka_nginx=yes || ka_nginx=no

c_rps=(); c_p99=(); n_rps=(); n_p99=()
for round in $(seq 1 "$ROUNDS"); do
  read -r rps p99 non2xx errors < <(run_wrk carmad http://127.0.0.1:18081/healthz)
  c_rps+=("$rps"); c_p99+=("$p99")
  echo "round $round carmad: $rps req/s, p99 $p99 ms, non-2xx $non2xx, socket errors $errors" >&2
  read -r rps p99 non2xx errors < <(run_wrk nginx http://127.0.0.1:18082/healthz)
  n_rps+=("$rps"); n_p99+=("$p99")
  echo "round $round nginx:  $rps req/s, p99 $p99 ms, non-2xx $non2xx, socket errors $errors" >&2
done
cr=$(median "${c_rps[@]}"); cp=$(median "${c_p99[@]}"); nr=$(median "${n_rps[@]}"); np=$(median "${n_p99[@]}")
cat >"$RESULTS/http-vs-nginx.json" <<JSON
{"rounds": $ROUNDS, "duration_s": ${DURATION:-10}, "connections": 64,
 "carmad": {"rps_median": $cr, "p99_ms_median": $cp, "keepalive": "$ka_carmad"},
 "nginx": {"rps_median": $nr, "p99_ms_median": $np, "keepalive": "$ka_nginx"},
 "ratio_rps": $(ratio "$cr" "$nr")}
JSON
echo "| server | req/s (median) | p99 ms (median) | keep-alive |"
echo "|---|---|---|---|"
echo "| carmad /healthz | $cr | $cp | $ka_carmad |"
echo "| nginx static file | $nr | $np | $ka_nginx |"
echo "ratio carmad/nginx: $(ratio "$cr" "$nr")"
