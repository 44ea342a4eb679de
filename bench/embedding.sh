#!/usr/bin/env bash
# The built-in model's speed, side by side in one run (ROUNDS rounds, interleaved, medians), on
# SPEED_TEXTS man-page fragments spread over the corpus:
#   old       fp32 over OpenBLAS, one text at a time, one thread (`carmad embed --precision fp32
#             --batch 1 --threads 1`): the encoder before issue 26
#   new 1T    the default precision (auto: int8 where the CPU has VNNI), batches of 64, one thread
#   new       the same on every core (`--threads $(nproc)`)
#   numpy     scripts/minilm.py in padded batches of 32 sorted by length, one BLAS thread
#             (NUMPY_TEXTS texts; with two BLAS threads it collapses when the machine is shared)
# Each also reports its CPU time: fragments per CPU-second are what an idle core does when the
# machine is shared. Then the query embedding: texts cut at 32 tokens, one at a time on one thread, median call in ms,
# old and new (and new at 16 tokens); and a reconstruction's embedding work, 40 candidate
# sentences, in 40 calls before and one call now. Then the background embedder's backlog drained by a running carmad (defaults: auto
# precision, one embedder thread per core) after COUNT fragments were PUT (20,000: the man-page
# corpus topped up with copies under new ids). PUTs are acknowledged without waiting for it; the
# time is from the last acknowledgement to an empty backlog. OLD_DRAIN=1 drains it a second time
# with `--embedding-precision fp32 --embedding-threads 1` (about 25 minutes).
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-20000}
ROUNDS=${ROUNDS:-3}
SPEED_TEXTS=${SPEED_TEXTS:-300}
NUMPY_TEXTS=${NUMPY_TEXTS:-64}
build_release
MODEL=${CARMA_EMBEDDING_MODEL:-$("$BENCH_ROOT/scripts/model-path.sh")}
fresh_dir "$WORK/embedding"
python3 - "$BENCH_ROOT/corpus/manpages-full.jsonl" "$COUNT" "$SPEED_TEXTS" "$WORK/embedding" <<'PY'
import json, sys
source, count, speed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fragments = [json.loads(line) for line in open(source)]
with open(out + "/corpus.jsonl", "w") as w:
    for i in range(count):
        f = dict(fragments[i % len(fragments)])
        if i >= len(fragments):
            f["id"] = f["id"] + ".copy%d" % (i // len(fragments))
        w.write(json.dumps(f) + "\n")
step = max(1, len(fragments) // speed)
with open(out + "/texts.jsonl", "w") as t:
    for f in fragments[::step][:speed]:
        t.write(json.dumps(f["content"]) + "\n")
# A reconstruction's embedding work: 40 candidate sentences (of 20 to 300 characters, as the
# reconstructors' sentence splitter gives), 10 reconstructions' worth.
sentences = []
for f in fragments[::step]:
    for s in f["content"].replace("\n", " ").split(". "):
        if 20 <= len(s) <= 300:
            sentences.append(s)
with open(out + "/sentences.jsonl", "w") as t:
    for s in sentences[:400]:
        t.write(json.dumps(s) + "\n")
PY
cores=$(nproc)
texts=$WORK/embedding/texts.jsonl
: >"$WORK/embedding/rounds.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  old=$("$CARMAD" embed --model "$MODEL" --measure --precision fp32 --batch 1 --threads 1 <"$texts")
  new1=$("$CARMAD" embed --model "$MODEL" --measure --batch 64 --threads 1 <"$texts")
  new=$("$CARMAD" embed --model "$MODEL" --measure --batch 64 --threads "$cores" <"$texts")
  numpy=$(OPENBLAS_NUM_THREADS=1 python3 - "$BENCH_ROOT/scripts" "$texts" "$NUMPY_TEXTS" <<'PY'
import json, sys, time
sys.path.insert(0, sys.argv[1])
import minilm
model = minilm.MiniLM()
texts = [json.loads(line) for line in open(sys.argv[2])][:int(sys.argv[3])]
started = time.time()
model.embed_batch(texts, batch=32)
print(json.dumps({"per_second": len(texts) / (time.time() - started)}))
PY
)
  query_old=$("$CARMAD" embed --model "$MODEL" --measure --precision fp32 --batch 1 --threads 1 --max-tokens 32 <"$texts")
  query_new=$("$CARMAD" embed --model "$MODEL" --measure --batch 1 --threads 1 --max-tokens 32 <"$texts")
  query16=$("$CARMAD" embed --model "$MODEL" --measure --batch 1 --threads 1 --max-tokens 16 <"$texts")
  # The query path itself: the model's prefix first (within the 32), the layers split with the helper thread.
  query_team=$("$CARMAD" embed --model "$MODEL" --measure --batch 1 --threads 1 --query --max-tokens 32 <"$texts")
  sentences_old=$("$CARMAD" embed --model "$MODEL" --measure --precision fp32 --batch 1 --threads 1 <"$WORK/embedding/sentences.jsonl")
  sentences_new=$("$CARMAD" embed --model "$MODEL" --measure --batch 40 --threads 1 <"$WORK/embedding/sentences.jsonl")
  echo "{\"old\": $old, \"new1\": $new1, \"new\": $new, \"numpy\": $numpy, \"query_old\": $query_old, \"query_new\": $query_new," \
    "\"query16\": $query16, \"query_team\": $query_team, \"sentences_old\": $sentences_old, \"sentences_new\": $sentences_new}" >>"$WORK/embedding/rounds.jsonl"
  echo "round $round: old $(echo "$old" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["per_second"], 1))')/s," \
    "new $(echo "$new" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["per_second"], 1))')/s" >&2
done

drain() {
  local port=$1; shift
  fresh_dir "$WORK/embedding/data-$port"
  start_carmad "$port" "$WORK/embedding/data-$port" --dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000 --embedding-model "$MODEL" "$@"
  local began
  began=$(date +%s.%N)
  "$CARMA" import "$WORK/embedding/corpus.jsonl" --server "http://127.0.0.1:$port" --connections 32 >&2
  local acknowledged cpu_before
  acknowledged=$(date +%s.%N)
  cpu_before=$(awk '{print $14 + $15}' "/proc/$CARMAD_PID/stat")
  until curl -fsS "http://127.0.0.1:$port/readyz" | python3 -c 'import json,sys; r=json.load(sys.stdin)["retrieval"]; sys.exit(0 if r["embedding_backlog"] == 0 and r["embedded"] >= '"$COUNT"' else 1)'; do sleep 2; done
  local finished cpu_after
  finished=$(date +%s.%N)
  cpu_after=$(awk '{print $14 + $15}' "/proc/$CARMAD_PID/stat")
  stop_carmad
  echo "$began $acknowledged $finished $(awk -v a="$cpu_after" -v b="$cpu_before" -v hz="$(getconf CLK_TCK)" 'BEGIN {print (a - b) / hz}')"
}
new_drain=$(drain 18088)
old_drain=""
if [ "${OLD_DRAIN:-0}" = 1 ]; then old_drain=$(drain 18089 --embedding-precision fp32 --embedding-threads 1); fi

python3 - "$WORK/embedding/rounds.jsonl" "$new_drain" "$old_drain" "$COUNT" "$cores" "$RESULTS/embedding.json" <<'PY'
import json, statistics, sys
rounds = [json.loads(line) for line in open(sys.argv[1])]
count, cores, out = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
median = lambda key, field="per_second": round(statistics.median(r[key][field] for r in rounds), 2)
def drain(text):
    if not text:
        return None
    began, acknowledged, finished, cpu = map(float, text.split())
    # carmad's own CPU time from the last acknowledgement to the empty backlog: on a shared machine,
    # what the drain would take with the cores to itself is about cpu / cores.
    return {"after_last_ack_seconds": round(finished - acknowledged, 1), "from_first_put_seconds": round(finished - began, 1),
            "fragments_per_second_after_ack": round(count / (finished - acknowledged), 1), "carmad_cpu_seconds": round(cpu, 1),
            "idle_estimate_seconds": round(cpu / cores, 1)}
result = {
    "precision": rounds[0]["new"]["precision"], "cores": cores, "rounds": len(rounds),
    "texts": rounds[0]["old"]["fragments"], "mean_tokens": round(rounds[0]["old"]["mean_tokens"], 1),
    "fragments_per_second": {"old_fp32_one_at_a_time": median("old"), "new_one_thread": median("new1"),
                             "new_all_cores": median("new"), "numpy_batch32_one_thread": median("numpy")},
    # CPU time is what the run used whatever else the shared machine did: per CPU-second is what one
    # idle core does, and times the cores what an idle machine would (the threads share no lock).
    "fragments_per_cpu_second": {"old_fp32_one_at_a_time": median("old", "per_cpu_second"), "new_one_thread": median("new1", "per_cpu_second"),
                                 "new_all_cores": median("new", "per_cpu_second")},
    "speedup_over_old": {"one_thread": round(statistics.median(r["new1"]["per_second"] / r["old"]["per_second"] for r in rounds), 2),
                         "all_cores": round(statistics.median(r["new"]["per_second"] / r["old"]["per_second"] for r in rounds), 2)},
    "query_32_tokens_median_ms": {"old": median("query_old", "median_call_ms"), "new": median("query_new", "median_call_ms"),
                                  "new_cpu": round(1000 / median("query_new", "per_cpu_second"), 2),
                                  "query_path_with_helper": median("query_team", "median_call_ms"),
                                  "query_path_cpu": round(1000 / median("query_team", "per_cpu_second"), 2)},
    "query_16_tokens_median_ms": {"new": median("query16", "median_call_ms"), "new_cpu": round(1000 / median("query16", "per_cpu_second"), 2)},
    # A reconstruction's 40 candidate sentences: 40 calls before, one call now (wall ms per reconstruction).
    "reconstruction_40_sentences_ms": {"old": round(40 * 1000 / median("sentences_old"), 1), "new": median("sentences_new", "median_call_ms"),
                                       "mean_tokens": round(rounds[0]["sentences_new"]["mean_tokens"], 1)},
    "backlog_drain": {"fragments": count, "new": drain(sys.argv[2]), "old_fp32_one_thread": drain(sys.argv[3])},
}
json.dump(result, open(out, "w"), indent=1)
f = result["fragments_per_second"]
print("embedding %d man-page fragments (mean %.0f tokens), median of %d rounds: old fp32 one at a time %.1f/s; %s batched %.1f/s on one thread, "
      "%.1f/s on %d cores (%.1fx old); numpy batches of 32 %.1f/s" % (
          result["texts"], result["mean_tokens"], len(rounds), f["old_fp32_one_at_a_time"], result["precision"], f["new_one_thread"],
          f["new_all_cores"], cores, result["speedup_over_old"]["all_cores"], f["numpy_batch32_one_thread"]))
c = result["fragments_per_cpu_second"]
print("per CPU-second (what an idle core does): old %.1f, new %.1f on one thread, %.1f on %d (so about %.0f/s on %d idle cores)" % (
    c["old_fp32_one_at_a_time"], c["new_one_thread"], c["new_all_cores"], cores, c["new_all_cores"] * cores, cores))
q = result["query_32_tokens_median_ms"]
print("query of 32 tokens: %.2f ms on one thread (old %.2f ms; %.2f ms of CPU); of 16 tokens: %.2f ms; "
      "the query path (prefix included, layers split with the helper): %.2f ms (%.2f ms of CPU)" % (
    q["new"], q["old"], q["new_cpu"], result["query_16_tokens_median_ms"]["new"], q["query_path_with_helper"], q["query_path_cpu"]))
r = result["reconstruction_40_sentences_ms"]
print("a reconstruction's 40 candidate sentences (%.0f tokens each): %.1f ms in one call (old: %.1f ms in 40)" % (r["mean_tokens"], r["new"], r["old"]))
d = result["backlog_drain"]["new"]
print("%d fragments' backlog drained %.1f min after the last PUT's acknowledgement (%.1f/s; %.1f min from the first PUT); "
      "carmad used %.0f CPU-seconds, %.1f min on %d idle cores" % (
    count, d["after_last_ack_seconds"] / 60, d["fragments_per_second_after_ack"], d["from_first_put_seconds"] / 60,
    d["carmad_cpu_seconds"], d["idle_estimate_seconds"] / 60, cores))
if result["backlog_drain"]["old_fp32_one_thread"]:
    o = result["backlog_drain"]["old_fp32_one_thread"]
    print("old encoder: drained %.1f min after the last acknowledgement (%.1f/s)" % (o["after_last_ack_seconds"] / 60, o["fragments_per_second_after_ack"]))
PY
