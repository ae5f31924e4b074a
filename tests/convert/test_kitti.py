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
    read_label_cameras,
    read_labels,
    truncation,
    velo_to_cam,
)
from perceive.convert.runner import run_conversion
from perceive.datasets.types import CAMERA_NAMES
from perceive.datasets.waymo.fixtures import camera_calibration
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
    # every split's file exists (readers open all three), empty without frames
    assert (kitti / "ImageSets" / "val.txt").read_text() == ""
    assert (kitti / "ImageSets" / "test.txt").read_text() == ""
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
    cloud = frame.point_cloud()
    assert cloud.nlz.any()  # the fixture has points in no-label zones: they are left out
    np.testing.assert_array_equal(pts[:, :5], cloud.select(~cloud.nlz).features())
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
        np.testing.assert_allclose(calib[f"D{c}"], cam.intrinsic[4:], rtol=1e-10)
    np.testing.assert_array_equal(calib["R0_rect"], np.eye(3))
    # the positional lines come first, as readers take them by position
    keys = [line.split(":")[0] for line in (t / "calib" / f"{fid}.txt").read_text().splitlines()]
    assert keys[:11] == [*(f"P{c}" for c in range(5)), "R0_rect"] + [
        f"Tr_velo_to_cam_{c}" for c in range(5)
    ]
    pose = np.loadtxt(t / "pose" / f"{fid}.txt")
    np.testing.assert_allclose(pose, frame.pose, rtol=1e-11)
    assert int((t / "timestamp" / f"{fid}.txt").read_text()) == frame.timestamp_us


def test_label_boxes_transform_back_to_ours(kitti: Path) -> None:
    frame = segment_frames(0)[1]
    t, fid = kitti / "training", "0000001"
    types, b2, b3 = read_labels(t / "label_all" / f"{fid}.txt")
    bx = frame.boxes
    keep = [
        i for i in range(len(bx)) if int(bx.type[i]) in KITTI_CLASS and bx.num_lidar_points[i] > 0
    ]
    assert types == [KITTI_CLASS[int(bx.type[i])] for i in keep]
    calib = read_calib(t / "calib" / f"{fid}.txt")
    back = kitti_to_boxes(b3, calib["Tr_velo_to_cam_0"])
    ours = bx.to_array()[keep].astype(np.float64)
    np.testing.assert_allclose(back[:, :6], ours[:, :6], atol=2e-4)
    np.testing.assert_allclose(wrap_angle(back[:, 6] - ours[:, 6]), 0, atol=2e-4)
    np.testing.assert_allclose(wrap_angle(b3[:, 6] + ours[:, 6] + np.pi / 2), 0, atol=1e-4)
    # truncated, occluded, alpha; the camera of label_all's 2D box in field 16
    rows = [line.split() for line in (t / "label_all" / f"{fid}.txt").read_text().splitlines()]
    trunc, occl, alpha = (np.array([float(r[k]) for r in rows]) for k in (1, 2, 3))
    assert np.all((trunc >= 0) & (trunc <= 1)) and np.all(occl == 0)
    np.testing.assert_allclose(
        wrap_angle(alpha - (b3[:, 6] - np.arctan2(b3[:, 3], b3[:, 5]))), 0, atol=2e-4
    )
    cams = read_label_cameras(t / "label_all" / f"{fid}.txt")
    for j, i in enumerate(keep):
        seen = [
            c
            for c, name in enumerate(CAMERA_NAMES)
            if f"{bx.ids[i]}_{name}" in {str(x) for x in frame.projected_boxes[name].ids}
        ]
        assert cams[j] == (seen[0] if seen else -1)
        if not seen:
            assert trunc[j] == 1.0 and np.all(b2[j] == 0)
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
    # rotation_y is mmdetection3d's -heading - pi/2 whatever the camera's rotation, so the
    # inverse the readers use (heading = -rotation_y - pi/2) gives the heading back exactly
    np.testing.assert_allclose(wrap_angle(k[:, 6] - (-heading - np.pi / 2)), 0, atol=1e-12)
    np.testing.assert_allclose(wrap_angle(back[:, 6] - heading), 0, atol=1e-12)


def test_truncation_is_the_share_of_the_box_outside_the_image() -> None:
    cam = camera_calibration("FRONT", 640, 480)  # looks along +x from about x = 1.5 m
    size = np.array([[2.0, 2.0, 1.0]] * 4)
    centre = np.array(
        [
            [20.0, 0.0, 2.0],  # in the middle of the image: inside
            [-20.0, 0.0, 2.0],  # behind the camera: outside
            [20.0, -40.0, 2.0],  # far to the right of the field of view: outside
            [20.0, 0.0, 2.0],  # moved below onto the image's edge below
        ]
    )
    # put the 4th box's centre on the row where the image's right edge is (u = width)
    fu, cu = cam.intrinsic[0], cam.intrinsic[2]
    cam_x = 20.0 - cam.extrinsic[0, 3]
    centre[3, 1] = cam.extrinsic[1, 3] - (cam.width - cu) / fu * cam_x
    t = truncation(centre, size, np.zeros(4), cam)
    assert t[0] == 0.0 and t[1] == 1.0 and t[2] == 1.0
    assert 0.3 < t[3] < 0.7  # about half of it is beyond the right edge


def test_bad_label_and_calib_files(tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("Car 0 0 -10 1 2 3\n")
    with pytest.raises(DataError, match="fields"):
        read_labels(tmp_path / "l.txt")
    (tmp_path / "c.txt").write_text("P0: 1 2 3\n")
    with pytest.raises(DataError, match="P0"):
        read_calib(tmp_path / "c.txt")
