"""roff numeric expressions, as in `.if` and `.nr`."""

import re

TOKEN_RE = re.compile(r"\d+(?:\.\d+)?[icpPmnvuM]?|<=|>=|==|[-+*/%<>=&:()]|\S")

OPERATORS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else 0,
    "%": lambda a, b: a % b if b else 0,
    "<": lambda a, b: float(a < b),
    ">": lambda a, b: float(a > b),
    "<=": lambda a, b: float(a <= b),
    ">=": lambda a, b: float(a >= b),
    "=": lambda a, b: float(a == b),
    "==": lambda a, b: float(a == b),
    "&": lambda a, b: float(a > 0 and b > 0),
    ":": lambda a, b: float(a > 0 or b > 0),
}


def numeric_eval(expr):
    """The value of expr, evaluated left to right (roff has no precedence); units are ignored.
    Raises ValueError on what it cannot read."""
    toks = TOKEN_RE.findall(expr)
    pos = 0

    def atom():
        nonlocal pos
        if pos >= len(toks):
            raise ValueError("eof")
        t = toks[pos]
        pos += 1
        if t == "(":
            v = sequence()
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

    def sequence():
        nonlocal pos
        v = atom()
        while pos < len(toks) and toks[pos] != ")":
            op = toks[pos]
            pos += 1
            r = atom()
            if op not in OPERATORS:
                raise ValueError(op)
            v = OPERATORS[op](v, r)
        return v

    return sequence()
