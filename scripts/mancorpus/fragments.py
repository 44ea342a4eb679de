"""A page's sections of paragraphs cut into fragments of about TARGET_MIN..TARGET_MAX characters."""

import re

TARGET_MIN = 200      # a fragment grows to at least this many characters if it can
TARGET_MAX = 1500     # ... and at most this many
HARD_MAX = 4000       # and is never longer than this
DROP_BELOW = 80       # shorter fragments are left out

SENT_SPLIT_RE = re.compile(r"(?<=[.!?;:])\s+(?=\S)")


def split_long(text, limit=TARGET_MAX):
    """text in pieces of at most `limit` characters, cut at line ends, else sentence ends, else
    spaces (a word longer than the limit is cut anywhere)."""
    if len(text) <= limit:
        return [text]
    units = []   # (piece, the separator after it)
    for line in text.split("\n"):
        if len(line) <= limit:
            units.append((line, "\n"))
            continue
        for sent in SENT_SPLIT_RE.split(line):
            if len(sent) <= limit:
                units.append((sent, " "))
                continue
            buf = ""
            for w in sent.split(" "):
                while len(w) > limit:
                    if buf:
                        units.append((buf, " "))
                        buf = ""
                    units.append((w[:limit], " "))
                    w = w[limit:]
                if buf and len(buf) + 1 + len(w) > limit:
                    units.append((buf, " "))
                    buf = w
                else:
                    buf = (buf + " " + w) if buf else w
            if buf:
                units.append((buf, " "))
        units[-1] = (units[-1][0], "\n")
    pieces = []
    buf = ""
    sep_prev = ""
    for u, sep in units:
        if buf and len(buf) + 1 + len(u) > limit:
            pieces.append(buf.strip())
            buf = u
        else:
            buf = (buf + sep_prev + u) if buf else u
        sep_prev = sep
    if buf.strip():
        pieces.append(buf.strip())
    return [p for p in pieces if p]


def is_see_also(heading):
    h = heading.upper().replace("_", " ").replace("-", " ").strip()
    return h.startswith("SEE ALSO") or h in ("RELATED", "RELATED COMMANDS")


def blocks_of(sections):
    """[(heading, text, first of its section, section index)]: the paragraphs, long ones split."""
    blocks = []
    for si, (heading, paras) in enumerate(sections):
        first = True
        for p in paras:
            p = p.strip()
            if not p:
                continue
            for piece in split_long(p):
                blocks.append((heading, piece, first, si))
                first = False
    return blocks


def group_blocks(blocks):
    """Consecutive blocks grouped into fragments: a group closes when the next block would take
    it past TARGET_MAX (once it has TARGET_MIN), and at a new section unless it is still short."""
    groups = []
    cur = []
    cur_len = 0
    for b in blocks:
        heading, text, starts, si = b
        blen = len(text) + (len(heading) + 1 if starts else 0)
        if cur:
            if cur[-1][3] == si:
                close = cur_len + 2 + blen > TARGET_MAX and cur_len >= TARGET_MIN
            else:
                close = cur_len >= TARGET_MIN or cur_len + 2 + blen > TARGET_MAX
            if close:
                groups.append(cur)
                cur, cur_len = [], 0
        cur.append(b)
        cur_len += blen + (2 if len(cur) > 1 else 0)
    if cur:
        groups.append(cur)
    # a short last group joins the one before if that stays reasonable
    if len(groups) >= 2:
        tail_len = sum(len(b[1]) for b in groups[-1])
        prev_len = sum(len(b[1]) for b in groups[-2])
        if tail_len < DROP_BELOW and prev_len + tail_len + 40 <= TARGET_MAX:
            tail = groups.pop()
            groups[-1].extend(tail)
    return groups


def fragment_of(group):
    """{"text", "headings", "see_also"} of a group of blocks; when it spans sections, each
    section's heading is written as a line in front of its first block."""
    sections_in = []   # (section index, heading)
    for heading, _, _, si in group:
        if si not in [s for s, _ in sections_in]:
            sections_in.append((si, heading))
    multi = len(sections_in) > 1
    parts = []
    for heading, text, starts, _ in group:
        parts.append(heading + "\n" + text if multi and starts and heading else text)
    text = "\n\n".join(parts)
    if len(text) > HARD_MAX:
        # only a heading thousands of characters long gets here
        text = text[:HARD_MAX].rsplit(" ", 1)[0]
    headings = []
    for _, h in sections_in:
        if h not in headings:
            headings.append(h)
    return {"text": text, "headings": headings, "see_also": any(is_see_also(b[0]) for b in group)}


def build_fragments(sections):
    """[(heading, [paragraph])] -> [{"text", "headings", "see_also"}], short ones left out."""
    fragments = [fragment_of(group) for group in group_blocks(blocks_of(sections))]
    return [f for f in fragments if len(f["text"]) >= DROP_BELOW]
