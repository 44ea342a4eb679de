#!/usr/bin/env bash
# Online backup at a realistic size: 100,000 fragments of 1 KB (two logs and the registry).
# Each round, alternating on the same store:
#  1. `carmad backup` into an empty directory while carmad runs (the first, full backup);
#  2. 5% new fragments written, then `carmad backup` into the same directory (incremental: sealed
#     segments already there are checked against their checksum and kept, the rest copied);
#  3. the reference: carmad stopped, `cp -a` of the data directory (both logs and the registry, as
#     the default layout keeps the redundancy log inside it), then `sync`, since a backup is
#     durable when it returns (every file it writes is fsynced). `cp -a` alone is reported too.
# Medians of ROUNDS rounds (default 3). The page cache is warm for both sides (nothing is dropped).
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-100000}
ROUNDS=${ROUNDS:-3}
build_release
fresh_dir "$WORK/backup"
data="$WORK/backup/data"
manual=(--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000)
start_carmad 18084 "$data" "${manual[@]}"
"$CARMA" load put --server http://127.0.0.1:18084 --prefix f --count "$COUNT" --size 1000 --connections 64 >/dev/null
echo "loaded $COUNT fragments" >&2

# timed OUT_FILE command…: runs it (its output to OUT_FILE) and prints the wall-clock seconds it took.
timed() {
  local out=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" >"$out"
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

full=() incremental=() copy=() copy_sync=() copied_mib=() kept_mib=()
for round in $(seq 1 "$ROUNDS"); do
  target="$WORK/backup/target-$round"
  rm -rf "$target" "$WORK/backup/cp-$round"
  sync
  full+=("$(timed "$WORK/backup/full.txt" "$CARMAD" backup --data-dir "$data" --to "$target")")
  "$CARMA" load put --server http://127.0.0.1:18084 --prefix "r$round-" --count $((COUNT / 20)) --size 1000 --connections 64 >/dev/null
  sync
  incremental+=("$(timed "$WORK/backup/incremental.txt" "$CARMAD" backup --data-dir "$data" --to "$target")")
  out=$(cat "$WORK/backup/incremental.txt")
  copied_mib+=("$(python3 -c 'import re,sys; print(re.search(r"copied \(([0-9.]+) MiB\)", sys.argv[1]).group(1))' "$out")")
  kept_mib+=("$(python3 -c 'import re,sys; print(re.search(r"backup \(([0-9.]+) MiB\)", sys.argv[1]).group(1))' "$out")")
  "$CARMAD" backup --verify "$target" >/dev/null
  stop_carmad
  sync
  start=$(date +%s.%N)
  cp -a "$data" "$WORK/backup/cp-$round"
  mid=$(date +%s.%N)
  sync
  end=$(date +%s.%N)
  copy+=("$(awk -v a="$start" -v b="$mid" 'BEGIN { printf "%.3f", b - a }')")
  copy_sync+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')")
  start_carmad 18084 "$data" "${manual[@]}"
  echo "round $round: full ${full[-1]} s, incremental ${incremental[-1]} s (${copied_mib[-1]} MiB copied, ${kept_mib[-1]} MiB kept), cp -a ${copy[-1]} s (+ sync ${copy_sync[-1]} s)" >&2
  rm -rf "$WORK/backup/cp-$round" "$target"
done
size_mib=$(du -sm "$data" | cut -f1)
stop_carmad

m_full=$(median "${full[@]}"); m_incr=$(median "${incremental[@]}"); m_cp=$(median "${copy[@]}"); m_cps=$(median "${copy_sync[@]}")
cat >"$RESULTS/backup.json" <<JSON
{"fragments": $COUNT, "rounds": $ROUNDS, "data_dir_mib": $size_mib,
 "full_backup_seconds": [$(IFS=,; echo "${full[*]}")], "incremental_backup_seconds": [$(IFS=,; echo "${incremental[*]}")],
 "incremental_copied_mib": [$(IFS=,; echo "${copied_mib[*]}")], "incremental_kept_mib": [$(IFS=,; echo "${kept_mib[*]}")],
 "cp_a_seconds": [$(IFS=,; echo "${copy[*]}")], "cp_a_sync_seconds": [$(IFS=,; echo "${copy_sync[*]}")],
 "median": {"full": $m_full, "incremental": $m_incr, "cp_a": $m_cp, "cp_a_sync": $m_cps}}
JSON
echo "| measure (median of $ROUNDS, $COUNT fragments, data directory $size_mib MiB at the end) | seconds |"
echo "|---|---|"
echo "| carmad backup, first (full), carmad running | $m_full |"
echo "| carmad backup, incremental after 5% new writes | $m_incr |"
echo "| cp -a of the stopped data directory, then sync | $m_cps (cp -a alone $m_cp) |"
echo "| full / cp -a+sync | $(ratio "$m_full" "$m_cps") |"
echo "| incremental / cp -a+sync | $(ratio "$m_incr" "$m_cps") |"
