"""Deploy-time rewrites of an exported graph that keep its results and speed up onnxruntime.

:func:`flatten_scatter_elements`: onnxruntime's CPU ``ScatterElements`` with a reduction
costs about 100 ns per updated element on a 2-D tensor (it recomputes a multi-dimensional
offset per element); the pillar encoder's max-pooling scatters (N, C) point features into
(P, C) pillars with it and dominates the inference. The same scatter on the flattened
tensors (1-D data, indices ``row * C + column``) gives the same result in the same
element order and runs about 5x faster. ``ScatterND`` with row indices is faster still
but is only safe single-threaded: with more than one intra-op thread, onnxruntime 1.32
races on duplicate indices under a reduction (measured: wrong maxima).

:func:`single_thread_scatter_nd`: that faster ``ScatterND`` form, for sessions with one
intra-op thread only (the runner applies it to single-threaded CPU sessions): for the
shipped model, about 2.5 ms less per frame out of 28 ms.

:func:`int32_scatter_indices`: int32 instead of int64 scatter indices, cast where they are
made (before an ``Expand``, so the cast touches one row), when the scattered axis is static
and fits in int32: half the index memory traffic (the kernel time itself was within noise
in isolation). :func:`export_onnx <perceive.deploy.export.export_onnx>` bakes it into the
file.

:func:`unfold_filled_constants`: the exporter folds a filled tensor of a static shape (a
``torch.full``, a ``ones_like``, an ``expand`` of a scalar) into an initializer as large as
the tensor; this puts a ``ConstantOfShape`` in its place, so the file holds one value and a
shape. :func:`export_onnx <perceive.deploy.export.export_onnx>` applies it.

Every rewrite uses standard ONNX operators only, and the rewritten graph gives the same
outputs (reductions are applied in the same order per output element; bit for bit in the
tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def _initializer_array(model: onnx.ModelProto, name: str) -> Any:
    """The value of an initializer or ``Constant`` node output as a NumPy array, or None."""
    from onnx import numpy_helper

    for t in model.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
    return None


def _scalar_constant(model: onnx.ModelProto, name: str) -> tuple[int, float] | None:
    """``(onnx dtype, value)`` of a constant holding a single value, or None."""
    from onnx import helper

    arr = _initializer_array(model, name)
    if arr is None or arr.size != 1:
        return None
    return helper.np_dtype_to_tensor_dtype(arr.dtype), arr.reshape(()).item()


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


def _replace_nodes(model: onnx.ModelProto, nodes: list[onnx.NodeProto], count: int) -> int:
    """Make ``nodes`` the graph's node list; after ``count`` > 0 rewrites drop what no longer
    feeds an output. Returns ``count``."""
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if count:
        remove_dead_nodes(model)
    return count


def _elem_types(g: onnx.GraphProto, *, initializers: bool = True) -> dict[str, int]:
    """ONNX element type of every value the graph describes (value_info, inputs, outputs and,
    unless ``initializers`` is False, initializers)."""
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    if initializers:
        types.update({t.name: t.data_type for t in g.initializer})
    return types


def int32_scatter_indices(model: onnx.ModelProto) -> int:
    """Rewrite, in place, the int64 indices of every ``ScatterElements`` as int32.

    Only where the data's extent along the scatter axis is static and below 2**31 (so every
    valid index, negative ones included, fits). When the indices are an ``Expand`` of a
    smaller tensor, that tensor is cast and expanded instead.

    Returns:
        How many nodes were rewritten.
    """
    from onnx import TensorProto, helper

    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    elem_type = _elem_types(g)
    new_nodes = []
    count = 0
    for node in g.node:
        if node.op_type != "ScatterElements" or node.domain not in ("", "ai.onnx"):
            new_nodes.append(node)
            continue
        data, indices, _ = node.input
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        dims = _dims_of(model, data)
        if elem_type.get(indices) != TensorProto.INT64 or dims is None or not dims:
            new_nodes.append(node)
            continue
        extent = dims[axis % len(dims)]
        if extent is None or extent >= 2**31:
            new_nodes.append(node)
            continue
        p = f"{node.name or f'scatter{count}'}_i32"
        src = producer.get(indices)
        if src is not None and src.op_type == "Expand" and src.domain in ("", "ai.onnx"):
            new_nodes += [
                helper.make_node(
                    "Cast", [src.input[0]], [f"{p}_small"], name=f"{p}_cast", to=TensorProto.INT32
                ),
                helper.make_node(
                    "Expand", [f"{p}_small", src.input[1]], [f"{p}_idx"], name=f"{p}_expand"
                ),
            ]
        else:
            new_nodes.append(
                helper.make_node(
                    "Cast", [indices], [f"{p}_idx"], name=f"{p}_cast", to=TensorProto.INT32
                )
            )
        node.input[1] = f"{p}_idx"
        new_nodes.append(node)
        count += 1
    return _replace_nodes(model, new_nodes, count)


def unfold_filled_constants(model: onnx.ModelProto, *, min_elements: int = 64) -> int:
    """Replace, in place, every initializer of at least ``min_elements`` elements that holds
    one value repeated by a ``ConstantOfShape`` making the same tensor (same name, dtype and
    shape; the shape is also recorded in ``value_info`` for later rewrites).

    Returns:
        How many initializers were replaced.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    g = model.graph
    graph_inputs = {i.name for i in g.input}
    described = {v.name for v in g.value_info}
    keep, new_nodes = [], []
    for init in g.initializer:
        if init.name in graph_inputs or int(np.prod(init.dims)) < min_elements:
            keep.append(init)
            continue
        value = numpy_helper.to_array(init)
        if value.size == 0 or value.dtype.kind not in "biuf":  # numbers and booleans only
            keep.append(init)
            continue
        first = value.flat[0]
        if not (np.all(value == first) or (np.isnan(first) and np.all(np.isnan(value)))):
            keep.append(init)
            continue
        shape = numpy_helper.from_array(
            np.asarray(value.shape, dtype=np.int64), f"{init.name}_unfolded_shape"
        )
        keep.append(shape)
        new_nodes.append(
            helper.make_node(
                "ConstantOfShape",
                [shape.name],
                [init.name],
                name=f"{init.name}_unfolded",
                value=numpy_helper.from_array(np.asarray([first], dtype=value.dtype)),
            )
        )
        if init.name not in described:
            g.value_info.append(
                helper.make_tensor_value_info(init.name, init.data_type, list(value.shape))
            )
    if new_nodes:
        del g.initializer[:]
        g.initializer.extend(keep)
        nodes = [*new_nodes, *g.node]
        del g.node[:]
        g.node.extend(nodes)
    return len(new_nodes)


