#!/usr/bin/env bash
# Reconstruction quality against the originals: 5% of a 4,000-fragment slice of the man-page corpus
# lost together with their redundancy copies, so that every one must be rebuilt from context
# (carma experiment --lose-redundancy 1). Two runs on the same slice and seed, side by side:
#   meaning  carmad with the embedding model, --reconstruction meaning (aimed at the kept embedding)
#   sketch   carmad without a model, the sketch-guided extractive method of before
# and two baselines scored in the meaning run (copy of the most similar surviving fragment; a fixed
# template). Every rebuilt text is compared with its original by token F1, ROUGE-L, sketch cosine and
# the model's cosine (the experiment embeds both with the same model).
source "$(dirname "$0")/lib.sh"
build_release
MODEL=${CARMA_EMBEDDING_MODEL:-$("$BENCH_ROOT/scripts/model-path.sh")}
FRAGMENTS=${FRAGMENTS:-4000}
SEED=${SEED:-7}
fresh_dir "$WORK/reconstruction"
slice="$WORK/reconstruction/slice.jsonl"
manpage_slice "$FRAGMENTS" "$slice"
run() {
  local name=$1 port=$2; shift 2
  start_carmad "$port" "$WORK/reconstruction/$name" --cache-bytes 0 --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000 "$@"
  "$CARMA" experiment --server "http://127.0.0.1:$port" --corpus "$slice" --data-dir "$WORK/reconstruction/$name" \
    --out "$WORK/reconstruction/$name-out" --delete-share 0.05 --corrupt-share 0 --lose-redundancy 1 --queries 4000 --seed "$SEED" \
    --embedding-model "$MODEL" >/dev/null
  stop_carmad
  cp "$WORK/reconstruction/$name-out/report.json" "$RESULTS/reconstruction-$name.json"
}
run meaning 18086 --embedding-model "$MODEL" --reconstruction meaning
CARMA_EMBEDDING_MODEL= run sketch 18087 --reconstruction sketch
python3 - "$RESULTS/reconstruction-meaning.json" "$RESULTS/reconstruction-sketch.json" <<'PY'
import json, sys
meaning, sketch = (json.load(open(p)) for p in sys.argv[1:3])
def row(label, m):
    return "| %s | %s |" % (label, " | ".join("%.3f" % m[k]["mean"] if m.get(k) and m[k].get("mean") is not None else "–"
                                               for k in ("token_f1", "rouge_l", "sketch_cosine", "meaning_cosine")))
sm, ss = meaning["similarity"], sketch["similarity"]
print("| method (%d and %d fragments rebuilt) | token F1 | ROUGE-L | sketch cosine | meaning cosine |" % (sm["reconstructions"], ss["reconstructions"]))
print("|---|---|---|---|---|")
print(row("aimed at meaning (" + ", ".join(sm["methods"]) + ")", sm))
print(row("aimed at the sketch (" + ", ".join(ss["methods"]) + ")", ss))
print(row("copy of the most similar surviving fragment", sm["baselines"]["copy_most_similar"]))
print(row("fixed template naming the fragment", sm["baselines"]["template"]))
c = sm.get("calibration") or {}
print("\nconfidence against token F1 (meaning run): " + "; ".join(
    "%d at %.2f had %.2f" % (b["count"], b["mean_confidence"], b["mean_token_f1"]) for b in c.get("bands", [])) +
    "; mean absolute gap %.3f" % c.get("mean_absolute_gap", float("nan")))
PY
