"""FP16 and INT8 variants: structure, kept interface and metadata, closeness to float32."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from perceive.datasets.waymo.fixtures import make_frame
from perceive.deploy.integrity import DIGEST_KEY, graph_digest
from perceive.deploy.quantize import (
    _drop_duplicate_producers,
    _topological_sort,
    compare_variants,
    convert_fp16,
    format_variant_table,
    geometry_nodes,
    make_variant,
    quantize_int8,
    source_digest,
)
from perceive.deploy.runner import Detector
from perceive.errors import ConfigError, DataError
from tests.deploy import standin


def _frames(seeds):
    return [make_frame(s, cameras=standin.CAMERAS) for s in seeds]


def _io_types(m: onnx.ModelProto) -> list[tuple[str, int]]:
    return [(v.name, v.type.tensor_type.elem_type) for v in [*m.graph.input, *m.graph.output]]


def _meta(m: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in m.metadata_props}


def test_geometry_nodes_stop_at_learned_layers() -> None:
    w = helper.make_tensor("w", TensorProto.FLOAT, [5, 4], np.zeros(20, np.float32))
    nodes = [
        helper.make_node("Sub", ["points", "lo"], ["rel"], name="sub"),
        helper.make_node("Floor", ["rel"], ["cell"], name="floor"),
        helper.make_node("MatMul", ["points", "w"], ["feat"], name="mlp"),  # learned: boundary
        helper.make_node("Relu", ["feat"], ["act"], name="relu"),
        helper.make_node(
            "MatMul", ["intrinsics", "rel"], ["proj"], name="proj"
        ),  # runtime x runtime
        helper.make_node("Cast", ["images"], ["imf"], name="cast", to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("points", TensorProto.FLOAT, ["N", 5]),
            helper.make_tensor_value_info("intrinsics", TensorProto.FLOAT, [2, 9]),
            helper.make_tensor_value_info("images", TensorProto.UINT8, [2, 4, 4, 3]),
        ],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
            for n in ("cell", "act", "proj", "imf")
        ],
        [w, helper.make_tensor("lo", TensorProto.FLOAT, [5], np.zeros(5, np.float32))],
    )
    assert geometry_nodes(graph) == ["sub", "floor", "proj"]


def test_topological_sort_restores_a_valid_order() -> None:
    nodes = [helper.make_node("Relu", [f"v{i}"], [f"v{i + 1}"], name=f"n{i}") for i in range(12)]
    shuffled = nodes[:]
    random.Random(0).shuffle(shuffled)
    graph = helper.make_graph(
        shuffled,
        "g",
        [helper.make_tensor_value_info("v0", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("v12", TensorProto.FLOAT, [3])],
    )
    _topological_sort(graph)
    assert [n.name for n in graph.node] == [f"n{i}" for i in range(12)]
    onnx.checker.check_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))


def test_duplicate_casts_of_one_initializer_are_merged() -> None:
    """The float16 converter of onnxruntime 1.31 writes one Cast per consumer, same name."""
    w = helper.make_tensor("w", TensorProto.FLOAT16, [3], [1.0, 2.0, 3.0])
    cast = helper.make_node("Cast", ["w"], ["w32"], to=TensorProto.FLOAT, name="c1")
    nodes = [
        cast,
        helper.make_node("Add", ["x", "w32"], ["a"], name="add"),
        helper.make_node("Cast", ["w"], ["w32"], to=TensorProto.FLOAT, name="c2"),
        helper.make_node("Mul", ["a", "w32"], ["y"], name="mul"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(onnx.checker.ValidationError, match="single static assignment"):
        onnx.checker.check_model(model)
    assert _drop_duplicate_producers(model.graph) == 1
    assert [n.name for n in model.graph.node] == ["c1", "add", "mul"]
    onnx.checker.check_model(model)
    # two different nodes writing one name are an error, not silently dropped
    graph.node.append(helper.make_node("Relu", ["x"], ["a"], name="other"))
    with pytest.raises(DataError, match="both write 'a'"):
        _drop_duplicate_producers(graph)


def test_fp16_keeps_interface_metadata_and_geometry(standin_onnx: Path, tmp_path: Path) -> None:
    dst = convert_fp16(standin_onnx, tmp_path / "m.fp16.onnx")
    src, m16 = onnx.load(str(standin_onnx)), onnx.load(str(dst))
    onnx.checker.check_model(m16)
    assert _io_types(m16) == _io_types(src)
    meta = _meta(m16)
    assert meta["perceive.precision"] == "fp16"
    assert meta["perceive.cameras"] == _meta(src)["perceive.cameras"]
    assert (tmp_path / "m.fp16.json").is_file()
    # the variant records its own graph's digest, not its source's
    assert meta[DIGEST_KEY] == graph_digest(dst.read_bytes()) != _meta(src)[DIGEST_KEY]
    assert any(t.data_type == TensorProto.FLOAT16 for t in m16.graph.initializer)
    # the geometry (voxel indices) is computed in float32: Floor's input is float32
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in onnx.shape_inference.infer_shapes(m16).graph.value_info
    }
    floors = [n for n in m16.graph.node if n.op_type == "Floor"]
    assert floors and all(
        types.get(n.input[0], TensorProto.FLOAT) == TensorProto.FLOAT for n in floors
    )
    # it runs (on CPU here) and stays close to float32
    frame = _frames([2])[0]
    a = Detector(standin_onnx, score_threshold=0.0)(frame)
    b = Detector(dst, score_threshold=0.0)(frame)
    assert b.scores.dtype == np.float32 and b.labels.dtype == np.int64
    np.testing.assert_allclose(np.sort(b.scores), np.sort(a.scores), atol=0.03)


def test_int8_is_qdq_on_learned_layers_only(standin_onnx: Path, tmp_path: Path) -> None:
    det = Detector(standin_onnx, score_threshold=0.0)
    calib = [det.prepare(*det.inputs_from_frame(f)) for f in _frames(range(100, 104))]
    dst = quantize_int8(standin_onnx, tmp_path / "m.int8.onnx", calib)
    m8 = onnx.load(str(dst))
    onnx.checker.check_model(m8)
    assert _io_types(m8) == _io_types(onnx.load(str(standin_onnx)))
    assert _meta(m8)["perceive.precision"] == "int8"
    ops = [n.op_type for n in m8.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert any(t.data_type == TensorProto.INT8 for t in m8.graph.initializer)  # weights
    produced_by = {o: n for n in m8.graph.node for o in n.output}
    for n in m8.graph.node:  # geometry is not quantized
        if n.op_type in ("Floor", "ScatterND"):
            src = produced_by.get(n.input[0])
            assert src is None or src.op_type != "DequantizeLinear"
    frame = _frames([3])[0]
    a = Detector(standin_onnx, score_threshold=0.0)(frame)
    b = Detector(dst, score_threshold=0.0)(frame)
    np.testing.assert_allclose(np.sort(b.scores), np.sort(a.scores), atol=0.08)
    with pytest.raises(ConfigError, match="calibration frame"):
        quantize_int8(standin_onnx, tmp_path / "x.onnx", [])
    with pytest.raises(ConfigError, match="method"):
        quantize_int8(standin_onnx, tmp_path / "x.onnx", calib, method="best")  # type: ignore[arg-type]


def test_make_variant_paths_and_reuse(standin_onnx: Path, tmp_path: Path) -> None:
    assert make_variant(standin_onnx, "fp32") == standin_onnx
    p = make_variant(standin_onnx, "fp16", out_dir=tmp_path)
    assert p == tmp_path / "standin.fp16.onnx" and p.is_file()
    stamp = p.stat().st_mtime_ns
    assert make_variant(standin_onnx, "fp16", out_dir=tmp_path) == p
    assert p.stat().st_mtime_ns == stamp  # reused, not rewritten
    side = json.loads(p.with_suffix(".json").read_text())
    assert isinstance(side["perceive.cameras"], list)  # decoded, as the export's sidecar
    assert side["perceive.variant_of"] == source_digest(standin_onnx)
    # another model of the same file name: the variant is made again, not reused
    other = tmp_path / "other" / "standin.onnx"
    other.parent.mkdir()
    standin.relabel(standin_onnx, other, score_threshold="0.42")
    os.utime(other, (1, 1))  # older than the variant: the time alone would reuse it
    q = make_variant(other, "fp16", out_dir=tmp_path)
    assert q == p and p.stat().st_mtime_ns != stamp
    assert json.loads(p.with_suffix(".json").read_text())["perceive.score_threshold"] == 0.42
    with pytest.raises(ConfigError, match="precision"):
        make_variant(standin_onnx, "int4", out_dir=tmp_path)


def test_int8_variant_is_reused_only_for_the_same_calibration_frames(
    standin_onnx: Path, tmp_path: Path
) -> None:
    a, b = _frames([200, 201]), _frames([300, 301])
    p = make_variant(standin_onnx, "int8", out_dir=tmp_path, calibration_frames=a)
    stamp = p.stat().st_mtime_ns
    assert make_variant(standin_onnx, "int8", out_dir=tmp_path, calibration_frames=a) == p
    assert p.stat().st_mtime_ns == stamp  # the same frames: reused
    make_variant(standin_onnx, "int8", out_dir=tmp_path, calibration_frames=b)
    assert p.stat().st_mtime_ns != stamp  # other frames: calibrated again
    source = json.loads(_meta(onnx.load(str(p)))["perceive.int8_calibration"])["source"]
    assert source == "frames:" + ",".join(f"{f.context.segment}@{f.timestamp_us}" for f in b)


def test_compare_variants_reports_each_precision(standin_onnx: Path, tmp_path: Path) -> None:
    reports = compare_variants(
        standin_onnx,
        _frames([7, 8]),
        out_dir=tmp_path,
        calibration_frames=_frames([200, 201, 202]),
        threads=1,
        iters=3,
    )
    assert [r.precision for r in reports] == ["fp32", "fp16", "int8"]
    for r in reports:
        assert r.latency_ms_p50 is not None and r.latency_ms_p50 > 0 and r.size_mb > 0
    assert reports[0].max_score_diff is None
    # mAPH L2 from perceive.evaluation against the generated frames' labels
    assert all(r.maph_l2 is not None and 0.0 <= r.maph_l2 <= 1.0 for r in reports)
    assert reports[0].maph_l2_change == 0.0
    assert all(r.max_score_diff is not None and r.max_score_diff < 0.2 for r in reports[1:])
    table = format_variant_table(reports)
    assert table.count("\n") == 4 and "int8" in table


@pytest.mark.slow
def test_variants_of_a_real_tiny_model(tiny_real_model: tuple[Path, Path], tmp_path: Path) -> None:
    onnx_path, _ = tiny_real_model
    reports = compare_variants(
        onnx_path,
        [make_frame(s) for s in (30, 31)],
        out_dir=tmp_path,
        calibration_frames=[make_frame(s) for s in (40, 41, 42)],
        threads=1,
        iters=2,
    )
    assert [r.precision for r in reports] == ["fp32", "fp16", "int8"]
    assert all(r.latency_ms_p50 is not None for r in reports), format_variant_table(reports)
    assert all(r.max_score_diff < 0.1 for r in reports[1:]), format_variant_table(reports)
