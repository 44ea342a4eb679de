"""mancorpus.records, .stats and .sample: ids, tags, JSONL lines, figures, the test sample."""

import json

import pytest

from mancorpus.links import Resolver, close_links
from mancorpus.records import (assign_prefixes, check_ids, page_records, record_line, sanitize,
                               tags_of, write_jsonl)
from mancorpus.sample import link_closed_sample
from mancorpus.stats import corpus_stats, stats_line


def test_sanitize_and_prefixes() -> None:
    assert sanitize("g++") == "g__" and sanitize(".hidden") == "_.hidden" and sanitize("") == "_"
    pages = [{"name": "x", "ext": "1"}, {"name": "x", "ext": "1"}, {"name": "a b", "ext": "3pm"},
             {"name": "x", "ext": "1"}, {"name": "y" * 300, "ext": "1"}]
    assign_prefixes(pages)
    assert [p["prefix"] for p in pages[:4]] == ["man1.x", "man1.x~2", "man3pm.a_b", "man1.x~3"]
    assert len(pages[4]["prefix"]) == 180


def test_tags() -> None:
    assert tags_of({"dir": "1"}, ["NAME", "See  Also", "", "name"]) == [
        "man1", "section:name", "section:see-also"]
    assert tags_of({"dir": "5"}, ["x" * 100]) == ["man5", "section:" + "x" * 56]


def test_page_records() -> None:
    ls = {"name": "ls", "ext": "1", "dir": "1", "path": "/m/man1/ls.1.gz", "prefix": "man1.ls"}
    cp = {"name": "cp", "ext": "1", "dir": "1", "path": "/m/man1/cp.1.gz", "prefix": "man1.cp"}
    fragments = [{"text": "ls - list", "headings": ["NAME"], "see_also": False},
                 {"text": "cp(1)", "headings": [], "see_also": True}]
    records = page_records(ls, fragments, [("cp", "1")], Resolver([ls, cp], {}))
    assert records[0] == {"id": "man1.ls.0", "content": "ls - list", "links": ["man1.ls.1", "man1.cp.0"],
                          "tags": ["man1", "section:name"], "_page": "man1.ls",
                          "metadata": {"page": "ls", "section": "1", "heading": "NAME", "source": "/m/man1/ls.1.gz"}}
    assert records[1]["links"] == ["man1.ls.0", "man1.cp.0"] and records[1]["metadata"]["heading"] == ""


def test_check_ids() -> None:
    check_ids([{"id": "man1.ls.0"}, {"id": "man1.ls.1"}])
    with pytest.raises(AssertionError):
        check_ids([{"id": ".bad"}])
    with pytest.raises(AssertionError):
        check_ids([{"id": "a"}, {"id": "a"}])


def test_record_lines(tmp_path) -> None:
    record = {"id": "a", "content": "caf\u00e9", "links": [], "tags": ["t"], "metadata": {"k": 1},
              "_page": "p", "_link_pages": []}
    assert record_line(record) == '{"id":"a","content":"caf\u00e9","links":[],"tags":["t"],"metadata":{"k":1}}'
    path = tmp_path / "sub" / "out.jsonl"
    write_jsonl(str(path), [record, record])
    assert path.read_bytes() == (record_line(record) + "\n").encode() * 2


def corpus(pages):
    """Records for pages {prefix: (fragment count, [linked prefixes])}: fragment 0 links to
    the first fragment of each linked page."""
    records = []
    for prefix, (count, linked) in pages.items():
        for i in range(count):
            links = ["%s.0" % q for q in linked] if i == 0 else []
            records.append({"id": "%s.%d" % (prefix, i), "content": "x" * 100, "links": links,
                            "tags": [], "metadata": {}, "_page": prefix})
    close_links(records)
    return records


def test_stats() -> None:
    records = corpus({"a": (2, ["b"]), "b": (1, [])})
    stats = corpus_stats(records, 2)
    assert (stats["fragments"], stats["links_total"], stats["cross_page_share"]) == (3, 1, 1 / 3)
    assert stats_line("corpus x", stats).startswith("corpus x: pages used 2, fragments 3, links total 1,")
    assert corpus_stats([], 0)["mean_len"] == 0.0


def test_sample_is_link_closed_and_within_budget() -> None:
    records = corpus({"seed": (2, ["near", "big", "far"]), "near": (3, ["seed", "deep"]),
                      "big": (20, []), "far": (4, []), "deep": (2, ["seed"])})
    sample, chosen, seeds = link_closed_sample(records, ["nothere", "seed"], size=10, max_bytes=10 ** 6)
    assert seeds == ["seed"]
    # breadth first; "big" has more than max(8, 10 // 10) fragments; "deep" would pass 10
    assert chosen == ["seed", "near", "far"]
    ids = {r["id"] for r in sample}
    assert all(link in ids for r in sample for link in r["links"])
    assert [r["links"] for r in sample if r["id"] == "seed.0"] == [["near.0", "far.0"]]
    # the byte budget binds too
    one_page = sum(len(record_line(r).encode()) + 1 for r in records if r["_page"] == "seed")
    assert link_closed_sample(records, ["seed"], 10, one_page)[1] == ["seed"]


def test_sample_without_seeds_starts_at_the_best_linked_page() -> None:
    records = corpus({"a": (1, ["b"]), "b": (1, ["a", "c"]), "c": (1, [])})
    sample, chosen, seeds = link_closed_sample(records, [], 10, 10 ** 6)
    assert seeds == ["b"] and chosen == ["b", "a", "c"]
    assert json.loads(record_line(sample[0]))["id"] == "a.0"
