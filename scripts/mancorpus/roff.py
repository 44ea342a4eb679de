"""The roff interpreter: a page's source to [(heading, [paragraph, ...]), ...].

Strings, number registers, conditionals, user macros and the man(7) and mdoc(7) macros are
followed; formatting requests are ignored; tbl, eqn and pic blocks are dropped.
"""

import re

from .escapes import unesc
from .lines import ends_with_c, logical_lines, parse_args
from .man import MAN_MACROS, ManMacros
from .mdoc import MDOC_LINE, MdocMacros
from .mdoc_inline import MDOC_CALLABLE
from .numeric import numeric_eval
from .page_text import PageText

# \\, \*x, \*(xx, \*[name], \nx, \n(xx, \n[name] (with \n+ and \n-)
INTERP_RE = re.compile(
    r"\\(\\|\*(?:\(([^\n]{2})|\[([^\]]*)\]|(.))|n[+-]?(?:\(([^\n]{2})|\[([^\]]*)\]|(.)))",
    re.S)
DROPPED_BLOCKS = {"TS": ("tbl", "TE"), "EQ": ("eqn", "EN"), "PS": ("pic", "PE")}
MAX_MACRO_DEPTH = 12
MAX_STRING_DEPTH = 8


class Converter(ManMacros, MdocMacros, PageText):
    """One page's interpreter: Converter().run(source) gives its sections."""

    def __init__(self):
        super().__init__()
        self.strings = {"R": "\u00ae", "Tm": "\u2122", "lq": "\u201c", "rq": "\u201d",
                        "S": "", "HF": "", ".T": "utf8", "Lq": "\u201c", "Rq": "\u201d",
                        "q": '"', "Ba": "|", "Ne": "\u2260", "Ge": "\u2265",
                        "Le": "\u2264", "Gt": ">", "Lt": "<", "Pi": "\u03c0",
                        "Am": "&", "If": "infinity", "Na": "NaN", "Px": "POSIX",
                        "Ai": "ANSI"}
        self.registers = {".g": 1.0, ".$": 0.0, ".H": 0.0, ".V": 0.0, "LL": 0.0}
        self.macros = {}
        self.ie_stack = []            # the conditions of .ie, for their .el
        self.skip_depth = 0           # > 0 inside a false \{ ... \} block
        self.block = None             # ("de", name or None, end, lines) or (kind, None, end, None)
        self.depth = 0                # user macro calls in progress

    def run(self, text):
        self.process_lines(logical_lines(text))
        self.flush_para()
        return [(h, p) for h, p in self.sections]

    # -- interpolation ---------------------------------------------------------------------

    def interp(self, s, depth=0):
        """s with strings (\\*) and registers (\\n) replaced by their values."""
        if "\\" not in s:
            return s

        def repl(m):
            if m.group(1) == "\\":
                return "\\\\"
            if m.group(1).startswith("*"):
                name = (m.group(2) or m.group(3) or m.group(4) or "").split(" ")[0]
                val = self.strings.get(name, "")
                if depth < MAX_STRING_DEPTH and "\\" in val:
                    val = self.interp(val, depth + 1)
                return val
            v = self.registers.get(m.group(5) or m.group(6) or m.group(7) or "", 0.0)
            return str(int(v)) if float(v).is_integer() else str(v)

        return INTERP_RE.sub(repl, s)

    # -- conditions ------------------------------------------------------------------------

    def eval_cond(self, s):
        """The condition at the start of s: (value, the rest of s)."""
        s = s.lstrip(" \t")
        neg = False
        while s.startswith("!"):
            neg = not neg
            s = s[1:]
        if not s:
            return False, ""
        val = False
        rest = ""
        c = s[0]
        if c in "nt" and (len(s) == 1 or not s[1].isalnum()):
            val = c == "n"            # nroff, not troff
            rest = s[1:]
        elif c in "eo" and (len(s) == 1 or not s[1].isalnum()):
            val = c == "o"            # an odd page
            rest = s[1:]
        elif c in "drcFmSv" and len(s) > 1 and s[1] in " \t":
            m = re.match(r"^[drcFmSv][ \t]+(\S+)(.*)$", s, re.S)
            if m:
                name, rest = m.group(1), m.group(2)
                if c == "d":
                    val = name in self.strings or name in self.macros
                elif c == "r":
                    val = name in self.registers
                else:
                    val = c != "v"    # characters, fonts, colours, styles exist
        elif c in "'\"|/" or (not c.isalnum() and c not in "\\(+-.!"):
            # 'a'b': a string comparison
            e1 = s.find(c, 1)
            e2 = s.find(c, e1 + 1) if e1 >= 0 else -1
            if e1 >= 0 and e2 >= 0:
                val = unesc(self.interp(s[1:e1])) == unesc(self.interp(s[e1 + 1:e2]))
                rest = s[e2 + 1:]
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
        if val:
            body = body.replace("\\{", "").replace("\\}", "").lstrip(" \t")
            if body:
                self.process_line(body)
        else:
            opens = body.count("\\{") - body.count("\\}")
            if opens > 0:
                self.skip_depth = opens

    # -- lines -----------------------------------------------------------------------------

    def process_lines(self, lines):
        for line in lines:
            if self.block is not None:
                self.block_line(line)
            elif self.skip_depth > 0:
                self.skip_depth += line.count("\\{") - line.count("\\}")
            else:
                self.process_line(line)

    def block_line(self, line):
        """A line inside .de/.ig (kept or dropped) or a tbl/eqn/pic block (dropped)."""
        kind, name, end, body = self.block
        stripped = line.strip()
        is_end = False
        if stripped[:1] in (".", "'"):
            request = stripped[1:].strip()
            is_end = request == end or request.split(" ")[0] == end
        if is_end:
            if kind == "de" and name is not None:
                self.macros[name] = body
            self.block = None
        elif kind == "de" and name is not None:
            body.append(line.replace("\\\\", "\\"))   # copy mode: "\\" becomes "\"

    def process_line(self, line):
        if "\\{" in line or "\\}" in line:
            if line[:1] not in (".", "'") or line[1:].lstrip(" \t")[:2] not in ("if", "ie", "el"):
                line = line.replace("\\{", "").replace("\\}", "")
            if not line.strip():
                return
        if line == "":
            self.flush_para()         # a blank line breaks the paragraph
        elif line[0] in (".", "'"):
            rest = line[1:].lstrip(" \t")
            name = re.match(r"[^\s\\]*", rest).group(0)
            self.request(name, rest[len(name):])
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
            t = t.lstrip(" \t") if cont else t.strip(" \t")
            if t == "" and not cont:
                # a line that renders to nothing (e.g. "\&"); a blank one breaks the paragraph
                if s.strip() == "":
                    self.flush_para()
                return
        self.emit(t, cont=cont)

    # -- requests --------------------------------------------------------------------------

    def request(self, name, argstr):
        if name == "":
            return
        if name in ("if", "ie"):
            val, body = self.eval_cond(argstr)
            if name == "ie":
                self.ie_stack.append(val)
            self.do_cond_body(val, body)
        elif name == "el":
            val = not self.ie_stack.pop() if self.ie_stack else False
            self.do_cond_body(val, argstr)
        elif name in ("de", "de1", "am", "am1", "ig", "dei", "ami"):
            self.define(name, parse_args(argstr))
        elif name in DROPPED_BLOCKS:
            if name == "TS":
                self.flush_para()
            kind, end = DROPPED_BLOCKS[name]
            self.block = (kind, None, end, None)
        else:
            self.interpolated_request(name, self.interp(argstr))

    def define(self, name, args):
        """.de/.am (a macro's body follows) or .ig (ignored lines follow)."""
        if name == "ig":
            self.block = ("de", None, args[0] if args else ".", [])
            return
        mname = args[0] if args else None
        end = args[1] if len(args) > 1 else "."
        if mname in MAN_MACROS or mname in MDOC_LINE or mname in MDOC_CALLABLE:
            mname = None              # the built-in implementation stays
        body = []
        if mname is not None and name.startswith("am") and mname in self.macros:
            body = list(self.macros[mname])
        self.block = ("de", mname, end, body)

    def interpolated_request(self, name, argstr):
        if name in ("ds", "ds1", "as", "as1"):
            m = re.match(r"^[ \t]*(\S+)[ \t]?(.*)$", argstr)
            if m:
                key, val = m.group(1), m.group(2)
                if val.startswith('"'):
                    val = val[1:]
                if name.startswith("as"):
                    val = self.strings.get(key, "") + val
                self.strings[key] = val
        elif name == "nr":
            self.set_register(parse_args(argstr))
        elif name in MAN_MACROS:
            self.man_macro(name, argstr)
        elif name in MDOC_LINE or name in MDOC_CALLABLE:
            self.mdoc_macro(name, argstr)
        elif name in self.macros:
            self.invoke(name, argstr)
        # other requests (formatting) and unknown macros make no text

    def set_register(self, args):
        if not args:
            return
        try:
            expr = args[1] if len(args) > 1 else "0"
            if expr[:1] in "+-" and args[0] in self.registers:
                v = self.registers[args[0]] + numeric_eval(expr)
            else:
                v = numeric_eval(expr)
            self.registers[args[0]] = v
        except (ValueError, ZeroDivisionError, IndexError, RecursionError):
            self.registers[args[0]] = 0.0

    def invoke(self, name, argstr):
        """Run a user macro with its arguments (\\$1, \\$*, \\$@, \\$0) substituted."""
        if self.depth >= MAX_MACRO_DEPTH:
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
            idx = int(g)
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