def remove_dead_nodes(model: onnx.ModelProto) -> int:
    """Remove, in place, nodes of the main graph none of whose outputs is used (onnxruntime
    does not always drop them itself); returns how many were removed."""
    g = model.graph
    removed = 0
    while True:
        used = {o.name for o in g.output}
        for n in g.node:
            used.update(n.input)
            for a in n.attribute:  # subgraphs may read outer names
                for sub in [a.g, *a.graphs] if a.HasField("g") or len(a.graphs) else []:
                    for sn in sub.node:
                        used.update(sn.input)
        keep = [n for n in g.node if any(o in used for o in n.output if o)]
        if len(keep) == len(g.node):
            graph_inputs = {i.name for i in g.input}
            inits = [t for t in g.initializer if t.name in used or t.name in graph_inputs]
            if len(inits) != len(g.initializer):
                del g.initializer[:]
                g.initializer.extend(inits)
            return removed
        removed += len(g.node) - len(keep)
        del g.node[:]
        g.node.extend(keep)


def single_thread_scatter_nd(model: onnx.ModelProto) -> int:
    """Rewrite, in place, row scatters with a reduction as ``ScatterND`` (one thread only).

    A ``ScatterElements`` whose indices are one index per row, expanded over the row's
    channels (``(N, 1)`` expanded to ``(N, C)`` along axis 0, or ``(1, N)`` expanded to
    ``(C, N)`` along axis 1 of channels-first data), is a ``ScatterND`` of whole rows:
    ``(N, 1)`` indices, ``(N, C)`` updates (channels-first data and updates are transposed
    around it; a constant fill is made transposed, and updates that are a product with a
    constant matrix are computed transposed). onnxruntime runs the scatter about 5x faster,
    with the same reduction order per element, hence the same result (bit for bit in the
    tests; a transposed product may in principle round differently), **but only in a
    single-threaded CPU session**: with more intra-op threads its reduction races on
    duplicate indices. The runner applies it only to CPU sessions created with
    ``threads=1``.

    Returns:
        How many nodes were rewritten.
    """
    from onnx import TensorProto, helper

    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    elem_type = _elem_types(g, initializers=False)
    new_nodes = []
    count = 0
    for node in g.node:
        reduction = next((a.s.decode() for a in node.attribute if a.name == "reduction"), "none")
        if (
            node.op_type != "ScatterElements"
            or node.domain not in ("", "ai.onnx")
            or reduction == "none"
        ):
            new_nodes.append(node)
            continue
        data, indices, updates = node.input
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        dims = _dims_of(model, data)
        src = producer.get(indices)
        if dims is None or len(dims) != 2 or dims[axis] is None or src is None:
            new_nodes.append(node)
            continue
        if src.op_type != "Expand":
            new_nodes.append(node)
            continue
        small = src.input[0]
        cast = producer.get(small)
        if cast is not None and cast.op_type == "Cast" and elem_type.get(cast.input[0]) == 7:
            small = cast.input[0]  # the int64 index before an int32 cast
        sdims = _dims_of(model, small)
        if sdims is None or len(sdims) != 2 or sdims[1 - axis % 2] != 1:
            new_nodes.append(node)
            continue
        p = f"{node.name or f'scatter{count}'}_nd"
        if not any(t.name == "perceive_nd_rows" for t in g.initializer):
            g.initializer.extend(
                [
                    helper.make_tensor("perceive_nd_rows", TensorProto.INT64, [2], [-1, 1]),
                    helper.make_tensor("perceive_nd_flat", TensorProto.INT64, [1], [-1]),
                    helper.make_tensor("perceive_nd_zero", TensorProto.INT64, [], [0]),
                ]
            )
        extent = dims[axis]
        g.initializer.append(helper.make_tensor(f"{p}_extent", TensorProto.INT64, [], [extent]))
        new_nodes += [
            helper.make_node("Cast", [small], [f"{p}_i64"], name=f"{p}_i64", to=TensorProto.INT64),
            helper.make_node(
                "Reshape", [f"{p}_i64", "perceive_nd_flat"], [f"{p}_flat"], name=f"{p}_flat"
            ),
            # negative indices count from the end, as in ScatterElements
            helper.make_node(
                "Less", [f"{p}_flat", "perceive_nd_zero"], [f"{p}_neg"], name=f"{p}_neg"
            ),
            helper.make_node("Add", [f"{p}_flat", f"{p}_extent"], [f"{p}_wrap"], name=f"{p}_wrap"),
            helper.make_node(
                "Where", [f"{p}_neg", f"{p}_wrap", f"{p}_flat"], [f"{p}_pos"], name=f"{p}_pos"
            ),
            helper.make_node(
                "Reshape", [f"{p}_pos", "perceive_nd_rows"], [f"{p}_idx"], name=f"{p}_idx"
            ),
        ]
        if axis % 2 == 0:
            new_nodes.append(
                helper.make_node(
                    "ScatterND",
                    [data, f"{p}_idx", updates],
                    [node.output[0]],
                    name=f"{p}_scatter",
                    reduction=reduction,
                )
            )
            count += 1
            continue
        # Channels-first (C, P): scatter rows of the transposed tensors. A constant fill is
        # made transposed, and a (C, K) @ (K, N) product of a constant is computed transposed.
        data_t, upd_t = f"{p}_dt", f"{p}_ut"
        dsrc = producer.get(data)
        fill = None
        if dsrc is not None and dsrc.op_type == "Expand" and dims[0] is not None:
            fill = _scalar_constant(model, dsrc.input[0])
        if fill is not None:
            g.initializer.extend(
                [
                    helper.make_tensor(f"{p}_fill", fill[0], [1, 1], [fill[1]]),
                    helper.make_tensor(f"{p}_dshape", TensorProto.INT64, [2], [dims[1], dims[0]]),
                ]
            )
            new_nodes.append(
                helper.make_node("Expand", [f"{p}_fill", f"{p}_dshape"], [data_t], name=data_t)
            )
        else:
            new_nodes.append(
                helper.make_node("Transpose", [data], [data_t], name=data_t, perm=[1, 0])
            )
        usrc = producer.get(updates)
        weight = None
        if usrc is not None and usrc.op_type == "MatMul":
            weight = _initializer_array(model, usrc.input[0])
        if weight is not None and weight.ndim == 2 and _rank_of(model, usrc.input[1]) == 2:
            from onnx import numpy_helper

            g.initializer.append(numpy_helper.from_array(weight.T.copy(), f"{p}_wt"))
            new_nodes += [
                helper.make_node(
                    "Transpose", [usrc.input[1]], [f"{p}_bt"], name=f"{p}_bt", perm=[1, 0]
                ),
                helper.make_node("MatMul", [f"{p}_bt", f"{p}_wt"], [upd_t], name=upd_t),
            ]
        else:
            new_nodes.append(
                helper.make_node("Transpose", [updates], [upd_t], name=upd_t, perm=[1, 0])
            )
        new_nodes += [
            helper.make_node(
                "ScatterND",
                [data_t, f"{p}_idx", upd_t],
                [f"{p}_out"],
                name=f"{p}_scatter",
                reduction=reduction,
            ),
            helper.make_node(
                "Transpose", [f"{p}_out"], [node.output[0]], name=f"{p}_back", perm=[1, 0]
            ),
        ]
        count += 1
    return _replace_nodes(model, new_nodes, count)


