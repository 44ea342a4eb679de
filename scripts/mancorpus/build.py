"""A whole build: find pages, convert them until enough fragments, link, write, report."""

import re
import sys

from .fragments import build_fragments
from .links import Resolver, close_links, see_also_refs
from .pages import discover, section_sort_key
from .records import assign_prefixes, check_ids, page_records, write_jsonl
from .roff import Converter
from .sample import SAMPLE_SEEDS, link_closed_sample
from .stats import corpus_stats, stats_line


def convert(pages, limit_pages, min_fragments):
    """Pages converted in order until limit_pages pages are used or min_fragments fragments
    made (0: no minimum): ([(page, fragments, SEE ALSO refs)], failed, empty count, total)."""
    used = []
    failed = []
    empty = 0
    total = 0
    for page in pages:
        if limit_pages is not None and len(used) >= limit_pages:
            break
        if min_fragments > 0 and total >= min_fragments:
            break
        if page.get("error"):
            failed.append(page["path"])
            continue
        try:
            sections = Converter().run(page["text"])
            fragments = build_fragments(sections)
        except Exception as e:  # noqa: BLE001 - a broken page must not stop the build
            failed.append("%s (%s: %s)" % (page["path"], type(e).__name__, e))
            continue
        if not fragments:
            empty += 1
            continue
        used.append((page, fragments, see_also_refs(sections)))
        total += len(fragments)
        page.pop("text", None)
    return used, failed, empty, total


def run(out, man_root, sections, exclude, limit_pages, min_fragments, sample_out, sample_size,
        sample_max_bytes, log=sys.stderr):
    """Builds the corpus file `out` (and the sample file `sample_out` if given); returns 0.
    sections: comma-separated; exclude: a regex of page names to skip ("" for none)."""
    sections = sorted({s.strip() for s in sections.split(",") if s.strip()}, key=section_sort_key)
    exclude_re = re.compile(exclude) if exclude else None
    pages, aliases, excluded = discover(man_root, sections, exclude_re)

    used, failed, empty, total = convert(pages, limit_pages, min_fragments)
    limited = limit_pages is not None and len(used) >= limit_pages
    if total < min_fragments and not limited:
        print("WARNING: only %d fragments available (wanted at least %d)"
              % (total, min_fragments), file=log)

    used_pages = [page for page, _, _ in used]
    assign_prefixes(used_pages)
    resolve = Resolver(used_pages, aliases)
    records = []
    for page, fragments, refs in used:
        records.extend(page_records(page, fragments, refs, resolve))
    close_links(records)
    check_ids(records)
    write_jsonl(out, records)

    print("pages considered %d (+%d excluded by --exclude, %d aliases/redirects/duplicates), "
          "pages used %d, empty %d, failed %d" % (
              len(pages), excluded, len(aliases), len(used), empty, len(failed)), file=log)
    for path in failed[:20]:
        print("  failed: " + path, file=log)
    print(stats_line("corpus " + out, corpus_stats(records, len(used))), file=log)

    if sample_out:
        seeds = [p["prefix"] for p in (resolve(name, "1") for name in SAMPLE_SEEDS) if p is not None]
        sample, chosen, seeds = link_closed_sample(records, seeds, sample_size, sample_max_bytes)
        write_jsonl(sample_out, sample)
        print(stats_line("sample " + sample_out, corpus_stats(sample, len(chosen))), file=log)
        print("sample seeds: %s" % ", ".join(seeds), file=log)
    return 0
