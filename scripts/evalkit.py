"""What the retrieval evaluations share (scripts/eval-retrieval.py on man pages,
scripts/eval-memory.py on agent memory): the BM25 baseline, a free port, JSON calls to carmad,
and embeddings from `carmad embed` (the same model as carmad's own)."""

import collections
import json
import math
import re
import socket
import subprocess
import urllib.request

WORD = re.compile(r"[a-z0-9]+")


def words(text):
    """Lower-cased alphanumeric words: the baselines' tokenizer (not carmad's)."""
    return WORD.findall(text.lower())


class BM25:
    """Okapi BM25 (k1 1.2, b 0.75) over documents' `content`; rank() gives ids best first, ties by id."""

    def __init__(self, documents, k1=1.2, b=0.75):
        self.ids = [d["id"] for d in documents]
        self.k1, self.b = k1, b
        self.postings = collections.defaultdict(list)
        self.lengths = []
        for slot, document in enumerate(documents):
            counts = collections.Counter(words(document["content"]))
            self.lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings[term].append((slot, tf))
        self.average = sum(self.lengths) / max(1, len(self.lengths))

    def scores(self, query):
        n = len(self.ids)
        scores = collections.defaultdict(float)
        for term, qtf in collections.Counter(words(query)).items():
            postings = self.postings.get(term, [])
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            for slot, tf in postings:
                norm = self.k1 * (1 - self.b + self.b * self.lengths[slot] / self.average)
                scores[slot] += idf * qtf * tf * (self.k1 + 1) / (tf + norm)
        return scores

    def rank(self, query, k=10):
        best = sorted(self.scores(query).items(), key=lambda item: (-item[1], self.ids[item[0]]))[:k]
        return [self.ids[slot] for slot, _ in best]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read() or b"null")


def embed(carmad, model, texts, max_tokens, query=False):
    """The model's embeddings of `texts` (float32 rows), by `carmad embed`; with `query`, as queries
    (after the model's query prefix, as POST /query embeds them)."""
    import numpy as np
    process = subprocess.run([carmad, "embed", "--model", model, "--max-tokens", str(max_tokens)] + (["--query"] if query else []),
                             input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True, text=True, check=True)
    return np.array([json.loads(line) for line in process.stdout.splitlines()], dtype=np.float32)
