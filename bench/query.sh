#!/usr/bin/env bash
# Query latency at 100,000 fragments (POST /query with a sentence, k=10, hybrid: BM25 over whole
# contents + the model's embedding of the query against every fragment's): one client for latency, 16
# for throughput. The fragments are built from real sentences of the man-page corpus, three to eight
# per fragment, so that term statistics look like real text.
#
# Embedding 100,000 such fragments at the model's 256 tokens takes hours on one core, and what a
# query costs does not depend on what the stored vectors say: they are filled with
# --embedding-max-tokens 16 (the first 16 tokens of each fragment), then carmad is restarted with the
# default 256, so that each query's own embedding costs what it costs in use.
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-100000}
build_release
corpus="$BENCH_ROOT/corpus/manpages.jsonl"
[ -f "$corpus" ] || python3 "$BENCH_ROOT/scripts/build-corpus.py" --out "$corpus" >/dev/null
fresh_dir "$WORK/query"
python3 - "$corpus" "$COUNT" "$WORK/query/mixed.jsonl" <<'PY'
import json, random, re, sys
source, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sentences = []
for line in open(source):
    for s in re.split(r"(?<=[.!?])\s+|\n", json.loads(line)["content"]):
        if len(s.split()) >= 5:
            sentences.append(s.strip())
random.seed(1)
with open(out, "w") as f:
    for i in range(count):
        text = " ".join(random.sample(sentences, random.randint(3, 8)))
        f.write(json.dumps({"id": f"q{i}", "content": text, "links": [f"q{random.randrange(count)}"], "tags": [f"t{i % 50}"]}) + "\n")
PY
MODEL=${CARMA_EMBEDDING_MODEL:-$("$BENCH_ROOT/scripts/model-path.sh")}
quiet=(--dream-interval 3600 --dream-max-interval 3600 --dream-idle-delay 100000 --embedding-model "$MODEL")
wait_embedded() {
  until curl -fsS http://127.0.0.1:18085/readyz | python3 -c 'import json,sys; r=json.load(sys.stdin)["retrieval"]; sys.exit(0 if r["text_index_ready"] and r["embedding_backlog"] == 0 and r["embedded"] >= '"$COUNT"' else 1)'; do sleep 5; done
}
start_carmad 18085 "$WORK/query/data" "${quiet[@]}" --embedding-max-tokens 16
"$CARMA" import "$WORK/query/mixed.jsonl" --server http://127.0.0.1:18085 --connections 64 >&2
started=$(date +%s)
wait_embedded
echo "embedded $COUNT fragments at 16 tokens in $(( $(date +%s) - started )) s" >&2
stop_carmad
start_carmad 18085 "$WORK/query/data" "${quiet[@]}"
wait_embedded
"$CARMA" load query --server http://127.0.0.1:18085 --corpus "$corpus" --connections 1 --duration 20 --json "$WORK/query/one.json" >/dev/null
"$CARMA" load query --server http://127.0.0.1:18085 --corpus "$corpus" --connections 16 --duration 20 --json "$WORK/query/sixteen.json" >/dev/null
# The same store by mode: words alone, meaning alone, both (one client, 300 sentences).
python3 "$BENCH_ROOT/bench/query-modes.py" 18085 "$corpus" 300 "$WORK/query/modes.json" >&2
python3 - "$WORK/query/one.json" "$WORK/query/sixteen.json" "$RESULTS/query.json" "$COUNT" "$WORK/query/modes.json" <<'PY'
import json, sys
one, sixteen = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
result = {"fragments": int(sys.argv[4]), "one_client": one, "sixteen_clients": sixteen, "by_mode": json.load(open(sys.argv[5]))}
json.dump(result, open(sys.argv[3], "w"), indent=1)
print("| POST /query, k=10, %d fragments | queries/s | p50 ms | p99 ms |" % result["fragments"])
print("|---|---|---|---|")
for name, r in (("1 client", one), ("16 clients", sixteen)):
    print("| %s | %d | %.2f | %.2f |" % (name, r["requests_per_second"], r["latency"]["p50_ms"], r["latency"]["p99_ms"]))
PY
