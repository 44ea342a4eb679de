#!/usr/bin/env python3
"""Build a JSONL corpus of real text fragments with real cross-references
from the manual pages installed on this machine (/usr/share/man).

Each output line is one fragment:

    {"id": "man1.ls.0", "content": "...", "links": ["man1.ls.1", ...],
     "tags": ["man1", "section:description"],
     "metadata": {"page": "ls", "section": "1", "heading": "DESCRIPTION",
                  "source": "/usr/share/man/man1/ls.1.gz"}}

The roff sources (man(7) and, to a useful degree, mdoc(7) macros) are
converted to plain text by a small built-in interpreter: no external tools
are needed, only the Python 3 standard library.  Tables (tbl), equations
(eqn) and pictures (pic) are dropped.

Links of a fragment:
  * the previous and the next fragment of the same page;
  * for every page named in the page's SEE ALSO section, that page's first
    fragment (on the page's first fragment and on the fragment(s) holding
    the SEE ALSO text);
  * for every `name(N)` reference in the fragment's text, the first fragment
    of that page.
Links are deduplicated, never point to the fragment itself, are capped at 32
and only point to fragments present in the output.

The output is deterministic: same installed pages -> byte-identical output.
The work is done by the package scripts/mancorpus (one module per step).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mancorpus.build import run  # noqa: E402

MAN_ROOT = "/usr/share/man"
DEFAULT_SECTIONS = "1,5,7,8"
# gcloud ships ~16,600 generated pages ("gcloud_<group>_<command>") that would swamp everything
# else; they are excluded by default (gcloud(1) itself stays).
DEFAULT_EXCLUDE = r"^gcloud_"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="corpus/manpages.jsonl")
    ap.add_argument("--man-root", default=MAN_ROOT)
    ap.add_argument("--sections", default=DEFAULT_SECTIONS,
                    help="comma-separated man sections (default %(default)s)")
    ap.add_argument("--exclude", default=DEFAULT_EXCLUDE,
                    help="regex of page names to skip (default %(default)r; '' = none)")
    ap.add_argument("--limit-pages", type=int, default=None)
    ap.add_argument("--min-fragments", type=int, default=10000,
                    help="stop after the page that reaches this many fragments "
                         "(default %(default)s; 0 = use all pages)")
    ap.add_argument("--sample-out", default=None)
    ap.add_argument("--sample-size", type=int, default=400)
    ap.add_argument("--sample-max-bytes", type=int, default=390000)
    return run(**vars(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
