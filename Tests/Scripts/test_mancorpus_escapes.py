"""mancorpus: special characters, escapes, input lines, numeric expressions."""

import pytest

from mancorpus.chars import special_char
from mancorpus.escapes import skip_name, skip_size, unesc
from mancorpus.lines import ends_with_c, logical_lines, parse_args, strip_comment
from mancorpus.numeric import numeric_eval


def test_special_characters() -> None:
    assert special_char("em") == "\u2014"
    assert special_char("*a") == "\u03b1"
    assert special_char("u00E9") == "\u00e9"
    assert special_char("u0065_0301") == "\u00e9"        # composed
    assert special_char("char65") == "A"
    assert special_char("'e") == "\u00e9" and special_char("e'") == "\u00e9"
    assert special_char("nosuch") == "" and special_char("uZZZZ") == ""


def test_skip_arguments() -> None:
    assert skip_name("fB", 1) == 2
    assert skip_name("f(CW", 1) == 4
    assert skip_name("f[BI]x", 1) == 5
    assert skip_name("f[open", 1) == 6
    assert skip_size("s+2x", 1) == 3
    assert skip_size("s12x", 1) == 3
    assert skip_size("s(12x", 1) == 4
    assert skip_size("s'+3'x", 1) == 5
    assert skip_size("sx", 1) == 1


@pytest.mark.parametrize("source, text", [
    ("plain", "plain"),
    (r"\fBbold\fR and \f(CWmono\fP", "bold and mono"),
    (r"a\-b \(em c \[rq]", "a-b \u2014 c \u201d"),
    (r"\s-2small\s0 \s+(12x", "small x"),
    (r"x\h'2n'y\h'-1'z", "x yz"),
    (r"\C'em' \N'65' \o'ab' \Z'zz'", "\u2014 A b zz"),
    (r"\*(Tm\n(.g\e\&.", "\\."),
    (r"\zab\c", "ab"),
    ("end\\", "end"),
])
def test_unesc(source, text) -> None:
    assert unesc(source) == text


def test_comments_and_continuations() -> None:
    assert strip_comment(r'text \" note') == ("text ", '"')
    assert strip_comment(r"text \# note") == ("text ", "#")
    assert strip_comment("joined\\") == ("joined", "cont")
    assert strip_comment(r"a \\\" b") == ("a \\\\", '"')
    assert logical_lines('.\\" a comment\n.TH X 1\none \\\ntwo\n\\" gone\nthree \\# joined\nfour') == [
        ".TH X 1", "one two", "three four"]


def test_ends_with_c() -> None:
    assert ends_with_c("word\\c")
    assert ends_with_c("word\\c  ")
    assert not ends_with_c("word\\\\c")
    assert ends_with_c("word\\\\\\c")
    assert not ends_with_c("word")


def test_parse_args() -> None:
    assert parse_args('  one "two words" three') == ["one", "two words", "three"]
    assert parse_args(r'"say ""hi""" a\ b \fBx\fR') == ['say "hi"', r"a\ b", r"\fBx\fR"]
    assert parse_args('"unclosed') == ["unclosed"]
    assert parse_args("") == []


def test_numeric_eval() -> None:
    assert numeric_eval("1+2*3") == 9.0                 # left to right
    assert numeric_eval("1+(2*3)") == 7.0
    assert numeric_eval("-2+5") == 3.0
    assert numeric_eval("3u>2") == 1.0 and numeric_eval("2<=1") == 0.0
    assert numeric_eval("1&0") == 0.0 and numeric_eval("1:0") == 1.0
    assert numeric_eval("4/0") == 0 and numeric_eval("7%4") == 3.0
    assert numeric_eval("2=2") == 1.0 and numeric_eval("2==3") == 0.0
    for bad in ("", "x", "1?2"):
        with pytest.raises(ValueError):
            numeric_eval(bad)
