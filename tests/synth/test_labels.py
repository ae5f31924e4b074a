"""Label helpers: point counts, projected boxes, camera boxes."""

from __future__ import annotations

import numpy as np

from perceive.datasets.types import Boxes3D
from perceive.synth import labels as lab
from perceive.synth.camera import camera_calibrations
from perceive.synth.config import CameraConfig


def _boxes(centers, sizes, headings, types=None):
    n = len(centers)
    return Boxes3D(
        center=centers,
        size=sizes,
        heading=headings,
        type=types if types is not None else [1] * n,
        ids=[f"b{i}" for i in range(n)],
    )


def test_count_points_matches_brute_force():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-10, 10, (5000, 3)).astype(np.float32)
    boxes = _boxes(
        rng.uniform(-8, 8, (6, 3)), rng.uniform(0.5, 4, (6, 3)), rng.uniform(-np.pi, np.pi, 6)
    )
    np.testing.assert_array_equal(lab.count_points(pts, boxes), boxes.contains(pts).sum(0))
    assert lab.count_points(np.zeros((0, 3)), boxes).tolist() == [0] * 6


def test_project_box_in_front_and_behind():
    cal = camera_calibrations(CameraConfig())["FRONT"]
    ahead = _boxes([[15.0, 0.0, 1.0]], [[4.5, 1.9, 1.6]], [0.3])
    r = lab.project_box(cal, ahead.corners()[0])
    uv, _, _ = cal.project(ahead.corners()[0])
    np.testing.assert_allclose(r, np.r_[uv.min(0), uv.max(0)])
    behind = _boxes([[-15.0, 0.0, 1.0]], [[4.5, 1.9, 1.6]], [0.0])
    assert lab.project_box(cal, behind.corners()[0]) is None
    straddling = _boxes([[1.6, 0.0, 1.0]], [[4.5, 1.9, 1.6]], [0.0])  # around the camera
    assert lab.project_box(cal, straddling.corners()[0]) is None
    proj = lab.projected_boxes(ahead, {"FRONT": cal})
    assert proj["FRONT"].ids.tolist() == ["b0_FRONT"]
    # larger than the view, every corner in front but outside the image: the whole image
    wall = _boxes([[8.0, 0.0, 1.0]], [[1.0, 40.0, 30.0]], [0.0])
    uv, depth, _ = cal.project(wall.corners()[0])
    assert (depth > 0).all() and not (
        (uv[:, 0] >= 0) & (uv[:, 0] < cal.width) & (uv[:, 1] >= 0) & (uv[:, 1] < cal.height)
    ).any()
    np.testing.assert_allclose(
        lab.project_box(cal, wall.corners()[0]), [0, 0, cal.width, cal.height]
    )


def test_camera_boxes_are_tight_and_filtered():
    inst = np.full((20, 30), -1, np.int32)
    inst[2:5, 3:9] = 100  # a vehicle
    inst[10:12, 20:21] = 101  # a pedestrian with 2 pixels
    inst[15:18, 0:4] = 102  # a sign: no camera label
    boxes = _boxes(np.zeros((3, 3)), np.ones((3, 3)), np.zeros(3), types=[1, 2, 3])
    out = lab.camera_boxes({"FRONT": inst}, {100: 0, 101: 1, 102: 2}, boxes, min_pixels=3)["FRONT"]
    assert out.ids.tolist() == ["b0"]
    np.testing.assert_array_equal(out.xyxy()[0], [3, 2, 9, 5])
    out = lab.camera_boxes({"FRONT": inst}, {100: 0, 101: 1, 102: 2}, boxes, min_pixels=1)["FRONT"]
    assert sorted(out.ids.tolist()) == ["b0", "b1"]


def test_generated_labels_have_motion_and_all_types(tiny_frames):
    boxes = Boxes3D.concat([f.frame.boxes for f in tiny_frames])
    assert {1, 2, 3}.issubset(set(boxes.type.tolist()))
    assert np.abs(boxes.speed[boxes.type == 1]).max() > 0.5  # some vehicles move
    np.testing.assert_array_equal(boxes.speed[boxes.type == 3], 0.0)  # signs stand still
    assert sum(len(b) for f in tiny_frames for b in f.frame.camera_boxes.values()) > 0


def test_sky_is_no_object_even_next_to_the_last_instance():
    """Sky (-1) never becomes a box, also when an agent has the instance id after the
    largest one in the image (it once took the sky's extent)."""
    inst = np.array([[-1, -1, -1], [0, 0, 0]], np.int32)  # sky row, one ground row
    boxes = _boxes([[10.0, 0.0, 1.0]], [[4.0, 2.0, 1.5]], [0.0])
    out = lab.camera_boxes({"FRONT": inst}, {1: 0}, boxes, min_pixels=1)["FRONT"]
    assert len(out) == 0
    out = lab.camera_boxes({"FRONT": np.full((4, 4), -1, np.int32)}, {0: 0}, boxes, 1)["FRONT"]
    assert len(out) == 0  # an image of sky only


def test_projected_boxes_reproduce_the_real_frames_labels(real_frame_path):
    """Our projection of the real frame's 3D labels gives the file's projected labels:
    the same set (near boxes at the image edge included) and the same extents."""
    from perceive.datasets import waymo

    frame = waymo.open(real_frame_path)[0]
    ours = lab.projected_boxes(frame.boxes, frame.cameras)
    errors = []
    for cam, theirs in frame.projected_boxes.items():
        assert sorted(ours[cam].ids.tolist()) == sorted(theirs.ids.tolist()), cam
        mine = dict(zip(ours[cam].ids.tolist(), ours[cam].xyxy(), strict=True))
        for i, box in zip(theirs.ids.tolist(), theirs.xyxy(), strict=True):
            errors.append(np.abs(mine[i] - box).max())
    assert len(errors) == 62
    assert np.median(errors) < 0.5 and max(errors) < 40.0  # pixels
