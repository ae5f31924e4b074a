"""Latency benchmark of an exported model: the whole path, per stage, beside PyTorch eager.

One iteration is what a robot does with a frame: parse the record and decode its JPEGs and
range images (``decode``), validate, resize and stack (``preprocess``), run the graph
(``inference``), filter and pack the detections (``postprocess``). The benchmark reports,
the way ``onnxruntime_perf_test`` and ``trtexec`` do:

- session creation time, first-inference time (the first call after creation);
- min, mean, p50, p90, p95, p99, max of the end-to-end latency and of every stage, and the
  throughput of the timed loop; peak resident memory and CPU use of the process;
- on a GPU, with IO binding, the host-to-device copy, the device run and the copy back apart;
  TensorRT engines are cached (``trt_cache_dir``) and the cached session creation is timed;
- the model's cost (GFLOPs per frame, counted on the ONNX graph at the run's input shapes) and
  the fraction of the machine's measured matmul peak (a MatMul probe run with the same
  provider and threads in the same process) that the inference reaches;
- ``compare_torch``: the PyTorch checkpoint run in eager mode on the same inputs, interleaved
  with onnxruntime in the same loop, and the speed ratio;
- ``sweep``: a threads x precision x device grid in one table.

Where a GPU provider is missing or unusable, the report says so and runs the rest on the CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perceive.errors import ConfigError, DataError, PerceiveError

if TYPE_CHECKING:  # pragma: no cover
    from perceive.datasets.types import Frame
    from perceive.deploy.runner import Detector, ModelInputs

#: Devices the benchmark knows.
DEVICES: tuple[str, ...] = ("cpu", "cuda", "tensorrt")
#: Precisions the benchmark knows.
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
#: Stages of one iteration, in order.
STAGES: tuple[str, ...] = ("decode", "preprocess", "inference", "postprocess")
#: Pause between the onnxruntime and the PyTorch run of one iteration (not timed), so that the
#: threads one engine leaves spinning do not slow the other down.
SETTLE_S = 0.05
#: Ops counted as dense (multiply-accumulate) compute.
DENSE_OPS: frozenset[str] = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})
#: Elementwise-like ops counted at one FLOP per output element.
ELEMENTWISE_OPS: frozenset[str] = frozenset(
    {
        "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Pow",
        "Max", "Min", "Clip", "Abs", "Neg", "Reciprocal", "LeakyRelu", "HardSigmoid",
        "HardSwish", "Softmax", "BatchNormalization", "InstanceNormalization",
        "LayerNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "MaxPool",
        "AveragePool", "GlobalAveragePool", "GridSample", "Resize", "Erf", "Sin", "Cos", "Atan",
        "Where", "Floor", "Ceil", "Round", "Mod", "ScatterND", "ScatterElements",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark and how."""

    model: str
    """The exported float32 ``.onnx`` model (variants are made from it)."""
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``tensorrt``; a missing GPU provider is reported and the CPU used."""
    threads: int | None = None
    """Intra-op threads for onnxruntime and PyTorch; None: one per physical core."""
    warmup: int = 5
    """Untimed iterations after the first inference."""
    iters: int | None = None
    """Timed iterations (default 50 when ``duration_s`` is not given)."""
    duration_s: float | None = None
    """Time budget of the timed loop instead of a count, seconds."""
    data: str | None = None
    """A v1 ``.tfrecord`` file or a folder of them; None: generated frames."""
    num_frames: int = 4
    """Generated frames to cycle through (with ``data``: at most this many records are used)."""
    frame_size: str = "waymo"
    """Generated frames: ``waymo`` (about 190k points, 1920-pixel JPEGs) or ``small``."""
    precision: str = "fp32"
    """``fp32``, ``fp16`` or ``int8`` (variants are made beside the model or in ``variant_dir``)."""
    compare_torch: str | None = None
    """A checkpoint to run in PyTorch eager mode on the same inputs, interleaved."""
    sweep: bool = False
    """Benchmark a threads x precision x device grid (each cell with ``iters``/``duration_s``)."""
    sweep_threads: tuple[int, ...] | None = None
    """Threads of the sweep; None: 1, 2, 4, ... up to the logical cores."""
    sweep_precisions: tuple[str, ...] = PRECISIONS
    """Precisions of the sweep."""
    sweep_devices: tuple[str, ...] = DEVICES
    """Devices of the sweep (GPU rows say why when they cannot run)."""
    flops: bool = True
    """Count the model's FLOPs on the graph (one extra run with every tensor as an output)."""
    probe: bool = True
    """Measure the matmul peak of the device."""
    profile: bool = False
    """Profile the inference per operator with onnxruntime's profiler (a few extra runs)."""
    optimize: bool = True
    """Run the Detector's exact graph rewrites (:mod:`perceive.deploy.optimize`)."""
    flush_denormals: bool = False
    """Flush denormal floats to zero in onnxruntime and (with ``compare_torch``) in PyTorch."""
    variant_dir: str | None = None
    """Where FP16/INT8 variants are written; None: beside the model."""
    trt_cache_dir: str | None = None
    """TensorRT engine cache folder; None: ``~/.cache/perceive/tensorrt``."""
    seed: int = 0
    """Seed of the generated frames."""

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.warmup < 0:
            raise ConfigError(f"warmup must be >= 0, got {self.warmup}")
        if self.iters is not None and self.duration_s is not None:
            raise ConfigError("give iters or duration_s, not both")
        if self.iters is not None and self.iters < 1:
            raise ConfigError(f"iters must be >= 1, got {self.iters}")
        if self.duration_s is not None and not (
            self.duration_s > 0 and math.isfinite(self.duration_s)
        ):
            raise ConfigError(f"duration_s must be > 0, got {self.duration_s}")
        if self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.frame_size not in ("waymo", "small"):
            raise ConfigError(f"frame_size must be 'waymo' or 'small', got {self.frame_size!r}")
        if self.sweep_threads is not None and (
            not self.sweep_threads or min(self.sweep_threads) < 1
        ):
            raise ConfigError(f"sweep_threads must be positive integers, got {self.sweep_threads}")
        for p in self.sweep_precisions:
            if p not in PRECISIONS:
                raise ConfigError(f"sweep precision must be one of {PRECISIONS}, got {p!r}")
        for d in self.sweep_devices:
            if d not in DEVICES:
                raise ConfigError(f"sweep device must be one of {DEVICES}, got {d!r}")
        if self.sweep and self.compare_torch:
            raise ConfigError("--compare-torch and --sweep do not go together: compare one setting")

    @property
    def timed_iters(self) -> int | None:
        """Timed iterations, or None when the loop runs for ``duration_s``."""
        return None if self.duration_s is not None else (self.iters or 50)


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class LatencyStats:
    """Summary of a list of latencies, milliseconds.

    Percentiles interpolate linearly between the sorted samples (``numpy.percentile``'s
    default), so with fewer than 100 samples p99 lies between the two slowest.
    """

    count: int
    """Samples."""
    min: float
    """Fastest, ms."""
    mean: float
    """Mean, ms."""
    std: float
    """Standard deviation, ms."""
    p50: float
    """Median, ms."""
    p90: float
    """90th percentile, ms."""
    p95: float
    """95th percentile, ms."""
    p99: float
    """99th percentile, ms."""
    max: float
    """Slowest, ms."""

    @staticmethod
    def of(seconds: Sequence[float]) -> LatencyStats:
        """Statistics of latencies given in seconds (reported in ms)."""
        a = np.asarray(seconds, np.float64) * 1e3
        if a.size == 0:
            nan = float("nan")
            return LatencyStats(0, nan, nan, nan, nan, nan, nan, nan, nan)
        p = np.percentile(a, [50, 90, 95, 99])
        return LatencyStats(
            int(a.size),
            float(a.min()),
            float(a.mean()),
            float(a.std()),
            *map(float, p),
            float(a.max()),
        )


