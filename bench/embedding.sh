#!/usr/bin/env bash
# The built-in model's speed: fragments embedded per second on one core (`carmad embed --measure`
# over 1,000 corpus fragments), and the background embedder's backlog drained by a running carmad
# after COUNT fragments were PUT (20,000: the man-page corpus, 18,444 fragments, topped up with
# copies under new ids). PUTs are acknowledged without waiting for it; the time is from the last
# acknowledgement to an empty backlog.
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-20000}
build_release
MODEL=${CARMA_EMBEDDING_MODEL:-$("$BENCH_ROOT/scripts/model-path.sh")}
fresh_dir "$WORK/embedding"
python3 - "$BENCH_ROOT/corpus/manpages-full.jsonl" "$COUNT" "$WORK/embedding/corpus.jsonl" "$WORK/embedding/texts.jsonl" <<'PY'
import json, sys
source, count, out, texts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
fragments = [json.loads(line) for line in open(source)]
with open(out, "w") as w, open(texts, "w") as t:
    for i in range(count):
        f = dict(fragments[i % len(fragments)])
        if i >= len(fragments):
            f["id"] = f["id"] + ".copy%d" % (i // len(fragments))
        w.write(json.dumps(f) + "\n")
        if i < 1000:
            t.write(json.dumps(f["content"]) + "\n")
PY
one_core=$("$CARMAD" embed --model "$MODEL" --measure < "$WORK/embedding/texts.jsonl")
echo "one core: $one_core" >&2
start_carmad 18088 "$WORK/embedding/data" --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000 --embedding-model "$MODEL"
"$CARMA" import "$WORK/embedding/corpus.jsonl" --server http://127.0.0.1:18088 --connections 32 >&2
started=$(date +%s.%N)
until curl -fsS http://127.0.0.1:18088/readyz | python3 -c 'import json,sys; r=json.load(sys.stdin)["retrieval"]; sys.exit(0 if r["embedding_backlog"] == 0 and r["embedded"] >= '"$COUNT"' else 1)'; do sleep 2; done
finished=$(date +%s.%N)
python3 - "$one_core" "$started" "$finished" "$COUNT" "$RESULTS/embedding.json" <<'PY'
import json, sys
one, started, finished, count, out = json.loads(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
drain = finished - started
result = {"one_core_fragments_per_second": round(one["per_second"], 1), "mean_tokens": round(one["mean_tokens"], 1),
          "fragments": count, "backlog_drain_seconds": round(drain, 1), "drain_fragments_per_second": round(count / drain, 1)}
json.dump(result, open(out, "w"), indent=1)
print("embedding on one core: %.1f fragments/s (mean %.0f tokens); %d fragments' backlog drained in %.1f min (%.1f/s)" % (
    result["one_core_fragments_per_second"], result["mean_tokens"], count, drain / 60, result["drain_fragments_per_second"]))
PY
