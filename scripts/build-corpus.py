#!/usr/bin/env python3
"""Build a JSONL corpus of real text fragments with real cross-references
from the manual pages installed on this machine (/usr/share/man).

Each output line is one fragment:

    {"id": "man1.ls.0", "content": "...", "links": ["man1.ls.1", ...],
     "tags": ["man1", "section:description"],
     "metadata": {"page": "ls", "section": "1", "heading": "DESCRIPTION",
                  "source": "/usr/share/man/man1/ls.1.gz"}}

The roff sources (man(7) and, to a useful degree, mdoc(7) macros) are
converted to plain text by a small built-in interpreter: no external tools
are needed, only the Python 3 standard library.  Tables (tbl), equations
(eqn) and pictures (pic) are dropped.

Links of a fragment:
  * the previous and the next fragment of the same page;
  * for every page named in the page's SEE ALSO section, that page's first
    fragment (on the page's first fragment and on the fragment(s) holding
    the SEE ALSO text);
  * for every `name(N)` reference in the fragment's text, the first fragment
    of that page.
Links are deduplicated, never point to the fragment itself, are capped at 32
and only point to fragments present in the output.

The output is deterministic: same installed pages -> byte-identical output.
"""

import argparse
import bz2
import collections
import gzip
import hashlib
import json
import lzma
import os
import re
import statistics
import sys
import unicodedata

MAN_ROOT = "/usr/share/man"
DEFAULT_SECTIONS = "1,5,7,8"
# gcloud ships ~16,600 generated pages ("gcloud_<group>_<command>") that would
# swamp everything else; they are excluded by default (gcloud(1) itself stays).
DEFAULT_EXCLUDE = r"^gcloud_"
SAMPLE_SEEDS = ["ls", "cp", "mv", "find", "grep", "sed", "tar", "ssh", "git"]

TARGET_MIN = 200      # try to make fragments at least this long
TARGET_MAX = 1500     # ... and at most this long
HARD_MAX = 4000       # never longer than this
DROP_BELOW = 80       # fragments shorter than this are dropped
MAX_LINKS = 32

ID_RE = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,199}$")
PAGE_FILE_RE = re.compile(
    r"^(?P<name>.+)\.(?P<ext>[0-9][A-Za-z0-9_+-]*)(?P<comp>\.gz|\.bz2|\.xz|\.lzma)?$")
# A reference to a manual page in running text: "ls(1)", "ssh_config(5)",
# "systemd.unit(5)", "openssl-req(1ssl)".
REF_RE = re.compile(
    r"(?<![A-Za-z0-9_.+:@/-])([A-Za-z0-9_][A-Za-z0-9_.+:-]*)\(([0-9][a-zA-Z0-9]{0,6})\)")

# --------------------------------------------------------------------------
# Special characters and escapes
# --------------------------------------------------------------------------

SPECIAL = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "mi": "-", "-": "-", "\\-": "-",
    "lq": "\u201c", "rq": "\u201d", "oq": "\u2018", "cq": "\u2019",
    "dq": '"', "aq": "'", "ga": "`", "ha": "^", "ti": "~", "sq": "\u25a1",
    "Bq": "\u201e", "bq": "\u201a", "Fo": "\u00ab", "Fc": "\u00bb",
    "fo": "\u2039", "fc": "\u203a", "Aq": "'",
    "bu": "\u2022", "ci": "\u25cb", "sq.": "\u25a1", "pc": "\u00b7", "md": "\u22c5",
    "co": "\u00a9", "rg": "\u00ae", "tm": "\u2122", "sc": "\u00a7", "ps": "\u00b6",
    "dg": "\u2020", "dd": "\u2021", "de": "\u00b0", "%0": "\u2030",
    "ct": "\u00a2", "Po": "\u00a3", "Eu": "\u20ac", "eu": "\u20ac", "Ye": "\u00a5",
    "Cs": "\u00a4", "Do": "$",
    "pl": "+", "mu": "\u00d7", "di": "\u00f7", "+-": "\u00b1", "-+": "\u2213",
    "<=": "\u2264", ">=": "\u2265", "!=": "\u2260", "==": "\u2261", "~=": "\u2245",
    "~~": "\u2248", "ap": "~", "no": "\u00ac", "eq": "=", "**": "*", "sl": "/",
    "rs": "\\", "ba": "|", "bv": "|", "br": "|", "lB": "[", "rB": "]",
    "lC": "{", "rC": "}", "la": "\u27e8", "ra": "\u27e9", "ul": "_", "ru": "_",
    "rn": "\u203e", "at": "@", "sh": "#", "aa": "\u00b4", "a-": "\u00af",
    "a^": "^", "a~": "~", "ad": "\u00a8", "ao": "\u02da", "ac": "\u00b8",
    "ah": "\u02c7", "a.": "\u02d9", "a\"": "\u02dd", "ho": "\u02db", "r!": "\u00a1",
    "r?": "\u00bf", "ss": "\u00df", "ae": "\u00e6", "AE": "\u00c6", "oe": "\u0153",
    "OE": "\u0152", "/o": "\u00f8", "/O": "\u00d8", "/l": "\u0142", "/L": "\u0141",
    "-D": "\u00d0", "Sd": "\u00f0", "TP": "\u00de", "Tp": "\u00fe", "ij": "\u0133",
    "IJ": "\u0132", ".i": "\u0131", ".j": "\u0237",
    "->": "\u2192", "<-": "\u2190", "<>": "\u2194", "da": "\u2193", "ua": "\u2191",
    "rA": "\u21d2", "lA": "\u21d0", "hA": "\u21d4", "uA": "\u21d1", "dA": "\u21d3",
    "fa": "\u2200", "te": "\u2203", "if": "\u221e", "pd": "\u2202", "gr": "\u2207",
    "sr": "\u221a", "is": "\u222b", "pt": "\u221d", "es": "\u2205", "mo": "\u2208",
    "nm": "\u2209", "sb": "\u2282", "sp": "\u2283", "ib": "\u2286", "ip": "\u2287",
    "ca": "\u2229", "cu": "\u222a", "AN": "\u2227", "OR": "\u2228", "tf": "\u2234",
    "12": "\u00bd", "14": "\u00bc", "34": "\u00be", "S1": "\u00b9", "S2": "\u00b2",
    "S3": "\u00b3", "Of": "\u00aa", "Om": "\u00ba", "OK": "\u2713", "CR": "\u21b5",
    "lh": "\u261c", "rh": "\u261e", "sd": "\u2033", "fm": "\u2032", "or": "|",
    "en-dash": "\u2013", "Sl": "/", "nbsp": " ", "zwj": "", "zwnj": "",
    ",": "", "|": "", "^": "",
    "*a": "\u03b1", "*b": "\u03b2", "*g": "\u03b3", "*d": "\u03b4", "*e": "\u03b5",
    "*z": "\u03b6", "*y": "\u03b7", "*h": "\u03b8", "*i": "\u03b9", "*k": "\u03ba",
    "*l": "\u03bb", "*m": "\u03bc", "*n": "\u03bd", "*c": "\u03be", "*o": "\u03bf",
    "*p": "\u03c0", "*r": "\u03c1", "*s": "\u03c3", "*t": "\u03c4", "*u": "\u03c5",
    "*f": "\u03c6", "*x": "\u03c7", "*q": "\u03c8", "*w": "\u03c9", "ts": "\u03c2",
    "*A": "\u0391", "*B": "\u0392", "*G": "\u0393", "*D": "\u0394", "*E": "\u0395",
    "*Z": "\u0396", "*Y": "\u0397", "*H": "\u0398", "*I": "\u0399", "*K": "\u039a",
    "*L": "\u039b", "*M": "\u039c", "*N": "\u039d", "*C": "\u039e", "*O": "\u039f",
    "*P": "\u03a0", "*R": "\u03a1", "*S": "\u03a3", "*T": "\u03a4", "*U": "\u03a5",
    "*F": "\u03a6", "*X": "\u03a7", "*Q": "\u03a8", "*W": "\u03a9",
}
ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", ":": "\u0308", "~": "\u0303",
           ",": "\u0327", "o": "\u030a", "v": "\u030c", "u": "\u0306", "-": "\u0304",
           ".": "\u0307", "\"": "\u030b"}

