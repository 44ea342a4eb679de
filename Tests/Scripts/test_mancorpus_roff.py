"""mancorpus.roff: man(7) and mdoc(7) sources to sections of plain paragraphs."""

from mancorpus.roff import Converter

MAN_PAGE = r'''.\" a comment
.TH DEMO 1 "2024" "demo 1.0"
.ds Pr demo\-tool
.nr Nx 3
.de Xx
.B "\\$1" \\$2
..
.SH NAME
demo \- show \*(Pr things
.SH SYNOPSIS
.B demo
[\fB\-v\fR]
.I file
.SH DESCRIPTION
First paragraph
on two lines.
.PP
Second paragraph with \n(Nx items.
.SS Details
.TP
.B \-v
Be verbose.
.IP \(bu 2
A bullet.
.if n .B nroff only
.if t .B troff only
.ie \n(Nx>2 big
.el small
.if !\n(.g \{\
hidden
.\}
.Xx macro arg
.TS
tab;
l l.
a	b
.TE
.nf
  keep   this
layout
.fi
.UR https://example.org
the site
.UE .
.SH "SEE ALSO"
.BR ls (1),
.BR cp (1)
'''

MDOC_PAGE = r'''.Dd January 1, 2024
.Dt DEMO 1
.Os
.Sh NAME
.Nm demo
.Nd show things
.Sh SYNOPSIS
.Nm
.Op Fl v
.Ar file ...
.Sh DESCRIPTION
The
.Nm
utility reads
.Pa /etc/demo.conf .
.Bl -tag -width Ds
.It Fl v
Verbose.
.It Fl o Ar file
Output to
.Ar file .
.El
.Bl -enum
.It
one
.It
two
.El
.Bd -literal
  a   b
.Ed
.Sm off
.Xo
.Ar a No = Ar b
.Xc
.Sm on
See
.Xr ls 1
and
.Dq quoted text ,
.Fn open path flags .
.Ex -std
.Sh SEE ALSO
.Xr cp 1 ,
.Xr mv 1
.Sh STANDARDS
.St -p1003.1-2008
.Bx 4.4
'''


def test_man_page() -> None:
    assert Converter().run(MAN_PAGE) == [
        ("NAME", ["demo - show demo-tool things"]),
        ("SYNOPSIS", ["demo [-v] file"]),
        ("DESCRIPTION", [
            "First paragraph on two lines.",
            "Second paragraph with 3 items.",
            # the subsection's title leads its first paragraph; .TP puts the tag on its own line
            "Details\n-v\nBe verbose.",
            # .if n is true and .if t false; .ie/.el; a user macro with its arguments
            "\u2022 A bullet. nroff only big macro arg",
            # the table is gone, no-fill lines keep their layout
            "  keep   this\nlayout\nthe site <https://example.org>.",
        ]),
        ("SEE ALSO", ["ls(1), cp(1)"]),
    ]


def test_mdoc_page() -> None:
    assert Converter().run(MDOC_PAGE) == [
        ("NAME", ["demo \u2014 show things"]),
        ("SYNOPSIS", ["demo [-v] file ..."]),
        ("DESCRIPTION", [
            "The demo utility reads /etc/demo.conf.",
            "-v\nVerbose.",
            "-o file\nOutput to file.",
            "1. one",
            "2. two",
            "  a   b",
            "a=b See ls(1) and \u201cquoted text\u201d, open(path, flags). "
            "The demo utility exits 0 on success, and >0 if an error occurs.",
        ]),
        ("SEE ALSO", ["cp(1), mv(1)"]),
        ("STANDARDS", ["IEEE Std 1003.1-2008 (\u201cPOSIX.1\u201d) 4.4BSD"]),
    ]


def test_headings_on_the_next_line_and_empty_subsections() -> None:
    source = ".SH\nOPTIONS\n.SS First\n.SS Second\nText.\n"
    assert Converter().run(source) == [("OPTIONS", ["First\nSecond\nText."])]


def test_text_before_any_heading_and_blank_lines() -> None:
    assert Converter().run("one\n\ntwo\n") == [("", ["one", "two"])]


def test_ignored_blocks_and_appended_macros() -> None:
    source = "\n".join([
        ".ig", "never shown", "..",
        ".de Ab", "first", "..",
        ".am Ab", "second", "..",
        ".de B", "not redefined", "..",   # a built-in macro keeps its meaning
        ".EQ", "x sup 2", ".EN",
        ".PS", "box", ".PE",
        ".Ab",
        ".B bold",
        ".unknown request",
        ".as Pr \"ix", ".ds Pr pre", ".as Pr fix", "\\*(Pr",
    ])
    assert Converter().run(source) == [("", ["first second bold prefix"])]


def test_string_comparison_and_defined_conditions() -> None:
    source = "\n".join([
        ".ds X yes",
        ".if '\\*X'yes' equal",
        ".if \"a\"b\" unequal",
        ".if d X defined",
        ".if !r Nothing no-register",
        ".if v Y never",
    ])
    assert Converter().run(source) == [("", ["equal defined no-register"])]


def test_user_macro_recursion_is_bounded() -> None:
    assert Converter().run(".de Zz\nx\n.Zz\n..\n.Zz\n") == [("", [" ".join(["x"] * 12)])]