@dataclass(frozen=True)
class FlopCount:
    """The model's arithmetic per frame, counted on the ONNX graph at concrete input shapes."""

    dense_gflops: float
    """Conv, ConvTranspose, MatMul, Gemm: 2 FLOPs per multiply-accumulate, GFLOP."""
    other_gflops: float
    """Elementwise-like ops at one FLOP per output element, GFLOP."""
    by_op: dict[str, float]
    """GFLOP per op type."""
    num_points: int
    """Points of the input the shapes came from."""

    @property
    def total_gflops(self) -> float:
        """Dense plus other."""
        return self.dense_gflops + self.other_gflops


@dataclass(frozen=True)
class CellResult:
    """One benchmarked setting (a row of the sweep)."""

    device_requested: str
    """Device asked for."""
    device: str
    """Device used (``cpu`` when a GPU provider is unusable)."""
    precision: str
    """``fp32``, ``fp16``, ``int8``: the precision that ran (see ``precision_requested``)."""
    threads: int | None
    """Intra-op threads (None: onnxruntime's default)."""
    providers: tuple[str, ...] = ()
    """Execution providers of the session."""
    model_path: str = ""
    """The variant's file."""
    ok: bool = True
    """False: the setting could not run (see ``note``)."""
    note: str = ""
    """Fallbacks and reasons, in words."""
    session_creation_s: float = float("nan")
    """Creating the session, seconds."""
    session_creation_cached_s: float | None = None
    """TensorRT: creating a second session from the engine cache, seconds."""
    first_inference_s: float = float("nan")
    """Inference stage of the first call after the session's creation, seconds (what
    onnxruntime's first run costs: allocations, kernel selection)."""
    first_call_s: float = float("nan")
    """The whole first call (decode, preprocess, inference, postprocess), seconds."""
    precision_requested: str = ""
    """The precision asked for, where another ran (TensorRT's FP16 without TensorRT)."""
    calibration: str = ""
    """INT8: the frames its scales were calibrated on."""
    iterations: int = 0
    """Timed iterations."""
    wall_s: float = 0.0
    """Wall time of the timed loop, seconds."""
    throughput_fps: float = float("nan")
    """Frames per second, one frame at a time: 1 / mean end-to-end latency (with PyTorch
    interleaved, its steps are not counted)."""
    total: LatencyStats | None = None
    """End-to-end latency."""
    stages: dict[str, LatencyStats] = field(default_factory=dict)
    """Latency of each stage (and ``h2d``, ``device``, ``d2h`` with IO binding)."""
    io_binding: bool = False
    """Inference ran with IO binding."""
    graph_rewrites: int = 0
    """Nodes changed by the Detector's exact graph rewrites."""
    samples_ms: list[float] = field(default_factory=list)
    """End-to-end latencies, ms, in run order (for plots)."""
    inference_samples_ms: list[float] = field(default_factory=list)
    """Inference latencies, ms, in run order."""
    stage_samples_ms: dict[str, list[float]] = field(default_factory=dict)
    """Every stage's latencies, ms, in run order (what ``stages`` summarises)."""
    peak_rss_mb: float = float("nan")
    """Largest resident memory of the process seen during the run, MB."""
    rss_increase_mb: float = float("nan")
    """Peak RSS minus the RSS before the session was created, MB."""
    cpu_cores_busy: float = float("nan")
    """Average CPU cores the process kept busy during the timed loop: process CPU time over
    wall time, with the interleaved PyTorch runs of ``--compare-torch`` (and the pause after
    each) taken out of both."""
    cpu_percent_of_machine: float = float("nan")
    """The same as a percentage of the logical cores."""
    mean_points: float = 0.0
    """Mean points per frame given to the model."""
    mean_detections: float = 0.0
    """Mean detections per frame returned."""


@dataclass(frozen=True)
class TorchComparison:
    """PyTorch eager on the same inputs, interleaved with onnxruntime."""

    checkpoint: str
    """The checkpoint file."""
    threads: int
    """``torch.get_num_threads()`` during the run."""
    inference: LatencyStats
    """PyTorch forward latency (on a GPU: host inputs to host outputs, copies included)."""
    onnx_inference: LatencyStats
    """onnxruntime inference latency over the same iterations."""
    speedup_p50: float
    """PyTorch p50 / onnxruntime p50 (inference only): >1 means onnxruntime is faster."""
    speedup_mean: float
    """The same with means."""
    end_to_end_speedup: float
    """(stages + PyTorch) / (stages + onnxruntime), means: what a robot would see."""
    max_score_diff: float
    """Largest |score difference| between the two outputs (sorted), a sanity check."""
    samples_ms: list[float] = field(default_factory=list)
    """PyTorch latencies, ms."""
    gflops_by_flop_counter: float | None = None
    """GFLOPs per frame according to ``torch.utils.flop_counter`` (None: not counted)."""
    device: str = "cpu"
    """Where PyTorch ran: ``cpu`` or ``cuda`` (with ``--device cuda``/``tensorrt`` and a GPU
    that PyTorch sees)."""


@dataclass(frozen=True)
class BenchReport:
    """Everything a benchmark run measured, with the machine and the settings."""

    config: dict[str, Any]
    """The :class:`BenchConfig` as a dict."""
    environment: dict[str, Any]
    """Hardware, library versions, available providers, GPU state."""
    model: dict[str, Any]
    """Model file, variant, classes, cameras, image size, max points."""
    data: dict[str, Any]
    """Where frames came from and their size."""
    main: CellResult
    """The benchmarked setting (the first cell of a sweep)."""
    sweep: list[CellResult] = field(default_factory=list)
    """All cells of a sweep (empty without ``sweep``)."""
    flops: FlopCount | None = None
    """The model's cost per frame."""
    peak: dict[str, Any] | None = None
    """The matmul probe: ``gflops_per_s``, size, device, threads."""
    achieved: dict[str, Any] | None = None
    """GFLOP/s reached by the inference and its fraction of the probe's peak."""
    torch: TorchComparison | None = None
    """PyTorch comparison, when asked for."""
    profile: dict[str, Any] | None = None
    """Per-operator inference time from onnxruntime's profiler: ``by_op`` and ``top_nodes``
    (ms per run, share of the kernel time)."""
    gpu_message: str | None = None
    """Why GPU parts were not run, in words (None: a GPU ran, or none was asked for)."""
    created: str = ""
    """When the run started (ISO 8601, UTC)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN written as null)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float):
                return None if not math.isfinite(v) else v
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            return v

        d = asdict(self)
        if self.flops is not None:
            d["flops"]["total_gflops"] = self.flops.total_gflops
        return clean(d)


# --------------------------------------------------------------------------- environment


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nvidia_smi() -> list[dict[str, str]]:
    """GPUs that ``nvidia-smi`` lists (empty without a driver)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.stdout.strip().splitlines() if out.returncode == 0 else []:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return gpus