# single-character escapes: \X -> text
SIMPLE_ESC = {
    "\\": "\\", "e": "\\", "E": "\\", "-": "-", ".": ".", "'": "'", "`": "`",
    " ": " ", "~": " ", "0": " ", "|": "", "^": "", "&": "", ")": "", "%": "",
    ":": "", "/": "", ",": "", "d": "", "u": "", "r": "", "p": "", "a": "",
    "c": "", "t": " ", "{": "", "}": "", '"': "", "!": "", "?": "", "_": "_",
    "#": "", "\n": "", "q": "", "i": "", "P": "",
}
# escapes taking a delimited argument: \X'...'
DELIM_ESC = set("hvlLDXbxRHSABwoCNZj")
# escapes taking a name argument (x, (xx or [xxx]) that produce nothing here
NAME_ESC = set("nmMgFYVk*$O")


def special_char(name):
    if name in SPECIAL:
        return SPECIAL[name]
    if name.startswith("u") and len(name) >= 5:
        parts = name[1:].split("_")
        try:
            return unicodedata.normalize("NFC", "".join(chr(int(p, 16)) for p in parts))
        except ValueError:
            return ""
    if name.startswith("char") and name[4:].isdigit():
        try:
            return chr(int(name[4:]))
        except ValueError:
            return ""
    if len(name) == 2 and name[0] in ACCENTS and name[1].isalpha():
        return unicodedata.normalize("NFC", name[1] + ACCENTS[name[0]])
    if len(name) == 2 and name[1] in ACCENTS and name[0].isalpha():
        # groff's composite names put the accent first, but be lenient
        return unicodedata.normalize("NFC", name[0] + ACCENTS[name[1]])
    return ""


def skip_name(s, k):
    """Skip a name argument (x, (xx, [xxx]) starting at k; return new index."""
    n = len(s)
    if k >= n:
        return k
    if s[k] == "(":
        return min(k + 3, n)
    if s[k] == "[":
        e = s.find("]", k + 1)
        return n if e < 0 else e + 1
    return k + 1


def skip_size(s, k):
    n = len(s)
    if k < n and s[k] in "+-":
        k += 1
    if k >= n:
        return k
    c = s[k]
    if c == "(":
        return min(k + 3, n)
    if c == "[":
        e = s.find("]", k + 1)
        return n if e < 0 else e + 1
    if c in "'\"":
        e = s.find(c, k + 1)
        return n if e < 0 else e + 1
    if c in "123" and k + 1 < n and s[k + 1].isdigit():
        return k + 2
    if c.isdigit():
        return k + 1
    return k


def unesc(s):
    """Convert roff escapes in s to plain text."""
    if "\\" not in s:
        return s
    out = []
    i = 0
    n = len(s)
    while True:
        j = s.find("\\", i)
        if j < 0:
            out.append(s[i:])
            break
        out.append(s[i:j])
        if j + 1 >= n:
            break
        c = s[j + 1]
        k = j + 2
        if c == "(":
            out.append(special_char(s[k:k + 2]))
            k += 2
        elif c == "[":
            e = s.find("]", k)
            if e < 0:
                e = n
            out.append(special_char(s[k:e].split(" ")[0]))
            k = e + 1
        elif c in "fF":
            k = skip_name(s, k)
        elif c == "s":
            k = skip_size(s, k)
        elif c in DELIM_ESC:
            if k < n:
                d = s[k]
                e = s.find(d, k + 1)
                if e < 0:
                    e = n
                arg = s[k + 1:e]
                k = e + 1
                if c == "h":
                    a = arg.lstrip("|")
                    if a and a[0] not in "-0" and re.match(r"^\+?[0-9.]+[a-zA-Z]?$", a):
                        try:
                            if float(re.sub(r"[^0-9.]", "", a) or "0") > 0:
                                out.append(" ")
                        except ValueError:
                            pass
                elif c == "C":
                    out.append(special_char(arg))
                elif c == "N":
                    try:
                        out.append(chr(int(arg)))
                    except ValueError:
                        pass
                elif c == "o":
                    t = unesc(arg)
                    out.append(t[-1:] if t else "")
                elif c == "Z":
                    out.append(unesc(arg))
        elif c in NAME_ESC:
            k = skip_name(s, k)
        elif c == "z":
            pass
        else:
            out.append(SIMPLE_ESC.get(c, c))
        i = k
    return "".join(out)


# --------------------------------------------------------------------------
# Line-level helpers
# --------------------------------------------------------------------------

def strip_comment(s):
    """Return (line_without_comment, kind) where kind is None, '"', '#' or
    'cont' (line ends in an escaped newline)."""
    n = len(s)
    j = 0
    while True:
        i = s.find("\\", j)
        if i < 0:
            return s, None
        if i + 1 >= n:
            return s[:i], "cont"
        c = s[i + 1]
        if c == '"':
            return s[:i], '"'
        if c == "#":
            return s[:i], "#"
        j = i + 2


def logical_lines(text):
    out = []
    buf = ""
    for raw in text.split("\n"):
        raw = raw.rstrip("\r")
        line, kind = strip_comment(raw)
        if kind in ("cont", "#"):
            buf += line
            continue
        line = buf + line
        buf = ""
        if kind == '"':
            line = line.rstrip()
            if not line or line in (".", "'"):
                continue  # comment-only line: ignore completely
        out.append(line)
    if buf:
        out.append(buf)
    return out


def ends_with_c(s):
    """True if s ends with an (unescaped) \\c escape."""
    s = s.rstrip(" \t")
    if not s.endswith("\\c"):
        return False
    nb = 0
    j = len(s) - 2
    while j >= 0 and s[j] == "\\":
        nb += 1
        j -= 1
    return nb % 2 == 1


def parse_args(s):
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


INTERP_RE = re.compile(
    r"\\(\\|\*(?:\(([^\n]{2})|\[([^\]]*)\]|(.))|n[+-]?(?:\(([^\n]{2})|\[([^\]]*)\]|(.)))",
    re.S)


