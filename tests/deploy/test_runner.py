"""The onnxruntime runner: contract preprocessing, outputs, providers, threads, bad inputs."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from perceive.datasets.types import CameraCalibration, PointCloud
from perceive.datasets.waymo.fixtures import make_frame
from perceive.deploy.runner import (
    Detections,
    Detector,
    ModelInfo,
    ProviderUnavailableError,
    select_providers,
)
from perceive.errors import ConfigError, DataError, MissingComponentError, NotAFileError
from tests.deploy import standin

CAMS = standin.CAMERAS


def _frame(seed: int, **kw):
    kw.setdefault("cameras", CAMS)
    return make_frame(seed, **kw)


def _raw_inputs(frame) -> dict[str, np.ndarray]:
    """The graph's inputs computed independently of the runner, straight from the contract."""
    w, h = standin.IMAGE_SIZE
    imgs, intr, ext = [], [], []
    for cam in CAMS:
        img = frame.images[cam]
        imgs.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
        cal = frame.cameras[cam]
        k = cal.intrinsic.copy()
        k[[0, 2]] *= w / img.shape[1]
        k[[1, 3]] *= h / img.shape[0]
        intr.append(k)
        ext.append(cal.extrinsic)
    return {
        "points": frame.point_cloud().features().astype(np.float32),
        "images": np.stack(imgs).astype(np.uint8),
        "intrinsics": np.stack(intr).astype(np.float32),
        "extrinsics": np.stack(ext).astype(np.float32),
    }


@pytest.fixture(scope="module")
def det(standin_onnx: Path) -> Detector:
    return Detector(standin_onnx, device="cpu", threads=1, score_threshold=0.5)


def test_frame_matches_raw_session_with_contract_preprocessing(
    det: Detector, standin_onnx: Path
) -> None:
    frame = _frame(3, image_size=(80, 60))  # not the model's size: the runner resizes
    out = det(frame)
    sess = ort.InferenceSession(str(standin_onnx), providers=["CPUExecutionProvider"])
    boxes, scores, labels = sess.run(None, _raw_inputs(frame))
    keep = scores >= 0.5
    assert isinstance(out, Detections)
    assert len(out) == int(keep.sum()) > 0
    order = np.argsort(-scores[keep], kind="stable")
    np.testing.assert_allclose(out.scores, scores[keep][order], rtol=1e-6)
    np.testing.assert_allclose(out.boxes, boxes[keep][order], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out.labels, labels[keep][order])
    assert np.all(np.diff(out.scores) <= 0)
    assert out.names == [standin.CLASS_NAMES[i] for i in out.labels]
    t = out.timing
    assert t is not None and t.decode_s > 0 and t.inference_s > 0 and t.total_s >= t.inference_s


def test_numpy_call_equals_frame_call(det: Detector) -> None:
    frame = _frame(4)
    a = det(frame)
    pts = frame.point_cloud().features()
    b = det(pts, {c: frame.images[c] for c in CAMS}, dict(frame.cameras))
    c = det(frame.point_cloud(), {c: frame.images[c] for c in CAMS}, dict(frame.cameras))
    for other in (b, c):
        np.testing.assert_array_equal(a.boxes, other.boxes)
        np.testing.assert_array_equal(a.labels, other.labels)
    assert b.timing.decode_s < a.timing.decode_s  # nothing to decode for numpy input


def test_cached_frame_call_equals_frame_call(det: Detector) -> None:
    from perceive.convert.cache import CachedFrame

    frame = _frame(4)
    cached = CachedFrame.from_frame(frame)
    a, b = det(frame), det(cached)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.labels, b.labels)
    pa, ia, _ = det.inputs_from_frame(frame)
    pb, ib, _ = det.inputs_from_frame(cached)
    np.testing.assert_array_equal(pa, pb)
    assert all(np.array_equal(ia[c], ib[c]) for c in CAMS)
    with pytest.raises(TypeError, match="takes no images"):
        det(cached, ia)


def test_prepare_resizes_with_inter_area_and_scales_intrinsics(det: Detector) -> None:
    frame = _frame(5, image_size=(96, 72))
    inputs = det.prepare(frame.point_cloud(), dict(frame.images), frame.cameras)
    expected = _raw_inputs(frame)
    np.testing.assert_array_equal(inputs.images, expected["images"])
    np.testing.assert_allclose(inputs.intrinsics, expected["intrinsics"], rtol=1e-6)
    np.testing.assert_allclose(inputs.extrinsics, expected["extrinsics"], rtol=1e-6)
    np.testing.assert_array_equal(inputs.points, expected["points"])
    assert inputs.images.dtype == np.uint8 and inputs.points.dtype == np.float32


