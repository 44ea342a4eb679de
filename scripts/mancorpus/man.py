"""The man(7) macros (.SH, .TP, .B, .UR, ...)."""

from .escapes import unesc
from .lines import parse_args

MAN_MACROS = set(
    "SH SS PP P LP HP TP TQ IP B I SM SB BR RB BI IB IR RI br ti in sp nf fi EX EE "
    "UR UE MT ME URL SY OP YS TH RS RE PD DT UC AT".split())
FONT_SPACE = {"B", "I", "SM", "SB"}             # arguments joined by spaces
FONT_ALT = {"BR", "RB", "BI", "IB", "IR", "RI"}  # arguments joined without
PARAGRAPH = {"PP", "P", "LP", "HP", "sp", "YS"}
LINE_BREAK = {"br", "ti", "RS", "RE", "in"}
# .TH, .PD, .DT, .UC, .AT and the rest of MAN_MACROS make no text


class ManMacros:
    """man(7) on top of PageText."""

    def __init__(self):
        super().__init__()
        self.url_stack = []           # the open .UR / .MT addresses

    def man_macro(self, name, argstr):
        if name not in ("br", "sp", "nf", "fi", "in", "ti"):
            argstr = argstr.replace("\\\\", "\\")   # macro arguments are read in copy mode
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
        elif name in PARAGRAPH:
            self.flush_para()
        elif name == "TP":
            self.flush_para()
            self.tag_pending = True
        elif name == "TQ":
            self.br()
            self.tag_pending = True
        elif name == "IP":
            self.flush_para()
            tag = unesc(args[0]).strip() if args else ""
            if tag:
                self.emit(tag)
                if len(tag) > 4:
                    self.br()
        elif name in FONT_SPACE:
            if args:
                self.emit(" ".join(unesc(a) for a in args))
        elif name in FONT_ALT:
            if args:
                self.emit("".join(unesc(a) for a in args))
        elif name in LINE_BREAK:
            self.br()
        elif name in ("nf", "EX"):
            self.br()
            self.nofill = True
        elif name in ("fi", "EE"):
            self.br()
            self.nofill = False
        elif name in ("UR", "MT"):
            self.url_stack.append(unesc(args[0]) if args else "")
        elif name in ("UE", "ME"):
            url = self.url_stack.pop() if self.url_stack else ""
            if url:
                self.emit("<" + url + ">")
            if args:
                self.emit("".join(unesc(a) for a in args), glue=True)
        elif name == "URL":
            url = unesc(args[0]) if args else ""
            text = unesc(args[1]) if len(args) > 1 else ""
            trail = unesc(args[2]) if len(args) > 2 else ""
            self.emit(((text + " <" + url + ">") if text and text != url else url) + trail)
        elif name == "SY":
            self.flush_para()
            if args:
                self.emit(" ".join(unesc(a) for a in args))
        elif name == "OP":
            if args:
                self.emit("[" + " ".join(unesc(a) for a in args) + "]")