def numeric_eval(expr):
    """Evaluate a roff numeric expression (left to right, no precedence)."""
    toks = re.findall(r"\d+(?:\.\d+)?[icpPmnvuM]?|<=|>=|==|[-+*/%<>=&:()]|\S", expr)

    pos = 0

    def atom():
        nonlocal pos
        if pos >= len(toks):
            raise ValueError("eof")
        t = toks[pos]
        pos += 1
        if t == "(":
            v = expr_()
            if pos < len(toks) and toks[pos] == ")":
                pos += 1
            return v
        if t in "+-":
            v = atom()
            return v if t == "+" else -v
        m = re.match(r"^(\d+(?:\.\d+)?)", t)
        if not m:
            raise ValueError(t)
        return float(m.group(1))

    def expr_():
        nonlocal pos
        v = atom()
        while pos < len(toks) and toks[pos] != ")":
            op = toks[pos]
            pos += 1
            r = atom()
            if op == "+":
                v = v + r
            elif op == "-":
                v = v - r
            elif op == "*":
                v = v * r
            elif op == "/":
                v = v / r if r else 0
            elif op == "%":
                v = v % r if r else 0
            elif op == "<":
                v = float(v < r)
            elif op == ">":
                v = float(v > r)
            elif op == "<=":
                v = float(v <= r)
            elif op == ">=":
                v = float(v >= r)
            elif op in ("=", "=="):
                v = float(v == r)
            elif op == "&":
                v = float(v > 0 and r > 0)
            elif op == ":":
                v = float(v > 0 or r > 0)
            else:
                raise ValueError(op)
        return v

    v = expr_()
    return v


# --------------------------------------------------------------------------
# mdoc support
# --------------------------------------------------------------------------

MDOC_CALLABLE = set(
    "Ac Ad An Ao Ap Aq Ar At Bc Bo Bq Brc Bro Brq Bsx Bx Cd Cm Dc Do Dq Dv Dx Ec "
    "Em En Eo Er Es Ev Fa Fc Fl Fn Fo Fr Ft Fx Ic In Li Lk Ms Mt Nm No Ns Nx Oc Oo "
    "Op Ox Pa Pc Pf Po Pq Qc Ql Qo Qq Sc Sm So Sq St Sx Sy Ta Tn Ux Va Vt Xc Xo Xr "
    "%A %B %C %D %I %J %N %O %P %Q %R %T %U %V".split())
CLOSE_PUNCT = set(".,;:?!)]")
OPEN_PUNCT = set("([")
MDOC_ENCLOSE = {"Op": ("[", "]"), "Aq": ("<", ">"), "Bq": ("[", "]"), "Brq": ("{", "}"),
                "Dq": ("\u201c", "\u201d"), "Pq": ("(", ")"), "Qq": ('"', '"'),
                "Sq": ("\u2018", "\u2019"), "Ql": ("\u2018", "\u2019")}
MDOC_OPEN = {"Oo": "[", "Ao": "<", "Bo": "[", "Bro": "{", "Do": "\u201c", "Po": "(",
             "Qo": '"', "So": "\u2018"}
MDOC_CLOSE = {"Oc": "]", "Ac": ">", "Bc": "]", "Brc": "}", "Dc": "\u201d", "Pc": ")",
              "Qc": '"', "Sc": "\u2019"}
MDOC_BSD = {"Bx": "BSD", "Bsx": "BSD/OS", "Dx": "DragonFly", "Fx": "FreeBSD",
            "Nx": "NetBSD", "Ox": "OpenBSD", "Ux": "UNIX", "At": "AT&T UNIX"}
MDOC_STD = {"-p1003.1": "IEEE Std 1003.1 (\u201cPOSIX.1\u201d)",
            "-p1003.1-2001": "IEEE Std 1003.1-2001 (\u201cPOSIX.1\u201d)",
            "-p1003.1-2008": "IEEE Std 1003.1-2008 (\u201cPOSIX.1\u201d)",
            "-p1003.2": "IEEE Std 1003.2 (\u201cPOSIX.2\u201d)",
            "-ansiC": "ANSI X3.159-1989 (\u201cANSI C89\u201d)",
            "-isoC": "ISO/IEC 9899:1990 (\u201cISO C90\u201d)",
            "-isoC-99": "ISO/IEC 9899:1999 (\u201cISO C99\u201d)",
            "-susv2": "Version 2 of the Single UNIX Specification (\u201cSUSv2\u201d)",
            "-susv3": "Version 3 of the Single UNIX Specification (\u201cSUSv3\u201d)",
            "-xpg4": "X/Open Portability Guide Issue 4 (\u201cXPG4\u201d)"}


def join_pieces(pieces):
    out = []
    prev = None
    for text, glue in pieces:
        if text == "":
            continue
        if out and not glue and text not in CLOSE_PUNCT and prev not in OPEN_PUNCT:
            out.append(" ")
        out.append(text)
        prev = text
    return "".join(out)


# --------------------------------------------------------------------------
# The roff interpreter
# --------------------------------------------------------------------------

FONT_SPACE = {"B", "I", "SM", "SB", "Em", "Sy"}
FONT_ALT = {"BR", "RB", "BI", "IB", "IR", "RI"}


