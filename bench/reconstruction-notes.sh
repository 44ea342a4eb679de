#!/usr/bin/env bash
# What comes back when a fragment is lost in both logs: short agent notes (corpus/agent-memory
# facts) and long man-page fragments (a 1,000-fragment slice), each with an earlier carmad and this
# one, side by side in one run, measured by the same harness (this tree's `carma experiment`).
#
#   OLD_BIN=/path/to/earlier/release bench/reconstruction-notes.sh
#
# OLD_BIN is a directory holding an earlier build's carmad (e.g. a worktree of an earlier commit,
# built with `swift build -c release --product carmad`). Every run loses 10% of the fragments (5%
# of the man-page slice) in the primary and the redundancy log (--lose-redundancy 1), runs one
# dream cycle, and reads everything back. Per run: how many came back exact, reconstructed or
# blank, and over every lost fragment (exact counts 1, blank 0) the token F1, content-word recall
# and the model's cosine against the original; then the same over the reconstructions alone.
source "$(dirname "$0")/lib.sh"
build_release
: "${OLD_BIN:?set OLD_BIN to a directory holding the carmad of an earlier build}"
MODEL=${CARMA_EMBEDDING_MODEL:-$("$BENCH_ROOT/scripts/model-path.sh")}
SEED=${SEED:-7}
fresh_dir "$WORK/reconstruction-notes"
slice="$WORK/reconstruction-notes/manpages.jsonl"
manpage_slice 1000 "$slice"
NEW_CARMAD=$CARMAD
run() {
  local name=$1 binary=$2 corpus=$3 share=$4 port=$5
  CARMAD=$binary start_carmad "$port" "$WORK/reconstruction-notes/$name" --cache-bytes 0 --dream-interval 3600 --dream-max-interval 3600 \
    --dream-idle-delay 100000 --embedding-model "$MODEL"
  "$CARMA" experiment --server "http://127.0.0.1:$port" --corpus "$corpus" --data-dir "$WORK/reconstruction-notes/$name" \
    --out "$WORK/reconstruction-notes/$name-out" --delete-share "$share" --corrupt-share 0 --lose-redundancy 1 --queries 1000 \
    --seed "$SEED" --embedding-model "$MODEL" >/dev/null
  stop_carmad
  cp "$WORK/reconstruction-notes/$name-out/report.json" "$RESULTS/reconstruction-notes-$name.json"
}
run notes-before "$OLD_BIN/carmad" "$BENCH_ROOT/corpus/agent-memory/facts.jsonl" 0.1 18091
run notes-after "$NEW_CARMAD" "$BENCH_ROOT/corpus/agent-memory/facts.jsonl" 0.1 18092
run manpages-before "$OLD_BIN/carmad" "$slice" 0.05 18093
run manpages-after "$NEW_CARMAD" "$slice" 0.05 18094
python3 - "$RESULTS" <<'PY'
import json, sys
results = sys.argv[1]
print("| corpus, carmad | lost | exact | reconstructed | blank | token F1 (all lost) | content-word recall (all lost) | meaning cosine (all lost) | token F1 / recall / cosine (reconstructions) |")
print("|---|---|---|---|---|---|---|---|---|")
for name in ("notes-before", "notes-after", "manpages-before", "manpages-after"):
    report = json.load(open("%s/reconstruction-notes-%s.json" % (results, name)))
    lost = [f for f in report["fragments"] if f.get("redundancy_lost")]
    counts = {k: sum(1 for f in lost if f["outcome"] == k) for k in ("exact", "reconstructed", "blank")}
    def over_all(measure):
        values = [1.0 if f["outcome"] == "exact" else f.get(measure, 0.0) if f["outcome"] == "reconstructed" else 0.0 for f in lost]
        return sum(values) / len(values) if values else float("nan")
    def over_rebuilt(measure):
        values = [f[measure] for f in lost if f["outcome"] == "reconstructed" and measure in f]
        return "%.2f" % (sum(values) / len(values)) if values else "–"
    print("| %s | %d | %d | %d | %d | %.2f | %.2f | %.2f | %s / %s / %s |" % (
        name.replace("-", ", "), len(lost), counts["exact"], counts["reconstructed"], counts["blank"],
        over_all("token_f1"), over_all("content_word_recall"), over_all("meaning_cosine"),
        over_rebuilt("token_f1"), over_rebuilt("content_word_recall"), over_rebuilt("meaning_cosine")))
PY
