"""The real Waymo frame in ``../shared``: it reads fully and its geometry is consistent.

The frame has 5 cameras with calibrations and 75 labels, and no LiDAR range images.
Skipped where the shared data is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perceive.datasets import waymo
from perceive.datasets.types import CAMERA_NAMES, LASER_NAMES, Boxes2D, CameraCalibration, Frame


@pytest.fixture(scope="module")
def frame(real_frame_path: Path) -> Frame:
    with waymo.open(real_frame_path) as seg:
        assert len(seg) == 1
        return seg[0]


def test_context_and_pose(frame: Frame) -> None:
    assert frame.segment == "1024360143612057520_3580_000_3600_000"
    assert frame.timestamp_us > 1_500_000_000_000_000
    assert frame.pose.shape == (4, 4)
    r = frame.pose[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)
    np.testing.assert_array_equal(frame.pose[3], [0, 0, 0, 1])


def test_five_images_of_the_right_sizes(frame: Frame) -> None:
    assert sorted(frame.image_bytes) == sorted(CAMERA_NAMES)
    sizes = {"FRONT": (1920, 1280), "FRONT_LEFT": (1920, 1280), "FRONT_RIGHT": (1920, 1280)}
    sizes |= {"SIDE_LEFT": (1920, 886), "SIDE_RIGHT": (1920, 886)}
    for name, (w, h) in sizes.items():
        img = frame.images[name]
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
        assert img.std() > 10  # a real picture, not a blank
        cal = frame.cameras[name]
        assert (cal.width, cal.height) == (w, h)


def test_five_calibrations(frame: Frame) -> None:
    assert sorted(frame.cameras) == sorted(CAMERA_NAMES)
    for cal in frame.cameras.values():
        assert cal.intrinsic.shape == (9,) and cal.intrinsic[0] > 1000
        r = cal.extrinsic[:3, :3]
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)
    # FRONT looks forward: its optical axis (camera x) is close to the vehicle's x.
    assert frame.cameras["FRONT"].extrinsic[0, 0] > 0.99
    assert sorted(frame.lasers) == sorted(LASER_NAMES)
    assert frame.lasers["TOP"].beam_inclinations.shape == (64,)


def test_75_boxes_by_type(frame: Frame) -> None:
    boxes = frame.boxes
    assert len(boxes) == 75
    counts = {t: int((boxes.type == t).sum()) for t in (1, 2, 3, 4)}
    assert counts == {1: 37, 2: 12, 3: 25, 4: 1}  # vehicle, pedestrian, sign, cyclist
    assert (boxes.size > 0).all()
    assert np.all(np.abs(boxes.heading) <= np.pi + 1e-6)
    assert len(set(boxes.ids)) == 75
    assert boxes.corners().shape == (75, 8, 3)


def test_empty_lidar_is_handled(frame: Frame) -> None:
    assert frame.laser_names == []
    assert len(frame.range_images) == 0
    pc = frame.point_cloud()
    assert len(pc) == 0 and pc.xyz.shape == (0, 3) and pc.features().shape == (0, 5)


def _projected_box(
    cam: CameraCalibration, corners: np.ndarray
) -> tuple[np.ndarray, np.ndarray, bool]:
    """2D box (centre, size) of projected corners, clipped to the image; and whether usable."""
    uv, depth, valid = cam.project(corners)
    lo = np.clip(uv.min(axis=0), 0, [cam.width, cam.height])
    hi = np.clip(uv.max(axis=0), 0, [cam.width, cam.height])
    return (lo + hi) / 2, hi - lo, bool((depth > 0).all() and valid.all())


def test_projected_3d_boxes_match_projected_lidar_labels(frame: Frame) -> None:
    index = {box_id: i for i, box_id in enumerate(frame.boxes.ids)}
    corners = frame.boxes.corners()
    centre_err, size_err = [], []
    for name, labels in frame.projected_boxes.items():
        assert isinstance(labels, Boxes2D)
        cam = frame.cameras[name]
        for j, label_id in enumerate(labels.ids):
            assert label_id.endswith(f"_{name}")
            k = index[label_id[: -len(name) - 1]]
            assert frame.boxes.type[k] == labels.type[j]
            centre, size, usable = _projected_box(cam, corners[k])
            if usable:
                centre_err.append(np.abs(centre - labels.center[j]).max())
                size_err.append(np.abs(size - labels.size[j]).max())
    assert len(centre_err) >= 30
    assert np.median(centre_err) < 0.5
    assert np.median(size_err) < 0.5
    assert np.percentile(centre_err, 90) < 1.0