def environment() -> dict[str, Any]:
    """The machine and software a report was measured on."""
    import onnxruntime as ort
    import psutil

    mem = psutil.virtual_memory().total
    return {
        "cpu_model": _cpu_model(),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "cpu_logical_cores": psutil.cpu_count(logical=True),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(mem / 2**30, 1),
        "load_average_1_5_15min": [round(v, 2) for v in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": {
            p: _version(p)
            for p in (
                "perceive",
                "onnxruntime",
                "onnxruntime-gpu",
                "onnx",
                "numpy",
                "opencv-python-headless",
                "torch",
            )
            if _version(p) is not None
        },
        # the module really imported (a wheel unpacked on PYTHONPATH has no package metadata)
        "onnxruntime_imported": f"{ort.__version__} at {Path(ort.__file__).parent}",
        "onnxruntime_providers": list(ort.get_available_providers()),
        "onnxruntime_device": ort.get_device(),
        "gpus": _nvidia_smi(),
        "env": {
            k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ
        },
    }


# --------------------------------------------------------------------------- frames


class FrameSource:
    """Serialized v1 frames held in memory; :meth:`load` parses one (part of the decode stage).

    Args:
        data: a ``.tfrecord`` file or a folder of them; None: generated frames.
        num_frames: generated frames, or at most this many records of ``data``.
        frame_size: ``waymo`` or ``small`` generated frames.
        seed: seed of the generated frames.
    """

    def __init__(
        self, data: str | Path | None, num_frames: int, frame_size: str = "waymo", seed: int = 0
    ) -> None:
        from perceive.datasets.waymo.v1_writer import serialize_frame

        self.records: list[bytes] = []
        self.names: list[str] = []
        if data is None:
            for i in range(num_frames):
                frame = synthetic_frame(seed + i, frame_size)
                self.records.append(serialize_frame(frame))
                self.names.append(f"generated frame {seed + i} ({frame_size})")
            self.description = f"{num_frames} generated frames ({frame_size} size), seed {seed}"
            return
        from perceive.datasets import waymo

        path = Path(data)
        if path.is_dir():
            files = sorted(path.glob("*.tfrecord"))
            if not files and (path / "PERCEIVE_FORMAT.json").exists():
                raise DataError(
                    "a perceive cache holds frames already decoded to points; the benchmark "
                    "times the whole path from Waymo records: give the .tfrecord files it "
                    "was converted from",
                    path=path,
                )
            if not files:
                raise DataError("folder holds no .tfrecord files", path=path)
        elif path.is_file():
            files = [path]
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
        for f in files:
            with waymo.open(f) as seg:
                for i in range(len(seg)):
                    if len(self.records) == num_frames:
                        break
                    self.records.append(seg.read_bytes(i))
                    self.names.append(f"{f}, record {i}")
        if not self.records:
            raise DataError("no frames found", path=path)
        self.description = f"{len(self.records)} frames from {path}"

    def __len__(self) -> int:
        return len(self.records)

    def load(self, i: int) -> Frame:
        """Parse frame ``i % len(self)``."""
        from perceive.datasets.waymo.v1 import parse_frame

        k = i % len(self.records)
        return parse_frame(self.records[k], self.names[k])


def _smooth_image(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth RGB image with mild noise: it JPEG-compresses like a photo, unlike pure noise."""
    import cv2

    small = rng.uniform(40, 215, (max(2, height // 40), max(2, width // 40), 3)).astype(np.float32)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 3, (height, width, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_frame(seed: int, size: str = "waymo") -> Frame:
    """A generated frame for timing.

    ``waymo``: Waymo-sized sensors: TOP range images 64 x 2650 and four short-range lasers
    (about 190k points over both returns) and five JPEG images of 1920 x 1280 (front) and
    1920 x 886 (sides) with photo-like compression. ``small``: the tiny test fixture.
    """
    from perceive.datasets.image import encode_jpeg
    from perceive.datasets.waymo.fixtures import camera_calibration, make_frame

    if size == "small":
        return make_frame(seed)
    base = make_frame(
        seed, top_shape=(64, 2650), side_shape=(32, 300), image_size=(64, 48), num_boxes=20
    )
    rng = np.random.default_rng(seed + 7)
    cams, images = {}, {}
    for name in base.cameras:
        w, h = (1920, 886) if name.startswith("SIDE") else (1920, 1280)
        cams[name] = camera_calibration(name, w, h)
        images[name] = encode_jpeg(_smooth_image(rng, w, h))
    return replace(base, cameras=cams, image_bytes=images, projected_boxes={}, camera_boxes={})


# --------------------------------------------------------------------------- model cost


def _shape_flops(op: str, node: Any, shapes: dict[str, tuple[int, ...]]) -> tuple[float, bool]:
    """(FLOPs, dense?) of one node from the concrete shapes of its inputs and outputs."""
    out = shapes.get(node.output[0]) if node.output else None
    if out is None:
        return 0.0, False
    n_out = float(np.prod(out)) if len(out) else 1.0
    if op in ("Conv", "ConvTranspose"):
        w = shapes.get(node.input[1])
        if w is None or len(w) < 3:
            return 0.0, True
        if op == "Conv":
            per_out = float(np.prod(w[1:]))  # Cin/group * kernel
            return 2.0 * n_out * per_out, True
        x = shapes.get(node.input[0])
        if x is None:
            return 0.0, True
        return 2.0 * float(np.prod(x)) * float(np.prod(w[1:])), True
    if op == "MatMul":
        a = shapes.get(node.input[0])
        if a is None or len(a) == 0:
            return 0.0, True
        return 2.0 * n_out * float(a[-1]), True
    if op == "Gemm":
        a = shapes.get(node.input[0])
        trans_a = next((at.i for at in node.attribute if at.name == "transA"), 0)
        if a is None or len(a) != 2:
            return 0.0, True
        return 2.0 * n_out * float(a[0] if trans_a else a[1]), True
    if op in ELEMENTWISE_OPS:
        return n_out, False
    return 0.0, False


def count_flops(model_path: str | Path, inputs: ModelInputs) -> FlopCount:
    """FLOPs of one frame, counted on the graph at the shapes this input gives.

    The graph is run once on the CPU with every intermediate tensor as an output (graph
    optimisations off, so that nodes are the exported ones) to learn the data-dependent shapes.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    graph = model.graph
    existing = {o.name for o in graph.output}
    for node in graph.node:
        for o in node.output:
            if o and o not in existing:
                graph.output.append(onnx.ValueInfoProto(name=o))
                existing.add(o)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(names, inputs.feeds())
    shapes: dict[str, tuple[int, ...]] = {
        n: tuple(np.shape(v))
        for n, v in zip(names, values, strict=True)
        if isinstance(v, np.ndarray)
    }
    shapes.update({k: tuple(v.shape) for k, v in inputs.feeds().items()})
    shapes.update({t.name: tuple(t.dims) for t in graph.initializer})
    dense = other = 0.0
    by_op: dict[str, float] = {}
    for node in graph.node:
        f, is_dense = _shape_flops(node.op_type, node, shapes)
        if f:
            by_op[node.op_type] = by_op.get(node.op_type, 0.0) + f / 1e9
            if is_dense:
                dense += f
            else:
                other += f
    by_op = dict(sorted(by_op.items(), key=lambda kv: -kv[1]))
    return FlopCount(dense / 1e9, other / 1e9, by_op, int(inputs.points.shape[0]))


def profile_ops(
    model_path: str | Path,
    inputs: ModelInputs,
    *,
    device: str = "cpu",
    threads: int | None = None,
    runs: int = 3,
    top: int = 12,
    optimize: bool = True,
) -> dict[str, Any]:
    """Where the inference time goes: onnxruntime's profiler over ``runs`` runs of ``inputs``.

    Returns ``{"runs", "kernel_ms_per_run", "by_op": [{op, ms, share}], "top_nodes": [...]}``.
    """
    import tempfile

    import onnxruntime as ort

    from perceive.deploy.runner import DEVICE_PROVIDERS

    with tempfile.TemporaryDirectory(prefix="perceive_prof_") as tmp:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads is not None:
            so.intra_op_num_threads = threads
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "ort")
        avail = ort.get_available_providers()
        providers = [p for p in DEVICE_PROVIDERS.get(device, ()) if p in avail] or [
            "CPUExecutionProvider"
        ]
        from perceive.deploy.optimize import optimized_model

        # what the Detector runs
        data = (
            optimized_model(model_path, threads=threads, providers=providers)[0]
            if optimize
            else None
        )
        sess = ort.InferenceSession(data or str(model_path), so, providers=providers)
        feeds = inputs.feeds()
        sess.run(None, feeds)
        for _ in range(runs):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = {}
    by_node: dict[tuple[str, str], float] = {}
    # The first run is the untimed warm-up (the profiler records from session creation):
    # its node events lie inside its model_run window and are left out.
    run_events = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e.get("ts", 0),
    )
    n_runs = max(len(run_events) - 1, 0)
    warm = (
        (run_events[0]["ts"], run_events[0]["ts"] + run_events[0].get("dur", 0))
        if run_events
        else (0, -1)
    )
    for e in events:
        if warm[0] <= e.get("ts", -1) <= warm[1]:
            continue
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + e["dur"] / 1e3
            key = (op, e["name"].removesuffix("_kernel_time"))
            by_node[key] = by_node.get(key, 0.0) + e["dur"] / 1e3
    n_runs = max(n_runs, 1)
    total = sum(by_op.values()) or 1.0
    return {
        "runs": n_runs,
        "kernel_ms_per_run": total / n_runs,
        "by_op": [
            {"op": k, "ms": v / n_runs, "share": v / total}
            for k, v in sorted(by_op.items(), key=lambda kv: -kv[1])[:top]
        ],
        "top_nodes": [
            {"op": k[0], "node": k[1], "ms": v / n_runs, "share": v / total}
            for k, v in sorted(by_node.items(), key=lambda kv: -kv[1])[:top]
        ],
    }


