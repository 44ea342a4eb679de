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
REDIS_REQUESTS=${REDIS_REQUESTS:-200000}
c=(); r=(); c_p99=(); c_ios=(); c_kb=(); r_ios=(); r_kb=()
for round in $(seq 1 "$ROUNDS"); do
  before=$(disk_writes)
  read -r rps p99 non2xx errors < <(run_wrk put http://127.0.0.1:18081 -s "$(dirname "$0")/unique-put.lua")
  requests=$(awk '/requests in/ {print $1}' "$WORK/wrk-put.txt")
  read -r ios kb < <(per_op "$before" "$(disk_writes)" "$requests")
  c+=("$rps"); c_p99+=("$p99"); c_ios+=("$ios"); c_kb+=("$kb")
  echo "round $round carmad PUT: $rps req/s, p99 $p99 ms, non-2xx $non2xx, errors $errors; disk: $ios write I/Os and $kb KiB per PUT" >&2
  before=$(disk_writes)
  out=$(redis-benchmark -p 16379 -t set -d 1024 -c 64 -n "$REDIS_REQUESTS" -q 2>/dev/null | tr '\r' '\n' | grep -E '^SET' | tail -1)
  read -r ios kb < <(per_op "$before" "$(disk_writes)" "$REDIS_REQUESTS")
  rr=$(echo "$out" | awk '{print $2}')
  r+=("$rr"); r_ios+=("$ios"); r_kb+=("$kb")
  echo "round $round redis SET: $rr req/s ($out); disk: $ios write I/Os and $kb KiB per SET" >&2
done
cm=$(median "${c[@]}"); rm_=$(median "${r[@]}"); cp=$(median "${c_p99[@]}")
ci=$(median "${c_ios[@]}"); ck=$(median "${c_kb[@]}"); ri=$(median "${r_ios[@]}"); rk=$(median "${r_kb[@]}")
commits=$(curl -fsS http://127.0.0.1:18081/metrics | awk '/^carma_group_commits_total/ {print $2}')
cat >"$RESULTS/put-vs-redis.json" <<JSON
{"rounds": $ROUNDS, "duration_s": ${DURATION:-10}, "connections": 64, "body_bytes": 1024,
 "carmad_put_rps_median": $cm, "carmad_put_p99_ms_median": $cp, "redis_set_rps_median": $rm_,
 "ratio": $(ratio "$cm" "$rm_"), "group_commits": ${commits:-0},
 "carmad_write_ios_per_put": $ci, "carmad_kib_written_per_put": $ck,
 "redis_write_ios_per_set": $ri, "redis_kib_written_per_set": $rk}
JSON
echo "| durable write, 64 clients, 1 KB | req/s (median) | disk write I/Os per op | KiB written per op |"
echo "|---|---|---|---|"
echo "| carmad PUT (payload + redundancy copy + registry, fsynced) | $cm | $ci | $ck |"
echo "| Redis SET, appendfsync always | $rm_ | $ri | $rk |"
echo "ratio carmad/redis: $(ratio "$cm" "$rm_")"
