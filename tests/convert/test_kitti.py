"""KITTI output: the documented layout, and boxes that transform back to ours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perceive.convert.kitti import (
    KITTI_CLASS,
    boxes_to_kitti,
    kitti_to_boxes,
    read_calib,
    read_labels,
    velo_to_cam,
)
from perceive.convert.runner import run_conversion
from perceive.datasets.types import CAMERA_NAMES
from perceive.errors import DataError
from perceive.geometry.boxes import wrap_angle
from perceive.geometry.transforms import euler_to_rotation, make_transform

from .conftest import FRAMES, SEGMENTS, segment_frames


@pytest.fixture(scope="module")
def kitti(sources: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kitti") / "out"
    run_conversion(sources["v1"], "kitti", out, progress_bar=False)
    return out


def test_layout(kitti: Path) -> None:
    ids = [f"0{s:03d}{i:03d}" for s in range(SEGMENTS) for i in range(FRAMES)]
    assert (kitti / "ImageSets" / "train.txt").read_text().split() == ids
    t = kitti / "training"
    dirs = ["velodyne", "calib", "label_all", "pose", "timestamp"]
    dirs += [f"image_{c}" for c in range(5)] + [f"label_{c}" for c in range(5)]
    assert sorted(p.name for p in t.iterdir()) == sorted(dirs)
    for d in dirs:
        suffix = {"velodyne": ".bin"}.get(d, ".jpg" if d.startswith("image") else ".txt")
        assert sorted(p.name for p in (t / d).iterdir()) == [i + suffix for i in ids], d


def test_files_hold_the_frame(kitti: Path) -> None:
    frame = segment_frames(1)[2]
    t, fid = kitti / "training", "0001002"
    pts = np.fromfile(t / "velodyne" / f"{fid}.bin", np.float32).reshape(-1, 6)
    np.testing.assert_array_equal(pts[:, :5], frame.point_cloud().features())
    assert np.all(pts[:, 5] == np.float32(frame.timestamp_us))
    for c, name in enumerate(CAMERA_NAMES):
        assert (t / f"image_{c}" / f"{fid}.jpg").read_bytes() == frame.image_bytes[name]
    calib = read_calib(t / "calib" / f"{fid}.txt")
    for c, name in enumerate(CAMERA_NAMES):
        cam = frame.cameras[name]
        np.testing.assert_allclose(calib[f"P{c}"][:, :3], cam.K, rtol=1e-10)
        # Tr maps a vehicle point to the KITTI camera frame: z forward = Waymo camera x.
        p_cam = np.linalg.inv(cam.extrinsic) @ np.array([5.0, 1.0, 0.5, 1.0])
        p_k = calib[f"Tr_velo_to_cam_{c}"] @ np.array([5.0, 1.0, 0.5, 1.0])
        np.testing.assert_allclose(p_k, [-p_cam[1], -p_cam[2], p_cam[0]], atol=1e-9)
    np.testing.assert_array_equal(calib["R0_rect"], np.eye(3))
    pose = np.loadtxt(t / "pose" / f"{fid}.txt")
    np.testing.assert_allclose(pose, frame.pose, rtol=1e-11)
    assert int((t / "timestamp" / f"{fid}.txt").read_text()) == frame.timestamp_us


def test_label_boxes_transform_back_to_ours(kitti: Path) -> None:
    frame = segment_frames(0)[1]
    t, fid = kitti / "training", "0000001"
    types, _, b3 = read_labels(t / "label_all" / f"{fid}.txt")
    keep = [i for i in range(len(frame.boxes)) if int(frame.boxes.type[i]) in KITTI_CLASS]
    assert types == [KITTI_CLASS[int(frame.boxes.type[i])] for i in keep]
    calib = read_calib(t / "calib" / f"{fid}.txt")
    back = kitti_to_boxes(b3, calib["Tr_velo_to_cam_0"])
    ours = frame.boxes.to_array()[keep].astype(np.float64)
    np.testing.assert_allclose(back[:, :6], ours[:, :6], atol=2e-4)
    np.testing.assert_allclose(wrap_angle(back[:, 6] - ours[:, 6]), 0, atol=2e-4)
    # Per-camera files hold the objects projected into that camera, with their 2D box.
    for c, name in enumerate(CAMERA_NAMES):
        _, b2c, b3c = read_labels(t / f"label_{c}" / f"{fid}.txt")
        proj = frame.projected_boxes[name]
        ids = {str(i)[: -len(name) - 1] for i in proj.ids}
        expect = [i for i in keep if str(frame.boxes.ids[i]) in ids]
        assert len(b3c) == len(expect)
        if expect:
            cam = frame.cameras[name]
            lim = [cam.width, cam.height, cam.width, cam.height]
            xyxy = np.clip(proj.xyxy(), 0, lim)
            for row in b2c:
                assert np.min(np.abs(xyxy - row).max(axis=1)) <= 0.006


@pytest.mark.parametrize("seed", range(5))
def test_box_transform_round_trip_with_rotated_camera(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ext = make_transform(
        euler_to_rotation(*rng.normal(0, 0.05, 2), rng.uniform(-0.3, 0.3)), rng.normal(0, 1, 3)
    )
    tr = velo_to_cam(ext)
    center = rng.uniform(-40, 40, (20, 3))
    size = rng.uniform(0.5, 5, (20, 3))
    heading = rng.uniform(-np.pi, np.pi, 20)
    k = boxes_to_kitti(center, size, heading, tr)
    back = kitti_to_boxes(k, tr)
    np.testing.assert_allclose(back[:, :6], np.c_[center, size], atol=1e-9)
    # With camera pitch/roll the KITTI yaw is the heading projected on the camera's x-z plane.
    np.testing.assert_allclose(wrap_angle(back[:, 6] - heading), 0, atol=0.02)
    if seed == 0:
        flat = velo_to_cam(make_transform(np.eye(3), [1.5, 0.0, 2.0]))
        k0 = boxes_to_kitti(center, size, heading, flat)
        np.testing.assert_allclose(wrap_angle(k0[:, 6] - (-heading - np.pi / 2)), 0, atol=1e-12)
        np.testing.assert_allclose(
            wrap_angle(kitti_to_boxes(k0, flat)[:, 6] - heading), 0, atol=1e-12
        )


def test_bad_label_and_calib_files(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("Car 0 0 -10 1 2 3\n")
    with pytest.raises(DataError, match="fields"):
        read_labels(tmp_path / "l.txt")
    (tmp_path / "c.txt").write_text("P0: 1 2 3\n")
    with pytest.raises(DataError, match="P0"):
        read_calib(tmp_path / "c.txt")
