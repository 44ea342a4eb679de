"""What a page's roff makes: sections of paragraphs, built line by line (fill and no-fill)."""


class PageText:
    """The text side of the interpreter: lines, paragraphs, section and subsection headings."""

    def __init__(self):
        self.sections = []            # [[heading, [paragraph, ...]], ...]
        self.heading = ""
        self.para_lines = []          # [(text, nofill), ...] of the open paragraph
        self.cur = None               # the open output line, or None
        self.cur_nofill = False
        self.nofill = False
        self.no_space = False         # the previous text ended with \c
        self.heading_pending = None   # "SH" / "SS" when the heading is the next text line
        self.tag_pending = False      # .TP: the next text line is a tag on a line of its own
        self.ss_prefix = None         # the subsection title, put in front of its first paragraph

    def br(self):
        """End the open output line."""
        if self.cur is not None:
            if self.cur.strip():
                self.para_lines.append((self.cur, self.cur_nofill))
            self.cur = None
        self.no_space = False

    def flush_para(self):
        """End the open paragraph: filled lines have their blanks squeezed, no-fill lines keep
        their layout (tabs expanded)."""
        self.br()
        self.tag_pending = False
        lines = []
        for text, nofill in self.para_lines:
            t = text.expandtabs(8).rstrip() if nofill else " ".join(text.split())
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
            # an empty subsection: its title goes in front of the next one's
            title = self.ss_prefix + "\n" + title
        self.ss_prefix = title if title else None

    def emit(self, text, glue=False, cont=False):
        """Add unescaped text as an input line would. glue: no space before it; cont: the line
        ended with \\c (no break or space after it)."""
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
        elif self.cur is None:
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