def test_empty_cloud_and_real_frame_without_lidar(det: Detector, real_frame_path: Path) -> None:
    from perceive.datasets import waymo

    frame = _frame(6)
    imgs = {c: frame.images[c] for c in CAMS}
    for empty in (np.zeros((0, 5), np.float32), np.zeros((0,), np.float64), PointCloud.empty()):
        out = det(empty, imgs, frame.cameras)
        assert out.boxes.shape[1] == 7 and len(out) <= standin.MAX_DETECTIONS
    with waymo.open(real_frame_path) as seg:
        real = seg[0]
    assert len(real.point_cloud()) == 0  # the sample has no LiDAR
    inputs = det.prepare(*det.inputs_from_frame(real))
    assert inputs.points.shape == (0, 5)
    assert inputs.images.shape == (len(CAMS), standin.IMAGE_SIZE[1], standin.IMAGE_SIZE[0], 3)
    out = det(real)
    assert np.all(out.scores >= 0.5) and np.isfinite(out.boxes).all()
    boxes = out.to_boxes3d()
    assert len(boxes) == len(out)


def test_bad_points_give_clear_errors(det: Detector) -> None:
    frame = _frame(7)
    imgs, cal = {c: frame.images[c] for c in CAMS}, frame.cameras
    good = frame.point_cloud().features()
    with pytest.raises(DataError, match=r"field points.*dtype int64"):
        det(good.astype(np.int64), imgs, cal)
    with pytest.raises(DataError, match=r"shape \(N, 5\)"):
        det(good[:, :3], imgs, cal)
    bad = good.copy()
    bad[3, 1] = np.nan
    bad[9, 0] = np.inf
    with pytest.raises(DataError, match=r"2 points hold NaN or infinite values.*row 3"):
        det(bad, imgs, cal)
    with pytest.raises(DataError, match="points must be"):
        det([[0, 0, 0, 0, 0]], imgs, cal)  # type: ignore[arg-type]
    for empty_but_wrong in (np.zeros((5, 0), np.float32), np.zeros((0, 3), np.float32)):
        with pytest.raises(DataError, match=r"shape \(N, 5\)"):
            det(empty_but_wrong, imgs, cal)
    # float64 is accepted and cast
    out = det(good.astype(np.float64), imgs, cal)
    np.testing.assert_array_equal(out.boxes, det(good, imgs, cal).boxes)


def test_bad_images_and_calibration_give_clear_errors(det: Detector) -> None:
    frame = _frame(8)
    imgs, cal = {c: frame.images[c] for c in CAMS}, dict(frame.cameras)
    pts = frame.point_cloud().features()
    with pytest.raises(DataError, match=r"images\[FRONT\].*uint8"):
        det(pts, {**imgs, "FRONT": imgs["FRONT"].astype(np.float32)}, cal)
    with pytest.raises(DataError, match=r"images\[FRONT\].*\(H, W, 3\)"):
        det(pts, {**imgs, "FRONT": imgs["FRONT"][..., 0]}, cal)
    with pytest.raises(DataError, match="calibration is for"):
        det(pts, {**imgs, "FRONT": cv2.resize(imgs["FRONT"], (10, 10))}, cal)
    with pytest.raises(MissingComponentError, match="camera FRONT_LEFT"):
        det(pts, {"FRONT": imgs["FRONT"]}, cal)
    with pytest.raises(MissingComponentError, match="no calibration for camera FRONT"):
        det(pts, imgs, {"FRONT_LEFT": cal["FRONT_LEFT"]})
    nan_cal = CameraCalibration(
        "FRONT", np.full(9, np.nan), np.eye(4), cal["FRONT"].width, cal["FRONT"].height
    )
    with pytest.raises(DataError, match="NaN"):
        det(pts, imgs, {**cal, "FRONT": nan_cal})
    with pytest.raises(TypeError, match="images and calibration are required"):
        det(pts)


def _with(cal: CameraCalibration, **kw) -> CameraCalibration:
    import dataclasses

    return dataclasses.replace(cal, **kw)


