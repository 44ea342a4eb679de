#!/usr/bin/env bash
# Export and import rates at 100,000 fragments of 1 KB (COUNT, ROUNDS to change):
#  1. load COUNT fragments into carmad A (carma load put);
#  2. ROUNDS times: `carma export` of A to a file (fragments/s, from the wall time);
#  3. ROUNDS times: `carma import` of that file into a fresh carmad B (fragments/s), and once more
#     into the same B (the idempotent re-run: nothing written);
# and prints the medians. The machine is shared and has 2 cores for carmad, the CLI and everything
# else: compare runs, not absolute numbers.
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-100000}
ROUNDS=${ROUNDS:-3}
build_release
fresh_dir "$WORK/portability"
manual=(--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000)
start_carmad 18087 "$WORK/portability/a" "${manual[@]}"
"$CARMA" load put --server http://127.0.0.1:18087 --prefix f --count "$COUNT" --size 1000 --connections 64 >/dev/null
source_pid=$CARMAD_PID

seconds() { python3 -c 'import sys, time; print(f"{time.time():.3f}")'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rate() { python3 -c "print(round($COUNT / ($2 - $1)))"; }

exports=(); imports=(); reruns=()
for round in $(seq 1 "$ROUNDS"); do
  start=$(seconds)
  "$CARMA" export --server http://127.0.0.1:18087 --out "$WORK/portability/export.ndjson" 2>/dev/null
  exports+=("$(rate "$start" "$(seconds)")")

  rm -rf "$WORK/portability/b"
  start_carmad 18088 "$WORK/portability/b" "${manual[@]}"
  start=$(seconds)
  "$CARMA" import --server http://127.0.0.1:18088 "$WORK/portability/export.ndjson" >/dev/null
  imports+=("$(rate "$start" "$(seconds)")")
  start=$(seconds)
  "$CARMA" import --server http://127.0.0.1:18088 "$WORK/portability/export.ndjson" >/dev/null
  reruns+=("$(rate "$start" "$(seconds)")")
  stop_carmad
  CARMAD_PID=$source_pid
  echo "round $round: export ${exports[-1]}/s, import ${imports[-1]}/s, re-run ${reruns[-1]}/s" >&2
done
bytes=$(stat -c %s "$WORK/portability/export.ndjson")
{
  echo "fragments: $COUNT of 1 KB; export file $((bytes / 1048576)) MiB; rounds: $ROUNDS"
  echo "export (fragments/s, median): $(printf '%s\n' "${exports[@]}" | median)  rounds: ${exports[*]}"
  echo "import into a fresh carmad (fragments/s, median): $(printf '%s\n' "${imports[@]}" | median)  rounds: ${imports[*]}"
  echo "import again, nothing to write (fragments/s, median): $(printf '%s\n' "${reruns[@]}" | median)  rounds: ${reruns[*]}"
} | tee "$RESULTS/export-import.txt"
