"""scripts/eval-retrieval.py's pure parts on the committed corpus sample (no carmad, no model)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit import BM25, words

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = str(ROOT / "Tests" / "Fixtures" / "corpus-sample.jsonl")


def _load_script():
    spec = importlib.util.spec_from_file_location("eval_retrieval", ROOT / "scripts" / "eval-retrieval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


er = _load_script()


@pytest.fixture(scope="module")
def corpus():
    return er.build_corpus(SAMPLE, 100, 11)


def test_corpus_takes_whole_pages_and_hides_the_name_line(corpus) -> None:
    documents, descriptions = corpus
    assert len(documents) >= 100
    by_page = {}
    for d in documents:
        by_page.setdefault((d["metadata"]["section"], d["metadata"]["page"]), []).append(d["id"])
    for (section, page), ids in by_page.items():
        # every fragment of a chosen page, numbered from 0 without gaps
        assert sorted(int(i.rsplit(".", 1)[1]) for i in ids) == list(range(len(ids)))
    # "NAME\nls - list directory contents" is taken out; mdoc's "scp — ..." is not matched
    assert not any(er.NAME_LINE.match(d["content"]) for d in documents)
    ls = next(d for d in documents if d["id"] == "man1.ls.0")
    assert ls["content"].startswith("SYNOPSIS\n")
    for key, (description, ids) in descriptions.items():
        assert len(words(description)) >= 3 and ids == set(by_page[key])
    assert er.build_corpus(SAMPLE, 100, 11) == corpus           # seeded
    assert er.build_corpus(SAMPLE, 100, 12)[0] != documents


def test_query_sets(corpus) -> None:
    documents, descriptions = corpus
    sets = er.query_sets(documents, descriptions, 20, 11)
    assert sets == er.query_sets(documents, descriptions, 20, 11)
    assert len(sets["what-it-does"]) == min(20, len(descriptions))
    assert len(sets["known-item"]) == 20 and len(sets["keywords"]) <= 20
    content = {d["id"]: d["content"] for d in documents}
    frequency = {}
    for d in documents:
        for w in set(words(d["content"])):
            frequency[w] = frequency.get(w, 0) + 1
    for query, answers in sets["known-item"]:
        (answer,) = answers
        assert len(query.split()) == 8 and query in " ".join(content[answer].split())
    for query, answers in sets["keywords"]:
        (answer,) = answers
        assert len(query.split()) == 3
        assert all(w in words(content[answer]) and frequency[w] >= 2 for w in query.split())


def test_scores() -> None:
    rankings = [["a", "b"], ["x", "y", "b"], ["z"] * 10 + ["c"], []]
    answers = [{"a"}, {"b", "c"}, {"c"}, {"d"}]
    assert er.scores(rankings, answers) == {"hit@1": 0.25, "hit@10": 0.5, "mrr": round((1 + 1 / 3) / 4, 3)}
    assert er.scores([], []) == {"hit@1": 0.0, "hit@10": 0.0, "mrr": 0.0}


def test_the_bm25_baseline_finds_the_sample_queries(corpus) -> None:
    documents, descriptions = corpus
    bm25 = BM25(documents)
    for name, queries in er.query_sets(documents, descriptions, 20, 11).items():
        result = er.scores([bm25.rank(q) for q, _ in queries], [a for _, a in queries])
        assert result["hit@10"] == 1.0 and result["hit@1"] >= 0.9, name


def test_dense_rankings_break_ties_in_corpus_order() -> None:
    np = pytest.importorskip("numpy")
    similarity = np.array([[0.5, 0.9, 0.5, 0.1], [0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    assert er.dense_rankings(similarity, ["d", "c", "b", "a"], k=3) == [["c", "d", "b"], ["d", "c", "b"]]


def test_table() -> None:
    results = {"fragments": 3, "sets": {"keywords": {"bm25 baseline": {"hit@1": 0.5, "hit@10": 1, "mrr": 0.75}}},
               "embedding": {"carmad_backlog_drain_seconds": None, "baseline_fragments_per_second": 12.5}}
    assert er.table(results).split("\n") == [
        "| query set | ranking | hit@1 | hit@10 | MRR |", "|---|---|---|---|---|",
        "| keywords | bm25 baseline | 0.500 | 1.000 | 0.750 |", "",
        "3 fragments; carmad's background embedder drained its backlog in (store reused) s; "
        "the baseline embedded 12.5 fragments/s"]


def test_without_a_model_it_says_what_it_needs() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CARMA_EMBEDDING_MODEL"}
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "eval-retrieval.py")], capture_output=True,
                         text=True, env=env)
    assert run.returncode == 1 and "give --model DIR" in run.stderr
