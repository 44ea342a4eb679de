"""The installed manual pages: which files, in what order, their text, and which are aliases."""

import bz2
import gzip
import hashlib
import lzma
import os
import re

PAGE_FILE_RE = re.compile(
    r"^(?P<name>.+)\.(?P<ext>[0-9][A-Za-z0-9_+-]*)(?P<comp>\.gz|\.bz2|\.xz|\.lzma)?$")
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".lzma": lzma.open}


def read_page_bytes(path):
    """The file's bytes, decompressed by its suffix."""
    opener = OPENERS.get(os.path.splitext(path)[1], open)
    with opener(path, "rb") as f:
        return f.read()


def decode(data):
    """UTF-8 (a BOM dropped), else Latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def section_sort_key(s):
    """Sections in numeric order ("1" < "1ssl" < "5" < "10"), others after them."""
    m = re.match(r"^(\d+)(.*)$", s)
    return (int(m.group(1)), m.group(2)) if m else (10 ** 6, s)


def so_target(text):
    """The path of a page that is only a `.so other` redirect (comments aside), else None."""
    lines = [ln.strip() for ln in text.split("\n")]
    lines = [ln for ln in lines if ln and not ln.startswith(('.\\"', "'\\\"", '\\"'))
             and ln not in (".", "'")]
    if 1 <= len(lines) <= 3 and lines[0].startswith(".so "):
        return lines[0][4:].strip()
    return None


def candidates(root, sections):
    """Page files under root/man<section> whose suffix starts with the section, sorted by
    section, name, suffix and path: [{"dir", "name", "ext", "path"}]."""
    found = []
    for sec in sections:
        d = os.path.join(root, "man" + sec)
        if not os.path.isdir(d):
            continue
        for fn in sorted(os.listdir(d)):
            m = PAGE_FILE_RE.match(fn)
            if not m or not m.group("ext").startswith(sec):
                continue
            path = os.path.join(d, fn)
            if os.path.isfile(path) or os.path.islink(path):
                found.append({"dir": sec, "name": m.group("name"), "ext": m.group("ext"),
                              "path": path})
    found.sort(key=lambda c: (section_sort_key(c["dir"]), c["name"], c["ext"], c["path"]))
    return found


def redirect_key(root, target, real_to_key):
    """The (name, ext) a `.so target` points to: the scanned page at that path, else the
    file name's own."""
    path = os.path.join(root, target)
    for suffix in ("", ".gz", ".bz2", ".xz"):
        if os.path.exists(path + suffix):
            key = real_to_key.get(os.path.realpath(path + suffix))
            if key:
                return key
            break
    m = PAGE_FILE_RE.match(os.path.basename(target))
    return (m.group("name"), m.group("ext")) if m else None


def discover(root, sections, exclude_re):
    """(pages, aliases, excluded count). pages: the candidates that are real pages, in order,
    each with its "text" (or "error": True if unreadable). aliases: {(name, ext): (name, ext)}
    for symlinks, `.so` redirects and byte-identical copies."""
    cands = candidates(root, sections)
    real_to_key = {}
    for c in cands:
        if not os.path.islink(c["path"]):
            real_to_key.setdefault(os.path.realpath(c["path"]), (c["name"], c["ext"]))
    pages = []
    aliases = {}
    seen_hash = {}
    excluded = 0
    for c in cands:
        key = (c["name"], c["ext"])
        if os.path.islink(c["path"]):
            real = os.path.realpath(c["path"])
            if real in real_to_key:
                if real_to_key[real] != key:
                    aliases[key] = real_to_key[real]
                continue
            if not os.path.isfile(real):
                continue             # a dangling link
            real_to_key[real] = key  # a link to a page outside the scanned set
        if exclude_re is not None and exclude_re.search(c["name"]):
            excluded += 1
            continue
        try:
            data = read_page_bytes(c["path"])
        except (OSError, EOFError, lzma.LZMAError, ValueError):
            c["error"] = True
            pages.append(c)
            continue
        text = decode(data)
        target = so_target(text)
        if target is not None:
            tkey = redirect_key(root, target, real_to_key)
            if tkey and tkey != key:
                aliases[key] = tkey
            continue
        digest = hashlib.sha1(data).hexdigest()
        if digest in seen_hash:
            aliases[key] = seen_hash[digest]
            continue
        seen_hash[digest] = key
        c["text"] = text
        pages.append(c)
    return pages, aliases, excluded
