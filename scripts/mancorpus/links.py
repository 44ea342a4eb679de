"""References between pages (`name(N)`, SEE ALSO) resolved to pages, and fragments' links."""

import re

from .fragments import is_see_also

MAX_LINKS = 32
# a manual page named in running text: "ls(1)", "ssh_config(5)", "systemd.unit(5)",
# "openssl-req(1ssl)"
REF_RE = re.compile(
    r"(?<![A-Za-z0-9_.+:@/-])([A-Za-z0-9_][A-Za-z0-9_.+:-]*)\(([0-9][a-zA-Z0-9]{0,6})\)")


def references(text):
    """[(name, section)] of the `name(section)` references in text, in order."""
    return [(m.group(1), m.group(2)) for m in REF_RE.finditer(text)]


def see_also_refs(sections):
    """The references in a page's SEE ALSO sections."""
    refs = []
    for heading, paras in sections:
        if is_see_also(heading):
            for p in paras:
                refs.extend(references(p))
    return refs


class Resolver:
    """Finds the page a reference name(section) means among the pages used, following aliases.

    Tried in order, for the name and then its lower case: the exact (name, section), directly or
    through an alias; the same ignoring case; a page of that name in the section's digit (plain
    "N" first, then the first in page order); an alias of that name in the section's digit.
    """

    def __init__(self, pages, aliases):
        self.aliases = aliases
        self.by_key = {}
        self.by_digit = {}
        for page in pages:
            self.by_key[(page["name"], page["ext"])] = page
            self.by_digit.setdefault((page["name"], page["ext"][0]), []).append(page)
        self.by_key_lower = {}
        for (name, ext), page in sorted(self.by_key.items(), key=lambda item: item[0]):
            self.by_key_lower.setdefault((name.lower(), ext.lower()), page)
        self.alias_by_digit = {}
        for name, ext in sorted(aliases):
            self.alias_by_digit.setdefault((name, ext[0]), []).append((name, ext))
        self.cache = {}

    def key(self, key, depth=0):
        """The page of (name, ext), through at most 5 aliases; None if none."""
        if key in self.by_key:
            return self.by_key[key]
        if key in self.aliases and depth < 5:
            return self.key(self.aliases[key], depth + 1)
        return None

    def __call__(self, name, sec):
        """The page dict for the reference name(sec), or None."""
        if (name, sec) not in self.cache:
            self.cache[(name, sec)] = self.find(name, sec)
        return self.cache[(name, sec)]

    def find(self, name, sec):
        for nm in [name] if name == name.lower() else [name, name.lower()]:
            page = self.key((nm, sec)) or self.by_key_lower.get((nm.lower(), sec.lower()))
            if page is None:
                same_digit = self.by_digit.get((nm, sec[0]))
                if same_digit:
                    exact = [p for p in same_digit if p["ext"] == sec[0]]
                    page = (exact or same_digit)[0]
            if page is None:
                for alias in self.alias_by_digit.get((nm, sec[0]), []):
                    page = self.key(alias)
                    if page is not None:
                        break
            if page is not None:
                return page
        return None


def see_also_pages(page, refs, resolve):
    """The distinct pages, other than `page`, that refs resolve to, in order."""
    pages = []
    for name, sec in refs:
        p = resolve(name, sec)
        if p is not None and p is not page and p not in pages:
            pages.append(p)
    return pages


def fragment_links(ids, i, text, on_see_also, page, sa_pages, resolve):
    """The links of fragment i of a page whose fragments are `ids`: the previous and next one;
    the SEE ALSO pages (on the first fragment and where on_see_also); the pages referenced in
    text. First fragments of pages, deduplicated, never the fragment itself, at most MAX_LINKS."""
    links = []
    if i > 0:
        links.append(ids[i - 1])
    if i + 1 < len(ids):
        links.append(ids[i + 1])
    targets = list(sa_pages) if i == 0 or on_see_also else []
    for name, sec in references(text):
        p = resolve(name, sec)
        if p is not None and p is not page:
            targets.append(p)
    links.extend(p["prefix"] + ".0" for p in targets)
    seen = set()
    unique = []
    for link in links:
        if link not in seen and link != ids[i]:
            seen.add(link)
            unique.append(link)
    return unique[:MAX_LINKS]


def close_links(records):
    """Drops the links to ids not among records; sets each record's "_link_pages"."""
    page_of = {r["id"]: r["_page"] for r in records}
    for r in records:
        r["links"] = [link for link in r["links"] if link in page_of]
        r["_link_pages"] = [page_of[link] for link in r["links"]]
