"""scripts/build-corpus.py end to end on a tiny man tree, and the committed sample's integrity."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from mancorpus.records import ID_RE

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build-corpus.py"
FILLER = "This sentence is here so that the section is long enough to make a fragment. " * 8


def man_page(name, see_also, body=FILLER):
    """A man(7) page of two fragments: NAME and DESCRIPTION, then DESCRIPTION and SEE ALSO."""
    return "\n".join([
        ".TH %s 1" % name.upper(), ".SH NAME", "%s \\- the %s tool" % (name, name),
        ".SH DESCRIPTION", body, ".PP", FILLER, ".PP", FILLER,
        ".SH SEE ALSO", ", ".join("\\fB%s\\fR(1)" % s for s in see_also), ""])


def make_tree(root):
    man1 = root / "man1"
    man1.mkdir(parents=True)
    pages = {"ls": (["cp", "nawk"], FILLER), "cp": (["ls"], "Like mv(1). " + FILLER),
             "mv": (["cp"], FILLER), "mawk": ([], FILLER), "gcloud_x": ([], FILLER)}
    for name, (see_also, body) in pages.items():
        with gzip.GzipFile(man1 / (name + ".1.gz"), "wb", mtime=0) as f:
            f.write(man_page(name, see_also, body).encode())
    os.symlink("mawk.1.gz", man1 / "nawk.1.gz")
    (man1 / "empty.1").write_text(".TH EMPTY 1\n")
    (man1 / "broken.1.gz").write_bytes(b"not gzip")


def build(tmp_path, *args):
    return subprocess.run([sys.executable, str(SCRIPT), "--man-root", str(tmp_path / "man"), *args],
                          capture_output=True, text=True, check=True)


def read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_a_tiny_tree(tmp_path) -> None:
    make_tree(tmp_path / "man")
    out, sample = tmp_path / "out" / "corpus.jsonl", tmp_path / "sample.jsonl"
    run = build(tmp_path, "--out", str(out), "--sample-out", str(sample), "--min-fragments", "0")
    records = read(out)
    pages = [r["metadata"]["page"] for r in records]
    assert sorted(set(pages)) == ["cp", "ls", "mawk", "mv"]      # gcloud_* left out by default
    ids = {r["id"] for r in records}
    assert all(ID_RE.match(i) for i in ids) and len(ids) == len(records)
    assert all(link in ids for r in records for link in r["links"])
    first = {r["metadata"]["page"]: r for r in records if r["id"].endswith(".0")}
    assert first["ls"]["links"] == ["man1.ls.1", "man1.cp.0", "man1.mawk.0"]   # nawk is mawk
    assert "man1.mv.0" in first["cp"]["links"]                                  # mv(1) in the text
    assert first["ls"]["tags"] == ["man1", "section:name", "section:description"]
    assert "pages considered 6 (+1 excluded by --exclude, 1 aliases/redirects/duplicates), " \
           "pages used 4, empty 1, failed 1" in run.stderr
    assert "  failed: " + str(tmp_path / "man" / "man1" / "broken.1.gz") in run.stderr
    assert "sample seeds: man1.ls, man1.cp, man1.mv" in run.stderr
    assert read(sample) == [r for r in records if r["metadata"]["page"] in ("ls", "cp", "mv", "mawk")]

    # the same tree gives the same bytes
    again = tmp_path / "again.jsonl"
    build(tmp_path, "--out", str(again), "--min-fragments", "0")
    assert again.read_bytes() == out.read_bytes()


def test_stops_after_enough_fragments_and_warns_when_short(tmp_path) -> None:
    make_tree(tmp_path / "man")
    out = tmp_path / "corpus.jsonl"
    build(tmp_path, "--out", str(out), "--min-fragments", "1")
    assert {r["metadata"]["page"] for r in read(out)} == {"cp"}
    build(tmp_path, "--out", str(out), "--limit-pages", "2", "--exclude", "")
    assert {r["metadata"]["page"] for r in read(out)} == {"cp", "gcloud_x"}
    run = build(tmp_path, "--out", str(out))
    assert "WARNING: only" in run.stderr and "(wanted at least 10000)" in run.stderr


def test_the_committed_sample_is_link_closed() -> None:
    records = read(ROOT / "Tests" / "Fixtures" / "corpus-sample.jsonl")
    ids = {r["id"] for r in records}
    assert len(ids) == len(records) and all(ID_RE.match(i) for i in ids)
    assert all(link in ids and link != r["id"] for r in records for link in r["links"])
    assert all(80 <= len(r["content"]) <= 4000 for r in records)
