"""FP16 and INT8 variants of an exported model, and their accuracy change beside their latency.

- :func:`convert_fp16`: weights and dense compute in float16 for GPUs, with onnxruntime's
  float16 converter. The graph's inputs and outputs keep their types (float32 points and
  calibration, uint8 images, float32/int64 outputs), and the geometry stays in float32: every
  node computed from the points or the calibration before a learned layer (voxel indices,
  projections), scatters (float16 accumulation loses counts) and index arithmetic.
- :func:`quantize_int8`: static INT8 quantization for CPUs with
  ``onnxruntime.quantization.quantize_static`` (QDQ format, per-channel weights), calibrated
  on the inputs of generated frames. Only the learned layers (Conv, MatMul, Gemm) are
  quantized; the geometry stays in float32.
- :func:`compare_variants`: latency and mAPH (LEVEL_2) of each variant on the same frames.

A variant keeps the model's ``perceive.*`` metadata and adds ``perceive.precision``.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from perceive.errors import ConfigError, DataError, PerceiveError

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from perceive.datasets.types import Frame
    from perceive.deploy.runner import ModelInputs

#: Precisions a variant can have.
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
#: Inputs carrying geometry: nodes computed from them stay float32 in the FP16 variant.
GEOMETRY_INPUTS: tuple[str, ...] = ("points", "intrinsics", "extrinsics")
#: Ops with learned weights: the end of the geometry part of the graph.
LEARNED_OPS: frozenset[str] = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "Einsum"})
#: Ops kept in float32 in the FP16 variant wherever they are (on top of onnxruntime's own list):
#: scatters (float16 accumulation), index arithmetic, and ops without float16 CPU kernels.
FP16_BLOCKED_OPS: tuple[str, ...] = (
    "ScatterND",
    "ScatterElements",
    "NonZero",
    "Floor",
    "Ceil",
    "Round",
    "Mod",
    "Range",
    "CumSum",
    "TopK",
    "NonMaxSuppression",
    "ReduceMin",
    "ReduceMax",
    "ArgMax",
    "ArgMin",
    "Sigmoid",
)
#: Ops quantized in the INT8 variant.
INT8_OPS: tuple[str, ...] = ("Conv", "MatMul", "Gemm")


# --------------------------------------------------------------------------- graph helpers


def _topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` in place so that every node follows the producers of its inputs.

    onnxruntime's float16 converter appends the casts it inserts at the end of the node list.
    """
    produced = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    users: list[list[int]] = [[] for _ in graph.node]
    indeg = [0] * len(graph.node)
    for i, n in enumerate(graph.node):
        deps = {produced[x] for x in n.input if x in produced}
        indeg[i] = len(deps)
        for d in deps:
            users[d].append(i)
    queue = deque(i for i, d in enumerate(indeg) if d == 0)
    order = []
    while queue:
        i = queue.popleft()
        order.append(i)
        for u in users[i]:
            indeg[u] -= 1
            if indeg[u] == 0:
                queue.append(u)
    if len(order) != len(graph.node):
        raise DataError("the graph has a cycle; cannot sort it", field="graph.node")
    nodes = [graph.node[i] for i in order]
    del graph.node[:]
    graph.node.extend(nodes)


def _drop_duplicate_producers(graph: onnx.GraphProto) -> int:
    """Remove repeated copies of a node that writes an output another node already writes.

    Some versions of onnxruntime's float16 converter (1.31) insert one ``Cast`` back to
    float32 per consumer of a float16 initializer, all with the same output name, which
    breaks single static assignment. Copies with the same op, inputs and attributes compute
    the same value, so the first is kept. Returns the number of nodes removed; two different
    nodes writing one name raise :class:`~perceive.errors.DataError`.
    """
    first: dict[str, onnx.NodeProto] = {}
    keep: list[onnx.NodeProto] = []
    for n in graph.node:
        clash = [o for o in n.output if o and o in first]
        if not clash:
            keep.append(n)
            first.update({o: n for o in n.output if o})
            continue
        other = first[clash[0]]
        same = (
            n.op_type == other.op_type
            and n.domain == other.domain
            and list(n.input) == list(other.input)
            and list(n.output) == list(other.output)
            and [a.SerializeToString() for a in n.attribute]
            == [a.SerializeToString() for a in other.attribute]
        )
        if not same:
            raise DataError(
                f"nodes {other.name!r} ({other.op_type}) and {n.name!r} ({n.op_type}) both "
                f"write {clash[0]!r}",
                field="graph.node",
            )
    removed = len(graph.node) - len(keep)
    if removed:
        del graph.node[:]
        graph.node.extend(keep)
    return removed


