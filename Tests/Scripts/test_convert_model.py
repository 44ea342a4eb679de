"""scripts/convert-model.py: its protobuf reader, tokenizer and safetensors writing on tiny inputs
made here, and, where install-deps.sh has installed them, the converted bge-small against the ONNX
file it came from (onnxruntime)."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

ROOT = Path(__file__).resolve().parents[2]


def _load_script():
    spec = importlib.util.spec_from_file_location("convert_model", ROOT / "scripts" / "convert-model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cm = _load_script()


# -- a protobuf writer for the tests, the mirror of the script's reader -------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def tensor_proto(name: str, array: np.ndarray, dtype: int, packed_dims: bool = True) -> bytes:
    dims = b"".join(varint(d) for d in array.shape)
    out = field(1, dims) if packed_dims and array.shape else b"".join(field(1, d) for d in array.shape)
    return out + field(2, dtype) + field(8, name) + field(9, array.tobytes())


def test_the_reader_finds_nodes_initializers_and_constants() -> None:
    weights = np.arange(6, dtype="<f4").reshape(2, 3)
    quantized = np.array([[-1, 2], [3, -4]], dtype="i1")
    node = field(1, "x") + field(1, "w") + field(2, "y") + field(3, "/encoder/layer.0/attention/self/query/MatMul") + field(4, "MatMul")
    constant = field(2, "c") + field(4, "Constant") + field(5, field(1, "value") + field(5, tensor_proto("", np.array(3.0, dtype="<f4"), cm.FLOAT)))
    graph = (field(1, node) + field(1, constant) + field(5, tensor_proto("w", weights, cm.FLOAT))
             + field(5, tensor_proto("q", quantized, cm.INT8, packed_dims=False)))
    model = field(1, 7) + field(7, graph)  # ir_version, then the graph
    parsed = cm.Graph(model)
    assert [n["op"] for n in parsed.nodes] == ["MatMul", "Constant"]
    assert parsed.nodes[0]["inputs"] == ["x", "w"] and parsed.nodes[0]["outputs"] == ["y"]
    assert np.array_equal(parsed.initializers["w"], weights)
    assert np.array_equal(parsed.initializers["q"], quantized)
    assert float(parsed.value("c")) == 3.0
    with pytest.raises(ValueError):
        cm.Graph(field(1, 7))  # no graph
    with pytest.raises(ValueError):
        cm.Graph(field(7, field(5, field(1, varint(4)) + field(2, cm.FLOAT) + field(9, b"\0" * 8))))  # 2 floats for 4


def test_dequantising_uses_each_column_scale_and_the_zero_point() -> None:
    graph = cm.Graph.__new__(cm.Graph)
    graph.initializers = {
        "w_quantized": np.array([[1, -2], [3, 4]], dtype="i1"), "w_scale": np.array([0.5, 0.25], dtype="<f4"),
        "w_zero_point": np.zeros(2, dtype="i1"),
        "e_quantized": np.array([[128, 130]], dtype="u1"), "e_scale": np.array(0.1, dtype="<f4"), "e_zero_point": np.array(128, dtype="u1"),
    }
    graph.constants = {}
    assert np.allclose(cm.dequantize(graph, "w_quantized", per_column=True), [[0.5, -0.5], [1.5, 1.0]])
    assert np.allclose(cm.dequantize(graph, "e_quantized", per_column=False), [[0.0, 0.2]])


def test_the_vocabulary_comes_from_a_bert_tokenizer_only(tmp_path: Path) -> None:
    spec = {"normalizer": {"type": "BertNormalizer", "lowercase": True, "strip_accents": None},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "model": {"type": "WordPiece", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                      "vocab": {"[PAD]": 0, "[UNK]": 1, "##s": 3, "file": 2}}}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec))
    assert cm.vocabulary_lines(path) == ["[PAD]", "[UNK]", "file", "##s"]
    spec["normalizer"]["lowercase"] = False
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError):
        cm.vocabulary_lines(path)


def test_safetensors_are_written_as_carmad_and_minilm_py_read_them(tmp_path: Path) -> None:
    import minilm

    tensors = {"b": np.arange(3, dtype=np.float32), "a": np.arange(6, dtype=np.float32).reshape(2, 3) / 7}
    cm.write_safetensors(tmp_path / "model.safetensors", tensors)
    raw = (tmp_path / "model.safetensors").read_bytes()
    assert struct.unpack("<Q", raw[:8])[0] % 8 == 0
    read = minilm.load_safetensors(tmp_path / "model.safetensors")
    assert set(read) == {"a", "b"} and all(np.array_equal(read[k], tensors[k]) for k in tensors)


def _converted() -> Path | None:
    path = os.environ.get("CARMA_TEST_BGE_MODEL") or os.path.join(
        os.environ.get("CARMA_MODEL_HOME", "/usr/local/share/carma/models"), "bge-small-en-v1.5")
    return Path(path) if (Path(path) / "carma.json").is_file() else None


@pytest.mark.skipif(_converted() is None, reason="bge-small is not converted (scripts/install-deps.sh)")
def test_the_installed_conversion_is_current_and_matches_the_onnx_model() -> None:
    pytest.importorskip("onnxruntime", reason="onnxruntime is installed by scripts/install-deps.sh --test")
    source = cm.installed_source()
    directory = _converted()
    assert cm.is_current(directory, source)
    card = json.loads((directory / "carma.json").read_text())
    assert card["pooling"] == "cls" and card["query_prefix"] == cm.QUERY_PREFIX and card["source"]["sha256"] == cm.SOURCE_SHA256
    assert min(cm.check(directory, source)) >= 0.99
