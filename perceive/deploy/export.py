"""One-graph ONNX export of a detector, its metadata, and the parity check against PyTorch.

``export_onnx(model_or_checkpoint, "exports/fusion.onnx")`` writes

* ``fusion.onnx``: one graph from raw points, uint8 images and calibration to boxes,
  scores and labels; standard ONNX domain only, opset >= 18, ``N`` (points) dynamic,
  checked with ``onnx.checker`` (full check, with shape inference);
* ``fusion.json``: the sidecar, the same ``perceive.*`` keys as the model's
  ``metadata_props`` with structured values decoded.

It uses the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, onnxscript). By
default the traced module is :class:`perceive.models.inference.InferenceDetector`: the same
function as :meth:`perceive.models.detector.Detector.forward` with the same weights,
expressed with fewer and cheaper operators (one channels-first scatter-max for the pillars,
the lift sampling only what the cameras see, the regression head at the decoded cells);
``formulation="eager"`` traces ``Detector.forward`` itself. Parity with the eager model is
checked by :func:`check_parity`.
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceive import __version__
from perceive.errors import ConfigError, DataError
from perceive.io.atomic import atomic_write_bytes, atomic_write_text
from perceive.models.config import DetectorConfig
from perceive.models.detector import INPUT_NAMES, OUTPUT_NAMES, Detector

#: Lowest opset the exporter accepts (ScatterElements max reduction needs 18).
MIN_OPSET = 18
#: Default opset of :func:`export_onnx`.
DEFAULT_OPSET = 18
#: What :func:`export_onnx` can write: the inference formulation or the eager forward.
FORMULATIONS = ("inference", "eager")
#: Node domains that count as the standard ONNX operator set.
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
#: Metadata keys whose values are JSON (the others are plain strings).
JSON_KEYS = frozenset(
    {
        "perceive.class_names",
        "perceive.cameras",
        "perceive.image_size",
        "perceive.point_features",
        "perceive.max_points",
        "perceive.grid",
        "perceive.score_threshold",
        "perceive.provenance",
        "perceive.max_detections",
        "perceive.config",
        "perceive.int8_calibration",
        "perceive.inputs",
        "perceive.outputs",
    }
)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote."""

    onnx_path: Path
    """The ``.onnx`` file."""
    sidecar_path: Path
    """The JSON sidecar next to it."""
    metadata: dict[str, str]
    """The ``metadata_props`` written into the model."""
    num_nodes: int
    """Nodes in the graph."""
    opset: int
    """Default-domain opset."""


def git_commit(cwd: str | Path | None = None) -> str:
    """The current git commit hash, with ``-dirty`` appended when tracked files have
    uncommitted changes (``"unknown"`` outside a repository)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return "unknown"
    changes = git("status", "--porcelain", "--untracked-files=no")
    return f"{head}-dirty" if changes else head


def model_metadata(
    config: DetectorConfig, provenance: dict[str, Any] | None = None
) -> dict[str, str]:
    """The ``perceive.*`` metadata of an exported model (string values, JSON where structured).

    Args:
        config: the detector configuration.
        provenance: JSON-able description of the training (config, data, iterations, metrics).
            ``date`` and ``git_commit`` are filled in when missing.
    """
    prov = dict(provenance or {})
    prov.setdefault("exported", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    prov.setdefault("git_commit", git_commit(Path(__file__).parent))
    g = config.grid
    meta: dict[str, Any] = {
        "perceive.version": __version__,
        "perceive.class_names": list(config.class_names),
        "perceive.cameras": list(config.camera.cameras),
        "perceive.image_size": list(config.camera.image_size),
        "perceive.point_features": list(config.pillars.point_features),
        "perceive.max_points": int(config.pillars.max_points),
        "perceive.grid": {
            "point_cloud_range": list(g.point_cloud_range),
            "voxel_size": list(g.voxel_size),
            "shape": list(g.shape),
            "heatmap_stride": config.bev.out_stride,
        },
        "perceive.score_threshold": float(config.head.score_threshold),
        "perceive.variant": config.variant,
        "perceive.max_detections": int(config.head.max_detections),
        "perceive.provenance": prov,
        "perceive.config": config.to_dict(),
        "perceive.inputs": list(INPUT_NAMES),
        "perceive.outputs": list(OUTPUT_NAMES),
    }
    return {k: json.dumps(v, sort_keys=True) if k in JSON_KEYS else str(v) for k, v in meta.items()}


def decode_metadata(props: dict[str, str]) -> dict[str, Any]:
    """``metadata_props`` -> values (JSON keys decoded); the sidecar's content."""
    out: dict[str, Any] = {}
    for k, v in props.items():
        if k in JSON_KEYS:
            try:
                out[k] = json.loads(v)
            except json.JSONDecodeError as e:
                raise DataError(f"metadata value is not JSON: {e}", field=k) from None
        else:
            out[k] = v
    return out


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The decoded ``perceive.*`` metadata of an ONNX file (without loading its weights)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such ONNX model: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf decode errors have several types
        raise DataError(f"not an ONNX model: {e}", path=path) from None
    props = {p.key: p.value for p in model.metadata_props if p.key.startswith("perceive.")}
    try:
        return decode_metadata(props)
    except DataError as e:
        raise DataError(e.reason, path=path, field=e.field) from None


