"""Drawing on camera images: projection helpers and panels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from perceive.datasets.types import Boxes2D, Boxes3D, CameraCalibration
from perceive.datasets.waymo.fixtures import camera_calibration, make_frame
from perceive.viz.camera import (
    box_wireframes,
    fit_image,
    image_boxes_of_3d,
    project_loose,
    save_camera,
)
from perceive.viz.common import as_boxes2d


def _pinhole(w: int = 200, h: int = 100) -> CameraCalibration:
    return CameraCalibration("FRONT", [100, 100, w / 2, h / 2, 0, 0, 0, 0, 0], np.eye(4), w, h)


def test_project_loose_keeps_points_beside_the_image() -> None:
    cam = _pinhole()
    pts = np.array([[10.0, 0, 0], [10.0, -15.0, 0], [10.0, -40.0, 0], [-10.0, 0, 0]])
    uv, depth, ok = project_loose(cam, pts)
    assert depth[0] == 10.0
    np.testing.assert_allclose(uv[:2], [[100, 50], [250, 50]])  # the second is off-image
    assert ok.tolist() == [True, True, False, False]  # the third is beyond one image width
    _, _, valid = cam.project(pts)
    assert valid.tolist() == [True, False, False, False]


def test_image_boxes_of_3d_by_hand() -> None:
    cam = _pinhole()
    # A 2 m cube 10 m ahead: its near face (x = 9) spans +-1 m -> +-100/9 px around the centre.
    boxes = Boxes3D(
        center=[[10, 0, 0], [-10, 0, 0]],
        size=[[2, 2, 2]] * 2,
        heading=[0, 0],
        type=[1, 2],
        ids=["a", "b"],
    )
    b2, idx = image_boxes_of_3d(cam, boxes)
    assert idx.tolist() == [0] and b2.ids.tolist() == ["a"] and b2.type.tolist() == [1]
    np.testing.assert_allclose(b2.center, [[100, 50]])
    np.testing.assert_allclose(b2.size, [[200 / 9, 200 / 9]])


def test_image_boxes_are_clipped() -> None:
    cam = _pinhole()
    boxes = Boxes3D(center=[[10, -10, 0]], size=[[2, 2, 2]], heading=[0], type=[1])  # right edge
    b2, _ = image_boxes_of_3d(cam, boxes)
    assert (b2.xyxy()[:, 2] <= 200).all() and (b2.xyxy()[:, 0] < 200).all()


def test_wireframes_follow_the_corners() -> None:
    cam = _pinhole()
    boxes = Boxes3D(center=[[10, 0, 0]], size=[[2, 2, 2]], heading=[0], type=[1])
    lines = box_wireframes(cam, boxes, samples=5)
    assert len(lines) == 1 and len(lines[0]) == 14  # 12 edges + the front cross
    corners_uv, _, _ = cam.project(boxes.corners()[0])
    ends = np.concatenate([[line[0], line[-1]] for line in lines[0]])
    for c in corners_uv:
        assert np.min(np.linalg.norm(ends - c, axis=1)) < 1e-9
    # A box behind the camera has no visible lines.
    behind = Boxes3D(center=[[-10, 0, 0]], size=[[2, 2, 2]], heading=[0], type=[1])
    assert box_wireframes(cam, behind) == [[]]


def test_fit_image_scales_calibration() -> None:
    cam = camera_calibration("FRONT", 400, 200)
    img = np.zeros((200, 400, 3), np.uint8)
    small, cam2 = fit_image(img, cam, 100)
    assert small.shape == (50, 100, 3) and (cam2.width, cam2.height) == (100, 50)
    same, cam3 = fit_image(img, cam, None)
    assert same is img and cam3 is cam


def test_save_camera_panel(tmp_path: Path) -> None:
    frame = make_frame(0, image_size=(160, 120), num_boxes=6)
    cam = frame.cameras["FRONT"]
    path = save_camera(
        tmp_path / "cam.png",
        frame.images["FRONT"],
        cam,
        points=frame.point_cloud(),
        gt=frame.boxes,
        pred=frame.boxes.to_array(),
        boxes_2d=frame.projected_boxes["FRONT"],
        pred_2d=np.array([[10, 10, 50, 60]]),
        title="FRONT",
    )
    img = cv2.imread(str(path))
    assert img is not None and img.shape[1] == 160
    with pytest.raises(ValueError, match="calibration"):
        save_camera(tmp_path / "bad.png", np.zeros((10, 10, 3), np.uint8), cam)


def test_as_boxes2d_from_xyxy() -> None:
    b = as_boxes2d(np.array([[0, 10, 4, 30]]))
    np.testing.assert_array_equal(b.center, [[2, 20]])
    np.testing.assert_array_equal(b.size, [[4, 20]])
    assert isinstance(as_boxes2d(None), Boxes2D)
