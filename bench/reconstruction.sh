#!/usr/bin/env bash
# Reconstruction quality against the originals, next to two baselines computed in the same run: 5%
# of the man-page corpus lost together with their redundancy copies, so that every one must be
# rebuilt from context (carma experiment --lose-redundancy 1).
source "$(dirname "$0")/lib.sh"
build_release
corpus="$BENCH_ROOT/corpus/manpages-full.jsonl"
[ -f "$corpus" ] || python3 "$BENCH_ROOT/scripts/build-corpus.py" --out "$corpus" --min-fragments 0 >/dev/null
fresh_dir "$WORK/reconstruction"
start_carmad 18086 "$WORK/reconstruction/data" --cache-bytes 0 --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000
"$CARMA" experiment --server http://127.0.0.1:18086 --corpus "$corpus" --data-dir "$WORK/reconstruction/data" \
  --out "$WORK/reconstruction/out" --delete-share 0.05 --corrupt-share 0 --lose-redundancy 1 --queries 10000 >/dev/null
cp "$WORK/reconstruction/out/report.json" "$RESULTS/reconstruction.json"
sed -n '/## Reconstructions against two baselines/,/^## Foreground/p' "$WORK/reconstruction/out/report.md" | sed '$d'
