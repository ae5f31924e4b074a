"""The onnxruntime runner that robot code calls: numpy or a :class:`Frame` in, typed detections out.

>>> from perceive import Detector
>>> det = Detector("exports/fusion.onnx", device="cpu", threads=2)    # doctest: +SKIP
>>> dets = det(points, images, calibration)                           # doctest: +SKIP
>>> dets = det(frame)                                                 # doctest: +SKIP
>>> dets.boxes, dets.scores, dets.names, dets.to_boxes3d()            # doctest: +SKIP

The exported graph (see ``contracts.md`` and :mod:`perceive.deploy.export`) takes the raw
point cloud, the camera images at the model's image size and the calibration, and returns
boxes, scores and class indices. The host side does only what the contract lists: resize
each camera image with ``cv2.resize(INTER_AREA)``, scale the intrinsics to match
(:meth:`CameraCalibration.resized`), pass the points as ``PointCloud.features()``, and drop
detections under the score threshold.

A :class:`Detector` holds one ``onnxruntime.InferenceSession`` and nothing that changes
between calls, so one detector may be called from several threads at once. The package keeps
no global state: two detectors on the same file are independent.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from perceive.convert.cache import CachedFrame
from perceive.datasets.types import (
    OBJECT_TYPES,
    POINT_FEATURES,
    Boxes3D,
    CameraCalibration,
    Frame,
    PointCloud,
)
from perceive.errors import (
    ConfigError,
    DataError,
    MissingComponentError,
    NotAFileError,
    PerceiveError,
)

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime as ort

#: ``device`` argument -> the execution providers tried, best first.
DEVICE_PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
    "auto": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}
#: Execution provider -> the device name used in reports.
PROVIDER_DEVICE: dict[str, str] = {
    "TensorrtExecutionProvider": "tensorrt",
    "CUDAExecutionProvider": "cuda",
    "CPUExecutionProvider": "cpu",
}
#: ONNX input names of the exported model, in order.
INPUT_NAMES: tuple[str, ...] = ("points", "images", "intrinsics", "extrinsics")
#: ONNX output names of the exported model, in order.
OUTPUT_NAMES: tuple[str, ...] = ("boxes", "scores", "labels")
#: Metadata keys every exported model carries (``perceive.<key>``).
METADATA_KEYS: tuple[str, ...] = (
    "version",
    "class_names",
    "cameras",
    "image_size",
    "point_features",
    "max_points",
    "grid",
    "score_threshold",
    "variant",
    "provenance",
)
_GRAPH_OPT = ("disable", "basic", "extended", "all")
#: ``perceive.variant`` values a model may declare (the detector's variants).
MODEL_VARIANTS: tuple[str, ...] = ("fusion", "lidar", "camera")
#: How far a calibration's rotation may be from orthonormal (max |R^T R - I|) before it is
#: refused: far above float32 rounding of a real rotation, far below any mis-wiring.
ROTATION_TOLERANCE = 1e-3


class ProviderUnavailableError(PerceiveError, RuntimeError):
    """A requested execution provider is not available and fallback was turned off."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class DetectorConfig:
    """How a :class:`Detector` creates its session and treats its inputs."""

    device: Literal["cpu", "cuda", "tensorrt", "auto"] = "cpu"
    """Where to run: ``cpu``; ``cuda``; ``tensorrt`` (TensorRT, falling back to CUDA, then CPU,
    node by node where TensorRT cannot take a node); ``auto``: the best available."""
    threads: int | None = None
    """Intra-op threads (the threads one operator uses); None: onnxruntime's default (one
    per physical core)."""
    inter_op_threads: int | None = None
    """Threads running independent operators in parallel; None or 1: sequential execution."""
    score_threshold: float | None = None
    """Drop detections scoring below this; None: the threshold stored in the model."""
    too_many_points: Literal["crop", "error"] = "crop"
    """More than the model's ``max_points`` points: ``crop`` keeps the first ``max_points``
    inside the grid's range (what the graph itself would keep); ``error`` raises."""
    fallback: bool = True
    """When the requested device's provider is missing, warn and use the next one
    (TensorRT -> CUDA -> CPU); False: raise :class:`ProviderUnavailableError`."""
    io_binding: bool | None = None
    """Bind inputs and outputs to device buffers (:meth:`InferenceSession.io_binding`) and time
    host-to-device copy, device compute and device-to-host copy apart; None: on for GPU."""
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    """onnxruntime graph optimisation level."""
    optimize: bool = True
    """Apply :mod:`perceive.deploy.optimize`'s exact graph rewrites before creating the session
    (same outputs bit for bit, faster on onnxruntime's CPU provider)."""
    flush_denormals: bool = False
    """Treat denormal floats as zero (``session.set_denormal_as_zero``): faster where trained
    weights produce tiny activations, at a change of results below 1e-38."""
    allow_spinning: bool = True
    """Let idle intra-op threads spin (lower latency, more CPU use)."""
    device_id: int = 0
    """GPU index for CUDA and TensorRT."""
    trt_cache_dir: str | None = None
    """Folder for TensorRT engines and timing caches (created);
    None: ``~/.cache/perceive/tensorrt``."""
    trt_fp16: bool = False
    """Let TensorRT build FP16 kernels."""

    def __post_init__(self) -> None:
        if self.device not in DEVICE_PROVIDERS:
            raise ConfigError(
                f"device must be one of {sorted(DEVICE_PROVIDERS)}, got {self.device!r}"
            )
        # numpy scalars (np.int64 threads, np.float32 thresholds) are accepted and stored as
        # Python numbers; bools are refused (True would pass as 1).
        for name in ("threads", "inter_op_threads"):
            v = getattr(self, name)
            if v is None:
                continue
            if not isinstance(v, numbers.Integral) or isinstance(v, bool | np.bool_) or v < 1:
                raise ConfigError(f"{name} must be a positive integer or None, got {v!r}")
            object.__setattr__(self, name, int(v))
        t = self.score_threshold
        if t is not None:
            if (
                not isinstance(t, numbers.Real)
                or isinstance(t, bool | np.bool_)
                or not math.isfinite(float(t))
                or not 0.0 <= float(t) <= 1.0
            ):
                raise ConfigError(
                    f"score_threshold must be a number in [0, 1] (scores are probabilities) "
                    f"or None, got {t!r}"
                )
            object.__setattr__(self, "score_threshold", float(t))
        if self.too_many_points not in ("crop", "error"):
            raise ConfigError(
                f"too_many_points must be 'crop' or 'error', got {self.too_many_points!r}"
            )
        if self.graph_optimization not in _GRAPH_OPT:
            raise ConfigError(
                f"graph_optimization must be one of {_GRAPH_OPT}, got {self.graph_optimization!r}"
            )
        if (
            not isinstance(self.device_id, numbers.Integral)
            or isinstance(self.device_id, bool | np.bool_)
            or self.device_id < 0
        ):
            raise ConfigError(f"device_id must be a non-negative integer, got {self.device_id!r}")
        object.__setattr__(self, "device_id", int(self.device_id))