class Converter:
    def __init__(self):
        self.strings = {"R": "\u00ae", "Tm": "\u2122", "lq": "\u201c", "rq": "\u201d",
                        "S": "", "HF": "", ".T": "utf8", "Lq": "\u201c", "Rq": "\u201d",
                        "q": '"', "Ba": "|", "Ne": "\u2260", "Ge": "\u2265",
                        "Le": "\u2264", "Gt": ">", "Lt": "<", "Pi": "\u03c0",
                        "Am": "&", "If": "infinity", "Na": "NaN", "Px": "POSIX",
                        "Ai": "ANSI"}
        self.registers = {".g": 1.0, ".$": 0.0, ".H": 0.0, ".V": 0.0, "LL": 0.0}
        self.macros = {}
        self.sections = []            # [heading, [paragraph, ...]]
        self.heading = ""
        self.para_lines = []          # [(text, nofill)]
        self.cur = None               # current line (str) or None
        self.cur_nofill = False
        self.nofill = False
        self.no_space = False         # previous text ended with \c
        self.heading_pending = None   # "SH" / "SS" when the heading is on the next line
        self.tag_pending = False
        self.ss_prefix = None
        self.ie_stack = []
        self.skip_depth = 0           # > 0 while skipping a false \{ ... \} block
        self.block = None             # ("de", name, end, lines) / ("skip", end)
        self.depth = 0
        self.mdoc_name = ""
        self.mdoc_lists = []
        self.mdoc_enum = []
        self.mdoc_xo = False
        self.mdoc_spacing = True
        self.prev_macro_nospace = False
        self.url_stack = []
        self.lines_seen = 0

    # ---------------- output model ----------------
    def br(self):
        if self.cur is not None:
            if self.cur.strip():
                self.para_lines.append((self.cur, self.cur_nofill))
            self.cur = None
        self.no_space = False

    def flush_para(self):
        self.br()
        if self.tag_pending:
            self.tag_pending = False
        lines = []
        for text, nofill in self.para_lines:
            if nofill:
                t = text.expandtabs(8).rstrip()
            else:
                t = " ".join(text.split())
            if t:
                lines.append(t)
        self.para_lines = []
        if not lines:
            return
        text = "\n".join(lines)
        if self.ss_prefix:
            text = self.ss_prefix + "\n" + text
            self.ss_prefix = None
        if not self.sections:
            self.sections.append([self.heading, []])
        self.sections[-1][1].append(text)

    def new_section(self, heading):
        self.flush_para()
        self.ss_prefix = None
        self.heading = heading
        self.sections.append([heading, []])

    def new_subsection(self, title):
        self.flush_para()
        if self.ss_prefix:
            # empty subsection: keep its title in front of the next one
            title = self.ss_prefix + "\n" + title
        self.ss_prefix = title if title else None

    def emit(self, text, glue=False, cont=False):
        """Emit a piece of (already unescaped) text as if it were an input line.
        cont: the input line ended with \\c (no break/space after it)."""
        if self.heading_pending:
            kind = self.heading_pending
            self.heading_pending = None
            t = " ".join(text.split())
            if kind == "SH":
                self.new_section(t)
            else:
                self.new_subsection(t)
            return
        if self.nofill:
            if self.cur is not None and (self.no_space or glue):
                self.cur += text
            else:
                self.br()
                self.cur = text
                self.cur_nofill = True
            if not cont:
                self.br()
        else:
            if self.cur is None:
                self.cur = text
                self.cur_nofill = False
            elif self.no_space or glue:
                self.cur += text
            else:
                self.cur += " " + text
        self.no_space = cont
        if self.tag_pending and not cont:
            self.tag_pending = False
            self.br()

    # ---------------- interpolation ----------------
    def interp(self, s, depth=0):
        if "\\" not in s:
            return s

        def repl(m):
            if m.group(1) == "\\":
                return "\\\\"
            if m.group(1).startswith("*"):
                name = m.group(2) or m.group(3) or m.group(4) or ""
                name = name.split(" ")[0]
                val = self.strings.get(name, "")
                if depth < 8 and "\\" in val:
                    val = self.interp(val, depth + 1)
                return val
            name = m.group(5) or m.group(6) or m.group(7) or ""
            v = self.registers.get(name, 0.0)
            return str(int(v)) if float(v).is_integer() else str(v)

        return INTERP_RE.sub(repl, s)

    # ---------------- conditions ----------------
    def eval_cond(self, s):
        """Parse a condition at the start of s; return (value, rest)."""
        s = s.lstrip(" \t")
        neg = False
        while s.startswith("!"):
            neg = not neg
            s = s[1:]
        val = False
        rest = ""
        if not s:
            return False, ""
        c = s[0]
        if c in "nt" and (len(s) == 1 or not s[1].isalnum()):
            val = (c == "n")
            rest = s[1:]
        elif c in "eo" and (len(s) == 1 or not s[1].isalnum()):
            val = (c == "o")
            rest = s[1:]
        elif c in "drcFmSv" and len(s) > 1 and s[1] in " \t":
            m = re.match(r"^[drcFmSv][ \t]+(\S+)(.*)$", s, re.S)
            if m:
                name, rest = m.group(1), m.group(2)
                if c == "d":
                    val = name in self.strings or name in self.macros
                elif c == "r":
                    val = name in self.registers
                elif c == "v":
                    val = False
                else:
                    val = True
        elif c in "'\"|/" or (not c.isalnum() and c not in "\\(+-.!"):
            d = c
            e1 = s.find(d, 1)
            e2 = s.find(d, e1 + 1) if e1 >= 0 else -1
            if e1 >= 0 and e2 >= 0:
                a = unesc(self.interp(s[1:e1]))
                b = unesc(self.interp(s[e1 + 1:e2]))
                val = (a == b)
                rest = s[e2 + 1:]
            else:
                rest = ""
        else:
            m = re.match(r"^(\S+)(.*)$", s, re.S)
            expr, rest = (m.group(1), m.group(2)) if m else (s, "")
            # the body may be glued to the condition (".if \n(.g\{\")
            if "\\{" in expr:
                p = expr.index("\\{")
                rest = expr[p:] + rest
                expr = expr[:p]
            expr = self.interp(expr)
            try:
                val = numeric_eval(expr) > 0
            except (ValueError, ZeroDivisionError, RecursionError, IndexError):
                val = False
        return (not val) if neg else val, rest

    def do_cond_body(self, val, body):
        body = body.lstrip(" \t")
        opens = body.count("\\{")
        closes = body.count("\\}")
        if val:
            body = body.replace("\\{", "").replace("\\}", "").lstrip(" \t")
            if body:
                self.process_line(body)
        else:
            if opens > closes:
                self.skip_depth = opens - closes

    # ---------------- line processing ----------------
    def process_lines(self, lines):
        for line in lines:
            self.lines_seen += 1
            if self.block is not None:
                self.handle_block_line(line)
                continue
            if self.skip_depth > 0:
                self.skip_depth += line.count("\\{") - line.count("\\}")
                continue
            self.process_line(line)

    def handle_block_line(self, line):
        kind = self.block[0]
        end = self.block[2]
        stripped = line.strip()
        is_end = False
        if stripped[:1] in (".", "'"):
            nm = stripped[1:].strip()
            if nm == end or nm.split(" ")[0] == end:
                is_end = True
        if kind in ("tbl", "eqn", "pic"):
            if is_end:
                self.block = None
            return
        if is_end:
            if kind == "de":
                name = self.block[1]
                if name is not None:
                    self.macros[name] = self.block[3]
            self.block = None
            return
        if kind == "de" and self.block[1] is not None:
            # copy mode: "\\" becomes "\"
            self.block[3].append(line.replace("\\\\", "\\"))

    def process_line(self, line):
        if "\\{" in line or "\\}" in line:
            if line[:1] in (".", "'"):
                nm = line[1:].lstrip(" \t")[:2]
                if nm not in ("if", "ie", "el"):
                    line = line.replace("\\{", "").replace("\\}", "")
            else:
                line = line.replace("\\{", "").replace("\\}", "")
            if not line.strip():
                return
        if line == "":
            # blank line: paragraph break
            self.flush_para()
            return
        c = line[0]
        if c in (".", "'"):
            rest = line[1:].lstrip(" \t")
            m = re.match(r"[^\s\\]*", rest)
            name = m.group(0)
            argstr = rest[len(name):]
            self.request(name, argstr)
        else:
            self.text_line(line)

    def text_line(self, line):
        s = self.interp(line)
        self.prev_macro_nospace = False
        if not self.nofill and s[:1] in (" ", "\t"):
            self.br()
        cont = ends_with_c(s)
        t = unesc(s)
        if not self.nofill:
            t = t.strip(" \t") if not cont else t.lstrip(" \t")
            if t == "" and not cont:
                # a line that renders to nothing (e.g. "\&")
                if s.strip() == "":
                    self.flush_para()
                return
        self.emit(t, cont=cont)

    # ---------------- requests / macros ----------------
    def request(self, name, argstr):
        if name == "":
            return
        if name in ("if", "ie"):
            val, body = self.eval_cond(argstr)
            if name == "ie":
                self.ie_stack.append(val)
            self.do_cond_body(val, body)
            return
        if name == "el":
            val = not self.ie_stack.pop() if self.ie_stack else False
            self.do_cond_body(val, argstr)
            return
        if name in ("de", "de1", "am", "am1", "ig", "dei", "ami"):
            args = parse_args(argstr)
            if name == "ig":
                end = args[0] if args else "."
                self.block = ("de", None, end, [])
            else:
                mname = args[0] if args else None
                end = args[1] if len(args) > 1 else "."
                if mname in MAN_MACROS or mname in MDOC_LINE or mname in MDOC_CALLABLE:
                    mname = None          # keep the built-in implementation
                body = []
                if mname is not None and name.startswith("am") and mname in self.macros:
                    body = list(self.macros[mname])
                self.block = ("de", mname, end, body)
            return
        if name == "TS":
            self.flush_para()
            self.block = ("tbl", None, "TE", None)
            return
        if name == "EQ":
            self.block = ("eqn", None, "EN", None)
            return
        if name == "PS":
            self.block = ("pic", None, "PE", None)
            return
        argstr = self.interp(argstr)
        if name in ("ds", "ds1", "as", "as1"):
            m = re.match(r"^[ \t]*(\S+)[ \t]?(.*)$", argstr)
            if m:
                key, val = m.group(1), m.group(2)
                if val.startswith('"'):
                    val = val[1:]
                if name.startswith("as"):
                    self.strings[key] = self.strings.get(key, "") + val
                else:
                    self.strings[key] = val
            return
        if name == "nr":
            args = parse_args(argstr)
            if args:
                try:
                    expr = args[1] if len(args) > 1 else "0"
                    if expr[:1] in "+-" and args[0] in self.registers:
                        v = self.registers[args[0]] + numeric_eval(expr)
                    else:
                        v = numeric_eval(expr)
                    self.registers[args[0]] = v
                except (ValueError, ZeroDivisionError, IndexError, RecursionError):
                    self.registers[args[0]] = 0.0
            return
        if name in MAN_MACROS:
            self.man_macro(name, argstr)
            return
        if name in MDOC_LINE or name in MDOC_CALLABLE:
            self.mdoc_macro(name, argstr)
            return
        if name in self.macros:
            self.invoke(name, argstr)
            return
        # everything else (formatting requests, unknown macros) is ignored

    def invoke(self, name, argstr):
        if self.depth >= 12:
            return
        args = parse_args(argstr)

        def repl(m):
            g = m.group(1)
            if g in ("*", "@"):
                return " ".join(args)
            if g.startswith("("):
                g = g[1:]
            elif g.startswith("["):
                g = g[1:-1]
            try:
                idx = int(g)
            except ValueError:
                return ""
            if idx == 0:
                return name
            return args[idx - 1] if idx <= len(args) else ""

        body = [re.sub(r"\\\$(\d|\*|@|\(\d\d|\[\d+\])", repl, ln) for ln in self.macros[name]]
        saved = self.registers.get(".$", 0.0)
        self.registers[".$"] = float(len(args))
        self.depth += 1
        try:
            self.process_lines(body)
        finally:
            self.depth -= 1
            self.registers[".$"] = saved

    def man_macro(self, name, argstr):
        if name not in ("br", "sp", "nf", "fi", "in", "ti"):
            argstr = argstr.replace("\\\\", "\\")   # macro args are read in copy mode
        args = parse_args(argstr)
        if name in ("SH", "SS"):
            title = " ".join(unesc(a) for a in args).strip()
            if not title:
                self.flush_para()
                self.heading_pending = name
            elif name == "SH":
                self.new_section(" ".join(title.split()))
            else:
                self.new_subsection(" ".join(title.split()))
            return
        if name in ("PP", "P", "LP", "HP", "sp", "YS"):
            self.flush_para()
            return
        if name == "TP":
            self.flush_para()
            self.tag_pending = True
            return
        if name == "TQ":
            self.br()
            self.tag_pending = True
            return
        if name == "IP":
            self.flush_para()
            tag = unesc(args[0]).strip() if args else ""
            if tag:
                self.emit(tag)
                if len(tag) > 4:
                    self.br()
            return
        if name in FONT_SPACE:
            if args:
                self.emit(" ".join(unesc(a) for a in args))
            return
        if name in FONT_ALT:
            if args:
                self.emit("".join(unesc(a) for a in args))
            return
        if name in ("br", "ti", "RS", "RE", "in"):
            self.br()
            return
        if name in ("nf", "EX"):
            self.br()
            self.nofill = True
            return
        if name in ("fi", "EE"):
            self.br()
            self.nofill = False
            return
        if name in ("UR", "MT"):
            self.url_stack.append(unesc(args[0]) if args else "")
            return
        if name in ("UE", "ME"):
            url = self.url_stack.pop() if self.url_stack else ""
            if url:
                self.emit("<" + url + ">")
            if args:
                self.emit("".join(unesc(a) for a in args), glue=True)
            return
        if name == "URL":
            url = unesc(args[0]) if args else ""
            text = unesc(args[1]) if len(args) > 1 else ""
            trail = unesc(args[2]) if len(args) > 2 else ""
            out = (text + " <" + url + ">") if text and text != url else url
            self.emit(out + trail)
            return
        if name == "SY":
            self.flush_para()
            if args:
                self.emit(" ".join(unesc(a) for a in args))
            return
        if name == "OP":
            if args:
                self.emit("[" + " ".join(unesc(a) for a in args) + "]")
            return
        # remaining MAN_MACROS entries are ignored on purpose

    # ---------------- mdoc ----------------
    def mdoc_seq(self, toks):
        """Render a sequence of mdoc tokens (raw, with escapes) to text."""
        pieces = []
        glue_next = False

        def add(text, glue=False):
            nonlocal glue_next
            pieces.append((text, glue or glue_next or not self.mdoc_spacing))
            if text:
                glue_next = False

        i = 0
        n = len(toks)
        while i < n:
            t = toks[i]
            if t not in MDOC_CALLABLE:
                txt = unesc(t)
                add(txt, glue=t in CLOSE_PUNCT)
                if t in OPEN_PUNCT:
                    glue_next = True
                i += 1
                continue
            m = t
            i += 1
            j = i
            while j < n and toks[j] not in MDOC_CALLABLE:
                j += 1
            raw_plain = toks[i:j]
            plain = [unesc(a) for a in raw_plain]
            words = [p for p, r in zip(plain, raw_plain) if r not in CLOSE_PUNCT]
            if m in MDOC_ENCLOSE:
                rest = toks[i:]
                k = len(rest)
                while k > 0 and rest[k - 1] in CLOSE_PUNCT:
                    k -= 1
                inner = self.mdoc_seq(rest[:k])
                o, c = MDOC_ENCLOSE[m]
                add(o + inner + c)
                for p in rest[k:]:
                    add(unesc(p), glue=True)
                i = n
                continue
            i = j

            def rest_plain(skip=0):
                for p, r in zip(plain[skip:], raw_plain[skip:]):
                    add(p, glue=r in CLOSE_PUNCT)

            if m == "Fl":
                if not words:
                    add("-")
                for p, r in zip(plain, raw_plain):
                    if r in CLOSE_PUNCT or r in OPEN_PUNCT:
                        add(p, glue=r in CLOSE_PUNCT)
                    else:
                        add("-" + p)
            elif m == "Xr":
                if len(plain) >= 2 and plain[1] not in CLOSE_PUNCT:
                    add("%s(%s)" % (plain[0], plain[1]))
                    rest_plain(2)
                else:
                    rest_plain()
            elif m == "Ns":
                glue_next = True
                rest_plain()
            elif m == "Pf":
                if plain:
                    add(plain[0])
                    glue_next = True
                    rest_plain(1)
            elif m == "Ap":
                add("'", glue=True)
                glue_next = True
                rest_plain()
            elif m == "Nm":
                if words:
                    if not self.mdoc_name:
                        self.mdoc_name = words[0]
                    rest_plain()
                else:
                    add(self.mdoc_name)
                    rest_plain()
            elif m == "Ar":
                if not words:
                    add("file ...")
                rest_plain()
            elif m in MDOC_OPEN:
                add(MDOC_OPEN[m])
                glue_next = True
                rest_plain()
            elif m in MDOC_CLOSE:
                add(MDOC_CLOSE[m], glue=True)
                rest_plain()
            elif m == "Eo":
                if plain:
                    add(plain[0])
                    glue_next = True
                    rest_plain(1)
            elif m == "Ec":
                if plain:
                    add(plain[0], glue=True)
                    rest_plain(1)
            elif m in MDOC_BSD:
                if words:
                    if m == "Bx":
                        add(words[0] + "BSD" + ("-" + words[1] if len(words) > 1 else ""))
                    else:
                        add(MDOC_BSD[m] + " " + " ".join(words))
                    for p in plain:
                        if p in CLOSE_PUNCT:
                            add(p, glue=True)
                else:
                    add(MDOC_BSD[m])
                    rest_plain()
            elif m == "St":
                if plain:
                    add(MDOC_STD.get(plain[0], plain[0].lstrip("-")))
                    rest_plain(1)
            elif m == "Lk":
                if words:
                    url = words[0]
                    text = " ".join(words[1:])
                    add((text + " <" + url + ">") if text else url)
                    for p in plain:
                        if p in CLOSE_PUNCT:
                            add(p, glue=True)
            elif m == "Fn":
                if words:
                    add(words[0] + "(" + ", ".join(words[1:]) + ")")
                    for p in plain:
                        if p in CLOSE_PUNCT:
                            add(p, glue=True)
            elif m == "Fo":
                if words:
                    add(words[0] + "(")
                    glue_next = True
            elif m == "Fc":
                add(")", glue=True)
                rest_plain()
            elif m == "In":
                if words:
                    add("#include <" + words[0] + ">")
            elif m == "An":
                rest_plain(1 if plain and plain[0] in ("-split", "-nosplit") else 0)
            elif m == "Sm":
                if plain and plain[0] in ("on", "off"):
                    self.mdoc_spacing = plain[0] == "on"
                    rest_plain(1)
                else:
                    self.mdoc_spacing = not self.mdoc_spacing
                    rest_plain()
            elif m in ("Xo", "Xc", "Es", "En", "Ta"):
                rest_plain()
            else:
                rest_plain()
        return join_pieces(pieces)

    def mdoc_macro(self, name, argstr):
        toks = parse_args(argstr.replace("\\\\", "\\"))
        if name == "Sh":
            title = " ".join(unesc(a) for a in toks).strip()
            if title:
                self.new_section(title)
            else:
                self.flush_para()
                self.heading_pending = "SH"
            self.nofill = False
            return
        if name == "Ss":
            self.new_subsection(" ".join(unesc(a) for a in toks).strip())
            return
        if name in ("Pp", "Lp"):
            self.flush_para()
            return
        if name == "Nd":
            self.emit("\u2014 " + self.mdoc_seq(toks))
            return
        if name == "Bl":
            self.flush_para()
            kind = "tag"
            for a in toks:
                if a in ("-tag", "-item", "-bullet", "-dash", "-hyphen", "-enum", "-column",
                         "-diag", "-hang", "-ohang", "-inset"):
                    kind = a[1:]
                    break
            self.mdoc_lists.append(kind)
            self.mdoc_enum.append(0)
            return
        if name == "El":
            self.flush_para()
            if self.mdoc_lists:
                self.mdoc_lists.pop()
                self.mdoc_enum.pop()
            return
        if name == "It":
            self.flush_para()
            kind = self.mdoc_lists[-1] if self.mdoc_lists else "tag"
            xo = bool(toks) and toks[-1] == "Xo"
            if xo:
                toks = toks[:-1]
            if kind in ("bullet", "dash", "hyphen", "enum", "item"):
                if kind == "enum":
                    self.mdoc_enum[-1] += 1
                    self.emit("%d." % self.mdoc_enum[-1])
                elif kind == "bullet":
                    self.emit("\u2022")
                elif kind in ("dash", "hyphen"):
                    self.emit("-")
                return
            text = self.mdoc_seq(toks)
            if kind == "column":
                if text:
                    self.emit(text)
                return
            if text:
                self.emit(text)
            if xo:
                self.mdoc_xo = True
            elif text and kind not in ("inset", "diag"):
                self.br()
            return
        if name == "Xc":
            if toks:
                self.emit(self.mdoc_seq(toks))
            if self.mdoc_xo:
                self.mdoc_xo = False
                self.br()
            return
        if name == "Bd":
            self.flush_para()
            self.nofill = "-literal" in toks or "-unfilled" in toks
            return
        if name == "Ed":
            self.flush_para()
            self.nofill = False
            return
        if name in ("D1", "Dl"):
            self.br()
            self.emit(self.mdoc_seq(toks))
            self.br()
            return
        if name in ("Rs", "Re"):
            self.flush_para()
            return
        if name == "Ex":
            names = [unesc(a) for a in toks if a != "-std"] or [self.mdoc_name]
            self.emit("The %s utility exits 0 on success, and >0 if an error occurs."
                      % " ".join(names))
            return
        if name == "Rv":
            names = [unesc(a) for a in toks if a != "-std"] or [self.mdoc_name]
            self.emit("The %s() function returns the value 0 if successful; otherwise "
                      "the value -1 is returned and the global variable errno is set "
                      "to indicate the error." % names[0])
            return
        if name == "Nm" and self.heading.upper() == "SYNOPSIS":
            self.br()
        if name in MDOC_LINE_IGNORED:
            return
        if name in MDOC_CALLABLE:
            glue = not self.mdoc_spacing and self.prev_macro_nospace
            text = self.mdoc_seq([name] + toks)
            if text:
                self.emit(text, glue=glue)
                self.prev_macro_nospace = not self.mdoc_spacing
            if toks and toks[-1] == "Xc" and self.mdoc_xo:
                self.mdoc_xo = False
                self.br()

    # ---------------- entry point ----------------
    def run(self, text):
        self.process_lines(logical_lines(text))
        self.flush_para()
        return [(h, p) for h, p in self.sections]