def matmul_probe(
    device: str = "cpu",
    threads: int | None = None,
    *,
    sizes: Sequence[int] = (512, 1024, 2048),
    seconds: float = 0.4,
) -> dict[str, Any]:
    """Measured dense rate: the best GFLOP/s of float32 square MatMuls in onnxruntime, with
    the same provider and threads as the benchmark (each size run for ``seconds``, best
    run kept; the best size is reported). A measured ceiling of this library on this
    machine, not the processor's datasheet peak.
    """
    best: dict[str, Any] | None = None
    by_size: dict[str, float] = {}
    for n in sizes:
        r = _matmul_rate(device, threads, size=n, seconds=seconds)
        by_size[str(n)] = r["gflops_per_s"]
        if best is None or r["gflops_per_s"] > best["gflops_per_s"]:
            best = r
    assert best is not None, "matmul_probe needs at least one size"
    return {**best, "gflops_per_s_by_size": by_size}


def _matmul_rate(device: str, threads: int | None, *, size: int, seconds: float) -> dict[str, Any]:
    """GFLOP/s of one float32 ``size`` x ``size`` MatMul (best of repeated runs)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from perceive.deploy.runner import DEVICE_PROVIDERS

    g = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul_probe",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = min(m.ir_version, 10)
    onnx.checker.check_model(m)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads is not None:
        so.intra_op_num_threads = threads
    providers = [
        p
        for p in DEVICE_PROVIDERS.get(device, ("CPUExecutionProvider",))
        if p in ort.get_available_providers()
    ]
    sess = ort.InferenceSession(
        m.SerializeToString(), so, providers=providers or ["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    sess.run(None, {"a": a, "b": b})
    best = float("inf")
    end = time.perf_counter() + seconds
    runs = 0
    while runs < 3 or time.perf_counter() < end:
        t0 = time.perf_counter()
        sess.run(None, {"a": a, "b": b})
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return {
        "gflops_per_s": 2.0 * size**3 / best / 1e9,
        "size": size,
        "dtype": "float32",
        "device": sess.get_providers()[0],
        "threads": threads,
        "runs": runs,
    }


# --------------------------------------------------------------------------- the loop


class _Monitor:
    """Peak RSS and CPU time of this process."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.baseline = self.proc.memory_info().rss
        self.peak = self.baseline

    def sample(self) -> None:
        self.peak = max(self.peak, self.proc.memory_info().rss)

    def cpu_s(self) -> float:
        # the process's CPU clock (all threads), nanosecond resolution; psutil's cpu_times
        # counts 10 ms ticks, too coarse to take one PyTorch run out of the total
        return time.process_time()


def _iterate(
    det: Detector, source: FrameSource, i: int, torch_model: Any = None, torch_first: bool = False
) -> tuple[dict[str, float], ModelInputs, Any, tuple[np.ndarray, ...], tuple[float, tuple] | None]:
    """One end-to-end iteration.

    Returns (stage seconds, model inputs, detections, raw outputs, (PyTorch seconds, PyTorch
    outputs, wall seconds and process CPU seconds of the whole PyTorch step, pause included)
    or None). With a PyTorch model, its forward runs on the same inputs just before
    (``torch_first``) or just after onnxruntime's, outside the timed stages.
    """
    t0 = time.perf_counter()
    frame = source.load(i)
    tp = time.perf_counter()
    for cam in det.info.cameras:  # decoded once, kept by the frame for inputs_from_frame
        if cam in frame.image_bytes:
            frame.images[cam]
    ti = time.perf_counter()
    pts, imgs, cal = det.inputs_from_frame(frame)
    t1 = time.perf_counter()
    inputs = det.prepare(pts, imgs, cal)
    t2 = time.perf_counter()
    torch_run = None
    if torch_model is not None and torch_first:
        c = time.process_time()
        secs, touts = _timed_torch(torch_model, inputs)
        time.sleep(SETTLE_S)
        torch_run = (secs, touts, time.perf_counter() - t2, time.process_time() - c)
    t2b = time.perf_counter()
    outs, extra = det.infer(inputs)
    t3 = time.perf_counter()
    if torch_model is not None and not torch_first:
        c = time.process_time()
        time.sleep(SETTLE_S)
        secs, touts = _timed_torch(torch_model, inputs)
        torch_run = (secs, touts, time.perf_counter() - t3, time.process_time() - c)
    t3b = time.perf_counter()
    dets = det.postprocess(outs)
    t4 = time.perf_counter()
    times = {
        "decode": t1 - t0,
        "preprocess": t2 - t1,
        "inference": t3 - t2b,
        "postprocess": t4 - t3b,
        "decode.parse": tp - t0,
        "decode.images": ti - tp,
        "decode.points": t1 - ti,
    }
    for k, v in extra.items():
        times[k.removesuffix("_s")] = v
    times["total"] = sum(times[s] for s in STAGES)
    return times, inputs, dets, outs, torch_run


