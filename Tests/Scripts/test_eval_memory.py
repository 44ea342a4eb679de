"""scripts/eval-memory.py's pure parts, and the agent-memory evaluation set's integrity.

Needs neither carmad nor the embedding model (numpy only for the dense ranking helper).
"""

from __future__ import annotations

import collections
import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SET_DIR = ROOT / "corpus" / "agent-memory"


def _load_script():
    spec = importlib.util.spec_from_file_location("eval_memory", ROOT / "scripts" / "eval-memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


em = _load_script()

TINY = [
    {"id": "a", "content": "Maya is allergic to peanuts."},
    {"id": "b", "content": "Jonas has a dachshund named Pretzel."},
    {"id": "c", "content": "Maya has a border collie named Biscuit; Biscuit loves the park."},
    {"id": "d", "content": "Elena lives in Vienna."},
]


# -- pure functions ---------------------------------------------------------------------------


def test_bm25_ranks_rare_matching_words_first_and_breaks_ties_by_id() -> None:
    bm25 = em.BM25(TINY)
    assert bm25.rank("peanuts") == ["a"]
    assert bm25.rank("Biscuit the collie")[0] == "c"
    assert bm25.rank("Maya")[:2] == ["a", "c"]  # the shorter note first
    assert bm25.rank("nothing like this") == []
    # Equal scores: id order decides, so runs are deterministic.
    same = em.BM25([{"id": "y", "content": "x"}, {"id": "x", "content": "x"}])
    assert same.rank("x") == ["x", "y"]


def test_bm25_matches_the_formula() -> None:
    bm25 = em.BM25(TINY)
    n, df, tf = 4, 1, 1
    length = len(em.words(TINY[0]["content"]))
    average = sum(len(em.words(d["content"])) for d in TINY) / 4
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    expected = idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * length / average))
    assert bm25.scores("peanuts")[0] == pytest.approx(expected)


def test_retrieval_metrics() -> None:
    questions = [
        {"answers": ["a"], "all_needed": False},
        {"answers": ["b", "x"], "all_needed": False},
        {"answers": ["c", "d"], "all_needed": True},
        {"answers": [], "all_needed": False},  # unanswerable: not counted
    ]
    rankings = [["a", "b"], ["q", "r", "x"], ["d", "z", "c"], ["a"]]
    m = em.retrieval_metrics(rankings, questions)
    assert m["questions"] == 3
    assert m["hit@1"] == pytest.approx(round(2 / 3, 3))
    assert m["hit@5"] == 1.0
    assert m["mrr@10"] == pytest.approx(round((1 + 1 / 3 + 1) / 3, 3))
    assert (m["all_needed"], m["all@5"]) == (1, 1.0)
    # A hit below rank 5 counts for MRR, not for hit@5; a missing second answer fails all@5.
    late = em.retrieval_metrics([["z"] * 5 + ["c"]], [{"answers": ["c", "d"], "all_needed": True}])
    assert (late["hit@5"], late["mrr@10"], late["all@5"]) == (0.0, round(1 / 6, 3), 0.0)
    assert em.retrieval_metrics([], [])["all@5"] is None


def test_percentiles_and_separation() -> None:
    assert em.percentile([], 50) is None
    assert em.percentile([1, 2, 3, 4], 50) == 2.5
    assert em.percentile([0, 10], 10) == 1.0
    questions = [{"answers": ["a"]}, {"answers": ["b"]}, {"answers": []}, {"answers": []}]
    s = em.separation([0.9, 0.7, 0.4, 0.6], questions)
    assert s["answerable"]["median"] == 0.8 and s["unanswerable"]["median"] == 0.5
    assert (s["best_threshold"], s["best_threshold_accuracy"], s["trivial_accuracy"]) == (0.7, 1.0, 0.5)
    # Scores that never differ cannot separate anything: the best is calling all answerable.
    flat = em.separation([1.0, 1.0, 1.0, 1.0], questions)
    assert flat["best_threshold_accuracy"] == flat["trivial_accuracy"] == 0.5


def test_dense_rank_orders_by_cosine_then_id() -> None:
    np = pytest.importorskip("numpy")
    notes = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    ranked = em.dense_rank(np.array([[1.0, 0.0]], dtype=np.float32), notes, ["b", "c", "a"], k=2)
    assert ranked == [(["a", "b"], 1.0)]


