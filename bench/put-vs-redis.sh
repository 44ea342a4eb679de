#!/usr/bin/env bash
# Durable PUT throughput on 1 KB fragments with 64 concurrent clients, against Redis with
# appendonly yes + appendfsync always (redis-benchmark -t set -d 1024 -c 64), alternating, on the
# same disk.
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-3}
need redis-server redis-tools
build_release
fresh_dir "$WORK/put" && mkdir -p "$WORK/put/redis"
start_carmad 18081 "$WORK/put/data" --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000
redis-server --port 16379 --dir "$WORK/put/redis" --appendonly yes --appendfsync always --save "" --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
sleep 0.5
export SIZE=1024
c=(); r=(); c_p99=()
for round in $(seq 1 "$ROUNDS"); do
  read -r rps p99 non2xx errors < <(run_wrk put http://127.0.0.1:18081 -s "$(dirname "$0")/unique-put.lua")
  c+=("$rps"); c_p99+=("$p99")
  echo "round $round carmad PUT: $rps req/s, p99 $p99 ms, non-2xx $non2xx, errors $errors" >&2
  out=$(redis-benchmark -p 16379 -t set -d 1024 -c 64 -n "${REDIS_REQUESTS:-200000}" -q 2>/dev/null | tr '\r' '\n' | grep -E '^SET' | tail -1)
  rr=$(echo "$out" | awk '{print $2}')
  r+=("$rr")
  echo "round $round redis SET: $rr req/s ($out)" >&2
done
cm=$(median "${c[@]}"); rm_=$(median "${r[@]}"); cp=$(median "${c_p99[@]}")
commits=$(curl -fsS http://127.0.0.1:18081/metrics | awk '/^carma_group_commits_total/ {print $2}')
cat >"$RESULTS/put-vs-redis.json" <<JSON
{"rounds": $ROUNDS, "duration_s": ${DURATION:-10}, "connections": 64, "body_bytes": 1024,
 "carmad_put_rps_median": $cm, "carmad_put_p99_ms_median": $cp, "redis_set_rps_median": $rm_,
 "ratio": $(ratio "$cm" "$rm_"), "group_commits": ${commits:-0}}
JSON
echo "| durable write, 64 clients, 1 KB | req/s (median) |"
echo "|---|---|"
echo "| carmad PUT (payload + redundancy copy + registry, fsynced) | $cm |"
echo "| Redis SET, appendfsync always | $rm_ |"
echo "ratio carmad/redis: $(ratio "$cm" "$rm_")"
