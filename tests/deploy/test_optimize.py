"""Exact graph rewrites: the flattened scatter gives the same outputs, bit for bit."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from perceive.deploy.optimize import (
    apply_all,
    flatten_scatter_elements,
    int32_scatter_indices,
    optimized_model,
    remove_dead_nodes,
    single_thread_scatter_nd,
    unfold_filled_constants,
)
from perceive.deploy.runner import Detector

P, C, N = 37, 6, 500


def _scatter_model(
    reduction: str, *, expanded: bool, axis: int = 0, rank1: bool = False
) -> onnx.ModelProto:
    """data (P, C) <- updates (N, C) at rows idx; idx given as (N, 1) expanded, or as (N, C)."""
    nodes = []
    if rank1:
        inputs = [
            helper.make_tensor_value_info("data", TensorProto.FLOAT, [P]),
            helper.make_tensor_value_info("idx", TensorProto.INT64, ["n"]),
            helper.make_tensor_value_info("upd", TensorProto.FLOAT, ["n"]),
        ]
        nodes.append(
            helper.make_node(
                "ScatterElements", ["data", "idx", "upd"], ["out"], reduction=reduction
            )
        )
        out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [P])
    else:
        inputs = [
            helper.make_tensor_value_info("data", TensorProto.FLOAT, [P, C]),
            helper.make_tensor_value_info(
                "idx", TensorProto.INT64, ["n", 1] if expanded else ["n", C]
            ),
            helper.make_tensor_value_info("upd", TensorProto.FLOAT, ["n", C]),
        ]
        idx = "idx"
        if expanded:
            nodes.append(helper.make_node("Shape", ["upd"], ["ushape"]))
            nodes.append(helper.make_node("Expand", ["idx", "ushape"], ["idx_e"]))
            idx = "idx_e"
        nodes.append(
            helper.make_node(
                "ScatterElements", ["data", idx, "upd"], ["out"], axis=axis, reduction=reduction
            )
        )
        out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [P, C])
    m = helper.make_model(
        helper.make_graph(nodes, "g", inputs, [out]), opset_imports=[helper.make_opsetid("", 18)]
    )
    m.ir_version = 10
    return onnx.shape_inference.infer_shapes(m)


def _run(m: onnx.ModelProto, feeds: dict[str, np.ndarray], threads: int = 2) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
        None, feeds
    )[0]


@pytest.mark.parametrize("reduction", ["max", "add", "min", "mul", "none"])
@pytest.mark.parametrize("expanded", [True, False])
def test_flattened_scatter_is_exact(reduction: str, expanded: bool) -> None:
    rng = np.random.default_rng(0)
    rows = rng.integers(-P, P, N)  # duplicates and negative rows
    if reduction == "none":
        rows = rng.permutation(P)[: min(N, P)] - P // 2  # no duplicates: "none" is order-free
    n = rows.size
    upd = rng.standard_normal((n, C)).astype(np.float32)
    data = rng.standard_normal((P, C)).astype(np.float32)
    idx = rows[:, None] if expanded else np.repeat(rows[:, None], C, 1)
    feeds = {"data": data, "idx": idx.astype(np.int64), "upd": upd}
    m = _scatter_model(reduction, expanded=expanded)
    before = _run(m, feeds)
    assert flatten_scatter_elements(m) == 1
    onnx.checker.check_model(m, full_check=True)
    assert "Expand" not in [x.op_type for x in m.graph.node if x.output[0].endswith("_idx2")]
    after = _run(m, feeds)
    np.testing.assert_array_equal(after, before)
    if reduction == "max":  # and both are right
        ref = data.copy()
        np.maximum.at(ref, rows % P, upd)
        np.testing.assert_array_equal(after, ref)


def test_other_scatters_are_left_alone() -> None:
    assert flatten_scatter_elements(_scatter_model("max", expanded=False, axis=1)) == 0
    assert flatten_scatter_elements(_scatter_model("add", expanded=False, rank1=True)) == 0


@pytest.mark.parametrize("reduction", ["max", "add"])
@pytest.mark.parametrize("expanded", [True, False])
def test_int32_scatter_indices_is_exact(reduction: str, expanded: bool) -> None:
    rng = np.random.default_rng(1)
    m = _scatter_model(reduction, expanded=expanded)
    idx = rng.integers(-P, P, (N, 1) if expanded else (N, C))  # negative ones too
    feeds = {
        "data": rng.standard_normal((P, C)).astype(np.float32),
        "idx": idx.astype(np.int64),
        "upd": rng.standard_normal((N, C)).astype(np.float32),
    }
    before = _run(m, feeds)
    assert int32_scatter_indices(m) == 1
    onnx.checker.check_model(m, full_check=True)
    scatter = next(n for n in m.graph.node if n.op_type == "ScatterElements")
    casts = [n for n in m.graph.node if n.op_type == "Cast"]
    assert len(casts) == 1 and casts[0].attribute[0].i == TensorProto.INT32
    if expanded:  # cast before the Expand, and the int64 Expand is gone
        assert casts[0].input[0] == "idx"
        assert [n.op_type for n in m.graph.node].count("Expand") == 1
    assert scatter.input[1] != "idx"
    np.testing.assert_array_equal(_run(m, feeds), before)
    assert int32_scatter_indices(m) == 0  # already int32


def test_int32_scatter_indices_needs_a_static_extent() -> None:
    m = _scatter_model("max", expanded=False)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "p"
    del m.graph.value_info[:]
    assert int32_scatter_indices(m) == 0


def test_unfold_filled_constants_keeps_outputs_and_shrinks_the_file() -> None:
    filled = {
        "neg_inf": np.full((8, 300), -np.inf, np.float32),
        "ones": np.ones((4, 50), np.float32),
        "nan": np.full((70,), np.nan, np.float32),
        "counts": np.full((3, 40), 7, np.int64),
        "mask": np.ones((8, 8), bool),
    }
    varied = np.arange(200, dtype=np.float32).reshape(2, 100)
    small = np.full((2, 3), 5.0, np.float32)  # below min_elements: kept
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in filled.items()]
    inits += [onnx.numpy_helper.from_array(varied, "varied")]
    inits += [onnx.numpy_helper.from_array(small, "small")]
    nodes, outputs = [], []
    for name in [*filled, "varied", "small"]:
        nodes.append(helper.make_node("Identity", [name], [f"{name}_out"]))
        value = {**filled, "varied": varied, "small": small}[name]
        elem = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
        outputs.append(helper.make_tensor_value_info(f"{name}_out", elem, list(value.shape)))
    graph = helper.make_graph(nodes, "g", [], outputs, initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])

    def run_all(model: onnx.ModelProto) -> list[np.ndarray]:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, {})

    before = run_all(m)
    size = m.ByteSize()
    assert unfold_filled_constants(m) == len(filled)
    onnx.checker.check_model(m, full_check=True)
    assert m.ByteSize() < size - 0.8 * sum(v.nbytes for v in filled.values())
    remaining = {t.name for t in m.graph.initializer}
    assert "varied" in remaining and "small" in remaining and not remaining & set(filled)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in m.graph.value_info
    }
    assert shapes["neg_inf"] == [8, 300]
    after = run_all(m)
    assert len(after) == 7
    for a, b in zip(before, after, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_remove_dead_nodes_keeps_what_outputs_need() -> None:
    m = _scatter_model("max", expanded=True)
    m.graph.node.append(helper.make_node("Neg", ["upd"], ["unused"]))
    m.graph.node.append(helper.make_node("Abs", ["unused"], ["unused2"]))
    assert remove_dead_nodes(m) == 2
    assert [n.op_type for n in m.graph.node] == ["Shape", "Expand", "ScatterElements"]


@pytest.mark.parametrize("reduction", ["max", "add"])
def test_single_thread_scatter_nd_rows_is_exact(reduction: str) -> None:
    rng = np.random.default_rng(2)
    m = _scatter_model(reduction, expanded=True)
    feeds = {
        "data": rng.standard_normal((P, C)).astype(np.float32),
        "idx": rng.integers(-P, P, (N, 1)).astype(np.int64),  # duplicates, negative rows
        "upd": rng.standard_normal((N, C)).astype(np.float32),
    }
    before = _run(m, feeds, threads=1)
    assert single_thread_scatter_nd(m) == 1
    onnx.checker.check_model(m, full_check=True)
    assert [n.op_type for n in m.graph.node].count("ScatterND") == 1
    assert "ScatterElements" not in [n.op_type for n in m.graph.node]
    np.testing.assert_array_equal(_run(m, feeds, threads=1), before)


def _channels_first_model(reduction: str, *, product: bool) -> onnx.ModelProto:
    """out (C, P) = scatter along axis 1 of a constant fill, updates (C, N) (a product with a
    constant (C, K) matrix, or an input), one index per column expanded over the channels."""
    from onnx import numpy_helper

    k = 3
    inputs = [
        helper.make_tensor_value_info("idx", TensorProto.INT64, [1, "n"]),
        helper.make_tensor_value_info("b", TensorProto.FLOAT, [k if product else C, "n"]),
    ]
    fill = -np.inf if reduction == "max" else 0.0
    inits = [
        numpy_helper.from_array(np.full((1, 1), fill, np.float32), "fill"),
        numpy_helper.from_array(np.array([C, P], np.int64), "dshape"),
        numpy_helper.from_array(
            np.random.default_rng(3).standard_normal((C, k)).astype(np.float32), "w"
        ),
    ]
    nodes = [
        helper.make_node("Expand", ["fill", "dshape"], ["data"]),
        helper.make_node("Shape", ["b"], ["n1"], start=1, end=2),
        helper.make_node("Concat", ["c", "n1"], ["ishape"], axis=0),
        helper.make_node("Expand", ["idx", "ishape"], ["idx_e"]),
    ]
    inits.append(numpy_helper.from_array(np.array([C], np.int64), "c"))
    upd = "b"
    if product:
        nodes.append(helper.make_node("MatMul", ["w", "b"], ["upd"]))
        upd = "upd"
    nodes.append(
        helper.make_node(
            "ScatterElements", ["data", "idx_e", upd], ["out"], axis=1, reduction=reduction
        )
    )
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [C, P])
    m = helper.make_model(
        helper.make_graph(nodes, "g", inputs, [out], initializer=inits),
        opset_imports=[helper.make_opsetid("", 18)],
    )
    m.ir_version = 10
    return onnx.shape_inference.infer_shapes(m)


@pytest.mark.parametrize("reduction", ["max", "add"])
@pytest.mark.parametrize("product", [True, False])
def test_single_thread_scatter_nd_channels_first(reduction: str, product: bool) -> None:
    rng = np.random.default_rng(4)
    m = _channels_first_model(reduction, product=product)
    feeds = {
        "idx": rng.integers(-P, P, (1, N)).astype(np.int64),
        "b": rng.standard_normal((3 if product else C, N)).astype(np.float32),
    }
    before = _run(m, feeds, threads=1)
    gpu = ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert apply_all(copy.deepcopy(m), threads=1, providers=gpu) == 1  # CPU-provider rewrite only
    assert apply_all(m, threads=2) == 1  # int32 indices only: ScatterND is not thread-safe
    assert "ScatterND" not in [n.op_type for n in m.graph.node]
    assert single_thread_scatter_nd(m) == 1
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("ScatterND") == 1 and "ScatterElements" not in ops
    np.testing.assert_allclose(_run(m, feeds, threads=1), before, rtol=1e-6, atol=1e-6)
    if not product:
        np.testing.assert_array_equal(_run(m, feeds, threads=1), before)


def test_detector_output_is_the_same_with_and_without_rewrites(standin_onnx: Path) -> None:
    from perceive.datasets.waymo.fixtures import make_frame

    frame = make_frame(5)
    a = Detector(standin_onnx, optimize=True, score_threshold=0.0)
    b = Detector(standin_onnx, optimize=False, score_threshold=0.0)
    assert b.graph_rewrites == 0
    np.testing.assert_array_equal(a(frame).boxes, b(frame).boxes)
    data, n = optimized_model(standin_onnx)
    assert n == a.graph_rewrites and (data is None) == (n == 0)


@pytest.mark.slow
def test_rewrites_on_a_real_tiny_model(tiny_real_model: tuple[Path, Path], tmp_path: Path) -> None:
    from perceive.datasets.waymo.fixtures import make_frame
    from perceive.deploy.export import export_onnx

    _, ckpt = tiny_real_model
    # The eager formulation has the (N, C) scatters the rewrites are for; the default export
    # already has its int32 indices.
    onnx_path = tmp_path / "eager.onnx"
    export_onnx(ckpt, onnx_path, formulation="eager", sidecar=False)
    a = Detector(onnx_path, optimize=True, score_threshold=0.0, threads=2)
    b = Detector(onnx_path, optimize=False, score_threshold=0.0, threads=2)
    assert a.graph_rewrites >= 4  # the pillar scatters, flattened and with int32 indices
    for seed in (1, 2):
        frame = make_frame(seed)
        da, db = a(frame), b(frame)
        np.testing.assert_array_equal(da.scores, db.scores)
        np.testing.assert_array_equal(da.boxes, db.boxes)


@pytest.mark.slow
def test_single_threaded_detector_uses_scatter_nd(tiny_real_model: tuple[Path, Path]) -> None:
    from perceive.datasets.waymo.fixtures import make_frame

    onnx_path, _ = tiny_real_model  # the default (inference formulation) export
    one = Detector(onnx_path, optimize=True, score_threshold=0.0, threads=1)
    two = Detector(onnx_path, optimize=True, score_threshold=0.0, threads=2)
    plain = Detector(onnx_path, optimize=False, score_threshold=0.0, threads=1)
    assert one.graph_rewrites >= 3 and two.graph_rewrites == 0 and plain.graph_rewrites == 0
    for seed in (1, 2):
        frame = make_frame(seed)
        d1, d2, d0 = one(frame), two(frame), plain(frame)
        np.testing.assert_allclose(d1.scores, d0.scores, rtol=0, atol=1e-6)
        np.testing.assert_allclose(d1.boxes, d0.boxes, rtol=0, atol=1e-4)
        np.testing.assert_allclose(d2.scores, d0.scores, rtol=0, atol=1e-6)