# --------------------------------------------------------------------------- model metadata


@dataclass(frozen=True)
class ModelInfo:
    """What an exported model declares about itself (its ``perceive.*`` metadata)."""

    path: str
    """The ONNX file."""
    version: str
    """perceive version that exported it."""
    class_names: tuple[str, ...]
    """Class index -> name."""
    cameras: tuple[str, ...]
    """Camera names in the order of the ``images`` input."""
    image_size: tuple[int, int]
    """(width, height) every camera image is resized to, pixels."""
    point_features: tuple[str, ...]
    """Names of the columns of the ``points`` input."""
    max_points: int
    """The graph keeps the first ``max_points`` points inside the grid's range."""
    point_range: tuple[float, float, float, float, float, float]
    """Grid range ``xmin, ymin, zmin, xmax, ymax, zmax``, vehicle frame, metres."""
    grid: Mapping[str, Any]
    """The grid description as stored."""
    score_threshold: float
    """The exporter's default score threshold."""
    variant: str
    """``fusion``, ``lidar`` or ``camera``."""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    """Training config, data, iterations, metrics, date, git commit."""

    @staticmethod
    def from_metadata(meta: Mapping[str, str], path: str) -> ModelInfo:
        """Parse the ``perceive.*`` metadata props of the model at ``path``."""
        missing = [k for k in METADATA_KEYS if f"perceive.{k}" not in meta]
        if missing:
            raise DataError(
                f"not a perceive model: metadata lacks "
                f"{', '.join('perceive.' + k for k in missing)} "
                "(export it with `perceive export`)",
                path=path,
                field="metadata_props",
            )

        def js(key: str) -> Any:
            try:
                return json.loads(meta[f"perceive.{key}"])
            except (json.JSONDecodeError, TypeError) as e:
                raise DataError(
                    f"metadata value is not JSON: {e}", path=path, field=f"perceive.{key}"
                ) from None

        grid = js("grid")
        rng = grid.get("range", grid.get("point_cloud_range")) if isinstance(grid, dict) else grid
        try:
            point_range = tuple(float(v) for v in rng)
            if len(point_range) != 6:
                raise ValueError
            w, h = (int(v) for v in js("image_size"))
            info = ModelInfo(
                path=path,
                version=str(meta["perceive.version"]),
                class_names=tuple(str(c) for c in js("class_names")),
                cameras=tuple(str(c) for c in js("cameras")),
                image_size=(w, h),
                point_features=tuple(str(c) for c in js("point_features")),
                max_points=int(meta["perceive.max_points"]),
                point_range=point_range,  # type: ignore[arg-type]
                grid=grid if isinstance(grid, dict) else {"range": list(point_range)},
                score_threshold=float(meta["perceive.score_threshold"]),
                variant=str(meta["perceive.variant"]),
                provenance=js("provenance") if meta["perceive.provenance"] else {},
            )
        except (TypeError, ValueError) as e:
            raise DataError(
                f"malformed perceive metadata ({e or 'bad value'})",
                path=path,
                field="metadata_props",
            ) from None
        info._check(js)
        return info

    def _check(self, js: Any) -> None:
        """Refuse metadata that parses but makes no sense (it would silently change results)."""

        def bad(key: str, why: str) -> DataError:
            return DataError(why, path=self.path, field=f"perceive.{key}")

        for key in ("class_names", "cameras", "point_features"):
            raw = js(key)
            if (
                not isinstance(raw, list)
                or not raw
                or not all(isinstance(v, str) and v for v in raw)
            ):
                raise bad(key, f"must be a non-empty JSON list of names, got {raw!r}")
            if len(set(raw)) != len(raw):
                raise bad(key, f"names must be unique, got {raw!r}")
        if self.point_features[:3] != ("x", "y", "z"):
            raise bad("point_features", f"must begin with x, y, z, got {list(self.point_features)}")
        unknown = sorted(set(self.point_features) - set(POINT_FEATURES))
        if unknown:
            raise bad("point_features", f"unknown {unknown}; known {list(POINT_FEATURES)}")
        if self.variant not in MODEL_VARIANTS:
            raise bad("variant", f"must be one of {list(MODEL_VARIANTS)}, got {self.variant!r}")
        if self.max_points < 1:
            raise bad("max_points", f"must be at least 1, got {self.max_points}")
        if not (math.isfinite(self.score_threshold) and 0.0 <= self.score_threshold <= 1.0):
            raise bad("score_threshold", f"must be in [0, 1], got {self.score_threshold}")
        lo, hi = self.point_range[:3], self.point_range[3:]
        if not all(math.isfinite(v) for v in self.point_range) or not all(
            a < b for a, b in zip(lo, hi, strict=True)
        ):
            raise bad("grid", f"range must be finite with min < max, got {list(self.point_range)}")
        if min(self.image_size) < 1:
            raise bad("image_size", f"must be positive, got {list(self.image_size)}")