def test_calibrations_that_cannot_be_a_camera_are_refused(det: Detector) -> None:
    frame = _frame(8)
    imgs, cal = {c: frame.images[c] for c in CAMS}, dict(frame.cameras)
    pts = frame.point_cloud().features()
    front = cal["FRONT"]
    zero_focal = front.intrinsic.copy()
    zero_focal[:2] = 0.0
    sheared = front.extrinsic.copy()
    sheared[:3, :3] *= 3.0
    mirrored = front.extrinsic.copy()
    mirrored[:3, 1] *= -1.0  # orthonormal, determinant -1
    last_row = front.extrinsic.copy()
    last_row[3] = [0.0, 0.0, 1.0, 1.0]
    huge = front.intrinsic.copy()
    huge[0] = 1e39  # finite in float64, infinite in the graph's float32
    cases = {
        "focal lengths must be positive": _with(front, intrinsic=zero_focal),
        "not a rotation": _with(front, extrinsic=sheared),
        "det -1": _with(front, extrinsic=mirrored),
        "last row": _with(front, extrinsic=last_row),
        "overflows float32": _with(front, intrinsic=huge),
        "calibration of camera 'FRONT_LEFT', given for 'FRONT'": cal["FRONT_LEFT"],
    }
    for why, bad in cases.items():
        with pytest.raises(DataError, match=rf"calibration\[FRONT\].*{why}"):
            det(
                pts,
                {**imgs, "FRONT": cv2.resize(imgs["FRONT_LEFT"], (bad.width, bad.height))}
                if why.startswith("calibration of")
                else imgs,
                {**cal, "FRONT": bad},
            )
    # keys that do not sort together still give the missing-camera message
    mixed: dict = {k: v for k, v in imgs.items() if k != "FRONT"}
    mixed[1] = imgs["FRONT"]
    with pytest.raises(MissingComponentError, match=r"no image for camera FRONT.*'1'"):
        det(pts, mixed, cal)


def test_frame_without_a_calibration_names_its_source(det: Detector) -> None:
    import dataclasses

    frame = _frame(9)
    cams = dict(frame.cameras)
    cams.pop("FRONT_LEFT")
    assert frame.source
    with pytest.raises(MissingComponentError) as e:
        det(dataclasses.replace(frame, cameras=cams))
    assert str(e.value).startswith(f"{frame.source}: no calibration for camera FRONT_LEFT")


def test_too_many_points_crop_or_error(standin_onnx: Path) -> None:
    frame = _frame(9)
    imgs, cal = {c: frame.images[c] for c in CAMS}, frame.cameras
    g = np.random.default_rng(0)
    n = standin.MAX_POINTS + 3000
    pts = np.c_[
        g.uniform(-50, 50, (n, 2)), g.uniform(-4, 4, (n, 1)), g.uniform(0, 1, (n, 2))
    ].astype(np.float32)
    strict = Detector(standin_onnx, too_many_points="error", score_threshold=0.0)
    with pytest.raises(DataError, match=f"{n} points.*at most {standin.MAX_POINTS}"):
        strict(pts, imgs, cal)
    crop = Detector(standin_onnx, score_threshold=0.0)
    inputs = crop.prepare(pts, imgs, cal)
    lo, hi = np.array(standin.GRID["range"][:3]), np.array(standin.GRID["range"][3:])
    inside = pts[((pts[:, :3] >= lo) & (pts[:, :3] < hi)).all(axis=1)][: standin.MAX_POINTS]
    np.testing.assert_array_equal(inputs.points, inside)
    assert inputs.num_points_given == n
    # the graph keeps the same points itself: cropping on the host changes nothing
    full = ort.InferenceSession(str(standin_onnx), providers=["CPUExecutionProvider"]).run(
        None, {**inputs.feeds(), "points": pts}
    )
    np.testing.assert_allclose(crop(pts, imgs, cal).scores, full[1], rtol=1e-6)


