"""The figures of a corpus file, as printed at the end of a build (corpus/README.md quotes them)."""

import statistics


def corpus_stats(records, pages_used):
    lens = [len(r["content"]) for r in records]
    n = len(records)
    links_total = sum(len(r["links"]) for r in records)
    cross = sum(1 for r in records if any(p != r["_page"] for p in r["_link_pages"]))
    return {
        "pages": pages_used,
        "fragments": n,
        "links_total": links_total,
        "mean_links": links_total / n if n else 0.0,
        "cross_page_share": cross / n if n else 0.0,
        "mean_len": statistics.mean(lens) if lens else 0.0,
        "median_len": statistics.median(lens) if lens else 0.0,
        "min_len": min(lens) if lens else 0,
        "max_len": max(lens) if lens else 0,
    }


def stats_line(label, s):
    return ("%s: pages used %d, fragments %d, links total %d, mean links/fragment %.2f, "
            "fragments with a cross-page link %.1f%%, content length mean %.0f / median %.0f "
            "(min %d, max %d)" % (
                label, s["pages"], s["fragments"], s["links_total"], s["mean_links"],
                100 * s["cross_page_share"], s["mean_len"], s["median_len"], s["min_len"],
                s["max_len"]))