# --------------------------------------------------------------------------- typed data


@dataclass(frozen=True)
class StageTimes:
    """Wall-clock seconds of each stage of one call (the benchmark's per-stage hooks)."""

    decode_s: float = 0.0
    """Building the inputs from a :class:`Frame`: JPEG decoding and range image -> points
    (0 for numpy input)."""
    preprocess_s: float = 0.0
    """Validation, image resizing, intrinsics scaling, stacking."""
    inference_s: float = 0.0
    """The session run, host-to-device and device-to-host copies included."""
    postprocess_s: float = 0.0
    """Score filtering and packing the :class:`Detections`."""
    h2d_s: float | None = None
    """With IO binding: copying the inputs to the device."""
    device_s: float | None = None
    """With IO binding: the run on the device, synchronised (device compute time)."""
    d2h_s: float | None = None
    """With IO binding: copying the outputs back to the host."""

    @property
    def total_s(self) -> float:
        """Sum of the four stages."""
        return self.decode_s + self.preprocess_s + self.inference_s + self.postprocess_s


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """The four input tensors of the exported graph for one frame."""

    points: np.ndarray
    """(N, F) float32 point features, vehicle frame, metres (N may be 0)."""
    images: np.ndarray
    """(C, H, W, 3) uint8 RGB at the model's image size."""
    intrinsics: np.ndarray
    """(C, 9) float32 ``f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3`` for the resized images."""
    extrinsics: np.ndarray
    """(C, 4, 4) float32 camera frame -> vehicle frame."""
    num_points_given: int = -1
    """Points before cropping to ``max_points`` (-1: unknown)."""

    def feeds(self) -> dict[str, np.ndarray]:
        """The session's input feed."""
        return {
            "points": self.points,
            "images": self.images,
            "intrinsics": self.intrinsics,
            "extrinsics": self.extrinsics,
        }


