"""mdoc(7) in-line macros (.Fl, .Ar, .Xr, .Op, ...): a line of tokens rendered as text."""

from .escapes import unesc

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
    """Join (text, glue) pieces with single spaces, none where glue is set, before closing
    punctuation or after opening punctuation."""
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


class MdocInline:
    """Renders mdoc token lines; keeps the page's name (.Nm) and the spacing mode (.Sm)."""

    def __init__(self):
        super().__init__()
        self.mdoc_name = ""
        self.mdoc_spacing = True

    def mdoc_seq(self, toks):
        """The text of a sequence of mdoc tokens (raw, with escapes)."""
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
                add(unesc(t), glue=t in CLOSE_PUNCT)
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
                # encloses everything up to the end of the line but its closing punctuation
                rest = toks[i:]
                k = len(rest)
                while k > 0 and rest[k - 1] in CLOSE_PUNCT:
                    k -= 1
                o, c = MDOC_ENCLOSE[m]
                add(o + self.mdoc_seq(rest[:k]) + c)
                for p in rest[k:]:
                    add(unesc(p), glue=True)
                i = n
                continue
            i = j

            def rest_plain(skip=0):
                for p, r in zip(plain[skip:], raw_plain[skip:]):
                    add(p, glue=r in CLOSE_PUNCT)

            def closing_punct():
                for p in plain:
                    if p in CLOSE_PUNCT:
                        add(p, glue=True)

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
            elif m in ("Pf", "Eo"):
                if plain:
                    add(plain[0])
                    glue_next = True
                    rest_plain(1)
            elif m == "Ap":
                add("'", glue=True)
                glue_next = True
                rest_plain()
            elif m == "Nm":
                if not words:
                    add(self.mdoc_name)
                elif not self.mdoc_name:
                    self.mdoc_name = words[0]
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
                    closing_punct()
                else:
                    add(MDOC_BSD[m])
                    rest_plain()
            elif m == "St":
                if plain:
                    add(MDOC_STD.get(plain[0], plain[0].lstrip("-")))
                    rest_plain(1)
            elif m == "Lk":
                if words:
                    text = " ".join(words[1:])
                    add((text + " <" + words[0] + ">") if text else words[0])
                    closing_punct()
            elif m == "Fn":
                if words:
                    add(words[0] + "(" + ", ".join(words[1:]) + ")")
                    closing_punct()
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
            else:
                # the font and semantic macros (.Cm, .Pa, .Ev, ...): their words as they are
                rest_plain()
        return join_pieces(pieces)
