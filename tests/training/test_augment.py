"""Global augmentations keep points, boxes and cameras consistent."""

from __future__ import annotations

import numpy as np
import pytest

from perceive.errors import ConfigError
from perceive.geometry.boxes import points_in_boxes
from perceive.training.augment import (
    AugmentConfig,
    GlobalTransform,
    GTDatabase,
    GTSamplingConfig,
    gt_sample,
    transform_boxes,
    transform_extrinsics,
    transform_points,
)


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    boxes = np.c_[
        rng.uniform(-30, 30, (6, 2)),
        rng.uniform(0, 2, 6),
        rng.uniform(1, 5, (6, 3)),
        rng.uniform(-np.pi, np.pi, 6),
    ].astype(np.float32)
    pts = np.c_[
        rng.uniform(-40, 40, (3000, 2)), rng.uniform(-1, 4, 3000), rng.random((3000, 2))
    ].astype(np.float32)
    return pts, boxes


TRANSFORMS = [
    GlobalTransform(),
    GlobalTransform(flip=True),
    GlobalTransform(yaw=0.7),
    GlobalTransform(flip=True, yaw=-2.5, scale=1.07, translation=(0.3, -0.2, 0.1)),
    GlobalTransform(scale=0.9),
]


@pytest.mark.parametrize("t", TRANSFORMS)
def test_points_stay_in_their_boxes(t: GlobalTransform) -> None:
    pts, boxes = _scene()
    before = points_in_boxes(pts[:, :3], boxes[:, :3], boxes[:, 3:6], boxes[:, 6], margin=-1e-3)
    p2, b2 = transform_points(t, pts), transform_boxes(t, boxes)
    after = points_in_boxes(p2[:, :3], b2[:, :3], b2[:, 3:6], b2[:, 6], margin=1e-3)
    assert before.any()
    assert np.all(after[before])  # every point clearly inside stays inside
    np.testing.assert_array_equal(p2[:, 3:], pts[:, 3:])  # features untouched
    assert np.all((b2[:, 6] >= -np.pi) & (b2[:, 6] < np.pi))


@pytest.mark.parametrize("t", TRANSFORMS)
def test_extrinsics_keep_projections(t: GlobalTransform) -> None:
    pts, _ = _scene(1)
    ext = np.stack([np.eye(4), np.eye(4)])
    ext[1, :3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    ext[1, :3, 3] = [1.5, 0.2, 2.0]
    new_ext = transform_extrinsics(t, ext).astype(np.float64)
    p2 = transform_points(t, pts)
    for e, e2 in zip(ext, new_ext, strict=True):
        cam = (np.c_[pts[:, :3], np.ones(len(pts))] @ np.linalg.inv(e).T)[:, :3]
        cam2 = (np.c_[p2[:, :3], np.ones(len(pts))] @ np.linalg.inv(e2).T)[:, :3]
        np.testing.assert_allclose(cam2, cam, atol=2e-4)


def test_flip_mirrors_y_and_heading() -> None:
    boxes = np.array([[10.0, 3.0, 1.0, 4.0, 2.0, 1.5, 0.3]], np.float32)
    out = transform_boxes(GlobalTransform(flip=True), boxes)
    np.testing.assert_allclose(out[0], [10.0, -3.0, 1.0, 4.0, 2.0, 1.5, -0.3], atol=1e-6)


def test_sample_draws_within_config() -> None:
    cfg = AugmentConfig(rotation=0.1, flip_prob=0.0, scale=(0.9, 1.1), translation_std=0.0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        t = GlobalTransform.sample(cfg, rng)
        assert (
            abs(t.yaw) <= 0.1
            and 0.9 <= t.scale <= 1.1
            and not t.flip
            and t.translation == (0, 0, 0)
        )
    ident = GlobalTransform.sample(AugmentConfig.none(), rng)
    np.testing.assert_array_equal(ident.matrix, np.eye(4))


@pytest.mark.parametrize(
    "kw", [{"rotation": -1.0}, {"flip_prob": 1.5}, {"scale": (1.2, 1.0)}, {"translation_std": -0.1}]
)
def test_bad_config_raises(kw: dict) -> None:
    with pytest.raises(ConfigError):
        AugmentConfig(**kw)


def test_gt_sampling_pastes_objects_without_collisions() -> None:
    pts, boxes = _scene(2)
    labels = np.zeros(len(boxes), np.int64)
    db = GTDatabase()
    assert db.add_frame(pts, boxes, labels, min_points=1) > 0
    # A scene far away: every pasted box is a database box with its own points.
    scene_pts = pts + np.array([200, 0, 0, 0, 0], np.float32)
    scene_boxes = np.zeros((0, 7), np.float32)
    cfg = GTSamplingConfig(max_per_class=(4, 0, 0, 0), min_points=1)
    out = gt_sample(
        db,
        cfg,
        scene_pts,
        scene_boxes,
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        np.random.default_rng(0),
    )
    p2, b2, l2, d2 = out
    assert 0 < len(b2) <= 4 and len(l2) == len(d2) == len(b2)
    # The scene is kept and each pasted box holds one database object's points, once.
    inside = points_in_boxes(p2[:, :3], b2[:, :3], b2[:, 3:6], b2[:, 6])
    db_counts = [len(o.points) for o in db.objects[0]]
    assert inside.sum() == len(p2) - len(scene_pts)
    assert all(int(n) in db_counts for n in inside.sum(axis=0))
    # No two pasted boxes overlap in bird's eye view (centre distance > sum of radii).
    r = 0.5 * np.hypot(b2[:, 3], b2[:, 4])
    d = np.hypot(*(b2[:, None, :2] - b2[None, :, :2]).transpose(2, 0, 1))
    off = ~np.eye(len(b2), dtype=bool)
    assert np.all(d[off] >= (r[:, None] + r[None, :])[off])