def test_provider_selection_and_fallback() -> None:
    cpu, cuda, trt = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
    c = select_providers("tensorrt", [trt, cuda, cpu])
    assert c.providers == (trt, cuda, cpu) and c.device == "tensorrt" and c.message is None
    c = select_providers("tensorrt", [cuda, cpu])
    assert (
        c.providers == (cuda, cpu)
        and c.device == "cuda"
        and "TensorrtExecutionProvider is not available" in c.message
    )
    c = select_providers("cuda", [cpu])
    assert (
        c.device == "cpu" and "onnxruntime-gpu" in c.message and "falling back to cpu" in c.message
    )
    c = select_providers("auto", [cpu])
    assert c.device == "cpu" and c.message is None
    assert select_providers("auto", [cuda, cpu]).device == "cuda"
    with pytest.raises(ProviderUnavailableError, match="CUDAExecutionProvider is not available"):
        select_providers("cuda", [cpu], fallback=False)
    with pytest.raises(ConfigError, match="device must be one of"):
        select_providers("gpu", [cpu])


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="a GPU provider is installed"
)
def test_requested_gpu_without_gpu_warns_and_runs_on_cpu(standin_onnx: Path) -> None:
    with pytest.warns(
        RuntimeWarning, match="CUDAExecutionProvider is not available.*falling back to cpu"
    ):
        d = Detector(standin_onnx, device="cuda")
    assert d.device == "cpu" and d.providers[0] == "CPUExecutionProvider" and d.fallback_message
    assert len(d(_frame(1))) >= 0
    with pytest.raises(ProviderUnavailableError):
        Detector(standin_onnx, device="tensorrt", fallback=False)


def test_io_binding_path_matches_plain_run(standin_onnx: Path) -> None:
    frame = _frame(10)
    plain = Detector(standin_onnx, score_threshold=0.0)
    bound = Detector(standin_onnx, score_threshold=0.0, io_binding=True)
    assert not plain.io_binding and bound.io_binding
    a, b = plain(frame), bound(frame)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert b.timing.h2d_s is not None and b.timing.device_s > 0 and b.timing.d2h_s is not None
    assert a.timing.device_s is None
    # an empty cloud binds too
    assert (
        len(bound(np.zeros((0, 5), np.float32), dict(frame.images), frame.cameras))
        == standin.MAX_DETECTIONS
    )


def test_thread_pool_calls_agree_with_sequential_calls(standin_onnx: Path) -> None:
    det = Detector(standin_onnx, threads=1, score_threshold=0.0)
    frames = [_frame(s) for s in range(6)]
    inputs = [(f.point_cloud().features(), dict(f.images), f.cameras) for f in frames]
    expected = [det(*i) for i in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda k: det(*inputs[k % 6]), range(24)))
    for k, g in enumerate(got):
        np.testing.assert_array_equal(g.boxes, expected[k % 6].boxes)
        np.testing.assert_array_equal(g.labels, expected[k % 6].labels)


def test_settings_are_per_detector(standin_onnx: Path) -> None:
    a = Detector(standin_onnx, threads=1, score_threshold=0.9)
    b = Detector(standin_onnx, threads=2, score_threshold=0.0, inter_op_threads=2)
    assert a.session.get_session_options().intra_op_num_threads == 1
    assert b.session.get_session_options().intra_op_num_threads == 2
    assert b.session.get_session_options().inter_op_num_threads == 2
    c = Detector(standin_onnx, flush_denormals=True, allow_spinning=False)
    opts = c.session.get_session_options()
    assert opts.get_session_config_entry("session.set_denormal_as_zero") == "1"
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    f = _frame(11)
    assert len(b(f)) == standin.MAX_DETECTIONS > len(a(f))
    assert np.all(a(f).scores >= 0.9)


