"""mancorpus.fragments: paragraphs cut and grouped into fragments."""

from mancorpus.fragments import (DROP_BELOW, TARGET_MAX, blocks_of, build_fragments, group_blocks,
                                 is_see_also, split_long)


def sentence(i, length=99):
    return ("Sentence %d " % i).ljust(length - 1, "x") + "."


def test_split_long_keeps_short_text_and_cuts_at_lines_sentences_words() -> None:
    assert split_long("short") == ["short"]
    assert split_long("line one\nline two", limit=12) == ["line one", "line two"]
    assert split_long("One two. Three four.", limit=12) == ["One two.", "Three four."]
    assert split_long("aaa bbb ccc ddd", limit=8) == ["aaa bbb", "ccc ddd"]
    assert split_long("x" * 20, limit=8) == ["x" * 8, "x" * 8, "x" * 4]
    text = " ".join(sentence(i) for i in range(40))
    pieces = split_long(text)
    assert all(len(p) <= TARGET_MAX for p in pieces)
    assert " ".join(pieces) == text


def test_see_also_headings() -> None:
    assert is_see_also("SEE ALSO") and is_see_also("See also") and is_see_also("SEE_ALSO:")
    assert is_see_also("related commands") and is_see_also("Related")
    assert not is_see_also("DESCRIPTION")


def test_blocks_mark_the_first_block_of_each_section() -> None:
    blocks = blocks_of([("A", ["one", "  ", "two"]), ("B", ["three"])])
    assert blocks == [("A", "one", True, 0), ("A", "two", False, 0), ("B", "three", True, 1)]


def test_groups_close_at_the_size_limit_and_at_sections_once_long_enough() -> None:
    paragraphs = [sentence(i, 600) for i in range(5)]
    groups = group_blocks(blocks_of([("DESCRIPTION", paragraphs)]))
    assert [len(g) for g in groups] == [2, 2, 1]
    # a short section is merged with the next one; a long enough one is not
    groups = group_blocks(blocks_of([("NAME", ["demo - a tool"]), ("A", [sentence(1, 300)]),
                                     ("B", [sentence(2, 300)])]))
    assert [[b[0] for b in g] for g in groups] == [["NAME", "A"], ["B"]]


def test_a_short_tail_joins_the_fragment_before() -> None:
    groups = group_blocks(blocks_of([("A", [sentence(1, 300)]), ("B", ["tiny tail"])]))
    assert len(groups) == 1


def test_build_fragments() -> None:
    fragments = build_fragments([
        ("NAME", ["demo - a tool"]),
        ("DESCRIPTION", [sentence(1, 300)]),
        ("OPTIONS", [sentence(2, 700), sentence(3, 700), sentence(4, 700)]),
        ("SEE ALSO", ["ls(1), cp(1)"]),
    ])
    assert [f["headings"] for f in fragments] == [
        ["NAME", "DESCRIPTION"], ["OPTIONS"], ["OPTIONS", "SEE ALSO"]]
    # several sections: each heading is written in front of its first paragraph
    assert fragments[0]["text"] == "NAME\ndemo - a tool\n\nDESCRIPTION\n" + sentence(1, 300)
    assert fragments[1]["text"] == sentence(2, 700) + "\n\n" + sentence(3, 700)
    assert fragments[2]["text"].endswith("\n\nSEE ALSO\nls(1), cp(1)")
    assert [f["see_also"] for f in fragments] == [False, False, True]


def test_short_fragments_are_left_out() -> None:
    assert build_fragments([("NAME", ["x" * (DROP_BELOW - 1)])]) == []
    assert len(build_fragments([("NAME", ["x" * DROP_BELOW])])) == 1
