"""roff input lines: comments, continuations, the \\c escape, and a request's arguments."""


def strip_comment(s):
    """(s without its comment, kind): kind is None, '"' (\\" comment), '#' (\\# comment, which
    also joins the next line) or 'cont' (the line ends in an escaped newline)."""
    n = len(s)
    j = 0
    while True:
        i = s.find("\\", j)
        if i < 0:
            return s, None
        if i + 1 >= n:
            return s[:i], "cont"
        c = s[i + 1]
        if c in '"#':
            return s[:i], c
        j = i + 2


def logical_lines(text):
    """The input lines of a page: comments removed, continued lines joined, lines that held only
    a comment left out."""
    out = []
    buf = ""
    for raw in text.split("\n"):
        line, kind = strip_comment(raw.rstrip("\r"))
        if kind in ("cont", "#"):
            buf += line
            continue
        line = buf + line
        buf = ""
        if kind == '"':
            line = line.rstrip()
            if not line or line in (".", "'"):
                continue
        out.append(line)
    if buf:
        out.append(buf)
    return out


def ends_with_c(s):
    """True if s ends with an unescaped \\c (the next input line continues this one)."""
    s = s.rstrip(" \t")
    if not s.endswith("\\c"):
        return False
    backslashes = 0
    j = len(s) - 2
    while j >= 0 and s[j] == "\\":
        backslashes += 1
        j -= 1
    return backslashes % 2 == 1


def parse_args(s):
    """A request's or macro's arguments: split at blanks, "double quotes" group ("" is a quote),
    escapes kept as they are."""
    args = []
    i = 0
    n = len(s)
    while i < n:
        while i < n and s[i] in " \t":
            i += 1
        if i >= n:
            break
        buf = []
        if s[i] == '"':
            i += 1
            while i < n:
                c = s[i]
                if c == '"':
                    if i + 1 < n and s[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                if c == "\\" and i + 1 < n:
                    buf.append(s[i:i + 2])
                    i += 2
                    continue
                buf.append(c)
                i += 1
        else:
            while i < n and s[i] not in " \t":
                if s[i] == "\\" and i + 1 < n:
                    buf.append(s[i:i + 2])
                    i += 2
                    continue
                buf.append(s[i])
                i += 1
        args.append("".join(buf))
    return args