MAN_MACROS = set(
    "SH SS PP P LP HP TP TQ IP B I SM SB BR RB BI IB IR RI br ti in sp nf fi EX EE "
    "UR UE MT ME URL SY OP YS TH RS RE PD DT UC AT".split())
MDOC_LINE = set("Sh Ss Pp Lp Nd Bl El It Xc Bd Ed D1 Dl Rs Re Ex Rv Dd Dt Os Bf Ef "
                "Bk Ek Db Ud Fd".split())
MDOC_LINE_IGNORED = set("Dd Dt Os Bf Ef Bk Ek Db Ud Fd".split())


# --------------------------------------------------------------------------
# Fragmenting
# --------------------------------------------------------------------------

SENT_SPLIT_RE = re.compile(r"(?<=[.!?;:])\s+(?=\S)")


def split_long(text, limit=TARGET_MAX):
    """Split text longer than limit into pieces <= limit, at sentence, line
    or word boundaries (in that order of preference)."""
    if len(text) <= limit:
        return [text]
    units = []
    for line in text.split("\n"):
        if len(line) <= limit:
            units.append((line, "\n"))
            continue
        for sent in SENT_SPLIT_RE.split(line):
            if len(sent) <= limit:
                units.append((sent, " "))
                continue
            words = sent.split(" ")
            buf = ""
            for w in words:
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
        # the last unit of a line is followed by a newline
        if units:
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
    return h.startswith("SEE ALSO") or h in ("RELATED", "RELATED COMMANDS", "SEE ALSO:")