def test_config_errors(standin_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="device"):
        Detector(standin_onnx, device="gpu")
    with pytest.raises(ConfigError, match="threads"):
        Detector(standin_onnx, threads=0)
    with pytest.raises(ConfigError, match="score_threshold"):
        Detector(standin_onnx, score_threshold=float("nan"))
    with pytest.raises(ConfigError, match="score_threshold"):
        Detector(standin_onnx, score_threshold=True)
    for out_of_range in (1.5, -0.5):
        with pytest.raises(ConfigError, match=r"score_threshold must be a number in \[0, 1\]"):
            Detector(standin_onnx, score_threshold=out_of_range)
    numpy_numbers = Detector(standin_onnx, score_threshold=np.float32(0.25), threads=np.int64(1))
    assert numpy_numbers.score_threshold == 0.25 and type(numpy_numbers.config.threads) is int
    with pytest.raises(ConfigError, match="unexpected keyword"):
        Detector(standin_onnx, thread=2)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        Detector(tmp_path / "nope.onnx")
    with pytest.raises(NotAFileError, match="is a folder"):
        Detector(tmp_path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(DataError, match=r"junk\.onnx.*cannot load"):
        Detector(junk)
    bare = standin.relabel(standin_onnx, tmp_path / "bare.onnx", cameras=None, grid=None)
    with pytest.raises(DataError, match=r"bare.onnx.*perceive.cameras, perceive.grid"):
        Detector(bare)
    bad_json = standin.relabel(standin_onnx, tmp_path / "badjson.onnx", cameras="[FRONT")
    with pytest.raises(DataError, match=r"perceive\.cameras"):
        Detector(bad_json)
    wrong_size = standin.relabel(standin_onnx, tmp_path / "size.onnx", image_size="[64, 48]")
    with pytest.raises(DataError, match="metadata says 2 cameras of 64x48"):
        Detector(wrong_size)


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("score_threshold", "nan", r"in \[0, 1\]"),
        ("score_threshold", "5", r"in \[0, 1\]"),
        ("max_points", "0", "at least 1"),
        ("class_names", '"VEHICLE"', "list of names"),
        ("cameras", '["FRONT", "FRONT"]', "unique"),
        ("point_features", '["intensity", "x", "y", "z", "elongation"]', "begin with x, y, z"),
        ("point_features", '["x", "y", "z", "colour", "elongation"]', "unknown"),
        ("variant", "bogus", "must be one of"),
        ("grid", '{"range": [0, 0, 0, NaN, 1, 1]}', "finite with min < max"),
        ("grid", '{"range": [5, 0, 0, 1, 1, 1]}', "finite with min < max"),
    ],
)
def test_metadata_that_makes_no_sense_is_refused(
    standin_onnx: Path, tmp_path: Path, key: str, value: str, why: str
) -> None:
    bad = standin.relabel(standin_onnx, tmp_path / "m.onnx", **{key: value})
    with pytest.raises(DataError, match=rf"m\.onnx.*perceive\.{key}.*{why}"):
        Detector(bad)


def test_class_index_beyond_the_names_is_refused(standin_onnx: Path, tmp_path: Path) -> None:
    frame = _frame(3)
    full = Detector(standin_onnx, score_threshold=0.0)(frame)
    assert full.labels.max() >= 1  # the stand-in predicts more than one class here
    one = standin.relabel(standin_onnx, tmp_path / "one.onnx", class_names='["VEHICLE"]')
    with pytest.raises(DataError, match=r"class index \d outside its 1 class names"):
        Detector(one, score_threshold=0.0)(frame)


def test_model_info_and_lidar_variant(lidar_standin_onnx: Path) -> None:
    det = Detector(lidar_standin_onnx, score_threshold=0.0)
    info = det.info
    assert isinstance(info, ModelInfo)
    assert (
        info.cameras == CAMS and info.image_size == standin.IMAGE_SIZE and info.variant == "lidar"
    )
    assert (
        info.point_range == tuple(standin.GRID["range"]) and info.max_points == standin.MAX_POINTS
    )
    pts = _frame(12).point_cloud().features()
    out = det(pts)  # a LiDAR-only model needs no cameras
    assert len(out) == standin.MAX_DETECTIONS
    frame = _frame(12, cameras=("FRONT",))
    assert len(det(frame)) == standin.MAX_DETECTIONS


def test_detections_to_boxes3d_and_select() -> None:
    names = standin.CLASS_NAMES
    d = Detections(
        boxes=np.array(
            [[1, 2, 0.5, 4, 2, 1.5, 3.5], [5, 6, 1, 1, 1, 2, -0.1], [0, 0, 0, 1, 1, 1, 0]],
            np.float32,
        ),
        scores=np.array([0.9, 0.8, 0.7], np.float32),
        labels=np.array([0, 2, 3]),
        class_names=names,
    )
    b = d.to_boxes3d()
    assert b.type_names == ["VEHICLE", "CYCLIST", "SIGN"]
    assert b.type.tolist() == [1, 4, 3]
    assert -np.pi <= b.heading[0] < np.pi and np.isclose(b.heading[0], 3.5 - 2 * np.pi)
    np.testing.assert_allclose(b.center[1], [5, 6, 1])
    sel = d.select(d.scores > 0.75)
    assert len(sel) == 2 and sel.names == ["VEHICLE", "CYCLIST"]
    assert "VEHICLE" in d.summary() and d.summary(limit=1).endswith("2 more")
    with pytest.raises(ValueError, match="detections"):
        Detections(d.boxes[:2], d.scores, d.labels, names)


