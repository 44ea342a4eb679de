#!/usr/bin/env bash
# Server CPU time per request for cached 1 KB GETs with random ids, carmad against nginx serving the
# same bodies as static files, alternating. CPU time (user + system, from /proc/PID/stat) per request
# is steadier than requests per second on a shared machine, where the load generator and other
# tenants take a varying share of the cores.
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-7}
COUNT=${COUNT:-10000}
DURATION=${DURATION:-5}
build_release
fresh_dir "$WORK/getcpu" && mkdir -p "$WORK/getcpu/www"
start_carmad 18081 "$WORK/getcpu/data" --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000
"$CARMA" load put --server http://127.0.0.1:18081 --prefix f --count "$COUNT" --size 1000 --connections 32 >/dev/null
python3 "$(dirname "$0")/fetch-bodies.py" 18081 f "$COUNT" "$WORK/getcpu/www"
start_nginx 18082 "$WORK/getcpu/www"
export COUNT PREFIX=f
lua="$(dirname "$0")/random-get.lua"
nginx_workers=$(pgrep -P "$(cat "$WORK/nginx.pid")" | tr '\n' ' ')

# cpu_ticks PID…: user + system clock ticks of the processes so far.
cpu_ticks() {
  local total=0
  for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}

# measure NAME URL PID…: prints "req/s µs-per-request".
measure() {
  local name=$1 url=$2; shift 2
  local before after out requests
  before=$(cpu_ticks "$@")
  out=$(wrk -t2 -c64 -d"${DURATION}s" -s "$lua" "$url")
  after=$(cpu_ticks "$@")
  echo "$out" >"$WORK/wrk-cpu-$name.txt"
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" -v rps="$(echo "$out" | awk '/Requests\/sec:/ {print $2}')" \
    'BEGIN { printf "%s %.2f\n", rps, t / hz * 1e6 / n }'
}

c_rps=(); c_cpu=(); n_rps=(); n_cpu=()
for round in $(seq 1 "$ROUNDS"); do
  read -r rps cpu < <(measure carmad http://127.0.0.1:18081 "$CARMAD_PID")
  c_rps+=("$rps"); c_cpu+=("$cpu")
  read -r rps cpu < <(measure nginx http://127.0.0.1:18082 $nginx_workers)
  n_rps+=("$rps"); n_cpu+=("$cpu")
  echo "round $round: carmad ${c_rps[-1]} req/s ${c_cpu[-1]} µs/request; nginx ${n_rps[-1]} req/s ${n_cpu[-1]} µs/request" >&2
done
cr=$(median "${c_rps[@]}"); cc=$(median "${c_cpu[@]}"); nr=$(median "${n_rps[@]}"); nc=$(median "${n_cpu[@]}")
cat >"$RESULTS/get-cpu.json" <<JSON
{"rounds": $ROUNDS, "duration_s": $DURATION, "connections": 64, "fragments": $COUNT,
 "carmad": {"rps_median": $cr, "cpu_us_per_request_median": $cc},
 "nginx": {"rps_median": $nr, "cpu_us_per_request_median": $nc},
 "ratio_rps": $(ratio "$cr" "$nr"), "ratio_cpu_per_request": $(ratio "$cc" "$nc")}
JSON
echo "| server | req/s (median) | server CPU µs per request (median) |"
echo "|---|---|---|"
echo "| carmad, cached 1 KB fragments | $cr | $cc |"
echo "| nginx, same bodies as files | $nr | $nc |"
echo "carmad/nginx: req/s $(ratio "$cr" "$nr"), CPU per request $(ratio "$cc" "$nc")"
