#!/usr/bin/env bash
# What the reduced-precision encoder costs in quality (issue 26, part 2):
#   1. vectors of FRAGMENTS man-page fragments spread over the corpus, each precision this CPU runs
#      against fp32: mean, lowest and 1st-percentile cosine;
#   2. the retrieval evaluations, once with every embedding in fp32 and once in the default
#      precision (auto), through CARMA_EMBEDDING_PRECISION, which carmad and `carmad embed` read:
#      scripts/eval-retrieval.py (man pages) and scripts/eval-memory.py (short notes); hit@1 per
#      query set and ranking, and the largest difference.
# Writes bench-results/embedding-quality.json.
source "$(dirname "$0")/lib.sh"
FRAGMENTS=${FRAGMENTS:-1000}
build_release
MODEL=${CARMA_EMBEDDING_MODEL:-$("$BENCH_ROOT/scripts/model-path.sh")}
fresh_dir "$WORK/embedding-quality"
dir=$WORK/embedding-quality
python3 - "$BENCH_ROOT/corpus/manpages-full.jsonl" "$FRAGMENTS" "$dir/texts.jsonl" <<'PY'
import json, sys
fragments = [json.loads(line) for line in open(sys.argv[1])]
count = int(sys.argv[2])
step = max(1, len(fragments) // count)
with open(sys.argv[3], "w") as out:
    for f in fragments[::step][:count]:
        out.write(json.dumps(f["content"]) + "\n")
PY
for precision in fp32 bf16 int8; do
  "$CARMAD" embed --model "$MODEL" --precision "$precision" <"$dir/texts.jsonl" >"$dir/vectors-$precision.jsonl" 2>"$dir/$precision.err" ||
    echo "$precision: not on this CPU ($(head -c 200 "$dir/$precision.err"))" >&2
done
auto=$("$CARMAD" embed --model "$MODEL" --measure <"$dir/texts.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["precision"])')
for precision in fp32 auto; do
  CARMA_EMBEDDING_PRECISION=$precision python3 "$BENCH_ROOT/scripts/eval-retrieval.py" --carmad "$CARMAD" --model "$MODEL" \
    --out "$dir/retrieval-$precision.json" >&2
  CARMA_EMBEDDING_PRECISION=$precision python3 "$BENCH_ROOT/scripts/eval-memory.py" --carmad "$CARMAD" --model "$MODEL" \
    --out "$dir/memory-$precision.json" >&2
done
python3 - "$dir" "$auto" "$RESULTS/embedding-quality.json" <<'PY'
import json, os, sys
import numpy as np
dir, auto, out = sys.argv[1], sys.argv[2], sys.argv[3]
def vectors(precision):
    path = os.path.join(dir, "vectors-%s.jsonl" % precision)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    return np.array([json.loads(line) for line in open(path)], dtype=np.float64)
fp32 = vectors("fp32")
result = {"fragments": len(fp32), "auto": auto, "cosine_to_fp32": {}, "retrieval_hit@1": {}, "memory_hit@1": {}}
for precision in ("bf16", "int8"):
    v = vectors(precision)
    if v is None:
        continue
    c = (v * fp32).sum(axis=1) / np.linalg.norm(v, axis=1) / np.linalg.norm(fp32, axis=1)
    result["cosine_to_fp32"][precision] = {"mean": round(float(c.mean()), 5), "min": round(float(c.min()), 5),
                                          "p1": round(float(np.percentile(c, 1)), 5)}
worst = 0.0
retrieval = {p: json.load(open(os.path.join(dir, "retrieval-%s.json" % p))) for p in ("fp32", "auto")}
for name, row in retrieval["fp32"]["sets"].items():
    for method, metrics in row.items():
        if method == "bm25 baseline":
            continue
        fast = retrieval["auto"]["sets"][name][method]["hit@1"]
        result["retrieval_hit@1"]["%s / %s" % (name, method)] = {"fp32": metrics["hit@1"], auto: fast}
        worst = max(worst, abs(fast - metrics["hit@1"]))
memory = {p: json.load(open(os.path.join(dir, "memory-%s.json" % p))) for p in ("fp32", "auto")}
for shape, body in memory["fp32"]["shapes"].items():
    for method, metrics in body["splits"]["all"]["methods"].items():
        if method == "bm25 baseline":
            continue
        fast = memory["auto"]["shapes"][shape]["splits"]["all"]["methods"][method]["hit@1"]
        result["memory_hit@1"]["%s / %s" % (shape, method)] = {"fp32": metrics["hit@1"], auto: fast}
        worst = max(worst, abs(fast - metrics["hit@1"]))
result["largest_hit@1_difference"] = round(worst, 3)
json.dump(result, open(out, "w"), indent=1)
for precision, c in result["cosine_to_fp32"].items():
    print("%s vs fp32 over %d man-page fragments: mean cosine %.5f, lowest %.5f, 1st percentile %.5f" % (
        precision, result["fragments"], c["mean"], c["min"], c["p1"]))
print("| evaluation | query set / ranking | hit@1 fp32 | hit@1 %s |" % auto)
print("|---|---|---|---|")
for key in ("retrieval_hit@1", "memory_hit@1"):
    for name, values in result[key].items():
        print("| %s | %s | %.3f | %.3f |" % ("man pages" if key.startswith("retrieval") else "short notes", name, values["fp32"], values[auto]))
print("largest hit@1 difference: %.3f" % worst)
PY