def build_fragments(sections):
    """sections: [(heading, [paragraph])] -> [dict(text, headings, see_also)]"""
    blocks = []     # (heading, text, starts_section, section_index)
    for si, (heading, paras) in enumerate(sections):
        first = True
        for p in paras:
            p = p.strip()
            if not p:
                continue
            for piece in split_long(p):
                blocks.append((heading, piece, first, si))
                first = False
    frags = []
    cur = []
    cur_len = 0
    for b in blocks:
        heading, text, starts, si = b
        blen = len(text) + (len(heading) + 1 if starts else 0)
        if cur:
            same_section = cur[-1][3] == si
            if same_section:
                if cur_len + 2 + blen > TARGET_MAX and cur_len >= TARGET_MIN:
                    frags.append(cur)
                    cur, cur_len = [], 0
            else:
                # a new section starts a new fragment unless the current one is small
                if cur_len >= TARGET_MIN or cur_len + 2 + blen > TARGET_MAX:
                    frags.append(cur)
                    cur, cur_len = [], 0
        cur.append(b)
        cur_len += blen + (2 if len(cur) > 1 else 0)
    if cur:
        frags.append(cur)
    # a small tail is merged into the previous fragment if that stays reasonable
    if len(frags) >= 2:
        tail_len = sum(len(b[1]) for b in frags[-1])
        prev_len = sum(len(b[1]) for b in frags[-2])
        if tail_len < DROP_BELOW and prev_len + tail_len + 40 <= TARGET_MAX:
            frags[-2].extend(frags[-1])
            frags.pop()
    out = []
    for fr in frags:
        sections_in = []
        for b in fr:
            if b[3] not in [s for s, _ in sections_in]:
                sections_in.append((b[3], b[0]))
        multi = len(sections_in) > 1
        parts = []
        for heading, text, starts, si in fr:
            if multi and starts and heading:
                parts.append(heading + "\n" + text)
            else:
                parts.append(text)
        text = "\n\n".join(parts)
        if len(text) > HARD_MAX:   # cannot happen by construction; be safe
            text = text[:HARD_MAX].rsplit(" ", 1)[0]
        headings = []
        for _, h in sections_in:
            if h not in headings:
                headings.append(h)
        out.append({
            "text": text,
            "headings": headings,
            "see_also": any(is_see_also(b[0]) for b in fr),
        })
    return [f for f in out if len(f["text"]) >= DROP_BELOW]