def _name_nodes(graph: onnx.GraphProto) -> None:
    """Give every unnamed node a unique name (the converters address nodes by name)."""
    used = {n.name for n in graph.node if n.name}
    for i, n in enumerate(graph.node):
        if not n.name:
            name = f"perceive_node_{i}"
            while name in used:
                name += "_"
            n.name = name
            used.add(name)


def geometry_nodes(graph: onnx.GraphProto, inputs: Sequence[str] = GEOMETRY_INPUTS) -> list[str]:
    """Names of the nodes computed from the geometry ``inputs`` before any learned layer.

    A node is geometry when one of its inputs is a geometry input or the output of a geometry
    node, and it is not itself a learned op (:data:`LEARNED_OPS` with a constant weight).
    """
    consts = {t.name for t in graph.initializer}
    consts |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    geo_values = set(inputs)
    names = []
    for n in graph.node:  # topologically sorted
        if not any(x in geo_values for x in n.input):
            continue
        learned = n.op_type in LEARNED_OPS and any(x in consts for x in n.input[1:2])
        if learned:
            continue
        names.append(n.name)
        geo_values.update(o for o in n.output if o)
    return names


def _load(path: str | Path) -> onnx.ModelProto:
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    try:
        return onnx.load(str(path))
    except Exception as e:  # onnx raises DecodeError and friends
        raise DataError(f"not an ONNX model: {e}", path=path) from None


def _set_metadata(model: onnx.ModelProto, key: str, value: str) -> None:
    for p in model.metadata_props:
        if p.key == key:
            p.value = value
            return
    model.metadata_props.add(key=key, value=value)