def _make_detector(
    cfg: BenchConfig, path: Path, device: str, threads: int | None, trt_fp16: bool = False
) -> tuple[Detector, str | None]:
    from perceive.deploy.runner import Detector

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        det = Detector(
            path,
            device=device,
            threads=threads,
            trt_cache_dir=cfg.trt_cache_dir,
            optimize=cfg.optimize,
            flush_denormals=cfg.flush_denormals,
            trt_fp16=trt_fp16,
        )
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    return det, (det.fallback_message or ("; ".join(msgs) if msgs else None))


def _torch_model(checkpoint: str, device: str = "cpu") -> Any:
    """The checkpoint's model in eval mode on ``device`` (``cpu`` or ``cuda``)."""
    try:
        from perceive.training.checkpoint import detector_from_checkpoint
    except ImportError as e:
        raise PerceiveError(
            f"--compare-torch needs the PyTorch model code (perceive.training.checkpoint): {e}"
        ) from None
    return detector_from_checkpoint(checkpoint).to(device)


def check_same_model(model: Any, info: Any, checkpoint: str) -> None:
    """Refuse a ``--compare-torch`` checkpoint that is another model than the ONNX file (a
    ratio of two different models' latencies means nothing).

    Args:
        model: the checkpoint's detector (its ``config`` is compared).
        info: the ONNX model's :class:`~perceive.deploy.runner.ModelInfo`.
        checkpoint: the checkpoint's path, for the message.

    Raises:
        ConfigError: naming every declared property that differs.
    """
    config = model.config
    pairs = {
        "variant": (config.variant, info.variant),
        "class_names": (tuple(config.class_names), tuple(info.class_names)),
        "cameras": (tuple(config.camera.cameras), tuple(info.cameras)),
        "image_size": (tuple(config.camera.image_size), tuple(info.image_size)),
        "point_features": (tuple(config.pillars.point_features), tuple(info.point_features)),
        "max_points": (int(config.pillars.max_points), int(info.max_points)),
        "point_cloud_range": (
            tuple(float(v) for v in config.grid.point_cloud_range),
            tuple(float(v) for v in info.point_range),
        ),
    }
    diff = [f"{k} {a!r} (checkpoint) vs {b!r} (ONNX)" for k, (a, b) in pairs.items() if a != b]
    if diff:
        raise ConfigError(
            f"--compare-torch {checkpoint} is not the model of {info.path}: " + "; ".join(diff)
        )


#: Largest score difference between PyTorch and onnxruntime that passes without a warning.
SCORE_DIFF_WARN = 1e-3


def _torch_device(model: Any) -> Any:
    p = next(model.parameters(), None)
    if p is None:
        import torch

        return torch.device("cpu")
    return p.device


def torch_device_for(device: str) -> str:
    """Where ``--compare-torch`` runs PyTorch for an onnxruntime ``device``: CUDA for the GPU
    providers when PyTorch sees a GPU, else the CPU."""
    if device in ("cuda", "tensorrt"):
        import torch

        if torch.cuda.is_available():
            return "cuda"
    return "cpu"


