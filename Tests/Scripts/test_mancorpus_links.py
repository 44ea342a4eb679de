"""mancorpus.links: references, their resolution to pages, and fragments' links."""

from mancorpus.links import (MAX_LINKS, Resolver, close_links, fragment_links, references,
                             see_also_pages, see_also_refs)


def page(name, ext, prefix=None):
    return {"name": name, "ext": ext, "dir": ext[0], "prefix": prefix or "man%s.%s" % (ext, name)}


def test_references() -> None:
    text = "See ls(1), ssh_config(5), systemd.unit(5) and openssl-req(1ssl); not a/b(1) or f(x)."
    assert references(text) == [("ls", "1"), ("ssh_config", "5"), ("systemd.unit", "5"),
                                ("openssl-req", "1ssl")]


def test_see_also_refs_only_from_see_also_sections() -> None:
    sections = [("DESCRIPTION", ["uses cp(1)"]), ("SEE ALSO", ["ls(1), mv(1)", "tar(1)"])]
    assert see_also_refs(sections) == [("ls", "1"), ("mv", "1"), ("tar", "1")]


def test_resolver() -> None:
    ls, mawk, ssl, xterm, tool = page("ls", "1"), page("mawk", "1"), page("req", "1ssl"), page("XTerm", "1"), page("tool", "8")
    aliases = {("awk", "1"): ("nawk", "1"), ("nawk", "1"): ("mawk", "1"), ("dir", "1"): ("ls", "1"),
               ("helper", "8x"): ("tool", "8")}
    resolve = Resolver([ls, mawk, ssl, xterm, tool], aliases)
    assert resolve("ls", "1") is ls
    assert resolve("awk", "1") is mawk                 # through two aliases
    assert resolve("req", "1") is ssl                  # same digit, another suffix
    assert resolve("LS", "1") is ls                    # lower case
    assert resolve("xterm", "1") is xterm              # case ignored
    assert resolve("helper", "8") is tool              # an alias in the same digit
    assert resolve("nothing", "1") is None and resolve("ls", "5") is None
    # a suffix equal to the digit is preferred
    plain, other = page("ps", "1ssl"), page("ps", "1")
    assert Resolver([plain, other], {})("ps", "1x") is other


def test_see_also_pages_are_distinct_and_never_the_page_itself() -> None:
    ls, cp = page("ls", "1"), page("cp", "1")
    resolve = Resolver([ls, cp], {})
    refs = [("cp", "1"), ("ls", "1"), ("cp", "1"), ("gone", "1")]
    assert see_also_pages(ls, refs, resolve) == [cp]


def test_fragment_links() -> None:
    ls, cp, mv = page("ls", "1"), page("cp", "1"), page("mv", "1")
    resolve = Resolver([ls, cp, mv], {})
    ids = ["man1.ls.0", "man1.ls.1", "man1.ls.2"]
    # first fragment: the next one, the SEE ALSO pages, then the pages named in its text
    assert fragment_links(ids, 0, "like mv(1) and ls(1)", False, ls, [cp], resolve) == [
        "man1.ls.1", "man1.cp.0", "man1.mv.0"]
    # a middle fragment: SEE ALSO pages only if it holds SEE ALSO text; duplicates dropped
    assert fragment_links(ids, 1, "cp(1) cp(1)", False, ls, [mv], resolve) == [
        "man1.ls.0", "man1.ls.2", "man1.cp.0"]
    assert fragment_links(ids, 2, "", True, ls, [mv], resolve) == ["man1.ls.1", "man1.mv.0"]
    many = [page("p%d" % i, "1") for i in range(40)]
    resolve = Resolver(many, {})
    text = " ".join("p%d(1)" % i for i in range(40))
    links = fragment_links(["man1.p0.0"], 0, text, False, many[0], [], resolve)
    assert len(links) == MAX_LINKS and links[0] == "man1.p1.0"


def test_close_links() -> None:
    records = [{"id": "a.0", "_page": "a", "links": ["a.1", "b.0", "gone.0"]},
               {"id": "a.1", "_page": "a", "links": ["a.0"]},
               {"id": "b.0", "_page": "b", "links": []}]
    close_links(records)
    assert records[0]["links"] == ["a.1", "b.0"] and records[0]["_link_pages"] == ["a", "b"]
    assert records[1]["_link_pages"] == ["a"] and records[2]["_link_pages"] == []
