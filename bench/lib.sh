# Shared helpers for the benchmark scripts. Source it; it sets `set -euo pipefail`.
set -euo pipefail
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=${RESULTS:-$BENCH_ROOT/bench-results}
# Work files on the same disk as the repository (not a tmpfs), so fsync costs what it costs.
WORK=${WORK:-$BENCH_ROOT/.build-bench-work}
mkdir -p "$RESULTS" "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# fresh_dir DIR: an empty directory. ext4 avoids reusing inodes freed in the last ~30 s and scans
# past them when creating files, so after removing many files, wait before measuring anything.
fresh_dir() {
  if [ -e "$1" ]; then
    rm -rf "$1"
    sync
    sleep "${SETTLE_SECONDS:-35}"
  fi
  mkdir -p "$1"
}

need() {
  local missing=()
  for package in "$@"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build_release() {
  "$BENCH_ROOT/scripts/install-deps.sh"
  (cd "$BENCH_ROOT" && swift build -c release --product carmad >/dev/null && swift build -c release --product carma >/dev/null)
  CARMAD=$BENCH_ROOT/.build/release/carmad
  CARMA=$BENCH_ROOT/.build/release/carma
}

# start_carmad PORT DATA_DIR [flags…]: starts carmad and waits until /healthz answers.
start_carmad() {
  local port=$1 data=$2; shift 2
  "$CARMAD" --port "$port" --data-dir "$data" --log-level warning "$@" >>"$WORK/carmad-$port.log" 2>&1 &
  CARMAD_PID=$!
  PIDS+=("$CARMAD_PID")
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "carmad did not start; log:" >&2; tail -20 "$WORK/carmad-$port.log" >&2; exit 1
}

stop_carmad() {
  kill -TERM "$CARMAD_PID" 2>/dev/null || true
  wait "$CARMAD_PID" 2>/dev/null || true
}

# start_nginx PORT ROOT: nginx with 2 workers (the machine's cores), tuned for static files.
start_nginx() {
  local port=$1 root=$2
  need nginx-light
  cat >"$WORK/nginx.conf" <<CONF
worker_processes $(nproc);
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  open_file_cache max=200000 inactive=60s;
  open_file_cache_valid 60s;
  default_type application/json;
  server { listen 127.0.0.1:$port; root $root; }
}
CONF
  nginx -c "$WORK/nginx.conf"
  sleep 0.3
}

stop_nginx() {
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  sleep 0.3
}

# run_wrk NAME URL [wrk args…]: runs wrk and prints "rps p99_ms non2xx errors" on one line.
run_wrk() {
  local name=$1 url=$2; shift 2
  need wrk
  local out
  out=$(wrk -t2 -c64 -d"${DURATION:-10}"s --latency "$@" "$url")
  echo "$out" >"$WORK/wrk-$name.txt"
  local rps p99 non2xx errors
  rps=$(echo "$out" | awk '/Requests\/sec:/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  errors=$(echo "$out" | awk '/Socket errors/ {gsub(",",""); print $4+$6+$8+$10}')
  echo "${rps:-0} ${p99:-0} ${non2xx:-0} ${errors:-0}"
}

# disk_writes: "write_ios sectors" so far on the block device holding $WORK (from /proc/diskstats),
# or "0 0" when it cannot be told (overlay or tmpfs). Two readings around a run give what it wrote.
disk_writes() {
  local source name
  source=$(df --output=source "$WORK" | tail -1)
  name=${source#/dev/}
  awk -v n="$name" '$3 == n {print $8, $10; found=1} END {if (!found) print "0 0"}' /proc/diskstats
}

# per_op BEFORE AFTER OPS: "ios_per_op kb_per_op" between two disk_writes readings.
per_op() {
  awk -v b="$1" -v a="$2" -v n="$3" 'BEGIN {split(b, x, " "); split(a, y, " ");
    if (n <= 0) {print "0 0"; exit}
    printf "%.2f %.1f\n", (y[1] - x[1]) / n, (y[2] - x[2]) * 512 / 1024 / n}'
}

# median of the arguments
median() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.3f", a / b }'; }

# keepalive_ok URL: true if curl reuses one connection for two requests.
keepalive_ok() {
  curl -sv "$1" "$1" -o /dev/null -o /dev/null 2>&1 | grep -q "Re-using existing connection"
}

# manpage_slice N OUT: whole man pages of the corpus, drawn in a fixed order, until N fragments;
# links to fragments outside the slice are dropped.
manpage_slice() {
  python3 - "$BENCH_ROOT/corpus/manpages-full.jsonl" "$1" "$2" <<'PY'
import collections, json, random, sys
source, target, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pages = collections.OrderedDict()
for line in open(source):
    f = json.loads(line)
    pages.setdefault((f["metadata"]["section"], f["metadata"]["page"]), []).append(f)
keys = list(pages)
random.Random(5).shuffle(keys)
chosen = []
for key in keys:
    if len(chosen) >= target:
        break
    chosen.extend(pages[key])
ids = {f["id"] for f in chosen}
with open(out, "w") as w:
    for f in chosen:
        f["links"] = [l for l in f["links"] if l in ids]
        w.write(json.dumps(f) + "\n")
PY
}
