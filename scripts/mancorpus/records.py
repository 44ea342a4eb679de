"""The corpus records: ids, tags and metadata of a page's fragments, and the JSONL lines."""

import json
import os
import re

from .links import fragment_links, see_also_pages

ID_RE = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,199}$")   # what carmad accepts
MAX_PREFIX = 180
MAX_TAG = 64


def sanitize(name):
    """name with only id characters (others become "_"), not starting with a dot."""
    s = re.sub(r"[^A-Za-z0-9._~-]", "_", name)
    if not s or s[0] == ".":
        s = "_" + s
    return s


def assign_prefixes(pages):
    """Sets each page's "prefix", man<ext>.<name>, unique in order (~2, ~3, ... after the first)."""
    used = set()
    for page in pages:
        base = ("man%s.%s" % (sanitize(page["ext"]), sanitize(page["name"])))[:MAX_PREFIX]
        prefix = base
        k = 2
        while prefix in used:
            prefix = "%s~%d" % (base, k)
            k += 1
        used.add(prefix)
        page["prefix"] = prefix


def tags_of(page, headings):
    """man<dir>, then section:<heading> (lower case, blanks as "-", at most MAX_TAG characters)."""
    tags = ["man" + page["dir"]]
    for h in headings:
        t = ("section:" + re.sub(r"\s+", "-", h.strip().lower()))[:MAX_TAG]
        if h and t not in tags:
            tags.append(t)
    return tags


def page_records(page, fragments, refs, resolve):
    """The records of one page's fragments; "_page" holds the page's prefix."""
    ids = ["%s.%d" % (page["prefix"], i) for i in range(len(fragments))]
    sa_pages = see_also_pages(page, refs, resolve)
    records = []
    for i, fr in enumerate(fragments):
        meta = {"page": page["name"], "section": page["ext"],
                "heading": fr["headings"][0] if fr["headings"] else "", "source": page["path"]}
        records.append({
            "id": ids[i], "content": fr["text"],
            "links": fragment_links(ids, i, fr["text"], fr["see_also"], page, sa_pages, resolve),
            "tags": tags_of(page, fr["headings"]), "metadata": meta, "_page": page["prefix"]})
    return records


def check_ids(records):
    """Raises AssertionError on an id carmad would refuse or on a repeated id."""
    for r in records:
        assert ID_RE.match(r["id"]), r["id"]
    assert len({r["id"] for r in records}) == len(records), "duplicate ids"


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def record_line(r):
    """The JSONL line of a record (without the newline); "_" fields stay out."""
    return dumps({"id": r["id"], "content": r["content"], "links": r["links"],
                  "tags": r["tags"], "metadata": r["metadata"]})


def write_jsonl(path, records):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for r in records:
            fh.write(record_line(r) + "\n")