def source_digest(path: str | Path) -> str:
    """SHA-256 of a model file: a variant records the digest of the model it was made from."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _save(model: onnx.ModelProto, dst: str | Path, src: str | Path) -> Path:
    """Check the variant, then write it and its sidecar (decoded as the export's sidecar is),
    recording the digest of ``src`` in ``perceive.variant_of``."""
    import onnx

    from perceive.deploy.export import decode_metadata
    from perceive.deploy.integrity import stamp_graph_digest
    from perceive.io.atomic import atomic_write_bytes, atomic_write_text

    _set_metadata(model, "perceive.variant_of", source_digest(src))
    onnx.checker.check_model(model)  # before writing: a broken variant never lands on disk
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dst, stamp_graph_digest(model)[0])  # its own graph's digest
    meta = decode_metadata({p.key: p.value for p in model.metadata_props})
    atomic_write_text(dst.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return dst


def _variant_of(path: Path) -> str | None:
    """The ``perceive.variant_of`` digest a variant file records (None: unreadable, none)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # a damaged file is made again
        return None
    return next((p.value for p in proto.metadata_props if p.key == "perceive.variant_of"), None)


def _calibration_source(path: Path) -> str | None:
    """The calibration source an INT8 variant records (None: unreadable, none)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
        raw = next(p.value for p in proto.metadata_props if p.key == "perceive.int8_calibration")
        return str(json.loads(raw).get("source"))
    except Exception:  # a damaged or older variant is made again
        return None


# --------------------------------------------------------------------------- FP16


def convert_fp16(src: str | Path, dst: str | Path, *, keep_geometry_fp32: bool = True) -> Path:
    """Write the FP16 variant of the model at ``src`` to ``dst`` (and its JSON sidecar).

    Args:
        src: an exported perceive model (float32).
        dst: where to write the variant.
        keep_geometry_fp32: keep :func:`geometry_nodes` in float32 (recommended: float16 has
            about 3 significant digits, 6 cm at 75 m).

    Returns:
        ``dst``. Inputs and outputs keep their types; initializers of converted nodes are float16.
    """
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = _load(src)
    _name_nodes(model.graph)
    blocked = geometry_nodes(model.graph) if keep_geometry_fp32 else []
    try:
        out = convert_float_to_float16(
            model,
            keep_io_types=True,
            op_block_list=sorted(set(DEFAULT_OP_BLOCK_LIST) | set(FP16_BLOCKED_OPS)),
            node_block_list=blocked,
        )
    except Exception as e:  # the converter raises plain exceptions
        raise PerceiveError(f"{src}: FP16 conversion failed: {e}") from e
    _drop_duplicate_producers(out.graph)
    _topological_sort(out.graph)
    # The converter may describe a float32 initializer it left alone (one feeding a blocked
    # node) as float16 in value_info; the initializer is what counts, so drop those entries.
    inits = {t.name for t in out.graph.initializer}
    kept = [v for v in out.graph.value_info if v.name not in inits]
    del out.graph.value_info[:]
    out.graph.value_info.extend(kept)
    _set_metadata(out, "perceive.precision", "fp16")
    return _save(out, dst, src)


# --------------------------------------------------------------------------- INT8


class _Reader:
    """``CalibrationDataReader`` over prepared inputs (duck-typed: ``get_next`` / ``rewind``)."""

    def __init__(self, inputs: Sequence[ModelInputs]) -> None:
        self._inputs = list(inputs)
        self._it: Iterator[ModelInputs] = iter(self._inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        nxt = next(self._it, None)
        return None if nxt is None else nxt.feeds()

    def rewind(self) -> None:
        self._it = iter(self._inputs)

    def __len__(self) -> int:
        return len(self._inputs)


def quantize_int8(
    src: str | Path,
    dst: str | Path,
    calibration: Iterable[ModelInputs],
    *,
    per_channel: bool = True,
    method: Literal["minmax", "entropy", "percentile"] = "minmax",
    op_types: Sequence[str] = INT8_OPS,
    calibration_source: str = "",
) -> Path:
    """Write the static INT8 (QDQ) variant of the model at ``src`` to ``dst``.

    Args:
        src: an exported perceive model (float32).
        dst: where to write the variant.
        calibration: model inputs (:meth:`Detector.prepare` of generated frames) whose
            activation ranges set the quantization scales; a few frames suffice.
        per_channel: one weight scale per output channel.
        method: how activation ranges are found from the calibration data.
        op_types: which ops to quantize (activations uint8, weights int8).
        calibration_source: what the calibration frames were, recorded in
            ``perceive.int8_calibration`` (:func:`make_variant` reuses a variant only for
            the same source).
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    calib = list(calibration)
    if not calib:
        raise ConfigError("INT8 quantization needs at least one calibration frame")
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in methods:
        raise ConfigError(f"method must be one of {sorted(methods)}, got {method!r}")
    import logging

    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = _load(src)
    dst = Path(dst)
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory(prefix="perceive_int8_") as tmp:
        # onnxruntime's recommended pre-processing (shape inference, Conv+BN folding and other
        # fusions) so that the quantized ops are the ones that run; the symbolic shape
        # inference cannot follow data-dependent shapes (NonZero), so it is skipped.
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            work = onnx.load(str(pre))
        except Exception:  # pre-processing is an optimisation only
            work = onnx.load(str(src))
        _name_nodes(work.graph)
        exclude = geometry_nodes(work.graph)
        named = Path(tmp) / "named.onnx"
        onnx.save(work, str(named))
        out = Path(tmp) / "int8.onnx"
        try:
            root.setLevel(logging.ERROR)  # the quantizer logs advice on the root logger
            quantize_static(
                named,
                out,
                _Reader(calib),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(op_types),
                per_channel=per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=exclude,
                calibrate_method=methods[method],
                extra_options={"CalibTensorRangeSymmetric": False},
            )
        except Exception as e:  # onnxruntime's quantizer raises plain exceptions
            raise PerceiveError(f"{src}: INT8 quantization failed: {e}") from e
        finally:
            root.setLevel(level)
        qmodel = onnx.load(str(out))
    del qmodel.metadata_props[:]
    for p in model.metadata_props:
        qmodel.metadata_props.add(key=p.key, value=p.value)
    _set_metadata(qmodel, "perceive.precision", "int8")
    _set_metadata(
        qmodel,
        "perceive.int8_calibration",
        json.dumps({"frames": len(calib), "method": method, "source": calibration_source}),
    )
    return _save(qmodel, dst, src)


# --------------------------------------------------------------------------- variants


def generated_frames(n: int, *, seed: int = 1000, realistic: bool = False) -> list[Frame]:
    """``n`` generated frames for calibration and benchmarks.

    ``realistic``: Waymo-sized sensors (TOP 64 x 2650 range images, 1920 x 1280 images), for
    timings; otherwise tiny frames (:func:`perceive.datasets.waymo.fixtures.make_frame`).
    """
    from perceive.datasets.waymo.fixtures import make_frame

    if n < 1:
        raise ConfigError(f"need at least one frame, got {n}")
    if not realistic:
        return [make_frame(seed + i) for i in range(n)]
    return [
        make_frame(
            seed + i,
            top_shape=(64, 2650),
            side_shape=(200, 600),
            image_size=(1920, 1280),
            num_boxes=20,
        )
        for i in range(n)
    ]


def variant_path(model: str | Path, precision: str, out_dir: str | Path | None = None) -> Path:
    """Where the ``precision`` variant of ``model`` is written: ``<stem>.<precision>.onnx``."""
    model = Path(model)
    folder = Path(out_dir) if out_dir is not None else model.parent
    return folder / f"{model.stem}.{precision}.onnx"


def make_variant(
    model: str | Path,
    precision: str,
    *,
    out_dir: str | Path | None = None,
    calibration_frames: Sequence[Frame] | None = None,
    calibration_source: str | None = None,
    reuse: bool = True,
) -> Path:
    """The ``precision`` variant of ``model``: the model itself for ``fp32``, else converted.

    Args:
        model: the float32 export.
        precision: ``fp32``, ``fp16`` or ``int8``.
        out_dir: folder for the variant (default: beside the model).
        calibration_frames: frames for INT8 calibration (default: 8 generated frames).
        calibration_source: a name for those frames that changes when they change (the
            benchmark gives a digest of their records); None: ``"frames:<ids>"`` from
            the frames' segments and timestamps, or ``"generated:8"`` for the default.
        reuse: keep an existing variant made from this very model (its recorded SHA-256
            of the model file matches) and, for INT8, from the same calibration source;
            otherwise, or with False, make it again.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    model = Path(model)
    if precision == "fp32":
        return model
    dst = variant_path(model, precision, out_dir)
    source = ""
    if precision == "int8":
        source = calibration_source or (
            "generated:8"  # generated_frames(8) is the same every time: made only when used
            if calibration_frames is None
            else "frames:"
            + ",".join(f"{f.context.segment}@{f.timestamp_us}" for f in calibration_frames)
        )
    if (
        reuse
        and dst.is_file()
        and model.is_file()
        and _variant_of(dst) == source_digest(model)
        and (precision != "int8" or _calibration_source(dst) == source)
    ):
        return dst
    if precision == "fp16":
        return convert_fp16(model, dst)
    from perceive.deploy.runner import Detector

    det = Detector(model, device="cpu")
    frames = calibration_frames if calibration_frames is not None else generated_frames(8)
    inputs = [det.prepare(*det.inputs_from_frame(f)) for f in frames]
    return quantize_int8(model, dst, inputs, calibration_source=source)


@dataclass(frozen=True)
class VariantReport:
    """Latency and accuracy of one precision variant."""

    precision: str
    """``fp32``, ``fp16`` or ``int8``."""
    path: str
    """The variant's file."""
    size_mb: float
    """File size, MB."""
    device: str
    """Device it ran on."""
    latency_ms_p50: float | None
    """Median model-inference latency, ms (None: it could not run here)."""
    latency_ms_mean: float | None
    """Mean model-inference latency, ms."""
    maph_l2: float | None
    """mAPH LEVEL_2 on the evaluation frames (None: not measured)."""
    maph_l2_change: float | None
    """``maph_l2`` minus the fp32 model's."""
    max_score_diff: float | None
    """Largest |score - fp32 score| over the evaluation frames' top detections."""
    note: str = ""
    """Why something is missing."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        from dataclasses import asdict

        return asdict(self)


def _evaluate_maph_l2(dets_per_frame: Sequence[Any], frames: Sequence[Frame]) -> float | None:
    """mAPH LEVEL_2 of detections against the frames' labels with :mod:`perceive.evaluation`
    (None where that module is not installed)."""
    try:
        from perceive.evaluation import (
            FrameDetections,
            evaluate_detections,
            ground_truth_from_frames,
        )
    except ImportError:
        return None
    preds = []
    for d, f in zip(dets_per_frame, frames, strict=True):
        b = d.to_boxes3d()
        preds.append(
            FrameDetections.from_arrays(f.segment, f.timestamp_us, d.boxes, d.scores, b.type)
        )
    return float(evaluate_detections(preds, ground_truth_from_frames(frames)).mean_aph_l2)


def compare_variants(
    model: str | Path,
    frames: Sequence[Frame],
    *,
    precisions: Sequence[str] = PRECISIONS,
    device: str = "cpu",
    threads: int | None = None,
    iters: int = 10,
    out_dir: str | Path | None = None,
    calibration_frames: Sequence[Frame] | None = None,
) -> list[VariantReport]:
    """Run every precision variant on the same frames: latency, mAPH L2 and its change.

    Args:
        model: the float32 export.
        frames: labelled frames to evaluate on (generated or real).
        precisions: variants to compare (fp32 is always run, as the reference).
        device, threads: where and how to run.
        iters: timed runs per variant (cycling over the frames' prepared inputs).
        out_dir: where variants are written.
        calibration_frames: INT8 calibration frames (must differ from ``frames`` for a fair figure).
    """
    import warnings

    from perceive.deploy.runner import Detector

    if not frames:
        raise ConfigError("compare_variants needs at least one frame")
    reports: list[VariantReport] = []
    ref_scores: list[np.ndarray] | None = None
    ref_maph: float | None = None
    order = ["fp32", *[p for p in precisions if p != "fp32"]]
    for precision in order:
        path = make_variant(
            model, precision, out_dir=out_dir, calibration_frames=calibration_frames
        )
        size = path.stat().st_size / 1e6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                det = Detector(path, device=device, threads=threads, score_threshold=0.0)
            except PerceiveError as e:
                reports.append(
                    VariantReport(
                        precision, str(path), size, device, None, None, None, None, None, str(e)
                    )
                )
                continue
        prepared = [det.prepare(*det.inputs_from_frame(f)) for f in frames]
        try:
            outs = [det.postprocess(det.infer(x)[0]) for x in prepared]
        except Exception as e:  # onnxruntime: no kernel for a float16 op on this device, etc.
            note = f"cannot run on {det.device}: {str(e).splitlines()[0][:200]}"
            reports.append(
                VariantReport(
                    precision, str(path), size, det.device, None, None, None, None, None, note
                )
            )
            continue
        times = []
        for i in range(iters):
            t0 = time.perf_counter()
            det.infer(prepared[i % len(prepared)])
            times.append(time.perf_counter() - t0)
        maph = _evaluate_maph_l2(outs, frames)
        scores = [o.scores for o in outs]
        diff = None
        if ref_scores is not None:
            diff = max(
                (
                    float(
                        np.abs(a[: min(len(a), len(b))] - b[: min(len(a), len(b))]).max(initial=0.0)
                    )
                )
                for a, b in zip(scores, ref_scores, strict=True)
            )
        else:
            ref_scores, ref_maph = scores, maph
        note = "" if maph is not None else "mAPH not measured: perceive.evaluation is not available"
        if det.device != device:
            note = (note + "; " if note else "") + (det.fallback_message or f"ran on {det.device}")
        reports.append(
            VariantReport(
                precision=precision,
                path=str(path),
                size_mb=size,
                device=det.device,
                latency_ms_p50=float(np.median(times) * 1e3),
                latency_ms_mean=float(np.mean(times) * 1e3),
                maph_l2=maph,
                maph_l2_change=None if maph is None or ref_maph is None else maph - ref_maph,
                max_score_diff=diff,
                note=note,
            )
        )
    return reports


def format_variant_table(reports: Sequence[VariantReport]) -> str:
    """The reports as a terminal table."""
    head = (
        f"{'precision':<9} {'device':<8} {'size MB':>8} {'p50 ms':>8} {'mean ms':>8} "
        f"{'mAPH L2':>8} {'change':>8} {'max dscore':>10}  note"
    )
    rows = [head, "-" * len(head)]

    def f(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    for r in reports:
        rows.append(
            f"{r.precision:<9} {r.device:<8} {r.size_mb:8.2f} {f(r.latency_ms_p50, '8.2f'):>8} "
            f"{f(r.latency_ms_mean, '8.2f'):>8} {f(r.maph_l2, '8.4f'):>8} "
            f"{f(r.maph_l2_change, '+8.4f'):>8} "
            f"{f(r.max_score_diff, '10.4f'):>10}  {r.note}"
        )
    return "\n".join(rows)
