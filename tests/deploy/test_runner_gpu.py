"""The runner on a GPU: CUDA execution provider, IO binding, FP16, TensorRT request, threads.

Skipped where onnxruntime has no usable CUDA provider (CI, any CPU-only onnxruntime); run on
a GPU machine with ``tools/gpu_check.sh`` (it installs ``onnxruntime-gpu``).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from perceive.datasets.waymo.fixtures import make_frame
from perceive.deploy.export import compare_detections
from perceive.deploy.runner import Detector

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "exports" / "fusion.onnx"

#: TF32 matrix units and other convolution algorithms make GPU results differ from the CPU's
#: in the last bits of float32; scores within this are tied, boxes agree within BOX_ATOL (m/rad).
SCORE_ATOL = 2e-3
BOX_ATOL = 5e-2


def _cuda_usable() -> bool:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            d = Detector(COMMITTED, device="cuda", fallback=False)
        except Exception:
            return False
    return d.device == "cuda"


# tools/gpu_check.sh sets PERCEIVE_REQUIRE_GPU=1: there a missing GPU fails these tests
pytestmark = pytest.mark.skipif(
    (not COMMITTED.exists() or not _cuda_usable()) and not os.environ.get("PERCEIVE_REQUIRE_GPU"),
    reason="no usable CUDA provider in onnxruntime",
)


@pytest.fixture(scope="module")
def cpu() -> Detector:
    return Detector(COMMITTED, device="cpu", score_threshold=0.0)


@pytest.fixture(scope="module")
def gpu() -> Detector:
    return Detector(COMMITTED, device="cuda", score_threshold=0.0)


def _frames(n: int = 3):
    return [make_frame(100 + s) for s in range(n)]


def _raw(d: Detector, frame) -> tuple[np.ndarray, ...]:
    inputs = d.prepare(*d.inputs_from_frame(frame))
    outs, _ = d.infer(inputs)
    return outs


def test_cuda_session_uses_the_gpu_with_io_binding(gpu: Detector) -> None:
    assert gpu.device == "cuda" and gpu.providers[0] == "CUDAExecutionProvider"
    assert gpu.io_binding and gpu.fallback_message is None
    dets = gpu(_frames(1)[0])
    t = dets.timing
    assert t.h2d_s is not None and t.device_s > 0 and t.d2h_s is not None


def test_cuda_matches_cpu_on_generated_frames_and_cloud_sizes(cpu: Detector, gpu: Detector):
    rng = np.random.default_rng(0)
    lo, hi = np.asarray(cpu.info.point_range[:3]), np.asarray(cpu.info.point_range[3:])
    for frame in _frames():
        a, b = _raw(cpu, frame), _raw(gpu, frame)
        res = compare_detections(a, b, score_atol=SCORE_ATOL)
        assert res.within(box_atol=BOX_ATOL, score_atol=SCORE_ATOL), res
    nf = len(cpu.info.point_features)
    images = dict(_frames(1)[0].images)
    cams = _frames(1)[0].cameras
    for n in (0, 1, 64, cpu.info.max_points + 5000):
        pts = np.zeros((n, nf), np.float32)
        pts[:, :3] = rng.uniform(lo * 1.2, hi * 1.2, (n, 3))
        ia, ib = cpu.prepare(pts, images, cams), gpu.prepare(pts, images, cams)
        res = compare_detections(
            cpu.infer(ia)[0], gpu.infer(ib)[0], score_atol=SCORE_ATOL, num_points=n
        )
        assert res.within(box_atol=BOX_ATOL, score_atol=SCORE_ATOL), res


def test_io_binding_on_and_off_agree_on_cuda() -> None:
    frame = _frames(1)[0]
    bound = Detector(COMMITTED, device="cuda", score_threshold=0.0, io_binding=True)
    plain = Detector(COMMITTED, device="cuda", score_threshold=0.0, io_binding=False)
    a, b = bound(frame), plain(frame)
    assert b.timing.device_s is None
    res = compare_detections((a.boxes, a.scores, a.labels), (b.boxes, b.scores, b.labels))
    assert res.within(box_atol=1e-4, score_atol=1e-5), res


def test_threads_share_one_cuda_detector(gpu: Detector) -> None:
    frames = _frames(4)
    expected = [gpu(f) for f in frames]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda k: gpu(frames[k % 4]), range(16)))
    for k, g in enumerate(got):
        e = expected[k % 4]
        res = compare_detections((e.boxes, e.scores, e.labels), (g.boxes, g.scores, g.labels))
        assert res.within(box_atol=1e-4, score_atol=1e-5), (k, res)


def test_fp16_variant_runs_on_cuda_close_to_fp32(gpu: Detector, tmp_path: Path) -> None:
    from perceive.deploy.quantize import make_variant

    path = make_variant(COMMITTED, "fp16", out_dir=tmp_path)
    half = Detector(path, device="cuda", score_threshold=0.0)
    assert half.device == "cuda"
    for frame in _frames(2):
        a, b = gpu(frame), half(frame)
        assert np.isfinite(b.boxes).all() and np.isfinite(b.scores).all()
        # same top detections, scores within FP16 rounding of the heatmap
        assert np.abs(a.scores[:10] - b.scores[:10]).max() < 0.08


def test_tensorrt_request_runs_on_tensorrt_or_says_why_not(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = Detector(COMMITTED, device="tensorrt", trt_cache_dir=str(tmp_path / "trt"))
    assert d.device in ("tensorrt", "cuda")
    if d.device == "cuda":
        assert any("Tensorrt" in str(w.message) for w in caught), [str(w.message) for w in caught]
    dets = d(_frames(1)[0])
    assert np.isfinite(dets.scores).all()
