"""The man-page corpus builder's parts; scripts/build-corpus.py is the command.

pages: which installed pages, their text, their aliases. roff: the interpreter, built from
chars, escapes, lines, numeric, page_text, man, mdoc_inline and mdoc. fragments: sections of
paragraphs to fragments. links: references between pages. records: ids, tags, metadata, JSONL.
sample: the link-closed test sample. stats: the figures printed at the end. build: a whole run.
"""
