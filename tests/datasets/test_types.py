"""The typed frame data: validation, equality, selection, lazy decoding."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from perceive.datasets.types import (
    CAMERA_NAMES,
    LASER_NAMES,
    OBJECT_TYPES,
    POINT_FEATURES,
    Boxes2D,
    Boxes3D,
    CameraCalibration,
    ComponentDict,
    Frame,
    FrameContext,
    LaserCalibration,
    PointCloud,
    camera_id,
    laser_id,
)
from perceive.datasets.waymo.fixtures import camera_calibration, make_frame
from perceive.errors import DataError, MissingComponentError


def test_name_tables() -> None:
    assert camera_id("FRONT") == 1 and camera_id("SIDE_RIGHT") == 5
    assert laser_id("TOP") == 1 and laser_id("REAR") == 5
    assert OBJECT_TYPES[1] == "VEHICLE" and OBJECT_TYPES[4] == "CYCLIST"
    assert len(CAMERA_NAMES) == len(LASER_NAMES) == 5
    with pytest.raises(MissingComponentError, match="cameras are"):
        camera_id("BACK")
    with pytest.raises(MissingComponentError):
        laser_id("ROOF")


def test_camera_calibration_validation_and_matrices() -> None:
    cal = CameraCalibration("FRONT", list(range(1, 10)), np.eye(4), 100, 50)
    assert cal.intrinsic.dtype == np.float64
    np.testing.assert_array_equal(cal.K, [[1, 0, 3], [0, 2, 4], [0, 0, 1]])
    np.testing.assert_array_equal(cal.distortion, [5, 6, 7, 8, 9])
    with pytest.raises(ValueError, match="9 values"):
        CameraCalibration("FRONT", np.ones(8), np.eye(4), 100, 50)
    with pytest.raises(ValueError, match="4x4"):
        CameraCalibration("FRONT", np.ones(9), np.eye(3), 100, 50)


def test_resized_camera_scales_projections() -> None:
    cal = camera_calibration("FRONT", 1920, 1280)
    small = cal.resized(480, 320)
    assert (small.width, small.height) == (480, 320)
    pts = np.array([[10.0, 1.0, 0.5], [20.0, -3.0, 1.0], [8.0, 0.5, -1.0]])
    uv, depth, valid = cal.project(pts)
    uv2, depth2, valid2 = small.project(pts)
    np.testing.assert_allclose(uv2, uv * [0.25, 0.25], rtol=1e-9)
    np.testing.assert_array_equal(depth, depth2)
    np.testing.assert_array_equal(valid, valid2)
    assert cal.intrinsic[0] == camera_calibration("FRONT", 1920, 1280).intrinsic[0]  # not mutated


def test_calibration_equality() -> None:
    a = camera_calibration("FRONT", 64, 48)
    assert a == camera_calibration("FRONT", 64, 48)
    assert a != camera_calibration("FRONT_LEFT", 64, 48)
    assert a != a.resized(32, 24)
    lc = LaserCalibration("TOP", np.eye(4), [0.1, 0.2], 0.1, 0.2)
    assert lc == LaserCalibration("TOP", np.eye(4), np.array([0.1, 0.2]), 0.1, 0.2)
    assert lc != LaserCalibration("TOP", np.eye(4), np.array([0.1, 0.3]), 0.1, 0.2)
    with pytest.raises(ValueError):
        LaserCalibration("TOP", np.eye(3), [], 0, 0)


def _cloud(n: int, laser: int = 1) -> PointCloud:
    rng = np.random.default_rng(n)
    return PointCloud(
        xyz=rng.normal(size=(n, 3)).astype(np.float32),
        intensity=rng.random(n).astype(np.float32),
        elongation=rng.random(n).astype(np.float32),
        nlz=rng.random(n) < 0.3,
        laser=np.full(n, laser, np.uint8),
        return_index=np.ones(n, np.uint8),
        range=rng.random(n).astype(np.float32),
        pixel=np.zeros((n, 2), np.int32),
        camera_projection=np.zeros((n, 6), np.int32),
    )


def test_point_cloud_features_select_concat() -> None:
    pc = _cloud(10)
    f = pc.features()
    assert f.shape == (10, len(POINT_FEATURES)) and f.dtype == np.float32
    np.testing.assert_array_equal(f[:, :3], pc.xyz)
    np.testing.assert_array_equal(f[:, 3], pc.intensity)
    np.testing.assert_array_equal(pc.features(["range", "z"]), np.c_[pc.range, pc.xyz[:, 2]])
    assert pc.features([]).shape == (10, 0)
    with pytest.raises(ValueError, match="unknown point feature"):
        pc.features(["colour"])
    sel = pc.select(~pc.nlz)
    assert len(sel) == int((~pc.nlz).sum())
    both = PointCloud.concat([pc, _cloud(5, laser=2)])
    assert len(both) == 15 and both.laser.tolist() == [1] * 10 + [2] * 5
    assert PointCloud.concat([]) == PointCloud.empty()
    assert len(PointCloud.empty()) == 0 and PointCloud.empty().features().shape == (0, 5)
    assert pc == _cloud(10) and pc != _cloud(11)


def test_boxes3d() -> None:
    b = Boxes3D(
        center=[[1, 2, 3], [4, 5, 6]],
        size=[[4, 2, 1.5], [1, 1, 2]],
        heading=[0.1, -0.2],
        type=[1, 2],
        ids=["a", "b"],
    )
    assert len(b) == 2 and b.center.dtype == np.float64 and b.type.dtype == np.int8
    assert b.difficulty.tolist() == [0, 0] and b.speed.shape == (2, 3)  # defaults filled in
    assert b.type_names == ["VEHICLE", "PEDESTRIAN"]
    arr = b.to_array()
    assert arr.shape == (2, 7) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[1], [4, 5, 6, 1, 1, 2, -0.2], rtol=1e-6)
    assert b.corners().shape == (2, 8, 3)
    assert b.contains(np.array([[1, 2, 3], [100, 0, 0]])).tolist() == [
        [True, False],
        [False, False],
    ]
    one = b[1]
    assert len(one) == 1 and one.ids.tolist() == ["b"]
    assert len(b[np.array([True, False])]) == 1
    both = Boxes3D.concat([b, b])
    assert len(both) == 4 and both.ids.tolist() == ["a", "b", "a", "b"]
    assert Boxes3D.concat([]) == Boxes3D.empty() and len(Boxes3D.empty()) == 0
    no_ids = Boxes3D(
        center=np.zeros((3, 3)), size=np.ones((3, 3)), heading=np.zeros(3), type=np.zeros(3)
    )
    assert no_ids.ids.tolist() == ["", "", ""]
    assert Boxes3D(center=[[0, 0, 0]], size=[[1, 1, 1]], heading=[0], type=[9]).type_names == [
        "TYPE_9"
    ]


def test_boxes2d() -> None:
    b = Boxes2D(center=[[10, 20]], size=[[4, 6]], type=[1], ids=["x_FRONT"])
    np.testing.assert_array_equal(b.xyxy(), [[8, 17, 12, 23]])
    assert len(Boxes2D.empty()) == 0 and Boxes2D.empty().xyxy().shape == (0, 4)
    assert b == Boxes2D(center=[[10, 20]], size=[[4, 6]], type=[1], ids=["x_FRONT"])
    assert b != Boxes2D(center=[[10, 21]], size=[[4, 6]], type=[1], ids=["x_FRONT"])


def test_component_dict_raises_our_error_and_pickles() -> None:
    d = ComponentDict({"FRONT": 1}, what="camera")
    assert d["FRONT"] == 1 and d.get("SIDE_LEFT") is None and "SIDE_LEFT" not in d
    with pytest.raises(MissingComponentError, match="camera 'SIDE_LEFT' is not present"):
        d["SIDE_LEFT"]
    e = pickle.loads(pickle.dumps(d))
    assert e == d and e.what == "camera"


def test_frame_images_are_decoded_lazily_and_once() -> None:
    f = make_frame(0, cameras=("FRONT", "SIDE_LEFT"), lasers=("TOP",))
    # Break one image: building the frame and reading another camera must still work.
    bad = Frame(**{**{k: getattr(f, k) for k in f.__dataclass_fields__}, "image_bytes": {
        "FRONT": f.image_bytes["FRONT"], "SIDE_LEFT": b"not a jpeg"}})  # fmt: skip
    img = bad.images["FRONT"]
    assert img.shape == (48, 64, 3)
    assert bad.images["FRONT"] is img  # cached
    with pytest.raises(DataError, match="SIDE_LEFT"):
        bad.images["SIDE_LEFT"]
    with pytest.raises(MissingComponentError):
        bad.images["FRONT_RIGHT"]
    assert isinstance(bad.cameras, ComponentDict)
    with pytest.raises(MissingComponentError):
        bad.cameras["REAR"]


def test_frame_context_defaults() -> None:
    ctx = FrameContext("seg")
    assert ctx.segment == "seg" and ctx.weather == ""
    f = make_frame(2, lasers=())
    assert f.segment == "fixture_2" and f.laser_names == [] and len(f.point_cloud()) == 0


def test_box_ids_must_match_the_number_of_boxes():
    from perceive.datasets.types import Boxes2D

    with pytest.raises(ValueError, match="2 ids for 3 boxes"):
        Boxes3D(
            center=np.zeros((3, 3)),
            size=np.ones((3, 3)),
            heading=np.zeros(3),
            type=[1, 1, 1],
            ids=["a", "b"],
        )
    with pytest.raises(ValueError, match="1 ids for 2 boxes"):
        Boxes2D(center=np.zeros((2, 2)), size=np.ones((2, 2)), type=[1, 1], ids=["a"])
    no_ids = Boxes3D(center=np.zeros((2, 3)), size=np.ones((2, 3)), heading=[0, 0], type=[1, 2])
    assert list(no_ids.ids) == ["", ""]
