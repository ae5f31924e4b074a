"""The graph digest: damaged or edited model files are refused, metadata edits are not."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from perceive.deploy.integrity import (
    DIGEST_KEY,
    check_graph_digest,
    graph_digest,
    stamp_graph_digest,
    stamp_model_file,
)
from perceive.deploy.runner import Detector
from perceive.errors import DataError
from tests.deploy import standin


def _tiny_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.metadata_props.add(key="perceive.note", value="x")
    return model


def test_digest_is_the_sha256_of_the_graph_message() -> None:
    model = _tiny_model()
    expected = hashlib.sha256(model.graph.SerializeToString()).hexdigest()
    assert graph_digest(model.SerializeToString()) == expected


def test_stamp_records_the_digest_and_leaves_the_graph_alone() -> None:
    model = _tiny_model()
    graph_before = model.graph.SerializeToString()
    data, stamped = stamp_graph_digest(model)
    again = onnx.load_from_string(data)
    assert again.graph.SerializeToString() == graph_before
    recorded = {p.key: p.value for p in again.metadata_props}
    assert recorded[DIGEST_KEY] == graph_digest(data) == stamped
    assert recorded["perceive.note"] == "x"
    check_graph_digest(data, recorded[DIGEST_KEY], "m.onnx")  # no error


def test_a_changed_weight_or_node_is_refused() -> None:
    model = _tiny_model()
    data, _ = stamp_graph_digest(model)
    digest = graph_digest(data)
    # one float of the weight flipped in place: still a valid model that runs
    raw = numpy_helper.to_array(model.graph.initializer[0]).tobytes()
    i = data.index(raw) + 4
    bad = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
    onnx.checker.check_model(onnx.load_from_string(bad))
    with pytest.raises(DataError, match=r"m\.onnx.*graph_sha256.*damaged or was edited"):
        check_graph_digest(bad, digest, "m.onnx")
    edited = onnx.load_from_string(data)
    edited.graph.node[0].op_type = "Add"
    with pytest.raises(DataError, match="damaged or was edited"):
        check_graph_digest(edited.SerializeToString(), digest, "m.onnx")
    # metadata is outside the digest
    relabelled = onnx.load_from_string(data)
    relabelled.metadata_props.add(key="perceive.other", value="y")
    check_graph_digest(relabelled.SerializeToString(), digest, "m.onnx")
    check_graph_digest(bad, None, "m.onnx")  # no recorded digest: nothing to check


@pytest.mark.parametrize("cut", [1, 7, 30])
def test_truncated_or_graphless_bytes(cut: int) -> None:
    data, _ = stamp_graph_digest(_tiny_model())
    with pytest.raises(DataError, match="not a well-formed ONNX model"):
        check_graph_digest(data[:-cut], graph_digest(data), "m.onnx")
    with pytest.raises(ValueError, match="no graph"):
        graph_digest(helper.make_model(helper.make_graph([], "g", [], [])).SerializeToString()[:2])


def test_detector_refuses_a_damaged_model_and_loads_a_relabelled_one(
    standin_onnx: Path, tmp_path: Path
) -> None:
    data = standin_onnx.read_bytes()
    proto = onnx.load_from_string(data)
    assert {p.key for p in proto.metadata_props} >= {DIGEST_KEY}
    # flip 64 bytes inside the largest weight: onnx still parses it, onnxruntime would run it
    big = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    start = data.index(big.raw_data) + len(big.raw_data) // 3
    bad = bytearray(data)
    for k in range(start, start + 64):
        bad[k] ^= 0xFF
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(bytes(bad))
    onnx.load(str(damaged))
    with pytest.raises(DataError, match=r"damaged\.onnx.*perceive\.graph_sha256"):
        Detector(damaged)
    # a metadata edit keeps the graph: the model loads
    relabelled = standin.relabel(standin_onnx, tmp_path / "r.onnx", score_threshold="0.7")
    assert Detector(relabelled).score_threshold == 0.7


def test_stamp_model_file_adds_the_digest_to_an_old_export(tmp_path: Path) -> None:
    old = _tiny_model()
    path = tmp_path / "old.onnx"
    path.write_bytes(old.SerializeToString())
    path.with_suffix(".json").write_text(json.dumps({"perceive.note": "x"}))
    digest = stamp_model_file(path)
    model = onnx.load(str(path))
    assert model.graph.SerializeToString() == old.graph.SerializeToString()
    assert {p.key: p.value for p in model.metadata_props}[DIGEST_KEY] == digest
    assert json.loads(path.with_suffix(".json").read_text()) == {
        "perceive.note": "x",
        DIGEST_KEY: digest,
    }
    (tmp_path / "j.onnx").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"j\.onnx.*not an ONNX model"):
        stamp_model_file(tmp_path / "j.onnx")


def test_shipped_model_carries_a_valid_digest() -> None:
    path = Path(__file__).resolve().parents[2] / "exports" / "fusion.onnx"
    data = path.read_bytes()
    recorded = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    assert recorded[DIGEST_KEY] == graph_digest(data)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side[DIGEST_KEY] == recorded[DIGEST_KEY]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Detector(path, threads=1)
