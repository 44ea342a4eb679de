#!/usr/bin/env bash
# Disk space: the man-page corpus (all of it, ~18,000 fragments of ~1 KB) PUT once through
# `carma import`, carmad stopped cleanly, then the bytes on disk against the JSON bytes PUT.
# Targets: data directory (primary log + registry) <= 2.0x, redundancy log <= 1.3x.
source "$(dirname "$0")/lib.sh"
build_release
corpus="$BENCH_ROOT/corpus/manpages-full.jsonl"
[ -f "$corpus" ] || python3 "$BENCH_ROOT/scripts/build-corpus.py" --out "$corpus" --min-fragments 0 >/dev/null
fresh_dir "$WORK/space"
data="$WORK/space/data"
redundancy="$WORK/space/redundancy"
start_carmad 18087 "$data" --redundancy-dir "$redundancy" --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000
"$CARMA" import --server http://127.0.0.1:18087 "$corpus" >&2
stop_carmad
# The JSON bodies as `carma import` sends them (content, links, tags, metadata; compact).
read -r fragments json_bytes < <(python3 - "$corpus" <<'PY'
import json, sys
count = total = 0
for line in open(sys.argv[1], encoding="utf-8"):
    fragment = json.loads(line)
    body = {key: fragment[key] for key in ("content", "links", "tags", "metadata") if key in fragment}
    total += len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    count += 1
print(count, total)
PY
)
primary=$(du -sb "$data/segments" | cut -f1)
registry=$(cat "$data"/registry.sqlite3* | wc -c)
data_total=$(du -sb "$data" | cut -f1)
redundancy_total=$(du -sb "$redundancy" | cut -f1)
cat >"$RESULTS/space.json" <<JSON
{"fragments": $fragments, "json_bytes_put": $json_bytes, "primary_log_bytes": $primary, "registry_bytes": $registry,
 "data_dir_bytes": $data_total, "redundancy_dir_bytes": $redundancy_total,
 "data_dir_ratio": $(ratio "$data_total" "$json_bytes"), "redundancy_ratio": $(ratio "$redundancy_total" "$json_bytes")}
JSON
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "| $fragments fragments, $(mib "$json_bytes") of JSON PUT | bytes on disk | ratio | target |"
echo "|---|---|---|---|"
echo "| data directory (primary log $(mib "$primary") + registry $(mib "$registry")) | $(mib "$data_total") | $(ratio "$data_total" "$json_bytes") | <= 2.0 |"
echo "| redundancy directory | $(mib "$redundancy_total") | $(ratio "$redundancy_total" "$json_bytes") | <= 1.3 |"
