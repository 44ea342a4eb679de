"""mancorpus.pages: finding, reading and de-duplicating installed pages."""

import bz2
import gzip
import lzma
import os
import re

from mancorpus.pages import (candidates, decode, discover, read_page_bytes, section_sort_key,
                             so_target)

PAGE = ".TH %s 1\n.SH NAME\n%s \\- a page\n"


def write(path, data, opener=open):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with opener(path, "wb") as f:
        f.write(data)


def test_read_and_decode(tmp_path) -> None:
    for suffix, opener in (("", open), (".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open),
                           (".lzma", lzma.open)):
        path = str(tmp_path / ("page.1" + suffix))
        write(path, b"data", opener)
        assert read_page_bytes(path) == b"data", suffix
    assert decode(b"\xef\xbb\xbfcaf\xc3\xa9") == "caf\u00e9"
    assert decode(b"caf\xe9") == "caf\u00e9"                  # not UTF-8: Latin-1


def test_section_order() -> None:
    assert sorted(["8", "1ssl", "n", "10", "1", "5"], key=section_sort_key) == [
        "1", "1ssl", "5", "8", "10", "n"]


def test_so_target() -> None:
    assert so_target('.\\" redirect\n.so man1/other.1\n') == "man1/other.1"
    assert so_target(".so man1/other.1\n.TH X 1\n.SH NAME\nx\n") is None
    assert so_target(".TH X 1\n") is None


def test_candidates_are_sorted_and_filtered(tmp_path) -> None:
    root = str(tmp_path)
    for name in ("man1/zz.1", "man1/aa.1ssl.gz", "man1/aa.1.gz", "man1/wrong.5", "man1/README",
                 "man5/conf.5", "man8/admin.8"):
        write(os.path.join(root, name), b"x")
    found = candidates(root, ["1", "5"])
    assert [(c["dir"], c["name"], c["ext"]) for c in found] == [
        ("1", "aa", "1"), ("1", "aa", "1ssl"), ("1", "zz", "1"), ("5", "conf", "5")]


def test_discover_finds_aliases_and_skips_what_is_not_a_page(tmp_path) -> None:
    root = str(tmp_path)
    write(os.path.join(root, "man1/real.1.gz"), (PAGE % ("REAL", "real")).encode(), gzip.open)
    os.symlink("real.1.gz", os.path.join(root, "man1/link.1.gz"))
    os.symlink("missing.1.gz", os.path.join(root, "man1/dangling.1.gz"))
    write(os.path.join(root, "man1/redirect.1"), b".so man1/real.1\n")
    write(os.path.join(root, "man1/elsewhere.1"), b".so man3/printf.3\n")
    write(os.path.join(root, "man1/zcopy.1.gz"), (PAGE % ("REAL", "real")).encode(), gzip.open)
    write(os.path.join(root, "man1/skipme.1"), b"x")
    write(os.path.join(root, "man1/broken.1.gz"), b"not gzip")
    pages, aliases, excluded = discover(root, ["1"], re.compile("^skip"))
    assert [p["name"] for p in pages] == ["broken", "real"]
    assert pages[0]["error"] and "text" not in pages[0]
    assert pages[1]["text"].startswith(".TH REAL 1")
    assert aliases == {("link", "1"): ("real", "1"), ("redirect", "1"): ("real", "1"),
                       ("elsewhere", "1"): ("printf", "3"), ("zcopy", "1"): ("real", "1")}
    assert excluded == 1
    assert [p["name"] for p in discover(root, ["1"], None)[0]] == ["broken", "real", "skipme"]
