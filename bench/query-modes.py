#!/usr/bin/env python3
"""POST /query by mode against a running carmad: the same sentences of the corpus, one client, one
after another, for each of text, vector and hybrid; p50, p90 and p99 in ms.

Usage: query-modes.py PORT CORPUS [COUNT] [OUT.json]
"""
import http.client
import json
import random
import re
import sys
import time


def main():
    port, corpus = int(sys.argv[1]), sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    out = sys.argv[4] if len(sys.argv) > 4 else None
    sentences = []
    for line in open(corpus):
        for s in re.split(r"(?<=[.!?])\s+|\n", json.loads(line)["content"]):
            if len(s.split()) >= 4:
                sentences.append(s.strip())
    random.seed(7)
    queries = random.sample(sentences, count)
    connection = http.client.HTTPConnection("127.0.0.1", port)

    def ask(text, mode):
        body = json.dumps({"text": text, "k": 10, "mode": mode})
        started = time.perf_counter()
        connection.request("POST", "/query", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            sys.exit("POST /query answered %d" % response.status)
        return (time.perf_counter() - started) * 1000

    for text in queries[:20]:
        ask(text, "hybrid")
    result = {}
    for mode in ("text", "vector", "hybrid"):
        times = sorted(ask(text, mode) for text in queries)
        pick = lambda share: round(times[min(len(times) - 1, int(len(times) * share))], 2)
        result[mode] = {"p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99), "queries": len(times)}
        print("%-6s p50 %.1f ms, p90 %.1f ms, p99 %.1f ms" % (mode, result[mode]["p50_ms"], result[mode]["p90_ms"], result[mode]["p99_ms"]))
    if out:
        json.dump(result, open(out, "w"), indent=1)


main()
