#!/usr/bin/env python3
"""Retrieval quality of carmad's POST /query (modes text, vector, hybrid) against two baselines the
script computes itself, on query sets built from the project's man-page corpus.

Corpus: whole man pages drawn at random (seeded) until about --fragments fragments. The NAME line
("ls - list directory contents") is taken out of the stored text, so that the questions built from it
are not found by copying.

Query sets (each --queries queries, seeded):
  what-it-does  the NAME line's description ("list directory contents"); any fragment of the page
                counts as the answer. Meaning, in other words than the page's.
  known-item    8 consecutive words of one fragment; that fragment is the answer.
  keywords      the 3 words of one fragment that are rarest in the corpus (each in at least 2
                fragments); that fragment is the answer. What someone remembers of a note.

Baselines, computed here: BM25 (k1 1.2, b 0.75, lower-cased alphanumeric words) over the same stored
texts, and dense-only cosine over embeddings from `carmad embed` (the same model; its output matches
the numpy reference scripts/minilm.py). Metrics: hit@1, hit@10, MRR (reciprocal rank of the first
answer within the top 10).

    scripts/eval-retrieval.py --carmad .build/release/carmad --model DIR [--out bench-results/retrieval.json]
"""

import argparse
import collections
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from evalkit import BM25, call, embed, free_port, words  # noqa: E402
NAME_LINE = re.compile(r"^NAME\n(.+?) - (.+?)\n", re.S)


def build_corpus(path, target, seed):
    """Whole pages of the corpus file, in a seeded random order, until `target` fragments:
    (documents with the NAME line taken out, {(section, page): (description, the page's ids)})."""
    pages = collections.OrderedDict()
    for line in open(path, encoding="utf-8"):
        fragment = json.loads(line)
        key = (fragment["metadata"]["section"], fragment["metadata"]["page"])
        pages.setdefault(key, []).append(fragment)
    keys = list(pages)
    random.Random(seed).shuffle(keys)
    documents, descriptions = [], {}
    for key in keys:
        if len(documents) >= target:
            break
        page_ids = [f["id"] for f in pages[key]]
        for fragment in pages[key]:
            content = fragment["content"]
            match = NAME_LINE.match(content)
            if match:
                description = match.group(2).strip()
                if len(words(description)) >= 3:
                    descriptions[key] = (description, set(page_ids))
                content = content[match.end():].lstrip("\n")
            if not content.strip():
                content = fragment["metadata"]["heading"].lower()
            documents.append({"id": fragment["id"], "content": content, "tags": fragment["tags"], "links": fragment["links"],
                              "metadata": fragment["metadata"]})
    return documents, descriptions


def query_sets(documents, descriptions, count, seed):
    """{"what-it-does", "known-item", "keywords": [(query, set of answer ids)]}, seeded."""
    rng = random.Random(seed + 1)
    sets = {}
    items = sorted(descriptions.items())
    rng.shuffle(items)
    sets["what-it-does"] = [(description, ids) for _, (description, ids) in items[:count]]

    long_enough = [d for d in documents if len(d["content"].split()) >= 30]
    known = []
    for document in rng.sample(long_enough, min(count, len(long_enough))):
        tokens = document["content"].split()
        start = rng.randrange(0, len(tokens) - 8)
        known.append((" ".join(tokens[start:start + 8]), {document["id"]}))
    sets["known-item"] = known

    frequency = collections.Counter()
    for document in documents:
        frequency.update(set(words(document["content"])))
    keywords = []
    for document in rng.sample(long_enough, min(count, len(long_enough))):
        candidates = sorted({w for w in words(document["content"]) if frequency[w] >= 2 and len(w) > 2 and not w.isdigit()},
                            key=lambda w: (frequency[w], w))
        if len(candidates) >= 3:
            keywords.append((" ".join(candidates[:3]), {document["id"]}))
    sets["keywords"] = keywords
    return sets


def scores(rankings, answers):
    """hit@1, hit@10 and MRR (first answer within the top 10) of rankings against answer sets."""
    hit1 = hit10 = rr = 0.0
    for ranking, relevant in zip(rankings, answers):
        for rank, id in enumerate(ranking[:10]):
            if id in relevant:
                hit10 += 1
                rr += 1.0 / (rank + 1)
                if rank == 0:
                    hit1 += 1
                break
    n = max(1, len(answers))
    return {"hit@1": round(hit1 / n, 3), "hit@10": round(hit10 / n, 3), "mrr": round(rr / n, 3)}


def dense_rankings(similarity, ids, k=10):
    """The top k ids of each row of a query x document similarity matrix (ties: corpus order)."""
    import numpy as np
    return [[ids[i] for i in np.argsort(-row, kind="stable")[:k]] for row in similarity]


