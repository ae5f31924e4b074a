"""Deploy-time rewrites of an exported graph that keep its results and speed up onnxruntime.

:func:`flatten_scatter_elements`: onnxruntime's CPU ``ScatterElements`` with a reduction
costs about 100 ns per updated element on a 2-D tensor (it recomputes a multi-dimensional
offset per element); the pillar encoder's max-pooling scatters (N, C) point features into
(P, C) pillars with it and dominates the inference. The same scatter on the flattened
tensors (1-D data, indices ``row * C + column``) gives the same result in the same
element order and runs about 5x faster. ``ScatterND`` with row indices would be faster
still but is not safe: with more than one intra-op thread, onnxruntime 1.32 races on
duplicate indices under a reduction (measured: wrong maxima).

Every rewrite uses standard ONNX operators only, and the rewritten graph gives the same
outputs bit for bit (reductions are applied in the same order per output element).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import onnx


def _rank_of(model: onnx.ModelProto, name: str) -> int | None:
    g = model.graph
    for t in g.initializer:
        if t.name == name:
            return len(t.dims)
    for v in [*g.value_info, *g.input, *g.output]:
        if v.name == name and v.type.tensor_type.HasField("shape"):
            return len(v.type.tensor_type.shape.dim)
    for n in g.node:  # ConstantOfShape of a known-length shape, Expand, ...
        if name in n.output and n.op_type == "ConstantOfShape":
            for t in g.initializer:
                if t.name == n.input[0] and len(t.dims) == 1:
                    return int(t.dims[0])
    return None


def _dims_of(model: onnx.ModelProto, name: str) -> list[int | None] | None:
    """Static dims of a tensor (None for a symbolic dim), or None if unknown."""
    g = model.graph
    for t in g.initializer:
        if t.name == name:
            return [int(d) for d in t.dims]
    for v in [*g.value_info, *g.input, *g.output]:
        if v.name == name and v.type.tensor_type.HasField("shape"):
            return [
                d.dim_value if d.HasField("dim_value") else None
                for d in v.type.tensor_type.shape.dim
            ]
    return None


def flatten_scatter_elements(model: onnx.ModelProto, *, min_rank: int = 2) -> int:
    """Rewrite, in place, every ``ScatterElements`` on rank-2 data along axis 0 as a 1-D one.

    ``out[indices[i, j], j] = reduce(updates[i, j])`` becomes
    ``flat[indices[i, j] * C + j] = reduce(updates[i, j])`` on ``data`` reshaped to (P * C,),
    then reshaped back; negative indices are wrapped first. Nodes of unknown rank are left.

    Returns:
        How many nodes were rewritten.
    """
    from onnx import TensorProto, helper

    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    new_nodes = []
    count = 0
    consts_added = False
    for node in g.node:
        if node.op_type != "ScatterElements" or node.domain not in ("", "ai.onnx"):
            new_nodes.append(node)
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        reduction = next((a.s.decode() for a in node.attribute if a.name == "reduction"), "none")
        data, indices, updates = node.input
        if (
            axis != 0
            or _rank_of(model, data) != min_rank
            or _rank_of(model, indices) not in (None, 2)
        ):
            new_nodes.append(node)
            continue
        if not consts_added:
            g.initializer.extend(
                [
                    helper.make_tensor("perceive_flat_minus1", TensorProto.INT64, [1], [-1]),
                    helper.make_tensor("perceive_flat_zero", TensorProto.INT64, [], [0]),
                    helper.make_tensor("perceive_flat_one", TensorProto.INT64, [], [1]),
                    helper.make_tensor("perceive_flat_axes0", TensorProto.INT64, [1], [0]),
                ]
            )
            consts_added = True
        p = f"{node.name or f'scatter{count}'}_flat"
        out = node.output[0]
        # Row index of each element: when the indices are an (N, 1) column expanded to (N, C)
        # (the usual ``index.unsqueeze(1).expand(-1, C)``), work on the column: C times cheaper.
        src = producer.get(indices)
        row = indices
        if src is not None and src.op_type == "Expand":
            dims = _dims_of(model, src.input[0])
            if dims is not None and len(dims) == 2 and dims[1] == 1:
                row = src.input[0]
        new_nodes += [
            helper.make_node("Shape", [data], [f"{p}_dshape"], name=f"{p}_dshape"),
            helper.make_node("Shape", [data], [f"{p}_rows"], name=f"{p}_rows", start=0, end=1),
            helper.make_node("Shape", [data], [f"{p}_cols"], name=f"{p}_cols", start=1, end=2),
            # updates have the shape of the indices
            helper.make_node("Shape", [updates], [f"{p}_icols"], name=f"{p}_icols", start=1, end=2),
            helper.make_node(
                "Squeeze",
                [f"{p}_icols", "perceive_flat_axes0"],
                [f"{p}_icols_s"],
                name=f"{p}_icols_s",
            ),
            helper.make_node(
                "Range",
                ["perceive_flat_zero", f"{p}_icols_s", "perceive_flat_one"],
                [f"{p}_j"],
                name=f"{p}_j",
            ),
            # negative row indices count from the end
            helper.make_node("Less", [row, "perceive_flat_zero"], [f"{p}_neg"], name=f"{p}_neg"),
            helper.make_node("Add", [row, f"{p}_rows"], [f"{p}_wrapped"], name=f"{p}_wrapped"),
            helper.make_node(
                "Where", [f"{p}_neg", f"{p}_wrapped", row], [f"{p}_rowidx"], name=f"{p}_rowidx"
            ),
            helper.make_node("Mul", [f"{p}_rowidx", f"{p}_cols"], [f"{p}_base"], name=f"{p}_base"),
            helper.make_node("Add", [f"{p}_base", f"{p}_j"], [f"{p}_idx2"], name=f"{p}_idx2"),
            helper.make_node(
                "Reshape", [f"{p}_idx2", "perceive_flat_minus1"], [f"{p}_idx"], name=f"{p}_idx"
            ),
            helper.make_node(
                "Reshape", [updates, "perceive_flat_minus1"], [f"{p}_upd"], name=f"{p}_upd"
            ),
            helper.make_node(
                "Reshape", [data, "perceive_flat_minus1"], [f"{p}_data"], name=f"{p}_data"
            ),
            helper.make_node(
                "ScatterElements",
                [f"{p}_data", f"{p}_idx", f"{p}_upd"],
                [f"{p}_out"],
                name=f"{p}_scatter",
                axis=0,
                reduction=reduction,
            ),
            helper.make_node("Reshape", [f"{p}_out", f"{p}_dshape"], [out], name=f"{p}_back"),
        ]
        count += 1
    del g.node[:]
    g.node.extend(new_nodes)
    return count


def optimized_model(path: str | Path) -> tuple[bytes | None, int]:
    """The serialized model at ``path`` with every rewrite applied: ``(bytes, rewrites)``;
    ``(None, 0)`` when nothing applies (load the file itself then)."""
    import onnx

    model = onnx.load(str(path))
    n = flatten_scatter_elements(model)
    return (model.SerializeToString() if n else None), n
