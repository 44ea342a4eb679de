#!/usr/bin/env bash
# Vector search at 1,000,000 fragments: the text index's exact int8 scan against the HNSW graph
# (hnswlib through Sources/CHNSW), through the calls a query makes (TextIndex.nearestMeaning with the
# pool of 100 a fused query takes). Recall@10 against the exact scan, query latency p50/p99, the
# graph's build time and memory, the saved file, reading it back checked, and a restart that reads
# it instead of building. One process, one run: every figure side by side.
#
# The vectors (384 values, the model's size): the model's embeddings of the agent-memory and
# man-page sample texts, with the agent-memory questions as real queries; 200 groups of 10 planted
# neighbours; the rest in 20,000 topics as sentence embeddings cluster (see
# Sources/carma-vector-bench/SyntheticVectors.swift). Filters: tags on 10%, 1% and 0.1% of them.
#
# Options through the environment: COUNT (1000000), QUERIES (200), THREADS (build threads, 1),
# M (16), EF_CONSTRUCTION (100), EF (beam widths to measure, "32,64,128,256"), DEFAULT_EF (the one
# for filtered queries and the restart, 128), CLIENT=1 to also store and search every vector as a
# client vector, CARMA_EMBEDDING_MODEL (the model whose embeddings join the data; the default model).
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-1000000}
QUERIES=${QUERIES:-200}
THREADS=${THREADS:-1}
EF=${EF:-32,64,128,256}
"$BENCH_ROOT/scripts/install-deps.sh"
(cd "$BENCH_ROOT" && swift build -c release --product carma-vector-bench >/dev/null)
model=${CARMA_EMBEDDING_MODEL:-$("$BENCH_ROOT/scripts/model-path.sh")}
client=()
[ "${CLIENT:-0}" = 1 ] && client=(--client)
# REUSE=1: read back the graph an earlier run saved (same COUNT, M, EF_CONSTRUCTION) instead of building.
[ "${REUSE:-0}" = 1 ] && client+=(--reuse)
corpus="$BENCH_ROOT/corpus/agent-memory"
/usr/bin/time -v "$BENCH_ROOT/.build/release/carma-vector-bench" \
  --count "$COUNT" --queries "$QUERIES" --threads "$THREADS" --ef "$EF" --work "$WORK/vectors" \
  --m "${M:-16}" --ef-construction "${EF_CONSTRUCTION:-100}" --default-ef "${DEFAULT_EF:-128}" \
  --model "$model" --corpus "$corpus/facts.jsonl" --corpus "$corpus/dialog.jsonl" \
  --corpus "$BENCH_ROOT/Tests/Fixtures/corpus-sample.jsonl" --questions "$corpus/questions.jsonl" \
  "${client[@]}" --output "$RESULTS/vector-1m.json" 2>"$WORK/vector-1m.log"
grep -E "Maximum resident|Elapsed" "$WORK/vector-1m.log" >&2 || true