def test_evaluate_reports_splits_and_dev_threshold_on_heldout() -> None:
    questions = [
        {"id": "q1", "shape": "facts", "split": "dev", "kind": "single", "answers": ["a"], "all_needed": False},
        {"id": "q2", "shape": "facts", "split": "dev", "kind": "unanswerable", "answers": [], "all_needed": False},
        {"id": "q3", "shape": "facts", "split": "heldout", "kind": "single", "answers": ["b"], "all_needed": False},
        {"id": "q4", "shape": "facts", "split": "heldout", "kind": "unanswerable", "answers": [], "all_needed": False},
    ]
    results = {"carmad hybrid": [(["a"], 0.9), (["c"], 0.3), (["b"], 0.5), (["c"], 0.6)],
               "bm25 baseline": [(["a"], None), (["c"], None), (["x"], None), ([], None)]}
    out = em.evaluate("facts", questions, results, ("dev", "heldout", "all"))
    assert out["dev"]["methods"]["carmad hybrid"]["hit@1"] == 1.0
    assert out["heldout"]["methods"]["bm25 baseline"]["hit@1"] == 0.0
    assert "separation" not in out["dev"]["methods"]["bm25 baseline"]
    # dev's best threshold is 0.9: on heldout it calls both unanswerable, right once.
    assert out["heldout"]["methods"]["carmad hybrid"]["separation"]["dev_threshold_accuracy"] == 0.5
    assert out["all"]["questions"] == 4 and out["all"]["unanswerable"] == 2
    table = em.markdown({"shapes": {"facts": {"splits": out}}})
    assert "| facts | dev | carmad hybrid | 1 | 1.00 |" in table


# -- the evaluation set -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluation_set():
    return em.load_set(str(SET_DIR))


def test_note_sizes_ids_and_links(evaluation_set) -> None:
    notes, _ = evaluation_set
    for shape, limit in (("facts", 200), ("dialog", 240)):
        ids = [n["id"] for n in notes[shape]]
        assert len(ids) == len(set(ids)), f"duplicate ids in {shape}"
        known = set(ids)
        for note in notes[shape]:
            size = len(note["content"].encode("utf-8"))
            assert 60 <= size <= limit, f"{note['id']} is {size} bytes"
            assert note["links"], f"{note['id']} has no links"
            for link in note["links"]:
                assert link in known and link != note["id"], f"{note['id']} links to {link}"
            assert note["metadata"]["date"] and note["tags"]
    for fact in notes["facts"]:
        assert 2 <= len(fact["links"]) <= 3
        person = fact["id"].split("-")[0]
        assert all(link.split("-")[0] == person for link in fact["links"])
    for turn in notes["dialog"]:
        assert turn["content"].split(":", 1)[0] in turn["metadata"]["speakers"]


def test_questions_reference_existing_notes_and_both_splits_are_used(evaluation_set) -> None:
    notes, questions = evaluation_set
    by_shape = {shape: {n["id"]: n for n in notes[shape]} for shape in notes}
    assert len({q["id"] for q in questions}) == len(questions)
    counts = collections.Counter()
    for q in questions:
        assert q["shape"] in ("facts", "dialog") and q["split"] in ("dev", "heldout")
        assert q["kind"] in ("single", "multi-hop", "temporal", "unanswerable")
        for answer in q["answers"]:
            assert answer in by_shape[q["shape"]], f"{q['id']} answers {answer}, not a {q['shape']} note"
        assert (q["kind"] == "unanswerable") == (not q["answers"]), q["id"]
        if q["kind"] == "multi-hop":
            assert q["all_needed"] and len(q["answers"]) >= 2, q["id"]
            dates = {by_shape[q["shape"]][a]["metadata"]["date"] for a in q["answers"]}
            assert len(dates) >= 2, f"{q['id']}: a multi-hop answer spans different days"
        counts[(q["shape"], q["split"])] += 1
        counts[(q["shape"], q["kind"])] += 1
    for shape in ("facts", "dialog"):
        assert counts[(shape, "dev")] and counts[(shape, "heldout")]
        for kind in ("multi-hop", "temporal", "unanswerable"):
            assert counts[(shape, kind)] >= 10, (shape, kind)


def test_the_jsonl_files_are_what_build_py_makes(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("build_memory_set", SET_DIR / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert [json.loads(line) for line in open(SET_DIR / "facts.jsonl", encoding="utf-8")] == build.build_facts()
    assert [json.loads(line) for line in open(SET_DIR / "dialog.jsonl", encoding="utf-8")] == build.build_dialog()
    assert [json.loads(line) for line in open(SET_DIR / "questions.jsonl", encoding="utf-8")] == build.build_questions()