# --------------------------------------------------------------------------
# Page discovery
# --------------------------------------------------------------------------

def read_page_bytes(path):
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read()
    if path.endswith(".bz2"):
        with bz2.open(path, "rb") as f:
            return f.read()
    if path.endswith(".xz") or path.endswith(".lzma"):
        with lzma.open(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def decode(data):
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def sanitize(name):
    s = re.sub(r"[^A-Za-z0-9._~-]", "_", name)
    if not s or s[0] == ".":
        s = "_" + s
    return s


def section_sort_key(s):
    m = re.match(r"^(\d+)(.*)$", s)
    return (int(m.group(1)), m.group(2)) if m else (10 ** 6, s)


def so_target(text):
    """If the page is only a `.so other` redirect, return the target path."""
    lines = [ln.strip() for ln in text.split("\n")]
    lines = [ln for ln in lines if ln and not ln.startswith(('.\\"', "'\\\"", '\\"'))
             and ln not in (".", "'")]
    if 1 <= len(lines) <= 3 and lines[0].startswith(".so "):
        return lines[0][4:].strip()
    return None


def discover(root, sections, exclude_re):
    """Return (pages, aliases, excluded_count).
    pages: list of dicts sorted by section then name.
    aliases: {(name, ext): target_path or (name, ext)}"""
    cands = []
    for sec in sections:
        d = os.path.join(root, "man" + sec)
        if not os.path.isdir(d):
            continue
        for fn in sorted(os.listdir(d)):
            m = PAGE_FILE_RE.match(fn)
            if not m or not m.group("ext").startswith(sec):
                continue
            path = os.path.join(d, fn)
            if not (os.path.isfile(path) or os.path.islink(path)):
                continue
            cands.append({"dir": sec, "name": m.group("name"), "ext": m.group("ext"),
                          "path": path})
    cands.sort(key=lambda c: (section_sort_key(c["dir"]), c["name"], c["ext"], c["path"]))
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
                continue            # dangling link
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
        tgt = so_target(text)
        if tgt is not None:
            base = os.path.basename(tgt)
            tkey = None
            for cand_path in (os.path.join(root, tgt),):
                for suffix in ("", ".gz", ".bz2", ".xz"):
                    p = cand_path + suffix
                    if os.path.exists(p):
                        tkey = real_to_key.get(os.path.realpath(p))
                        break
                if tkey:
                    break
            if tkey is None:
                mm = PAGE_FILE_RE.match(base)
                if mm:
                    tkey = (mm.group("name"), mm.group("ext"))
            if tkey and tkey != key:
                aliases[key] = tkey
            continue
        h = hashlib.sha1(data).hexdigest()
        if h in seen_hash:
            aliases[key] = seen_hash[h]     # byte-identical duplicate page
            continue
        seen_hash[h] = key
        c["text"] = text
        pages.append(c)
    return pages, aliases, excluded


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def fragment_record(f):
    return dumps({"id": f["id"], "content": f["content"], "links": f["links"],
                  "tags": f["tags"], "metadata": f["metadata"]})


def summarize(label, frags, pages_used, out=sys.stderr):
    n = len(frags)
    lens = [len(f["content"]) for f in frags]
    links_total = sum(len(f["links"]) for f in frags)
    cross = 0
    for f in frags:
        pg = f["_page"]
        if any(l_page != pg for l_page in f["_link_pages"]):
            cross += 1
    stats = {
        "pages": pages_used,
        "fragments": n,
        "links_total": links_total,
        "mean_links": links_total / n if n else 0.0,
        "cross_page_share": cross / n if n else 0.0,
        "mean_len": statistics.mean(lens) if lens else 0.0,
        "median_len": statistics.median(lens) if lens else 0.0,
        "min_len": min(lens) if lens else 0,
        "max_len": max(lens) if lens else 0,
    }
    print("%s: pages used %d, fragments %d, links total %d, mean links/fragment %.2f, "
          "fragments with a cross-page link %.1f%%, content length mean %.0f / median %.0f "
          "(min %d, max %d)" % (
              label, stats["pages"], stats["fragments"], stats["links_total"],
              stats["mean_links"], 100 * stats["cross_page_share"], stats["mean_len"],
              stats["median_len"], stats["min_len"], stats["max_len"]), file=out)
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="corpus/manpages.jsonl")
    ap.add_argument("--man-root", default=MAN_ROOT)
    ap.add_argument("--sections", default=DEFAULT_SECTIONS,
                    help="comma-separated man sections (default %(default)s)")
    ap.add_argument("--exclude", default=DEFAULT_EXCLUDE,
                    help="regex of page names to skip (default %(default)r; '' = none)")
    ap.add_argument("--limit-pages", type=int, default=None)
    ap.add_argument("--min-fragments", type=int, default=10000,
                    help="stop after the page that reaches this many fragments "
                         "(default %(default)s; 0 = use all pages)")
    ap.add_argument("--sample-out", default=None)
    ap.add_argument("--sample-size", type=int, default=400)
    ap.add_argument("--sample-max-bytes", type=int, default=390000)
    args = ap.parse_args(argv)

    sections = sorted({s.strip() for s in args.sections.split(",") if s.strip()},
                      key=section_sort_key)
    exclude_re = re.compile(args.exclude) if args.exclude else None
    pages, aliases, excluded = discover(args.man_root, sections, exclude_re)

    # ---- convert pages in order until enough fragments ----
    used = []            # (page dict, [fragment dicts], see_also refs)
    failed = []
    empty = 0
    total = 0
    used_prefixes = set()
    for c in pages:
        if args.limit_pages is not None and len(used) >= args.limit_pages:
            break
        if args.min_fragments > 0 and total >= args.min_fragments:
            break
        if c.get("error"):
            failed.append(c["path"])
            continue
        try:
            conv = Converter()
            secs = conv.run(c["text"])
            frs = build_fragments(secs)
        except Exception as e:  # noqa: BLE001 - a broken page must not stop the build
            failed.append("%s (%s: %s)" % (c["path"], type(e).__name__, e))
            continue
        if not frs:
            empty += 1
            continue
        see_also = []
        for h, paras in secs:
            if is_see_also(h):
                for p in paras:
                    for m in REF_RE.finditer(p):
                        see_also.append((m.group(1), m.group(2)))
        prefix = "man%s.%s" % (sanitize(c["ext"]), sanitize(c["name"]))
        prefix = prefix[:180]
        base = prefix
        k = 2
        while prefix in used_prefixes:
            prefix = "%s~%d" % (base, k)
            k += 1
        used_prefixes.add(prefix)
        c["prefix"] = prefix
        used.append((c, frs, see_also))
        total += len(frs)
        c.pop("text", None)
    limited = args.limit_pages is not None and len(used) >= args.limit_pages
    if total < args.min_fragments and not limited:
        print("WARNING: only %d fragments available (wanted at least %d)"
              % (total, args.min_fragments), file=sys.stderr)

    # ---- index pages for reference resolution ----
    by_key = {}
    by_digit = {}
    for c, frs, _ in used:
        key = (c["name"], c["ext"])
        by_key[key] = c
        by_digit.setdefault((c["name"], c["ext"][0]), []).append(c)
    by_key_lower = {}
    for (nm, ext), c in sorted(by_key.items()):
        by_key_lower.setdefault((nm.lower(), ext.lower()), c)

    def resolve_key(key, depth=0):
        if key in by_key:
            return by_key[key]
        if key in aliases and depth < 5:
            return resolve_key(aliases[key], depth + 1)
        return None

    alias_by_digit = {}
    for (an, aext) in sorted(aliases):
        alias_by_digit.setdefault((an, aext[0]), []).append((an, aext))

    resolve_cache = {}

    def resolve(name, sec):
        """Page dict for a reference name(sec), or None."""
        ck = (name, sec)
        if ck in resolve_cache:
            return resolve_cache[ck]
        res = None
        names = [name] if name == name.lower() else [name, name.lower()]
        for nm in names:
            res = resolve_key((nm, sec)) or by_key_lower.get((nm.lower(), sec.lower()))
            if res is None:
                lst = by_digit.get((nm, sec[0]))
                if lst:
                    exact = [p for p in lst if p["ext"] == sec[0]]
                    res = (exact or lst)[0]
            if res is None:
                for ak in alias_by_digit.get((nm, sec[0]), []):
                    res = resolve_key(ak)
                    if res is not None:
                        break
            if res is not None:
                break
        resolve_cache[ck] = res
        return res

    # ---- assemble fragments and links ----
    frags = []
    for c, frs, see_also in used:
        ids = ["%s.%d" % (c["prefix"], i) for i in range(len(frs))]
        sa_pages = []
        for nm, sec in see_also:
            p = resolve(nm, sec)
            if p is not None and p is not c and p not in sa_pages:
                sa_pages.append(p)
        for i, fr in enumerate(frs):
            links = []
            if i > 0:
                links.append(ids[i - 1])
            if i + 1 < len(frs):
                links.append(ids[i + 1])
            targets = []
            if i == 0 or fr["see_also"]:
                targets.extend(sa_pages)
            for m in REF_RE.finditer(fr["text"]):
                p = resolve(m.group(1), m.group(2))
                if p is not None and p is not c:
                    targets.append(p)
            for p in targets:
                links.append(p["prefix"] + ".0")
            seen = set()
            dedup = []
            for l in links:
                if l not in seen and l != ids[i]:
                    seen.add(l)
                    dedup.append(l)
            tags = ["man" + c["dir"]]
            for h in fr["headings"]:
                t = "section:" + re.sub(r"\s+", "-", h.strip().lower())
                t = t[:64]
                if h and t not in tags:
                    tags.append(t)
            meta = {"page": c["name"], "section": c["ext"],
                    "heading": fr["headings"][0] if fr["headings"] else "",
                    "source": c["path"]}
            frags.append({"id": ids[i], "content": fr["text"], "links": dedup[:MAX_LINKS],
                          "tags": tags, "metadata": meta, "_page": c["prefix"]})

    all_ids = {f["id"] for f in frags}
    page_of = {f["id"]: f["_page"] for f in frags}
    for f in frags:
        f["links"] = [l for l in f["links"] if l in all_ids]
        f["_link_pages"] = [page_of[l] for l in f["links"]]
        assert ID_RE.match(f["id"]), f["id"]
    assert len(all_ids) == len(frags), "duplicate ids"

    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as fh:
        for f in frags:
            fh.write(fragment_record(f) + "\n")

    print("pages considered %d (+%d excluded by --exclude, %d aliases/redirects/duplicates), "
          "pages used %d, empty %d, failed %d" % (
              len(pages), excluded, len(aliases), len(used), empty, len(failed)),
          file=sys.stderr)
    for fp in failed[:20]:
        print("  failed: " + fp, file=sys.stderr)
    summarize("corpus " + args.out, frags, len(used))

    # ---- link-closed sample ----
    if args.sample_out:
        page_frags = collections.OrderedDict()
        for f in frags:
            page_frags.setdefault(f["_page"], []).append(f)
        page_bytes = {p: sum(len(fragment_record(f).encode("utf-8")) + 1 for f in fl)
                      for p, fl in page_frags.items()}
        neighbours = {}
        for p, fl in page_frags.items():
            nb = []
            for f in fl:
                for lp in f["_link_pages"]:
                    if lp != p and lp not in nb:
                        nb.append(lp)
            neighbours[p] = nb
        seeds = []
        for s in SAMPLE_SEEDS:
            p = resolve(s, "1")
            if p is not None and p["prefix"] in page_frags:
                seeds.append(p["prefix"])
        if not seeds and page_frags:
            seeds = [max(page_frags, key=lambda p: (len(neighbours[p]), p))]
        # very long pages (bash, git-config, ...) would eat the whole budget
        max_page = max(8, args.sample_size // 10)
        chosen = []
        count = 0
        size = 0
        queue = collections.deque(seeds)
        visited = set()
        while queue and count < args.sample_size:
            p = queue.popleft()
            if p in visited:
                continue
            visited.add(p)
            n = len(page_frags[p])
            if n > max_page or count + n > args.sample_size or \
                    size + page_bytes[p] > args.sample_max_bytes:
                continue
            chosen.append(p)
            count += n
            size += page_bytes[p]
            for q in neighbours[p]:
                if q not in visited:
                    queue.append(q)
        chosen_set = set(chosen)
        sample = []
        for f in frags:
            if f["_page"] in chosen_set:
                g = dict(f)
                keep = [(l, lp) for l, lp in zip(f["links"], f["_link_pages"])
                        if lp in chosen_set]
                g["links"] = [l for l, _ in keep]
                g["_link_pages"] = [lp for _, lp in keep]
                sample.append(g)
        sdir = os.path.dirname(args.sample_out)
        if sdir:
            os.makedirs(sdir, exist_ok=True)
        with open(args.sample_out, "w", encoding="utf-8", newline="\n") as fh:
            for f in sample:
                fh.write(fragment_record(f) + "\n")
        summarize("sample " + args.sample_out, sample, len(chosen))
        print("sample seeds: %s" % ", ".join(seeds), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
