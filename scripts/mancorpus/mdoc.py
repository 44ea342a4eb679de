"""The mdoc(7) line macros (.Sh, .Bl/.It/.El, .Bd/.Ed, ...); in-line ones are in mdoc_inline."""

from .escapes import unesc
from .lines import parse_args
from .mdoc_inline import MDOC_CALLABLE, MdocInline

MDOC_LINE = set("Sh Ss Pp Lp Nd Bl El It Xc Bd Ed D1 Dl Rs Re Ex Rv Dd Dt Os Bf Ef "
                "Bk Ek Db Ud Fd".split())
MDOC_LINE_IGNORED = set("Dd Dt Os Bf Ef Bk Ek Db Ud Fd".split())
LIST_KINDS = ("-tag", "-item", "-bullet", "-dash", "-hyphen", "-enum", "-column",
              "-diag", "-hang", "-ohang", "-inset")


class MdocMacros(MdocInline):
    """mdoc on top of PageText: sections, lists, displays, the standard sentences."""

    def __init__(self):
        super().__init__()
        self.mdoc_lists = []          # the open lists' kinds
        self.mdoc_enum = []           # their item counts (for -enum)
        self.mdoc_xo = False          # an .It line continued up to .Xc
        self.prev_macro_nospace = False

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
        elif name == "Ss":
            self.new_subsection(" ".join(unesc(a) for a in toks).strip())
        elif name in ("Pp", "Lp", "Rs", "Re"):
            self.flush_para()
        elif name == "Nd":
            self.emit("\u2014 " + self.mdoc_seq(toks))
        elif name == "Bl":
            self.flush_para()
            kind = next((a[1:] for a in toks if a in LIST_KINDS), "tag")
            self.mdoc_lists.append(kind)
            self.mdoc_enum.append(0)
        elif name == "El":
            self.flush_para()
            if self.mdoc_lists:
                self.mdoc_lists.pop()
                self.mdoc_enum.pop()
        elif name == "It":
            self.list_item(toks)
        elif name == "Xc":
            if toks:
                self.emit(self.mdoc_seq(toks))
            if self.mdoc_xo:
                self.mdoc_xo = False
                self.br()
        elif name == "Bd":
            self.flush_para()
            self.nofill = "-literal" in toks or "-unfilled" in toks
        elif name == "Ed":
            self.flush_para()
            self.nofill = False
        elif name in ("D1", "Dl"):
            self.br()
            self.emit(self.mdoc_seq(toks))
            self.br()
        elif name == "Ex":
            names = [unesc(a) for a in toks if a != "-std"] or [self.mdoc_name]
            self.emit("The %s utility exits 0 on success, and >0 if an error occurs."
                      % " ".join(names))
        elif name == "Rv":
            names = [unesc(a) for a in toks if a != "-std"] or [self.mdoc_name]
            self.emit("The %s() function returns the value 0 if successful; otherwise "
                      "the value -1 is returned and the global variable errno is set "
                      "to indicate the error." % names[0])
        elif name in MDOC_CALLABLE:
            self.callable_line(name, toks)

    def list_item(self, toks):
        """.It: a bullet, dash or number for simple lists, else the item's tag on its own line."""
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
        if text:
            self.emit(text)
        if kind == "column":
            return
        if xo:
            self.mdoc_xo = True
        elif text and kind not in ("inset", "diag"):
            self.br()

    def callable_line(self, name, toks):
        """A line that starts with an in-line macro (.Nm, .Fl, .Op, ...)."""
        if name == "Nm" and self.heading.upper() == "SYNOPSIS":
            self.br()
        glue = not self.mdoc_spacing and self.prev_macro_nospace
        text = self.mdoc_seq([name] + toks)
        if text:
            self.emit(text, glue=glue)
            self.prev_macro_nospace = not self.mdoc_spacing
        if toks and toks[-1] == "Xc" and self.mdoc_xo:
            self.mdoc_xo = False
            self.br()