def apply_all(
    model: onnx.ModelProto,
    *,
    threads: int | None = None,
    providers: Sequence[str] = ("CPUExecutionProvider",),
) -> int:
    """Apply every rewrite of this module in place; returns how many nodes were rewritten.

    Args:
        model: the model.
        threads: the intra-op threads of the session it is for.
        providers: the session's execution providers. Only for a CPU-only session with
            exactly 1 thread is :func:`single_thread_scatter_nd` applied too (it is only
            exact single-threaded on onnxruntime's CPU provider).
    """
    n = 0
    if threads == 1 and list(providers) == ["CPUExecutionProvider"]:
        n += single_thread_scatter_nd(model)
    n += flatten_scatter_elements(model)
    return n + int32_scatter_indices(model)


def optimized_model(
    path: str | Path,
    *,
    threads: int | None = None,
    providers: Sequence[str] = ("CPUExecutionProvider",),
) -> tuple[bytes | None, int]:
    """The serialized model at ``path`` with every rewrite applied (see :func:`apply_all`):
    ``(bytes, rewrites)``; ``(None, 0)`` when nothing applies (load the file itself then)."""
    import onnx

    model = onnx.load(str(path))
    n = apply_all(model, threads=threads, providers=providers)
    return (model.SerializeToString() if n else None), n
