#!/usr/bin/env bash
# 1,000,000 fragments: how long carmad takes from exec to answering /healthz, and its resident memory
# then and once the background text index has loaded; then the same start with the registry
# REPLAY records behind the log (it is put back to a copy taken before the last REPLAY PUTs, as a
# crash while the registry lagged would leave it), so start-up replays them. Targets: < 3 s, < 1 GiB.
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-1000000}
REPLAY=${REPLAY:-100000}
SIZE=${SIZE:-300}
build_release
data="$WORK/million/data"
if [ ! -f "$WORK/million/loaded-$COUNT" ]; then
  fresh_dir "$WORK/million"
  start_carmad 18084 "$data" --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000
  "$CARMA" load put --server http://127.0.0.1:18084 --prefix m --count "$((COUNT - REPLAY))" --size "$SIZE" --connections 64 >"$WORK/million/load.json"
  stop_carmad
  cp "$data/registry.sqlite3" "$WORK/million/registry-behind.sqlite3"
  start_carmad 18084 "$data" --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000
  "$CARMA" load put --server http://127.0.0.1:18084 --prefix n --count "$REPLAY" --size "$SIZE" --connections 64 >"$WORK/million/load-rest.json"
  stop_carmad
  touch "$WORK/million/loaded-$COUNT"
fi
du_data=$(du -sh "$data" | cut -f1)
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
samples=()
for round in 1 2 3; do
  start=$(date +%s.%N)
  "$CARMAD" --port 18084 --data-dir "$data" --log-level info --log-format json \
    --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000 >"$WORK/million/start-$round.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  until curl -fsS http://127.0.0.1:18084/healthz >/dev/null 2>&1; do sleep 0.02; done
  ready=$(date +%s.%N)
  rss_ready=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  until grep -q "text index loaded" "$WORK/million/start-$round.log"; do sleep 0.2; done
  indexed=$(date +%s.%N)
  rss_indexed=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  fragments=$(curl -fsS http://127.0.0.1:18084/readyz | python3 -c 'import json,sys; print(json.load(sys.stdin)["fragments"])')
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  seconds=$(awk -v a="$start" -v b="$ready" 'BEGIN { printf "%.2f", b - a }')
  index_seconds=$(awk -v a="$start" -v b="$indexed" 'BEGIN { printf "%.2f", b - a }')
  echo "round $round: $fragments fragments, serving after $seconds s (RSS $((rss_ready / 1024)) MiB), text index after $index_seconds s (RSS $((rss_indexed / 1024)) MiB)" >&2
  samples+=("$seconds $((rss_ready / 1024)) $index_seconds $((rss_indexed / 1024))")
done
med() { printf '%s\n' "${samples[@]}" | awk -v c="$1" '{print $c}' | sort -g | sed -n 2p; }
# The same start with the registry REPLAY records behind: three rounds, the copy put back each time.
replays=()
for round in 1 2 3; do
  cp "$WORK/million/registry-behind.sqlite3" "$data/registry.sqlite3"
  rm -f "$data/registry.sqlite3-wal" "$data/registry.sqlite3-shm"
  start=$(date +%s.%N)
  "$CARMAD" --port 18084 --data-dir "$data" --log-level info --log-format json \
    --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000 >"$WORK/million/replay-$round.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  until curl -fsS http://127.0.0.1:18084/healthz >/dev/null 2>&1; do sleep 0.02; done
  ready=$(date +%s.%N)
  replayed=$(grep -o '"records":"[0-9]*"' "$WORK/million/replay-$round.log" | grep -o '[0-9]*' | head -1)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  seconds=$(awk -v a="$start" -v b="$ready" 'BEGIN { printf "%.2f", b - a }')
  echo "replay round $round: ${replayed:-0} records replayed, serving after $seconds s" >&2
  replays+=("$seconds")
done
replay_median=$(printf '%s\n' "${replays[@]}" | sort -g | sed -n 2p)
cat >"$RESULTS/startup-1m.json" <<JSON
{"fragments": $fragments, "content_bytes": $SIZE, "data_dir_size": "$du_data",
 "seconds_to_serve_median": $(med 1), "rss_mib_serving_median": $(med 2),
 "seconds_to_text_index_median": $(med 3), "rss_mib_with_text_index_median": $(med 4),
 "replayed_records": ${replayed:-0}, "seconds_to_serve_with_replay_median": $replay_median}
JSON
echo "| 1,000,000 fragments ($du_data on disk) | median of 3 starts |"
echo "|---|---|"
echo "| exec to serving /healthz | $(med 1) s |"
echo "| resident memory then | $(med 2) MiB |"
echo "| text index loaded (queries see everything) | $(med 3) s, $(med 4) MiB |"
echo "| exec to serving with ${replayed:-0} log records to replay | $replay_median s |"
