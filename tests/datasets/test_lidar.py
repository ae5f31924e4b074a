"""Range images to points: the fast row gathers, the one-allocation frame cloud, threads."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perceive.datasets.lidar import (
    frame_point_cloud,
    range_image_to_point_cloud,
    take_rows,
    valid_pixels,
)
from perceive.datasets.types import PointCloud, laser_id
from perceive.datasets.waymo.fixtures import make_frame
from perceive.errors import ConfigError, MissingComponentError
from perceive.geometry.range_image import range_image_to_points


def _assert_same_cloud(a: PointCloud, b: PointCloud) -> None:
    for f in dataclasses.fields(PointCloud):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x.dtype == y.dtype and x.shape == y.shape, f.name
        np.testing.assert_array_equal(x, y, err_msg=f.name)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8, np.float64])
@pytest.mark.parametrize("k", [1, 3, 4, 6])
def test_take_rows_equals_fancy_indexing(dtype: type, k: int) -> None:
    rng = np.random.default_rng(k)
    a = (rng.random((50, k)) * 100).astype(dtype)
    mask = rng.random(50) < 0.4
    idx = rng.integers(0, 50, 30)
    np.testing.assert_array_equal(take_rows(a, mask), a[mask])
    np.testing.assert_array_equal(take_rows(a, idx), a[idx])
    strided = np.asfortranarray(a)  # rows not contiguous: copied first
    np.testing.assert_array_equal(take_rows(strided, mask), a[mask])
    out = np.full((int(mask.sum()), k), 7, dtype)
    assert take_rows(a, mask, out=out) is out
    np.testing.assert_array_equal(out, a[mask])
    assert take_rows(a, mask).flags.c_contiguous


def test_range_image_points_match_the_dense_definition() -> None:
    frame = make_frame(3)
    for (name, ret), ri in frame.range_images.items():
        cal = frame.lasers[name]
        pose = frame.range_images[(name, 1)].pixel_pose
        pc = range_image_to_point_cloud(ri, cal, frame.pose, pose)
        mask = valid_pixels(ri).reshape(ri.shape)
        dense = range_image_to_points(
            ri.values[..., 0], cal.extrinsic, cal.inclinations(ri.shape[0]), pose, frame.pose
        )
        np.testing.assert_allclose(pc.xyz, dense[mask], atol=1e-4)
        rows, cols = np.nonzero(mask)
        np.testing.assert_array_equal(pc.pixel, np.stack([rows, cols], 1))
        np.testing.assert_array_equal(pc.range, ri.values[..., 0][mask])
        np.testing.assert_array_equal(pc.intensity, ri.values[..., 1][mask])
        np.testing.assert_array_equal(pc.elongation, ri.values[..., 2][mask])
        np.testing.assert_array_equal(pc.nlz, ri.values[..., 3][mask] > 0)
        np.testing.assert_array_equal(pc.camera_projection, ri.camera_projection[mask])
        assert (pc.laser == laser_id(name)).all() and (pc.return_index == ret).all()


def test_frame_cloud_is_the_concatenation_of_range_image_clouds() -> None:
    frame = make_frame(4)
    parts = []
    for name in frame.laser_names:
        for ret in (1, 2):
            ri = frame.range_images[(name, ret)]
            pose = frame.range_images[(name, 1)].pixel_pose
            parts.append(range_image_to_point_cloud(ri, frame.lasers[name], frame.pose, pose))
    _assert_same_cloud(frame_point_cloud(frame), PointCloud.concat(parts))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"returns": (2,)},
        {"lasers": ["REAR", "TOP"], "returns": (1,)},
        {"drop_nlz": True},
    ],
)
def test_threads_give_the_same_cloud(kwargs: dict) -> None:
    one = frame_point_cloud(make_frame(5), workers=1, **kwargs)
    frame = make_frame(5)
    two = frame_point_cloud(frame, workers=2, decode_images=True, **kwargs)
    _assert_same_cloud(one, two)
    _assert_same_cloud(one, make_frame(5).point_cloud(**kwargs))


def test_decode_images_fills_the_lazy_cache() -> None:
    frame = make_frame(6)
    frame_point_cloud(frame, workers=2, decode_images=True)
    assert set(frame.images._cache) == set(frame.image_bytes)
    fresh = make_frame(6)
    for name in frame.image_bytes:
        np.testing.assert_array_equal(frame.images[name], fresh.images[name])


def test_errors_are_ours_with_threads_too() -> None:
    frame = make_frame(7, lasers=("TOP",))
    with pytest.raises(ConfigError, match="workers"):
        frame_point_cloud(frame, workers=0)
    with pytest.raises(MissingComponentError, match="FRONT"):
        frame_point_cloud(frame, lasers=["FRONT"], workers=2)
    with pytest.raises(ValueError, match="returns"):
        frame_point_cloud(frame, returns=(3,), workers=2)
    assert len(frame_point_cloud(frame, lasers=[], workers=2)) == 0