def table(results):
    """The Markdown table and the closing line that main() prints."""
    lines = ["| query set | ranking | hit@1 | hit@10 | MRR |", "|---|---|---|---|---|"]
    for name, row in results["sets"].items():
        for label, value in row.items():
            lines.append("| %s | %s | %.3f | %.3f | %.3f |" % (name, label, value["hit@1"], value["hit@10"], value["mrr"]))
    e = results["embedding"]
    lines.append("\n%d fragments; carmad's background embedder drained its backlog in %s s; the baseline embedded %s fragments/s" % (
        results["fragments"], e["carmad_backlog_drain_seconds"] or "(store reused)", e["baseline_fragments_per_second"] or "(cached)"))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--carmad", default=os.path.join(ROOT, ".build/release/carmad"))
    parser.add_argument("--model", default=os.environ.get("CARMA_EMBEDDING_MODEL"))
    parser.add_argument("--corpus", default=os.path.join(ROOT, "corpus/manpages-full.jsonl"))
    parser.add_argument("--fragments", type=int, default=4000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11, help="picks the pages of the corpus (and, by default, the queries)")
    parser.add_argument("--query-seed", type=int, help="picks the queries; another one than --seed gives a held-out query sample")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench-results/retrieval.json"))
    parser.add_argument("--keep", help="keep the store (and the baseline's embeddings) in this directory, and reuse them if it holds them")
    args = parser.parse_args()
    if not args.model:
        sys.exit("give --model DIR or set CARMA_EMBEDDING_MODEL")
    import numpy as np  # here, not at the top: the tests import this module without numpy

    documents, descriptions = build_corpus(args.corpus, args.fragments, args.seed)
    sets = query_sets(documents, descriptions, args.queries, args.seed if args.query_seed is None else args.query_seed)
    print("corpus: %d fragments from %d pages; queries: %s" % (
        len(documents), len({(d["metadata"]["section"], d["metadata"]["page"]) for d in documents}),
        ", ".join("%s %d" % (name, len(q)) for name, q in sets.items())), file=sys.stderr)

    data = args.keep or tempfile.mkdtemp(prefix="carma-eval-")
    os.makedirs(data, exist_ok=True)
    port = free_port()
    log = open(os.path.join(data, "carmad.log") if args.keep else os.devnull, "w")
    server = subprocess.Popen([args.carmad, "--data-dir", os.path.join(data, "store"), "--port", str(port), "--log-level", "warning",
                               "--embedding-model", args.model, "--embedding-max-tokens", str(args.max_tokens),
                               "--dream-interval", "86400", "--dream-max-interval", "86400"], stdout=log, stderr=log)
    try:
        for _ in range(300):
            try:
                call(port, "GET", "/healthz")
                break
            except Exception:
                time.sleep(0.1)
        started = time.time()
        reused = call(port, "GET", "/readyz")["fragments"] == len(documents)
        if not reused:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda d: call(port, "PUT", "/fragments/" + d["id"],
                                             {"content": d["content"], "tags": d["tags"], "links": d["links"], "metadata": d["metadata"]}),
                              documents))
        put_seconds = time.time() - started
        cache = os.path.join(data, "baseline-%d-%d-%d.npy" % (args.seed, len(documents), args.max_tokens))

        # The dense baseline embeds beside carmad's own background embedder (two processes, two cores).
        baseline = {}
        def dense_baseline():
            started = time.time()
            if args.keep and os.path.exists(cache):
                baseline["documents"] = np.load(cache)
                baseline["seconds"] = None
                return
            matrix = embed(args.carmad, args.model, [d["content"] for d in documents], args.max_tokens)
            baseline["documents"] = matrix
            baseline["seconds"] = time.time() - started
            if args.keep:
                np.save(cache, matrix)
        thread = threading.Thread(target=dense_baseline)
        thread.start()
        backlog_started = time.time()
        while True:
            ready = call(port, "GET", "/readyz")["retrieval"]
            if ready["text_index_ready"] and ready["embedding_backlog"] == 0 and ready["embedded"] >= len(documents):
                break
            time.sleep(1)
        drain_seconds = time.time() - backlog_started
        thread.join()

        bm25 = BM25(documents)
        ids = [d["id"] for d in documents]
        results = {"fragments": len(documents), "queries": {name: len(q) for name, q in sets.items()},
                   "seed": args.seed, "query_seed": args.seed if args.query_seed is None else args.query_seed, "put_seconds": round(put_seconds, 1),
                   "embedding": {"carmad_backlog_drain_seconds": None if reused else round(drain_seconds, 1),
                                 "baseline_fragments_per_second": round(len(documents) / baseline["seconds"], 1) if baseline["seconds"] else None,
                                 "max_tokens": args.max_tokens},
                   "sets": {}}
        for name, queries in sets.items():
            texts = [q for q, _ in queries]
            answers = [a for _, a in queries]
            query_vectors = embed(args.carmad, args.model, texts, args.max_tokens, query=True)
            similarity = query_vectors @ baseline["documents"].T
            dense = dense_rankings(similarity, ids)
            row = {"bm25 baseline": scores([bm25.rank(q) for q in texts], answers), "dense baseline": scores(dense, answers)}
            for mode, fusion in (("text", None), ("vector", None), ("hybrid", "weighted"), ("hybrid", "rrf")):
                rankings, took = [], []
                for text in texts:
                    body = {"text": text, "k": 10, "mode": mode}
                    if fusion:
                        body["fusion"] = fusion
                    answer = call(port, "POST", "/query", body)
                    rankings.append([r["id"] for r in answer["results"]])
                    took.append(answer["took_ms"])
                label = "carmad " + mode + (" (%s)" % fusion if fusion else "")
                row[label] = scores(rankings, answers)
                row[label]["server_p50_ms"] = round(sorted(took)[len(took) // 2], 2)
            results["sets"][name] = row
    finally:
        server.terminate()
        server.wait()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(table(results))


if __name__ == "__main__":
    main()