def run_cell(
    cfg: BenchConfig,
    source: FrameSource,
    *,
    device: str,
    precision: str,
    threads: int | None,
    torch_model: Any = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[CellResult, dict[str, Any]]:
    """Benchmark one setting. Returns the result and extras (torch samples, last inputs)."""
    from perceive.deploy.quantize import make_variant

    extras: dict[str, Any] = {}
    try:
        # INT8 scales are calibrated on the benchmark's own frames (at most 4); a variant
        # calibrated on other frames is made again
        n_calib = min(4, len(source))
        calib = [source.load(i) for i in range(n_calib)] if precision == "int8" else None
        calib_source = (
            "sha256:" + hashlib.sha256(b"".join(source.records[:n_calib])).hexdigest()
            if precision == "int8"
            else None
        )
        # TensorRT makes its own FP16 kernels from the float32 graph (trt_fp16_enable), which
        # is how it is meant to be used; other providers run the converted FP16 graph.
        trt_fp16 = device == "tensorrt" and precision == "fp16"
        variant = "fp32" if trt_fp16 else precision
        path = make_variant(
            cfg.model,
            variant,
            out_dir=cfg.variant_dir,
            calibration_frames=calib,
            calibration_source=calib_source,
        )
    except PerceiveError as e:
        return CellResult(
            device, device, precision, threads, ok=False, note=f"variant not made: {e}"
        ), extras
    rss0 = _Monitor()
    t0 = time.perf_counter()
    det, message = _make_detector(cfg, path, device, threads, trt_fp16)
    create_s = time.perf_counter() - t0
    cached_s = None
    if det.device == "tensorrt":  # a second session loads the engines from the cache
        t0 = time.perf_counter()
        _make_detector(cfg, path, device, threads, trt_fp16)
        cached_s = time.perf_counter() - t0
    note = message or ""
    ran_precision, requested = precision, ""
    if trt_fp16 and det.device != "tensorrt":
        note = (note + "; " if note else "") + "FP16 was meant for TensorRT: the float32 graph ran"
        ran_precision, requested = "fp32", precision
    calibration = (
        f"INT8 scales from the first {n_calib} of {source.description}"
        if precision == "int8"
        else ""
    )
    try:
        times, inputs, dets, _, _ = _iterate(det, source, 0)
    except PerceiveError:
        raise
    except Exception as e:  # onnxruntime: a kernel missing for this precision on this device
        first = str(e).strip().splitlines()[0][:300]
        return (
            CellResult(
                device,
                det.device,
                ran_precision,
                threads,
                det.providers,
                str(path),
                ok=False,
                note=(note + "; " if note else "") + f"cannot run: {first}",
                session_creation_s=create_s,
                precision_requested=requested,
                calibration=calibration,
            ),
            extras,
        )
    first_s, first_call_s = times["inference"], times["total"]
    for i in range(cfg.warmup):
        _iterate(det, source, 1 + i, torch_model, i % 2 == 1)
    mon = rss0
    mon.sample()
    samples: list[dict[str, float]] = []
    torch_s: list[float] = []
    score_diff = 0.0
    n_points, n_dets = [], []
    limit = cfg.timed_iters
    cpu0, wall0 = mon.cpu_s(), time.perf_counter()
    torch_wall = torch_cpu = 0.0  # the interleaved PyTorch steps, taken out of CPU use
    deadline = None if cfg.duration_s is None else wall0 + cfg.duration_s
    i = 0
    while (limit is not None and i < limit) or (
        deadline is not None and (time.perf_counter() < deadline or i == 0)
    ):
        # with PyTorch, alternate which runs first so that neither warms the caches for the other
        times, inputs, dets, outs, torch_run = _iterate(
            det, source, 1 + cfg.warmup + i, torch_model, i % 2 == 1
        )
        if torch_run is not None:
            torch_s.append(torch_run[0])
            torch_wall += torch_run[2]
            torch_cpu += torch_run[3]
            score_diff = max(score_diff, _score_diff(outs[1], torch_run[1][1]))
        samples.append(times)
        n_points.append(int(inputs.points.shape[0]))
        n_dets.append(len(dets))
        mon.sample()
        i += 1
        if progress is not None and i % 10 == 0:
            progress(f"{i} iterations")
    wall = time.perf_counter() - wall0
    cpu = mon.cpu_s() - cpu0
    import psutil

    logical = psutil.cpu_count(logical=True) or 1
    loop_wall = max(wall - torch_wall, 1e-9)
    loop_cpu = max(cpu - torch_cpu, 0.0)
    stages = {s: LatencyStats.of([t[s] for t in samples]) for s in samples[0] if s != "total"}
    total = [t["total"] for t in samples]
    result = CellResult(
        device_requested=device,
        device=det.device,
        precision=ran_precision,
        precision_requested=requested,
        calibration=calibration,
        threads=threads,
        providers=det.providers,
        model_path=str(path),
        ok=True,
        note=note,
        session_creation_s=create_s,
        session_creation_cached_s=cached_s,
        first_inference_s=first_s,
        first_call_s=first_call_s,
        iterations=len(samples),
        wall_s=wall,
        throughput_fps=len(samples) / max(sum(total), 1e-9),
        total=LatencyStats.of(total),
        stages=stages,
        io_binding=det.io_binding,
        graph_rewrites=det.graph_rewrites,
        samples_ms=[t * 1e3 for t in total],
        inference_samples_ms=[t["inference"] * 1e3 for t in samples],
        stage_samples_ms={s: [t[s] * 1e3 for t in samples] for s in samples[0] if s != "total"},
        peak_rss_mb=mon.peak / 2**20,
        rss_increase_mb=(mon.peak - mon.baseline) / 2**20,
        cpu_cores_busy=loop_cpu / loop_wall,
        cpu_percent_of_machine=100.0 * loop_cpu / loop_wall / logical,
        mean_points=float(np.mean(n_points)),
        mean_detections=float(np.mean(n_dets)),
    )
    extras["torch_s"] = torch_s
    extras["torch_score_diff"] = score_diff
    extras["inputs"] = inputs
    extras["detector"] = det
    return result, extras


def _torch_forward(model: Any, inputs: ModelInputs) -> tuple[np.ndarray, ...]:
    """PyTorch forward on the model's device: host arrays in, host arrays out (on a GPU the
    copies both ways are included, as they are in onnxruntime's inference stage)."""
    import torch

    dev = _torch_device(model)
    with torch.inference_mode():
        out = model(
            *(
                torch.from_numpy(np.ascontiguousarray(x)).to(dev)
                for x in (inputs.points, inputs.images, inputs.intrinsics, inputs.extrinsics)
            )
        )
        result = tuple(o.cpu().numpy() for o in out)  # .cpu() waits for the device
    return result


def _timed_torch(model: Any, inputs: ModelInputs) -> tuple[float, tuple[np.ndarray, ...]]:
    t0 = time.perf_counter()
    out = _torch_forward(model, inputs)
    return time.perf_counter() - t0, out


def _score_diff(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(np.asarray(a, np.float64))[::-1], np.sort(np.asarray(b, np.float64))[::-1]
    n = min(a.size, b.size)
    return float(np.abs(a[:n] - b[:n]).max(initial=0.0)) if a.size == b.size else float("inf")


def _default_threads(env: dict[str, Any]) -> list[int]:
    top = int(env.get("cpu_logical_cores") or 1)
    out, t = [], 1
    while t < top:
        out.append(t)
        t *= 2
    out.append(top)
    return sorted(set(out))


def run_benchmark(
    cfg: BenchConfig, *, progress: Callable[[str], None] | None = None
) -> BenchReport:
    """Run the benchmark the config describes and return its report."""
    import datetime as dt

    from perceive.deploy.runner import Detector

    model = Path(cfg.model)
    if not model.is_file():
        raise FileNotFoundError(f"no such model file: {model}")
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    say = progress or (lambda s: None)
    env = environment()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        info = Detector(model, device="cpu", threads=1).info  # fails early on a bad model
    say("reading frames" if cfg.data else "generating frames")
    source = FrameSource(cfg.data, cfg.num_frames, cfg.frame_size, cfg.seed)

    torch_model = None
    torch_threads = None
    if cfg.compare_torch:
        import torch

        torch_model = _torch_model(cfg.compare_torch, torch_device_for(cfg.device))
        check_same_model(torch_model, info, cfg.compare_torch)
        torch_threads = cfg.threads or int(env["cpu_physical_cores"] or 1)
        torch.set_num_threads(torch_threads)
        torch.set_flush_denormal(cfg.flush_denormals)

    cells: list[CellResult] = []
    gpu_messages: list[str] = []
    if cfg.sweep:
        threads_list = list(cfg.sweep_threads) if cfg.sweep_threads else _default_threads(env)
        grid = []
        for device in cfg.sweep_devices:
            for precision in cfg.sweep_precisions:
                # intra-op threads matter on the CPU only: one GPU row per precision
                for t in threads_list if device == "cpu" else [cfg.threads]:
                    grid.append((device, precision, t))
    else:
        grid = [(cfg.device, cfg.precision, cfg.threads)]

    import onnxruntime as ort

    from perceive.deploy.runner import DEVICE_PROVIDERS, select_providers

    main_extras: dict[str, Any] = {}
    for n, (device, precision, threads) in enumerate(grid):
        if device != "cpu":
            try:
                choice = select_providers(device, ort.get_available_providers(), fallback=True)
            except PerceiveError as e:
                choice = None
                gpu_messages.append(str(e))
            if cfg.sweep and (choice is None or choice.device != device):
                # a sweep does not run a GPU row on the CPU: the CPU rows are there already
                wanted = DEVICE_PROVIDERS[device][0]
                avail = ", ".join(ort.get_available_providers())
                msg = (
                    f"no {wanted} in this onnxruntime (providers: {avail}; GPU providers come "
                    f"with `pip install 'perceive[gpu]'`): the sweep's {device} rows were not run"
                )
                cells.append(
                    CellResult(
                        device,
                        "none",
                        precision,
                        threads,
                        ok=False,
                        note=f"not run: no {wanted} here (see GPU line)",
                    )
                )
                if msg not in gpu_messages:
                    gpu_messages.append(msg)
                continue
        say(f"benchmarking device={device} precision={precision} threads={threads or 'default'}")
        cell, extras = run_cell(
            cfg,
            source,
            device=device,
            precision=precision,
            threads=threads,
            torch_model=torch_model,
            progress=say,
        )
        if (
            device != "cpu"
            and cell.device != device
            and cell.note
            and cell.note not in gpu_messages
        ):
            gpu_messages.append(cell.note)
        cells.append(cell)
        if n == 0 or not main_extras:
            main_extras = extras if cell.ok else main_extras
    main = next((c for c in cells if c.ok), cells[0])
    if not main.ok:
        if all(c.device == "none" for c in cells):
            raise PerceiveError(
                "no setting of the sweep could run: "
                + "; ".join(gpu_messages)
                + " (add cpu to --sweep-devices)"
            )
        raise PerceiveError(f"the model could not run: {main.note}")

    flops = peak = achieved = None
    inputs = main_extras.get("inputs")
    if cfg.flops and inputs is not None:
        say("counting FLOPs")
        try:
            flops = count_flops(model, inputs)
        except Exception as e:  # an unusual graph must not sink the report
            warnings.warn(f"FLOP count failed: {e}", RuntimeWarning, stacklevel=2)
    if cfg.probe:
        say("matmul probe")
        peak = matmul_probe(main.device, main.threads)
        if flops is not None and main.stages.get("inference") is not None:
            inf_s = main.stages["inference"].p50 / 1e3
            gps = flops.dense_gflops / inf_s
            achieved = {
                "dense_gflops_per_s": gps,
                "fraction_of_peak": gps / peak["gflops_per_s"],
                "note": "dense FLOPs / inference p50, against a float32 MatMul probe"
                + ("; int8 kernels have a higher peak" if main.precision == "int8" else ""),
            }

    prof = None
    if cfg.profile and inputs is not None:
        say("profiling operators")
        prof = profile_ops(
            main.model_path, inputs, device=main.device, threads=main.threads, optimize=cfg.optimize
        )

    torch_cmp = None
    if torch_model is not None:
        ts = main_extras["torch_s"]
        t_stats = LatencyStats.of(ts)
        o_stats = main.stages["inference"]
        other = sum(main.stages[s].mean for s in STAGES if s != "inference")
        gfl = None
        with contextlib.suppress(Exception):
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                _torch_forward(torch_model, inputs)
            gfl = counter.get_total_flops() / 1e9
        torch_cmp = TorchComparison(
            checkpoint=str(cfg.compare_torch),
            threads=int(torch_threads or 0),
            inference=t_stats,
            onnx_inference=o_stats,
            speedup_p50=t_stats.p50 / o_stats.p50,
            speedup_mean=t_stats.mean / o_stats.mean,
            end_to_end_speedup=(other + t_stats.mean) / (other + o_stats.mean),
            max_score_diff=float(main_extras["torch_score_diff"]),
            samples_ms=[t * 1e3 for t in ts],
            gflops_by_flop_counter=gfl,
            device=str(_torch_device(torch_model).type),
        )

    gpu_message = None
    if gpu_messages:
        gpu_message = " | ".join(dict.fromkeys(gpu_messages))
    elif cfg.device == "cpu" and not (cfg.sweep and any(d != "cpu" for d in cfg.sweep_devices)):
        gpu = [
            p
            for p in env["onnxruntime_providers"]
            if p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
        ]
        gpu_message = (
            None if gpu else "no GPU provider in this onnxruntime (CPU build); GPU parts not run"
        )
    cfg_dict = asdict(cfg)
    cfg_dict["timed_iters"] = cfg.timed_iters
    return BenchReport(
        config=cfg_dict,
        environment=env,
        model={
            "path": str(model),
            "size_mb": model.stat().st_size / 1e6,
            "variant": info.variant,
            "version": info.version,
            "class_names": list(info.class_names),
            "cameras": list(info.cameras),
            "image_size": list(info.image_size),
            "max_points": info.max_points,
            "point_range": list(info.point_range),
        },
        data={"source": source.description, "frames": len(source), "mean_points": main.mean_points},
        main=main,
        sweep=cells if cfg.sweep else [],
        flops=flops,
        peak=peak,
        achieved=achieved,
        torch=torch_cmp,
        profile=prof,
        gpu_message=gpu_message,
        created=created,
    )


# --------------------------------------------------------------------------- output


def _f(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def format_report(report: BenchReport) -> str:
    """The report as readable text for the terminal."""
    env, m, main = report.environment, report.model, report.main
    cfg = report.config
    w, h = m["image_size"]
    gpus = ", ".join(g["name"] for g in env["gpus"]) or "no NVIDIA GPU found"
    if cfg["duration_s"] is None:
        length = f"iters {main.iterations}"
    else:
        length = f"duration {cfg['duration_s']} s ({main.iterations} iters)"
    lines = [
        f"perceive bench: {m['path']} ({m['variant']}, {m['size_mb']:.1f} MB, "
        f"cameras {', '.join(m['cameras'])}, images {w}x{h}, max points {m['max_points']})",
        f"machine: {env['cpu_model']}, {env['cpu_physical_cores']} physical / "
        f"{env['cpu_logical_cores']} logical cores, {env['memory_gb']} GB; {env['platform']}"
        + (
            f"; load average {env['load_average_1_5_15min'][0]:.2f} at the start"
            if env.get("load_average_1_5_15min")
            else ""
        ),
        "versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f", python {env['python']}; onnxruntime imported: {env['onnxruntime_imported']}",
        f"providers available: {', '.join(env['onnxruntime_providers'])}; GPUs: {gpus}",
        f"data: {report.data['source']}, mean {report.data['mean_points']:.0f} points per frame "
        "given to the model",
        f"settings: device {main.device_requested} -> {main.device} ({', '.join(main.providers)}), "
        f"precision {main.precision}"
        + (f" ({main.precision_requested} requested)" if main.precision_requested else "")
        + f", threads {main.threads or 'default'}, "
        f"warmup {cfg['warmup']}, {length}"
        + (", IO binding" if main.io_binding else "")
        + (f", {main.graph_rewrites} nodes rewritten" if main.graph_rewrites else "")
        + (", denormals flushed" if cfg.get("flush_denormals") else ""),
    ]
    if report.gpu_message:
        lines.append(f"GPU: {report.gpu_message}")
    if main.note and main.note not in (report.gpu_message or ""):
        lines.append(f"note: {main.note}")
    if main.calibration:
        lines.append(f"calibration: {main.calibration}")
    cached = ""
    if main.session_creation_cached_s:
        cached = f" (from the TensorRT engine cache: {main.session_creation_cached_s * 1e3:.1f} ms)"
    lines += [
        "",
        f"session creation {main.session_creation_s * 1e3:.1f} ms{cached}, "
        f"first inference {main.first_inference_s * 1e3:.1f} ms "
        f"(the whole first call {main.first_call_s * 1e3:.1f} ms)",
        "",
        f"{'stage':<14} {'min':>8} {'mean':>8} {'p50':>8} {'p90':>8} {'p95':>8} {'p99':>8} "
        f"{'max':>8}   (ms)",
    ]
    order = ["decode", "decode.parse", "decode.images", "decode.points", "preprocess", "inference"]
    order += ["h2d", "device", "d2h", "postprocess"]
    rows = [(s, main.stages[s]) for s in order if s in main.stages]
    rows.append(("end-to-end", main.total))
    for name, st in rows:
        if "." in name or name in ("h2d", "device", "d2h"):
            name = "  " + name.split(".")[-1]
        lines.append(
            f"{name:<14} {st.min:8.2f} {st.mean:8.2f} {st.p50:8.2f} {st.p90:8.2f} "
            f"{st.p95:8.2f} {st.p99:8.2f} {st.max:8.2f}"
        )
    if main.iterations < 100:
        lines.append(
            f"({main.iterations} samples: percentiles interpolate between sorted samples, so "
            "p99 is no tail estimate below 100; run more --iters or a --duration)"
        )
    lines += [
        "",
        f"throughput {main.throughput_fps:.2f} frames/s (1 / mean end-to-end, one frame at a "
        f"time); peak RSS {main.peak_rss_mb:.0f} MB "
        f"(+{main.rss_increase_mb:.0f} MB for the session and buffers); "
        f"CPU {_f(main.cpu_cores_busy)} cores busy "
        f"({_f(main.cpu_percent_of_machine, '.0f')}% of the machine); "
        f"mean detections {main.mean_detections:.1f}",
    ]
    if report.flops is not None:
        fl = report.flops
        top = ", ".join(f"{k} {v:.3f}" for k, v in list(fl.by_op.items())[:4])
        lines.append(
            f"model cost: {fl.dense_gflops:.3f} GFLOPs dense + {fl.other_gflops:.3f} other "
            f"per frame at {fl.num_points} points ({top})"
        )
    if report.peak is not None:
        pk = report.peak
        sizes = pk.get("gflops_per_s_by_size", {})
        tried = ", ".join(f"{k}^3 {v:.0f}" for k, v in sizes.items())
        lines.append(
            f"matmul probe: {pk['gflops_per_s']:.1f} GFLOP/s, the best onnxruntime float32 "
            f"MatMul ({tried}; {pk['device']}, threads {pk['threads'] or 'default'})"
        )
    if report.achieved is not None:
        a = report.achieved
        lines.append(
            f"achieved: {a['dense_gflops_per_s']:.1f} GFLOP/s dense in inference = "
            f"{100 * a['fraction_of_peak']:.1f}% of the probe's rate"
        )
    if report.profile is not None:
        pr = report.profile
        lines += [
            "",
            f"operators (onnxruntime profiler, "
            f"{pr['kernel_ms_per_run']:.1f} ms of kernels per run):",
        ]
        for row in pr["by_op"][:8]:
            lines.append(f"  {row['op']:<22} {row['ms']:9.2f} ms  {100 * row['share']:5.1f}%")
        lines.append(
            "  slowest nodes: "
            + ", ".join(f"{r['node']} ({r['op']}) {r['ms']:.1f} ms" for r in pr["top_nodes"][:3])
        )
    if report.torch is not None:
        t = report.torch
        flop = ""
        if t.gflops_by_flop_counter:
            flop = f"; torch FlopCounter {t.gflops_by_flop_counter:.3f} GFLOPs"
        lines += [
            "",
            f"PyTorch eager ({Path(t.checkpoint).name}, {t.device}, {t.threads} threads, "
            "interleaved): "
            f"p50 {t.inference.p50:.2f} ms, mean {t.inference.mean:.2f} ms; "
            f"onnxruntime p50 {t.onnx_inference.p50:.2f} ms",
            f"onnxruntime speed-up: {t.speedup_p50:.2f}x (p50), {t.speedup_mean:.2f}x (mean), "
            f"{t.end_to_end_speedup:.2f}x end to end; "
            f"max score difference {t.max_score_diff:.2e}{flop}",
        ]
        if not t.max_score_diff <= SCORE_DIFF_WARN:
            lines.append(
                f"WARNING: scores differ by more than {SCORE_DIFF_WARN:g}: the checkpoint's "
                "weights are probably not those of the ONNX model, so the ratio compares two "
                "different models"
            )
    if report.sweep:
        lines += ["", format_sweep(report.sweep)]
    return "\n".join(lines)


def format_sweep(cells: Sequence[CellResult]) -> str:
    """The sweep as one table."""
    head = (
        f"{'device':<9} {'precision':<9} {'threads':>7} {'create ms':>9} {'first ms':>9} "
        f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'infer p50':>9} {'fps':>7} {'cores':>5}  note"
    )
    out = [head, "-" * len(head)]
    for c in cells:
        threads = c.threads or "def"
        if not c.ok:
            blank = " " * 71
            out.append(f"{c.device_requested:<9} {c.precision:<9} {threads:>7} {blank}  {c.note}")
            continue
        dev = c.device if c.device == c.device_requested else f"{c.device_requested}>{c.device}"
        assert c.total is not None
        out.append(
            f"{dev:<9} {c.precision:<9} {threads:>7} {c.session_creation_s * 1e3:9.1f} "
            f"{c.first_inference_s * 1e3:9.1f} {c.total.p50:8.2f} {c.total.p90:8.2f} "
            f"{c.total.p99:8.2f} {c.stages['inference'].p50:9.2f} {c.throughput_fps:7.2f} "
            f"{_f(c.cpu_cores_busy, '5.2f'):>5}  {c.note}"
        )
    return "\n".join(out)


def plot_report(report: BenchReport, path: str | Path) -> Path:
    """Latency histogram and CDF (end to end and inference; every sweep cell; PyTorch) as a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from perceive.io.atomic import atomic_write_bytes

    fig, (ax_h, ax_c) = plt.subplots(1, 2, figsize=(12, 4.5))
    main = report.main
    series: list[tuple[str, list[float]]] = [
        (f"end to end ({main.device}, {main.precision})", main.samples_ms),
        ("inference", main.inference_samples_ms),
    ]
    if report.torch is not None:
        series.append(("PyTorch eager inference", report.torch.samples_ms))
    everything = np.concatenate([np.asarray(s, np.float64) for _, s in series if len(s)])
    bins = np.histogram_bin_edges(everything, bins=min(60, max(20, everything.size // 2)))
    for label, s in series:
        ax_h.hist(s, bins=bins, alpha=0.55, label=label)
    ax_h.set_xlabel("latency (ms)")
    ax_h.set_ylabel("iterations")
    ax_h.set_title("latency histogram")
    ax_h.legend(fontsize=8)
    cdf_series = series
    if report.sweep:
        cdf_series = [
            (f"{c.device} {c.precision} t={c.threads or 'def'}", c.samples_ms)
            for c in report.sweep
            if c.ok
        ]
    for label, s in cdf_series:
        x = np.sort(np.asarray(s))
        ax_c.plot(x, np.arange(1, x.size + 1) / max(x.size, 1), label=label)
    for q in (0.5, 0.9, 0.99):
        ax_c.axhline(q, color="0.8", lw=0.8, zorder=0)
    ax_c.set_xlabel("end-to-end latency (ms)" if report.sweep else "latency (ms)")
    ax_c.set_ylabel("fraction of iterations")
    ax_c.set_title("CDF")
    ax_c.legend(fontsize=7)
    env = report.environment
    fig.suptitle(
        f"{Path(report.model['path']).name} on {env['cpu_model']} "
        f"({env['cpu_logical_cores']} cores)"
        + (f", {main.device}" if main.device != "cpu" else ""),
        fontsize=10,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_json(report: BenchReport, path: str | Path) -> Path:
    """The report as JSON (atomic write)."""
    from perceive.io.atomic import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report.to_dict(), indent=1) + "\n")
    return path


def iter_cells(report: BenchReport) -> Iterator[CellResult]:
    """The main cell, then the sweep's other cells."""
    yield report.main
    for c in report.sweep:
        if c is not report.main:
            yield c