def test_package_level_detector_is_the_runner() -> None:
    import perceive

    assert perceive.Detector is Detector


def test_no_warning_for_cpu(standin_onnx: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = Detector(standin_onnx, device="cpu")
    assert d.fallback_message is None and d.device == "cpu"


def _assert_same_up_to_ties(
    out: Detections, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray
) -> None:
    """Every detection equals a distinct reference one; detections whose scores tie (to
    float rounding) may come in either order, so each is matched among its ties."""
    unused = list(range(len(scores)))
    for i in range(len(out)):
        match = [
            j
            for j in unused
            if abs(scores[j] - out.scores[i]) <= 1e-5
            and labels[j] == out.labels[i]
            and np.abs(boxes[j] - out.boxes[i]).max() <= 1e-3
        ]
        assert match, f"detection {i} ({out.boxes[i]}, {out.scores[i]}) has no PyTorch twin"
        unused.remove(match[0])


@pytest.mark.slow
def test_real_tiny_model_matches_pytorch_on_generated_and_real_frames(
    tiny_real_model: tuple[Path, Path], real_frame_path: Path
) -> None:
    import torch

    from perceive.datasets import waymo
    from perceive.training.checkpoint import detector_from_checkpoint

    onnx_path, ckpt = tiny_real_model
    det = Detector(onnx_path, threads=1)
    model = detector_from_checkpoint(ckpt)
    with waymo.open(real_frame_path) as seg:
        real = seg[0]
    for frame in (make_frame(20), make_frame(21, fill=0.2), real):
        inputs = det.prepare(*det.inputs_from_frame(frame))
        out = det(frame)
        with torch.no_grad():
            boxes, scores, labels = (
                o.numpy() for o in model(*map(torch.from_numpy, inputs.feeds().values()))
            )
        keep = scores >= det.score_threshold
        assert len(out) == int(keep.sum())
        np.testing.assert_allclose(out.scores, scores[keep], atol=1e-5)
        _assert_same_up_to_ties(out, boxes[keep], scores[keep], labels[keep])
    assert inputs.points.shape[0] == 0  # the real frame has no LiDAR
    # More points than max_points: the runner's host crop keeps what the graph itself keeps.
    frame = make_frame(22)
    full = frame.point_cloud().features()
    assert full.shape[0] > det.info.max_points
    cropped = det.prepare(*det.inputs_from_frame(frame))
    assert cropped.points.shape[0] <= det.info.max_points
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    raw = sess.run(None, {**cropped.feeds(), "points": full})
    np.testing.assert_array_equal(det.infer(cropped)[0][1], raw[1])


def test_example_robot_loop_runs(
    standin_onnx: Path, real_frame_path: Path, tmp_path: Path, capsys
) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "tools" / "robot_loop.py"
    spec = importlib.util.spec_from_file_location("robot_loop", path)
    loop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loop)
    assert loop.main([str(standin_onnx), "--generated", "2", "--numpy", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("detections in") == 2 and "2 frames in" in out
    assert (
        loop.main([str(standin_onnx), "--data", str(real_frame_path), "--draw", str(tmp_path)]) == 0
    )
    assert (tmp_path / "frame_0000.png").stat().st_size > 0
    assert loop.main([str(tmp_path / "missing.onnx")]) == 1


def test_tensorrt_settings_and_empty_cloud_padding(standin_onnx: Path) -> None:
    from perceive.deploy.runner import _trt_profile

    prof = _trt_profile(onnx.load(str(standin_onnx)), str(standin_onnx))
    assert prof["trt_profile_min_shapes"] == "points:1x5"
    assert prof["trt_profile_max_shapes"] == f"points:{standin.MAX_POINTS}x5"
    # TensorRT gets one point outside the grid instead of an empty cloud: the same result
    frame = _frame(13)
    det = Detector(standin_onnx, score_threshold=0.0)
    empty = np.zeros((0, 5), np.float32)
    ref = det(empty, dict(frame.images), frame.cameras)
    det.pad_empty_cloud = True
    padded = det(empty, dict(frame.images), frame.cameras)
    np.testing.assert_array_equal(padded.scores, ref.scores)
    np.testing.assert_array_equal(padded.boxes, ref.boxes)
