"""Named roff special characters (\\(xx, \\[name], \\C'name') as Unicode text."""

import unicodedata

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


def special_char(name):
    """The text of the special character `name`; "" when unknown."""
    if name in SPECIAL:
        return SPECIAL[name]
    if name.startswith("u") and len(name) >= 5:
        # \[u00E9] or a composite \[u0065_0301]
        try:
            return unicodedata.normalize("NFC", "".join(chr(int(p, 16)) for p in name[1:].split("_")))
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
        # groff puts the accent first; the other order is accepted too
        return unicodedata.normalize("NFC", name[0] + ACCENTS[name[1]])
    return ""