def non_standard_nodes(model: Any) -> list[str]:
    """``"domain::op_type"`` of every node outside the standard ONNX domain, subgraphs and
    local functions included (an empty list means one graph of standard ops).

    Args:
        model: an ``onnx.ModelProto``.
    """
    bad: list[str] = []

    def visit(nodes: Iterable[Any]) -> None:
        for node in nodes:
            if node.domain not in STANDARD_DOMAINS:
                bad.append(f"{node.domain}::{node.op_type}")
            for attr in node.attribute:
                if attr.g is not None and len(attr.g.node):
                    visit(attr.g.node)
                for g in attr.graphs:
                    visit(g.node)

    visit(model.graph.node)
    for fn in model.functions:
        bad.append(f"function {fn.domain}::{fn.name}")
        visit(fn.node)
    return bad


def example_inputs(
    config: DetectorConfig, num_points: int = 1024, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Random inputs of the right shapes and dtypes (points inside the grid, Waymo-like cameras).

    Returns:
        ``points`` (N, F) float32, ``images`` (C, H, W, 3) uint8, ``intrinsics`` (C, 9) float32,
        ``extrinsics`` (C, 4, 4) float32.
    """
    g = torch.Generator().manual_seed(seed)
    r = torch.tensor(config.grid.point_cloud_range, dtype=torch.float32)
    nf = len(config.pillars.point_features)
    pts = torch.rand(num_points, nf, generator=g)
    pts[:, :3] = r[:3] + pts[:, :3] * (r[3:] - r[:3])
    w, h = config.camera.image_size
    c = len(config.camera.cameras)
    images = torch.randint(0, 256, (c, h, w, 3), generator=g, dtype=torch.uint8)
    f = 1.07 * w
    intr = torch.tensor([f, f, w / 2, h / 2, 0.03, -0.3, 0.0, 0.0, 0.0]).repeat(c, 1)
    ext = torch.eye(4).repeat(c, 1, 1)
    for i in range(c):
        yaw = 2 * np.pi * i / c
        ext[i, 0, 0], ext[i, 0, 1], ext[i, 1, 0], ext[i, 1, 1] = (
            np.cos(yaw),
            -np.sin(yaw),
            np.sin(yaw),
            np.cos(yaw),
        )
        ext[i, 2, 3] = 2.0
    return pts, images, intr, ext


def export_onnx(
    model_or_checkpoint: Detector | str | Path,
    out_path: str | Path,
    *,
    provenance: dict[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    sidecar: bool = True,
    verbose: bool = False,
    formulation: str = "inference",
) -> ExportResult:
    """Export a detector to one ONNX graph with metadata, and its JSON sidecar.

    Args:
        model_or_checkpoint: a :class:`Detector` or the path of a checkpoint
            (:mod:`perceive.training.checkpoint`).
        out_path: the ``.onnx`` file to write (atomically); the sidecar is ``<stem>.json``.
        provenance: how the model was trained; for a checkpoint its own provenance is used
            and this dict updates it.
        opset: default-domain opset, >= 18.
        sidecar: also write the JSON sidecar.
        verbose: let the exporter print its progress.
        formulation: ``"inference"`` (default) exports
            :class:`~perceive.models.inference.InferenceDetector`, the same function as
            :meth:`Detector.forward` with cheaper operators (fused pillar layer, one scatter-max,
            separable lift projection, regression at the decoded cells only); ``"eager"``
            exports :meth:`Detector.forward` itself.

    Returns:
        :class:`ExportResult`.

    Raises:
        ConfigError: an opset outside what the installed ``onnx`` knows, an output that is
            not ``.onnx``, or an output (or its sidecar) that is the checkpoint itself.
        RuntimeError: the exported graph has non-standard nodes, or another opset than
            asked for (a bug).
    """
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ConfigError(
            f"opset must be in [{MIN_OPSET}, {newest}] (the newest the installed onnx "
            f"{onnx.__version__} knows), got {opset}"
        )
    if formulation not in FORMULATIONS:
        raise ConfigError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}")
    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise ConfigError(f"the output must be a .onnx file, got {out_path}")
    if not isinstance(model_or_checkpoint, Detector):
        src = Path(model_or_checkpoint).resolve()
        for what, p in (("output", out_path), ("sidecar", out_path.with_suffix(".json"))):
            if p.resolve() == src:
                raise ConfigError(f"the {what} {p} would overwrite the checkpoint it exports")
    if isinstance(model_or_checkpoint, Detector):
        model, prov = model_or_checkpoint, dict(provenance or {})
    else:
        from perceive.training.checkpoint import detector_from_checkpoint, load_checkpoint

        ckpt = load_checkpoint(model_or_checkpoint)
        model = detector_from_checkpoint(ckpt)
        prov = {
            **ckpt.provenance,
            "checkpoint": Path(ckpt.path).name,
            "step": ckpt.step,
            **(provenance or {}),
        }
    was_training = model.training
    model = model.eval().cpu()
    graph_model: torch.nn.Module = model
    if formulation == "inference":
        from perceive.models.inference import InferenceDetector

        graph_model = InferenceDetector(model).eval()
    args = example_inputs(model.config)
    num_points = torch.export.Dim("num_points", min=0, max=2**31 - 2)
    dynamic = {"points": {0: num_points}, "images": None, "intrinsics": None, "extrinsics": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                graph_model,
                args,
                dynamo=True,
                opset_version=opset,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=dynamic,
                optimize=True,
                verbose=verbose,
                external_data=False,
            )
    finally:
        model.train(was_training)
    proto = program.model_proto
    if len(proto.functions):
        proto = onnx.inliner.inline_local_functions(proto)
    from perceive.deploy.optimize import int32_scatter_indices, unfold_filled_constants

    if formulation == "inference":
        int32_scatter_indices(proto)
    unfold_filled_constants(proto)
    bad = non_standard_nodes(proto)
    if bad:
        raise RuntimeError(f"exported graph has non-standard nodes: {sorted(set(bad))}")
    meta = model_metadata(model.config, prov)
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "perceive"
    proto.producer_version = __version__
    proto.doc_string = (
        f"perceive {model.config.variant} detector: "
        f"points (N, {len(model.config.pillars.point_features)}) float32, images (C, H, W, 3) "
        "uint8, intrinsics (C, 9), extrinsics (C, 4, 4) -> boxes (K, 7), scores (K,), labels (K,)"
    )
    onnx.checker.check_model(proto, full_check=True)
    opset_used = next(o.version for o in proto.opset_import if o.domain in STANDARD_DOMAINS)
    if opset_used != opset:  # the exporter falls back to its own opset when conversion fails
        raise RuntimeError(f"the exporter wrote opset {opset_used}, not the requested {opset}")
    from perceive.deploy.integrity import DIGEST_KEY, stamp_graph_digest

    data, meta[DIGEST_KEY] = stamp_graph_digest(proto)
    atomic_write_bytes(out_path, data)
    side = out_path.with_suffix(".json")
    if sidecar:
        atomic_write_text(side, json.dumps(decode_metadata(meta), indent=2, sort_keys=True) + "\n")
    return ExportResult(
        onnx_path=out_path,
        sidecar_path=side,
        metadata=meta,
        num_nodes=len(proto.graph.node),
        opset=int(opset_used),
    )


# --------------------------------------------------------------------------- parity


@dataclass(frozen=True)
class ParityResult:
    """Largest differences between two detectors' outputs on one input."""

    num_points: int
    """N of the input."""
    max_score_diff: float
    """Largest |score difference| between the sorted score lists."""
    max_box_diff: float
    """Largest difference of a box coordinate between matched detections (heading wrapped)."""
    labels_match: bool
    """Every compared detection has a partner of the same class with a tied score."""
    num_compared: int = 0
    """Detections whose boxes were compared (those scoring above the last returned score)."""

    def within(self, *, box_atol: float, score_atol: float) -> bool:
        """Both differences within tolerance and the labels matched."""
        return (
            self.labels_match
            and self.max_box_diff <= box_atol
            and self.max_score_diff <= score_atol
        )


def compare_detections(
    a: Sequence[np.ndarray],
    b: Sequence[np.ndarray],
    *,
    score_atol: float = 1e-5,
    num_points: int = -1,
) -> ParityResult:
    """Compare two ``(boxes, scores, labels)`` outputs, robust to the order of tied scores.

    Scores are compared elementwise (both are sorted). Detections with scores within
    ``score_atol`` of each other may come in either order (``TopK`` breaks ties by its own
    rule), so each detection of ``a`` is matched to the closest box of ``b`` with the same
    label among those with a tied score. Detections tied with the lowest returned score
    are not compared: which members of a plateau of equal scores make the top-K cut is
    arbitrary (it happens on flat heatmaps, e.g. a LiDAR-only model given no points).
    """
    ba, sa, la = (np.asarray(x) for x in a)
    bb, sb, lb = (np.asarray(x) for x in b)
    if ba.shape != bb.shape or sa.shape != sb.shape or la.shape != lb.shape:
        return ParityResult(num_points, float("inf"), float("inf"), False)
    if sa.size == 0:
        return ParityResult(num_points, 0.0, 0.0, True)
    score_diff = float(np.abs(sa.astype(np.float64) - sb).max())
    tied = np.abs(sa[:, None].astype(np.float64) - sb[None, :]) <= score_atol
    same = la[:, None] == lb[None, :]
    d = np.abs(ba[:, None, :].astype(np.float64) - bb[None, :, :])
    d[..., 6] = np.abs((ba[:, None, 6] - bb[None, :, 6] + np.pi) % (2 * np.pi) - np.pi)
    cost = np.where(tied & same, d.max(axis=-1), np.inf)
    compared = sa.astype(np.float64) > float(sa[-1]) + score_atol
    best = cost.min(axis=1)[compared]
    if best.size == 0:
        return ParityResult(num_points, score_diff, 0.0, True, 0)
    labels_ok = bool(np.isfinite(best).all())
    box_diff = float(best.max()) if labels_ok else float("inf")
    return ParityResult(num_points, score_diff, box_diff, labels_ok, int(best.size))


def parity_inputs(
    config: DetectorConfig,
    *,
    count: int = 5,
    seed: int = 0,
    sizes: Sequence[int | None] | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Inputs of generated frames for parity checks, with clouds of several sizes.

    Each input is a generated frame (:func:`perceive.datasets.waymo.fixtures.make_frame`:
    random range images, JPEG images, Waymo-like calibrations) preprocessed like the
    runner does. Its cloud is replaced by one of ``sizes`` points (cycled; ``None`` keeps
    the frame's own cloud): uniform over 1.2x the grid's range, so some points fall
    outside it. The default sizes are 0, 1, 64, the frame's cloud, and
    ``max_points + 5000`` (more than the graph keeps).
    """
    from perceive.datasets.waymo.fixtures import make_frame
    from perceive.models.inputs import frame_inputs

    sizes = [0, 1, 64, None, config.pillars.max_points + 5000] if sizes is None else list(sizes)
    r = np.asarray(config.grid.point_cloud_range, np.float32)
    centre, half = (r[:3] + r[3:]) / 2, (r[3:] - r[:3]) / 2 * 1.2
    out = []
    for i in range(count):
        frame = make_frame(
            seed + i, cameras=tuple(config.camera.cameras), image_size=(96, 64), num_boxes=2
        )
        inp = frame_inputs(
            frame,
            cameras=config.camera.cameras,
            image_size=config.camera.image_size,
            point_features=config.pillars.point_features,
        )
        points = inp.points
        n = sizes[i % len(sizes)]
        if n is not None:
            rng = np.random.default_rng(seed + 1000 + i)
            points = rng.random((n, len(config.pillars.point_features)), dtype=np.float32)
            points[:, :3] = centre + (2 * points[:, :3] - 1) * half
        out.append((points, inp.images, inp.intrinsics, inp.extrinsics))
    return out


def run_torch(
    model: Detector, inputs: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The PyTorch model's outputs for NumPy inputs (eval mode, no grad)."""
    model = model.eval()
    with torch.no_grad():
        out = model(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
    return tuple(o.numpy() for o in out)  # type: ignore[return-value]


def check_parity(
    model: Detector,
    onnx_path: str | Path,
    inputs: Iterable[Sequence[np.ndarray]],
    *,
    score_atol: float = 1e-5,
) -> list[ParityResult]:
    """Run PyTorch and onnxruntime (CPU) on the same inputs and compare.

    Args:
        model: the PyTorch detector.
        onnx_path: its export.
        inputs: ``(points, images, intrinsics, extrinsics)`` NumPy tuples.
        score_atol: scores closer than this count as tied when matching detections.

    Returns:
        One :class:`ParityResult` per input.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    sess = ort.InferenceSession(
        str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"]
    )
    results = []
    for inp in inputs:
        ref = run_torch(model, inp)
        out = sess.run(list(OUTPUT_NAMES), dict(zip(INPUT_NAMES, inp, strict=True)))
        results.append(
            compare_detections(ref, out, score_atol=score_atol, num_points=int(inp[0].shape[0]))
        )
    return results
