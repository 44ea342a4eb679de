"""roff escape sequences (backslash forms) to plain text: unesc()."""

import re

from .chars import special_char

# \X with one character X -> this text
SIMPLE_ESC = {
    "\\": "\\", "e": "\\", "E": "\\", "-": "-", ".": ".", "'": "'", "`": "`",
    " ": " ", "~": " ", "0": " ", "|": "", "^": "", "&": "", ")": "", "%": "",
    ":": "", "/": "", ",": "", "d": "", "u": "", "r": "", "p": "", "a": "",
    "c": "", "t": " ", "{": "", "}": "", '"': "", "!": "", "?": "", "_": "_",
    "#": "", "q": "", "i": "", "P": "",
}
# \X'...': a delimited argument
DELIM_ESC = set("hvlLDXbxRHSABwoCNZj")
# \Xn, \X(nn, \X[name]: a name argument, and no text here
NAME_ESC = set("nmMgFYVk*$O")
# \h'N': a positive horizontal motion reads as a space
MOTION_RE = re.compile(r"^\+?[0-9.]+[a-zA-Z]?$")


def skip_name(s, k):
    """The index after a name argument (x, (xx or [xxx]) that starts at k."""
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
    """The index after the argument of \\s (point size) that starts at k."""
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


def delimited(c, arg):
    """The text of the escape \\c with its delimited argument `arg`."""
    if c == "h":
        a = arg.lstrip("|")
        if a and a[0] not in "-0" and MOTION_RE.match(a):
            try:
                if float(re.sub(r"[^0-9.]", "", a) or "0") > 0:
                    return " "
            except ValueError:
                pass
        return ""
    if c == "C":
        return special_char(arg)
    if c == "N":
        try:
            return chr(int(arg))
        except ValueError:
            return ""
    if c == "o":
        # overstrike: the last character is what shows
        return unesc(arg)[-1:]
    if c == "Z":
        return unesc(arg)
    return ""


def unesc(s):
    """s with its roff escapes turned into plain text (fonts, sizes and motions dropped)."""
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
                e = s.find(s[k], k + 1)
                if e < 0:
                    e = n
                out.append(delimited(c, s[k + 1:e]))
                k = e + 1
        elif c in NAME_ESC:
            k = skip_name(s, k)
        elif c != "z":
            out.append(SIMPLE_ESC.get(c, c))
        i = k
    return "".join(out)
