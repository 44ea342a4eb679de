"""The link-closed test sample (Tests/Fixtures/corpus-sample.jsonl): whole pages reached from
seed pages through links, breadth first, within a fragment and a byte budget."""

import collections

from .records import record_line

SAMPLE_SEEDS = ["ls", "cp", "mv", "find", "grep", "sed", "tar", "ssh", "git"]


def link_closed_sample(records, seeds, size, max_bytes):
    """(sample records, chosen pages, seeds used). Pages are taken breadth first from the seed
    pages (prefixes; without any, the page with the most linked pages) and skipped when they have
    more than max(8, size // 10) fragments or would take the sample past `size` fragments or
    `max_bytes` bytes; links out of the sample are dropped."""
    page_records = collections.OrderedDict()
    for r in records:
        page_records.setdefault(r["_page"], []).append(r)
    page_bytes = {p: sum(len(record_line(r).encode("utf-8")) + 1 for r in rs)
                  for p, rs in page_records.items()}
    neighbours = {}
    for p, rs in page_records.items():
        nb = []
        for r in rs:
            for lp in r["_link_pages"]:
                if lp != p and lp not in nb:
                    nb.append(lp)
        neighbours[p] = nb
    seeds = [p for p in seeds if p in page_records]
    if not seeds and page_records:
        seeds = [max(page_records, key=lambda p: (len(neighbours[p]), p))]
    # very long pages (bash, git-config, ...) would take the whole budget
    max_page = max(8, size // 10)
    chosen = []
    count = 0
    total_bytes = 0
    queue = collections.deque(seeds)
    visited = set()
    while queue and count < size:
        p = queue.popleft()
        if p in visited:
            continue
        visited.add(p)
        n = len(page_records[p])
        if n > max_page or count + n > size or total_bytes + page_bytes[p] > max_bytes:
            continue
        chosen.append(p)
        count += n
        total_bytes += page_bytes[p]
        queue.extend(q for q in neighbours[p] if q not in visited)
    chosen_set = set(chosen)
    sample = []
    for r in records:
        if r["_page"] in chosen_set:
            keep = [(link, lp) for link, lp in zip(r["links"], r["_link_pages"]) if lp in chosen_set]
            sample.append(dict(r, links=[link for link, _ in keep],
                               _link_pages=[lp for _, lp in keep]))
    return sample, chosen, seeds