@dataclass(frozen=True, eq=False)
class Detections:
    """3D detections of one frame, sorted by descending score."""

    boxes: np.ndarray
    """(K, 7) float32 ``x, y, z, length, width, height, heading``; vehicle frame, metres, rad."""
    scores: np.ndarray
    """(K,) float32 in [0, 1], descending."""
    labels: np.ndarray
    """(K,) int64 class index into :attr:`class_names`."""
    class_names: tuple[str, ...]
    """Class index -> name (the model's classes)."""
    timing: StageTimes | None = None
    """Per-stage times of the call that made these detections."""

    def __post_init__(self) -> None:
        k = int(np.asarray(self.scores).shape[0])
        if self.boxes.shape != (k, 7) or self.labels.shape != (k,):
            raise ValueError(
                f"detections: boxes {self.boxes.shape}, scores ({k},), labels {self.labels.shape}"
            )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def names(self) -> list[str]:
        """Class name of each detection."""
        n = len(self.class_names)
        return [self.class_names[i] if 0 <= i < n else f"CLASS_{i}" for i in self.labels.tolist()]

    def select(self, mask: np.ndarray) -> Detections:
        """The detections where ``mask`` (bool (K,) or indices) selects."""
        return Detections(
            self.boxes[mask], self.scores[mask], self.labels[mask], self.class_names, self.timing
        )

    def to_boxes3d(self) -> Boxes3D:
        """As :class:`Boxes3D` with Waymo ``Label.Type`` values (unknown classes: 0)."""
        wtype = np.array(
            [OBJECT_TYPES.index(n) if n in OBJECT_TYPES else 0 for n in self.names], np.int8
        )
        heading = (self.boxes[:, 6].astype(np.float64) + np.pi) % (2 * np.pi) - np.pi
        return Boxes3D(
            center=self.boxes[:, :3], size=self.boxes[:, 3:6], heading=heading, type=wtype
        )

    def summary(self, limit: int = 10) -> str:
        """A few readable lines: one per detection, best first."""
        lines = [f"{len(self)} detections"]
        for i, (b, s, n) in enumerate(zip(self.boxes, self.scores, self.names, strict=True)):
            if i == limit:
                lines.append(f"  ... {len(self) - limit} more")
                break
            lines.append(
                f"  {n:<10s} {s:5.2f}  at ({b[0]:6.1f}, {b[1]:6.1f}, {b[2]:5.1f}) m  "
                f"size {b[3]:.1f} x {b[4]:.1f} x {b[5]:.1f} m  "
                f"heading {math.degrees(b[6]):6.1f} deg"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- providers


@dataclass(frozen=True)
class ProviderChoice:
    """The execution providers a session is created with, and why."""

    providers: tuple[str, ...]
    """Providers in priority order (the session may still fall back node by node)."""
    device: str
    """The device actually used: ``cpu``, ``cuda`` or ``tensorrt``."""
    message: str | None = None
    """Why the requested device is not used, or None."""


def select_providers(
    device: str, available: Sequence[str], *, fallback: bool = True
) -> ProviderChoice:
    """Choose execution providers for ``device`` among the ``available`` ones.

    ``tensorrt`` falls back to ``cuda`` and then ``cpu``; ``cuda`` to ``cpu``; ``auto`` takes
    the best available without a message.

    Raises:
        ConfigError: unknown device.
        ProviderUnavailableError: the requested provider is missing and ``fallback`` is False.
    """
    if device not in DEVICE_PROVIDERS:
        raise ConfigError(f"device must be one of {sorted(DEVICE_PROVIDERS)}, got {device!r}")
    wanted = DEVICE_PROVIDERS[device]
    usable = tuple(p for p in wanted if p in available)
    if not usable:  # CPU is always built into onnxruntime; be explicit if someone removed it
        raise ProviderUnavailableError(
            f"none of {wanted} is available in onnxruntime (available: {list(available)})"
        )
    chosen = PROVIDER_DEVICE[usable[0]]
    message = None
    if device != "auto" and usable[0] != wanted[0]:
        message = (
            f"device {device!r} requested but {wanted[0]} is not available in this onnxruntime "
            f"(available providers: {', '.join(available)}); "
            + (
                "install the GPU build: pip install 'perceive[gpu]' (onnxruntime-gpu)"
                if device != "cpu"
                else ""
            )
        ).rstrip("; ")
        if not fallback:
            raise ProviderUnavailableError(message)
        message += f"; falling back to {chosen}"
    return ProviderChoice(usable, chosen, message)


def _trt_profile(proto: Any, path: str) -> dict[str, str]:
    """TensorRT optimisation-profile options for the dynamic ``points`` input: 1 to
    ``max_points`` rows (the runner crops to ``max_points`` and feeds one out-of-range point
    for an empty cloud), so the engine is built once rather than per cloud size."""
    meta = {p.key: p.value for p in proto.metadata_props}
    try:
        info = ModelInfo.from_metadata(meta, path)
    except DataError:
        return {}
    nf = len(info.point_features)
    opt = max(1, info.max_points // 2)
    return {
        "trt_profile_min_shapes": f"points:1x{nf}",
        "trt_profile_opt_shapes": f"points:{opt}x{nf}",
        "trt_profile_max_shapes": f"points:{info.max_points}x{nf}",
    }


def _default_trt_cache() -> str:
    return str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "perceive" / "tensorrt"
    )


# --------------------------------------------------------------------------- the detector


def check_calibration(camera: str, cal: CameraCalibration) -> None:
    """Refuse a calibration that cannot be a real camera's (it would silently move features).

    Checks: the calibration is the camera's own (``cal.name``), values are finite, focal
    lengths are positive, the extrinsic's rotation is orthonormal with determinant +1
    (within :data:`ROTATION_TOLERANCE`) and its last row is ``0, 0, 0, 1``.

    Args:
        camera: the camera name it was given under.
        cal: its calibration (``extrinsic``: camera frame -> vehicle frame, metres).

    Raises:
        DataError: naming ``calibration[camera]``.
    """
    where = f"calibration[{camera}]"
    if cal.name != camera:
        raise DataError(
            f"this is the calibration of camera {cal.name!r}, given for {camera!r}", field=where
        )
    k, e = cal.intrinsic, cal.extrinsic
    if not (np.isfinite(k).all() and np.isfinite(e).all()):
        raise DataError("calibration holds NaN or infinite values", field=where)
    if not (k[0] > 0 and k[1] > 0):
        raise DataError(f"focal lengths must be positive, got f_u={k[0]}, f_v={k[1]}", field=where)
    r = e[:3, :3]
    err = float(np.abs(r.T @ r - np.eye(3)).max())
    if err > ROTATION_TOLERANCE or np.linalg.det(r) <= 0:
        raise DataError(
            f"extrinsic rotation is not a rotation (max |R^T R - I| = {err:.3g}, "
            f"det {np.linalg.det(r):.3g})",
            field=where,
        )
    if not np.allclose(e[3], [0.0, 0.0, 0.0, 1.0], rtol=0.0, atol=1e-6):
        raise DataError(
            f"extrinsic's last row must be 0, 0, 0, 1, got {e[3].tolist()}", field=where
        )


class Detector:
    """Runs an exported perceive model with onnxruntime.

    Args:
        path: the ``.onnx`` file (with ``perceive.*`` metadata).
        device: ``cpu``, ``cuda``, ``tensorrt`` or ``auto`` (see :class:`DetectorConfig`).
        threads: intra-op threads; None: onnxruntime's default.
        score_threshold: None: the model's own.
        **options: the other fields of :class:`DetectorConfig`.

    Raises:
        FileNotFoundError: no such file.
        DataError: the file is not an ONNX model with perceive metadata and the contract's inputs.
        ProviderUnavailableError: the device is unavailable and ``fallback=False``.

    Attributes:
        info: the model's metadata (:class:`ModelInfo`).
        config: the settings (:class:`DetectorConfig`).
        providers: the providers the session really uses, best first.
        device: ``cpu``, ``cuda`` or ``tensorrt``: the device really used.
        fallback_message: why the requested device is not used, or None.
        session_creation_s: seconds spent creating the session.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        threads: int | None = None,
        score_threshold: float | None = None,
        **options: Any,
    ) -> None:
        import onnxruntime as ort

        try:
            self.config = DetectorConfig(
                device=device, threads=threads, score_threshold=score_threshold, **options
            )  # type: ignore[arg-type]
        except TypeError as e:
            raise ConfigError(f"Detector: {e}") from None
        cfg = self.config
        self.path = Path(path)
        if self.path.is_dir():
            raise NotAFileError("is a folder, not an ONNX model file", path=self.path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no such model file: {self.path}")
        data = self.path.read_bytes()

        choice = select_providers(cfg.device, ort.get_available_providers(), fallback=cfg.fallback)
        self.fallback_message = choice.message
        if choice.message:
            warnings.warn(choice.message, RuntimeWarning, stacklevel=2)

        so = ort.SessionOptions()
        so.log_severity_level = 3
        if cfg.threads is not None:
            so.intra_op_num_threads = cfg.threads
        if cfg.inter_op_threads is not None and cfg.inter_op_threads > 1:
            so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
            so.inter_op_num_threads = cfg.inter_op_threads
        else:
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[cfg.graph_optimization]
        so.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if cfg.allow_spinning else "0"
        )
        if cfg.flush_denormals:
            so.add_session_config_entry("session.set_denormal_as_zero", "1")

        t0 = time.perf_counter()
        source: str | bytes = str(self.path)
        #: How many nodes the graph rewrites changed (0: the file runs as it is).
        self.graph_rewrites = 0
        import onnx

        from perceive.deploy.integrity import DIGEST_KEY, check_graph_digest

        try:
            proto = onnx.load_from_string(data)
        except Exception:  # not loadable by onnx: let onnxruntime report it below
            proto = None
        if proto is not None:
            # before any work on it: a damaged graph must not reach a session (or TensorRT)
            recorded = next((m.value for m in proto.metadata_props if m.key == DIGEST_KEY), None)
            check_graph_digest(data, recorded, str(self.path))
            if proto.graph.initializer and any(
                t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer
            ):
                proto = onnx.load(str(self.path))  # weights stored beside the file
        if proto is not None and cfg.optimize:
            from perceive.deploy.optimize import apply_all

            self.graph_rewrites = apply_all(proto, threads=cfg.threads, providers=choice.providers)
            if self.graph_rewrites:
                source = proto.SerializeToString()

        providers: list[Any] = []
        self.trt_cache_dir: str | None = None
        for p in choice.providers:
            if p == "TensorrtExecutionProvider":
                cache = cfg.trt_cache_dir or _default_trt_cache()
                Path(cache).mkdir(parents=True, exist_ok=True)
                self.trt_cache_dir = cache
                options: dict[str, Any] = {
                    "device_id": cfg.device_id,
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": cache,
                    "trt_timing_cache_enable": True,
                    "trt_timing_cache_path": cache,
                    "trt_fp16_enable": cfg.trt_fp16,
                }
                if proto is not None:
                    options.update(_trt_profile(proto, str(self.path)))
                providers.append((p, options))
            elif p == "CUDAExecutionProvider":
                providers.append((p, {"device_id": cfg.device_id}))
            else:
                providers.append(p)

        try:
            self._session = ort.InferenceSession(source, sess_options=so, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types
            if not choice.providers or choice.providers[0] == "CPUExecutionProvider":
                raise DataError(f"onnxruntime cannot load the model: {e}", path=self.path) from e
            if not cfg.fallback:
                raise ProviderUnavailableError(
                    f"{choice.providers[0]} failed to create a session: {e}"
                ) from e
            msg = f"{choice.providers[0]} failed to create a session ({e}); falling back to cpu"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            self.fallback_message = msg
            self._session = ort.InferenceSession(
                source, sess_options=so, providers=["CPUExecutionProvider"]
            )
        self.session_creation_s = time.perf_counter() - t0

        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        self.device = PROVIDER_DEVICE.get(self.providers[0], "cpu")
        if self.providers[0] != choice.providers[0]:
            # onnxruntime drops a GPU provider whose libraries fail to load, with only a log line.
            msg = (
                f"{choice.providers[0]} could not be initialised (no usable GPU or driver); "
                f"running on {self.device}"
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            self.fallback_message = msg

        meta = self._session.get_modelmeta().custom_metadata_map
        self.info = ModelInfo.from_metadata(meta, str(self.path))
        self._check_io()
        self.score_threshold = float(
            self.info.score_threshold if cfg.score_threshold is None else cfg.score_threshold
        )
        self.io_binding = cfg.io_binding if cfg.io_binding is not None else self.device != "cpu"
        # TensorRT engines are built for 1..max_points points: an empty cloud is fed as one
        # point outside the grid, which the graph's range crop drops (same result).
        self.pad_empty_cloud = self.device == "tensorrt"
        lo, hi = np.asarray(self.info.point_range[:3]), np.asarray(self.info.point_range[3:])
        outside = np.zeros((1, len(self.info.point_features)), np.float32)
        outside[0, :3] = hi + np.maximum(hi - lo, 1.0) * 10.0
        self._outside_point = outside
        self._bind_device = "cuda" if self.device != "cpu" else "cpu"

    # ----------------------------------------------------------------- setup helpers

    def _check_io(self) -> None:
        ins = {i.name: i for i in self._session.get_inputs()}
        outs = {o.name for o in self._session.get_outputs()}
        if set(ins) != set(INPUT_NAMES) or not set(OUTPUT_NAMES) <= outs:
            raise DataError(
                f"model inputs {sorted(ins)} / outputs {sorted(outs)} do not follow the contract "
                f"(inputs {list(INPUT_NAMES)}, outputs {list(OUTPUT_NAMES)})",
                path=self.path,
            )
        w, h = self.info.image_size
        c = len(self.info.cameras)
        shape = ins["images"].shape
        if len(shape) != 4 or any(
            isinstance(s, int) and s != e for s, e in zip(shape, (c, h, w, 3), strict=True)
        ):
            raise DataError(
                f"images input has shape {shape}, metadata says {c} cameras of {w}x{h}",
                path=self.path,
                field="images",
            )
        pshape = ins["points"].shape
        nf = len(self.info.point_features)
        if len(pshape) != 2 or (isinstance(pshape[1], int) and pshape[1] != nf):
            raise DataError(
                f"points input has shape {pshape}, metadata lists {nf} point features",
                path=self.path,
                field="points",
            )

    @property
    def session(self) -> ort.InferenceSession:
        """The underlying onnxruntime session (read-only use)."""
        return self._session

    def __repr__(self) -> str:
        return (
            f"Detector({str(self.path)!r}, device={self.device!r}, variant={self.info.variant!r}, "
            f"cameras={list(self.info.cameras)}, threads={self.config.threads})"
        )

    # ----------------------------------------------------------------- stages

    def inputs_from_frame(
        self, frame: Frame | CachedFrame
    ) -> tuple[np.ndarray, dict[str, np.ndarray], Mapping[str, CameraCalibration]]:
        """Decode what the model needs from a frame: (points (N, F), images, calibration).

        Args:
            frame: a :class:`Frame` (Waymo v1/v2 readers) or a :class:`CachedFrame` (the
                training cache, ``perceive convert --to cache``).

        A frame without LiDAR gives an empty cloud (the model still runs on the cameras).
        """
        if self.info.variant == "camera":
            points = np.zeros((0, len(self.info.point_features)), np.float32)
        elif isinstance(frame, CachedFrame):
            cols = [POINT_FEATURES.index(n) for n in self.info.point_features]
            points = np.asarray(frame.points, np.float32)[:, cols]
        else:
            points = frame.point_cloud().features(self.info.point_features)
        images: dict[str, np.ndarray] = {}
        for cam in self.info.cameras:
            if cam not in frame.image_bytes:
                if self.info.variant == "lidar":
                    continue
                raise MissingComponentError(
                    f"{frame.source or 'frame'}: no image from camera {cam}; "
                    f"the model needs {list(self.info.cameras)}, "
                    f"the frame has {sorted(frame.image_bytes)}"
                )
            if cam not in frame.cameras:
                raise MissingComponentError(
                    f"{frame.source or 'frame'}: no calibration for camera {cam}; "
                    f"the model needs {list(self.info.cameras)}, "
                    f"the frame has {sorted(frame.cameras)}"
                )
            if isinstance(frame, CachedFrame):
                from perceive.datasets.image import decode_jpeg

                what = f"{frame.source or frame.segment}: camera {cam}"
                images[cam] = decode_jpeg(frame.image_bytes[cam], what=what)
            else:
                images[cam] = frame.images[cam]
        return points, images, frame.cameras

    def prepare(
        self,
        points: np.ndarray | PointCloud,
        images: Mapping[str, np.ndarray] | None,
        calibration: Mapping[str, CameraCalibration] | None,
    ) -> ModelInputs:
        """Validate the inputs and build the graph's input tensors (the preprocess stage).

        Args:
            points: (N, F) float point features in the model's ``point_features`` order,
                vehicle frame, metres; or a :class:`PointCloud`. N may be 0.
            images: camera name -> (H, W, 3) uint8 RGB image of any size (resized here).
            calibration: camera name -> :class:`CameraCalibration` for that image size.

        Raises:
            DataError: wrong dtype or shape, NaN or infinite values, image and calibration sizes
                that disagree, too many points with ``too_many_points="error"``.
            MissingComponentError: a camera the model needs is missing.
        """
        info = self.info
        pts = self._check_points(points)
        n_given = int(pts.shape[0])
        if n_given > info.max_points:
            if self.config.too_many_points == "error":
                raise DataError(
                    f"{n_given} points, the model takes at most {info.max_points} "
                    "(crop them, or use too_many_points='crop')",
                    field="points",
                )
            lo = np.asarray(info.point_range[:3], np.float32)
            hi = np.asarray(info.point_range[3:], np.float32)
            xyz = pts[:, :3]
            inside = np.flatnonzero(((xyz >= lo) & (xyz < hi)).all(axis=1))[: info.max_points]
            pts = pts[inside]
        w, h = info.image_size
        c = len(info.cameras)
        imgs = np.zeros((c, h, w, 3), np.uint8)
        intr = np.zeros((c, 9), np.float32)
        ext = np.tile(np.eye(4, dtype=np.float32), (c, 1, 1))
        images = {} if images is None else images
        calibration = {} if calibration is None else calibration
        if not isinstance(images, Mapping):
            raise DataError(
                "images must be a dict camera name -> (H, W, 3) uint8 array, "
                f"got {type(images).__name__}",
                field="images",
            )
        if not isinstance(calibration, Mapping):
            raise DataError(
                "calibration must be a dict camera name -> CameraCalibration, "
                f"got {type(calibration).__name__}",
                field="calibration",
            )
        import cv2

        for i, cam in enumerate(info.cameras):
            if cam not in images or cam not in calibration:
                if info.variant == "lidar":
                    continue  # a LiDAR-only graph ignores the cameras: zeros are fine
                what = "image" if cam not in images else "calibration"
                have = sorted(map(str, images if cam not in images else calibration))
                raise MissingComponentError(
                    f"no {what} for camera {cam}; "
                    f"the model needs cameras {list(info.cameras)}, got {have}"
                )
            img = images[cam]
            cal = calibration[cam]
            if not isinstance(cal, CameraCalibration):
                raise DataError(
                    f"expected a CameraCalibration, got {type(cal).__name__}",
                    field=f"calibration[{cam}]",
                )
            if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
                shape = getattr(img, "shape", type(img).__name__)
                raise DataError(
                    f"expected an (H, W, 3) RGB array, got {shape}", field=f"images[{cam}]"
                )
            if img.dtype != np.uint8:
                raise DataError(
                    f"expected dtype uint8 (0..255 RGB), got {img.dtype}", field=f"images[{cam}]"
                )
            ih, iw = img.shape[:2]
            if ih == 0 or iw == 0:
                raise DataError(f"empty image {iw}x{ih}", field=f"images[{cam}]")
            if (iw, ih) != (cal.width, cal.height):
                raise DataError(
                    f"image is {iw}x{ih} but its calibration is for {cal.width}x{cal.height}",
                    field=f"images[{cam}]",
                )
            check_calibration(cam, cal)
            if (iw, ih) == (w, h):
                imgs[i] = img
                intr[i] = cal.intrinsic
            else:
                cv2.resize(img, (w, h), dst=imgs[i], interpolation=cv2.INTER_AREA)
                intr[i] = cal.resized(w, h).intrinsic
            ext[i] = cal.extrinsic
            if not (np.isfinite(intr[i]).all() and np.isfinite(ext[i]).all()):
                raise DataError(
                    "calibration overflows float32 (a value beyond 3.4e38)",
                    field=f"calibration[{cam}]",
                )
        return ModelInputs(pts, imgs, intr, ext, n_given)

    def _check_points(self, points: np.ndarray | PointCloud) -> np.ndarray:
        nf = len(self.info.point_features)
        if isinstance(points, PointCloud):
            pts = points.features(self.info.point_features)
        elif isinstance(points, np.ndarray):
            pts = points
        elif points is None:
            pts = np.zeros((0, nf), np.float32)
        else:
            raise DataError(
                f"points must be an (N, {nf}) float array or a PointCloud, "
                f"got {type(points).__name__}",
                field="points",
            )
        if pts.ndim != 2 or pts.shape[1] != nf:
            # an empty cloud may come as (0,) or (0, 0); (5, 0) or (0, 3) is a wrong layout
            if pts.shape in ((0,), (0, 0)):
                return np.zeros((0, nf), np.float32)
            raise DataError(
                f"expected shape (N, {nf}) with columns {list(self.info.point_features)}, "
                f"got {pts.shape}",
                field="points",
            )
        if pts.dtype.kind != "f":
            raise DataError(
                f"expected a float array (float32), got dtype {pts.dtype}", field="points"
            )
        pts = np.ascontiguousarray(pts, dtype=np.float32)
        finite = np.isfinite(pts)
        if not finite.all():
            bad = np.flatnonzero(~finite.all(axis=1))
            raise DataError(
                f"{bad.size} points hold NaN or infinite values (first at row {int(bad[0])})",
                field="points",
            )
        return pts

    def infer(self, inputs: ModelInputs) -> tuple[tuple[np.ndarray, ...], dict[str, float]]:
        """Run the graph: ``((boxes, scores, labels), extra timings)``.

        With IO binding the extra timings hold ``h2d_s``, ``device_s`` and ``d2h_s``.
        """
        feeds = inputs.feeds()
        if self.pad_empty_cloud and feeds["points"].shape[0] == 0:
            feeds["points"] = self._outside_point
        if not self.io_binding:
            outs = self._session.run(list(OUTPUT_NAMES), feeds)
            return tuple(outs), {}
        import onnxruntime as ort

        dev, dev_id = self._bind_device, self.config.device_id
        binding = self._session.io_binding()  # one binding per call: thread-safe
        t0 = time.perf_counter()
        values = []
        for name, arr in feeds.items():
            v = ort.OrtValue.ortvalue_from_numpy(arr, dev, dev_id)
            values.append(v)  # keep alive until the run ends
            binding.bind_ortvalue_input(name, v)
        for name in OUTPUT_NAMES:
            binding.bind_output(name, dev, dev_id)
        binding.synchronize_inputs()
        t1 = time.perf_counter()
        self._session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        t2 = time.perf_counter()
        outs = binding.copy_outputs_to_cpu()
        t3 = time.perf_counter()
        return tuple(outs[:3]), {"h2d_s": t1 - t0, "device_s": t2 - t1, "d2h_s": t3 - t2}

    def postprocess(
        self, outputs: Sequence[np.ndarray], timing: StageTimes | None = None
    ) -> Detections:
        """Check the graph's outputs, drop low scores, sort: the postprocess stage."""
        boxes, scores, labels = (np.asarray(o) for o in outputs[:3])
        k = scores.shape[0] if scores.ndim == 1 else -1
        if k < 0 or boxes.shape != (k, 7) or labels.shape != (k,):
            raise DataError(
                f"model outputs have shapes boxes {boxes.shape}, scores {scores.shape}, "
                f"labels {labels.shape}; "
                "expected (K, 7), (K,), (K,)",
                path=self.path,
            )
        nc = len(self.info.class_names)
        if labels.size and (labels.min() < 0 or labels.max() >= nc):
            raise DataError(
                f"model output a class index {int(labels.max())} outside its {nc} class names "
                f"{list(self.info.class_names)} (metadata and graph disagree)",
                path=self.path,
                field="perceive.class_names",
            )
        keep = (
            (scores >= self.score_threshold) & np.isfinite(scores) & np.isfinite(boxes).all(axis=1)
        )
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        return Detections(
            boxes=np.ascontiguousarray(boxes[idx], np.float32),
            scores=np.ascontiguousarray(scores[idx], np.float32),
            labels=labels[idx].astype(np.int64),
            class_names=self.info.class_names,
            timing=timing,
        )

    # ----------------------------------------------------------------- the call

    def __call__(
        self,
        points: np.ndarray | PointCloud | Frame | CachedFrame | None,
        images: Mapping[str, np.ndarray] | None = None,
        calibration: Mapping[str, CameraCalibration] | None = None,
    ) -> Detections:
        """Detect objects in one frame.

        Call as ``det(points, images, calibration)`` (see :meth:`prepare`) or ``det(frame)``
        with a :class:`Frame` or a :class:`CachedFrame`. The result's ``timing`` holds the
        time of each stage.
        """
        t0 = time.perf_counter()
        if isinstance(points, Frame | CachedFrame):
            if images is not None or calibration is not None:
                raise TypeError(
                    "det(frame) takes no images or calibration: they come from the frame"
                )
            points, images, calibration = self.inputs_from_frame(points)
        elif images is None and self.info.variant != "lidar":
            raise TypeError(
                "det(points, images, calibration): images and calibration are required "
                "for this model"
            )
        t1 = time.perf_counter()
        inputs = self.prepare(points, images, calibration)
        t2 = time.perf_counter()
        outputs, extra = self.infer(inputs)
        t3 = time.perf_counter()
        dets = self.postprocess(outputs)
        t4 = time.perf_counter()
        timing = StageTimes(t1 - t0, t2 - t1, t3 - t2, t4 - t3, **extra)
        return Detections(dets.boxes, dets.scores, dets.labels, dets.class_names, timing)
