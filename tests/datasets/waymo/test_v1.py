"""The v1 reader: write generated frames, read them back, check every field and every point.

Expected LiDAR points are recomputed here from the format's formulas with SciPy's
rotations, independently of :mod:`perceive.geometry`.
"""

from __future__ import annotations

import contextlib
import pickle
import zlib
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from perceive.datasets import waymo
from perceive.datasets.types import (
    LASER_NAMES,
    Boxes3D,
    Frame,
    FrameContext,
    LaserCalibration,
    RangeImage,
)
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.proto import waymo_pb2 as pb
from perceive.datasets.waymo.v1_writer import frame_to_proto, serialize_frame, write_segment
from perceive.datasets.waymo.wire import encode_matrix_float
from perceive.errors import (
    CorruptRecordError,
    DataError,
    MissingComponentError,
    MissingFileError,
    NotAFileError,
    NotAFrameError,
    PerceiveError,
    TruncatedRecordError,
)
from perceive.io.tfrecord import write_records

# --- independent reference ---------------------------------------------------------


def _expected_inclinations(cal: LaserCalibration, height: int) -> np.ndarray:
    if cal.beam_inclinations.size:
        incl = np.array(cal.beam_inclinations, np.float64)
    else:
        lo, hi = cal.inclination_min, cal.inclination_max
        incl = np.array([lo + (i + 0.5) / height * (hi - lo) for i in range(height)])
    return incl[::-1]


def _expected_points(
    frame: Frame, laser: str, ret: int
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(N, 3) float64 points of one return, vehicle frame, and their (rows, cols)."""
    ri = frame.range_images[(laser, ret)]
    cal = frame.lasers[laser]
    h, w = ri.shape
    rows, cols = np.nonzero(ri.values[..., 0] > 0)
    r = ri.values[rows, cols, 0].astype(np.float64)
    incl = _expected_inclinations(cal, h)[rows]
    ext = cal.extrinsic
    az = np.pi * (1 - (2 * cols + 1) / w) - np.arctan2(ext[1, 0], ext[0, 0])
    p = np.stack(
        [r * np.cos(incl) * np.cos(az), r * np.cos(incl) * np.sin(az), r * np.sin(incl)], 1
    )
    p = Rotation.from_matrix(ext[:3, :3]).apply(p) + ext[:3, 3]
    pose_ri = frame.range_images[(laser, 1)]
    if pose_ri.pixel_pose is not None:
        pp = pose_ri.pixel_pose[rows, cols].astype(np.float64)
        # R = Rz(yaw) Ry(pitch) Rx(roll): intrinsic z-y'-x'' rotations.
        rot = Rotation.from_euler("ZYX", pp[:, [2, 1, 0]])
        world = rot.apply(p) + pp[:, 3:]
        pose_inv = np.linalg.inv(frame.pose)
        p = world @ pose_inv[:3, :3].T + pose_inv[:3, 3]
    return p, (rows, cols)


# --- helpers -----------------------------------------------------------------------


def _assert_frames_equal(a: Frame, b: Frame) -> None:
    assert a.context == b.context
    assert a.timestamp_us == b.timestamp_us
    np.testing.assert_array_equal(a.pose, b.pose)
    assert dict(a.cameras) == dict(b.cameras)
    assert dict(a.lasers) == dict(b.lasers)
    assert dict(a.image_bytes) == dict(b.image_bytes)
    assert sorted(a.range_images) == sorted(b.range_images)
    for key in a.range_images:
        assert a.range_images[key] == b.range_images[key], key
    assert a.boxes == b.boxes
    assert dict(a.camera_boxes) == dict(b.camera_boxes)
    assert dict(a.projected_boxes) == dict(b.projected_boxes)


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    return [make_frame(0), make_frame(1, with_pixel_pose=False)]


@pytest.fixture(scope="module")
def segment_path(tmp_path_factory: pytest.TempPathFactory, frames: list[Frame]) -> Path:
    p = tmp_path_factory.mktemp("v1") / "seg.tfrecord"
    assert write_segment(p, frames) == 2
    return p


# --- round trip --------------------------------------------------------------------


def test_round_trip_every_field(segment_path: Path, frames: list[Frame]) -> None:
    with waymo.open(segment_path) as seg:
        assert len(seg) == 2
        for i, frame in enumerate(seg):
            _assert_frames_equal(frame, frames[i])
        _assert_frames_equal(seg[-1], frames[1])
        for name in frames[0].cameras:
            np.testing.assert_array_equal(seg[0].images[name], frames[0].images[name])
    assert "frames=2" in repr(seg)


def test_written_proto_matches_format_fields(frames: list[Frame]) -> None:
    """The writer puts values in the fields the format names (checked on the message)."""
    f = frames[0]
    msg = pb.Frame.FromString(serialize_frame(f))
    assert msg.timestamp_micros == f.timestamp_us
    assert list(msg.pose.transform) == f.pose.reshape(-1).tolist()
    lab = msg.laser_labels[0]
    assert (lab.box.length, lab.box.width, lab.box.height) == tuple(f.boxes.size[0])
    assert lab.metadata.speed_z == f.boxes.speed[0, 2]
    top = next(la for la in msg.lasers if la.name == 1)
    assert (
        top.ri_return1.range_image_pose_compressed
        and not top.ri_return2.range_image_pose_compressed
    )
    vals = pb.MatrixFloat.FromString(zlib.decompress(top.ri_return1.range_image_compressed))
    assert list(vals.shape.dims) == [*f.range_images[("TOP", 1)].shape, 4]
    np.testing.assert_array_equal(
        np.array(vals.data, np.float32), f.range_images[("TOP", 1)].values.ravel()
    )
    # per-type object counts and the images' pose time, as the dataset's files carry them
    laser = {int(c.type): c.count for c in msg.context.stats.laser_object_counts}
    types, counts = np.unique(f.boxes.type, return_counts=True)
    assert laser == dict(zip(types.tolist(), counts.tolist(), strict=True)) and laser
    cam = {int(c.type): c.count for c in msg.context.stats.camera_object_counts}
    assert sum(cam.values()) == sum(len(b) for b in f.camera_boxes.values())
    assert all(im.pose_timestamp == f.timestamp_us * 1e-6 for im in msg.images)


def test_segment_pickles(segment_path: Path, frames: list[Frame]) -> None:
    with waymo.open(segment_path) as seg:
        copy = pickle.loads(pickle.dumps(seg))
    _assert_frames_equal(copy[1], frames[1])
    copy.close()


# --- LiDAR -------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1], ids=["per_pixel_pose", "no_pose"])
def test_points_match_independent_formulas(segment_path: Path, index: int) -> None:
    frame = waymo.open(segment_path)[index]
    assert frame.laser_names == list(LASER_NAMES)
    assert (frame.range_images[("TOP", 1)].pixel_pose is not None) == (index == 0)
    assert frame.lasers["TOP"].beam_inclinations.size > 0  # explicit
    assert frame.lasers["FRONT"].beam_inclinations.size == 0  # uniform
    for laser in LASER_NAMES:
        for ret in (1, 2):
            pc = frame.point_cloud(lasers=[laser], returns=[ret])
            exp, (rows, cols) = _expected_points(frame, laser, ret)
            assert len(pc) == len(exp) > 0
            np.testing.assert_allclose(
                pc.xyz, exp, atol=2e-3, rtol=0, err_msg=f"{laser} return {ret}"
            )
            vals = frame.range_images[(laser, ret)].values
            np.testing.assert_array_equal(pc.pixel, np.stack([rows, cols], 1))
            np.testing.assert_array_equal(pc.range, vals[rows, cols, 0])
            np.testing.assert_array_equal(pc.intensity, vals[rows, cols, 1])
            np.testing.assert_array_equal(pc.elongation, vals[rows, cols, 2])
            np.testing.assert_array_equal(pc.nlz, vals[rows, cols, 3] > 0)
            np.testing.assert_array_equal(
                pc.camera_projection, frame.range_images[(laser, ret)].camera_projection[rows, cols]
            )
            assert (pc.laser == LASER_NAMES.index(laser) + 1).all()
            assert (pc.return_index == ret).all()
            assert pc.xyz.dtype == np.float32


def test_pixel_pose_moves_points(segment_path: Path) -> None:
    """The TOP per-pixel pose really changes the points (the test above would catch a skip)."""
    frame = waymo.open(segment_path)[0]
    pc = frame.point_cloud(lasers=["TOP"], returns=[1])
    ri = frame.range_images[("TOP", 1)]
    no_pose = Frame(
        context=frame.context,
        timestamp_us=frame.timestamp_us,
        pose=frame.pose,
        cameras={},
        lasers=frame.lasers,
        image_bytes={},
        range_images={("TOP", 1): RangeImage("TOP", 1, ri.values, ri.camera_projection, None)},
        boxes=Boxes3D.empty(),
    )
    moved = np.linalg.norm(pc.xyz - no_pose.point_cloud().xyz, axis=1)
    assert np.median(moved) > 0.1


def test_known_point_on_hand_made_laser() -> None:
    """A range image built by hand: one point straight ahead, one straight left, one up."""
    ext = np.eye(4)
    ext[:3, 3] = [1.0, 2.0, 3.0]
    # Inclinations stored ascending: rows (top first) are +0.5, 0, -0.5 rad.
    cal = LaserCalibration("FRONT", ext, np.array([-0.5, 0.0, 0.5]), -0.5, 0.5)
    vals = np.zeros((3, 4, 4), np.float32)
    vals[..., 0] = -1
    # W = 4: column azimuths are 3pi/4, pi/4, -pi/4, -3pi/4.
    vals[1, 1] = (10.0, 0.5, 0.1, -1)  # incl 0, az pi/4
    vals[0, 2] = (4.0, 0.2, 0.0, 1)  # incl 0.5, az -pi/4
    frame = Frame(
        context=FrameContext("hand"),
        timestamp_us=0,
        pose=np.eye(4),
        cameras={},
        lasers={"FRONT": cal},
        image_bytes={},
        range_images={("FRONT", 1): RangeImage("FRONT", 1, vals)},
        boxes=Boxes3D.empty(),
    )
    pc = frame.point_cloud()
    s = np.sqrt(0.5)
    expected = np.array(
        [
            [1 + 4 * np.cos(0.5) * s, 2 - 4 * np.cos(0.5) * s, 3 + 4 * np.sin(0.5)],
            [1 + 10 * s, 2 + 10 * s, 3.0],
        ]
    )
    np.testing.assert_allclose(pc.xyz, expected, atol=1e-5)
    np.testing.assert_array_equal(pc.nlz, [True, False])
    assert len(frame.point_cloud(drop_nlz=True)) == 1


def test_uniform_inclinations_use_pixel_centres() -> None:
    cal = LaserCalibration("SIDE_LEFT", np.eye(4), np.zeros(0), -0.4, 0.4)
    # H = 4: (i + 0.5) / 4 * 0.8 - 0.4 = -0.3, -0.1, 0.1, 0.3; reversed for row 0 = top.
    np.testing.assert_allclose(cal.inclinations(4), [0.3, 0.1, -0.1, -0.3])


def test_drop_nlz_and_selection(segment_path: Path) -> None:
    frame = waymo.open(segment_path)[0]
    full = frame.point_cloud()
    assert full.nlz.any() and not full.nlz.all()
    kept = frame.point_cloud(drop_nlz=True)
    assert len(kept) == int((~full.nlz).sum())
    np.testing.assert_array_equal(kept.xyz, full.xyz[~full.nlz])
    # Order: lasers in enum order, return 1 before return 2.
    order = full.laser.astype(int) * 10 + full.return_index
    assert (np.diff(order) >= 0).all()
    sub = frame.point_cloud(lasers=["SIDE_RIGHT", "REAR"], returns=(2,))
    assert set(sub.laser.tolist()) == {4, 5} and set(sub.return_index.tolist()) == {2}
    only = (full.laser >= 4) & (full.return_index == 2)
    assert len(sub) == int(only.sum())
    first = frame.point_cloud(returns=(1,))
    assert len(first) == int((full.return_index == 1).sum())
    with pytest.raises(ValueError):
        frame.point_cloud(returns=(3,))


def test_range_images_are_lazy(segment_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import perceive.datasets.waymo.v1 as v1

    calls = []
    real = v1._decode_range_image
    monkeypatch.setattr(v1, "_decode_range_image", lambda *a: calls.append(a[1:3]) or real(*a))
    frame = waymo.open(segment_path)[0]
    assert calls == []
    frame.range_images[("FRONT", 2)]
    frame.range_images[("FRONT", 2)]
    assert calls == [("FRONT", 2)]


# --- missing components -------------------------------------------------------------


def test_missing_laser_and_camera(tmp_path: Path) -> None:
    p = tmp_path / "partial.tfrecord"
    write_segment(p, [make_frame(3, lasers=("TOP",), cameras=("FRONT",))])
    frame = waymo.open(p)[0]
    assert frame.laser_names == ["TOP"]
    assert len(frame.point_cloud()) == len(frame.point_cloud(lasers=["TOP"]))
    with pytest.raises(MissingComponentError, match="FRONT"):
        frame.point_cloud(lasers=["FRONT"])
    with pytest.raises(MissingComponentError, match="SIDE_LEFT"):
        frame.images["SIDE_LEFT"]
    with pytest.raises(MissingComponentError, match="SIDE_LEFT") as e:
        frame.cameras["SIDE_LEFT"]
    assert str(p) in str(e.value)
    with pytest.raises(MissingComponentError):
        frame.range_images[("REAR", 1)]
    with pytest.raises(MissingComponentError):
        frame.lasers["REAR"]
    assert frame.images["FRONT"].shape == (48, 64, 3)


def test_laser_with_only_first_return(tmp_path: Path) -> None:
    f = make_frame(4, lasers=("TOP", "FRONT"))
    ri = dict(f.range_images)
    del ri[("FRONT", 2)]
    g = Frame(**{**{k: getattr(f, k) for k in f.__dataclass_fields__}, "range_images": ri})
    p = tmp_path / "one_return.tfrecord"
    write_segment(p, [g])
    frame = waymo.open(p)[0]
    assert (frame.point_cloud(lasers=["FRONT"], returns=[1]).return_index == 1).all()
    assert set(frame.point_cloud().laser.tolist()) == {1, 2}  # lasers=None skips what is absent
    with pytest.raises(MissingComponentError, match="return 2"):
        frame.point_cloud(lasers=["FRONT"], returns=[2])


# --- bad input ---------------------------------------------------------------------


def _assert_located(err: DataError, path: Path, record: int, offset: int) -> None:
    assert (err.path, err.record, err.offset) == (str(path), record, offset)
    for part in (str(path), f"record {record}", f"byte offset {offset}"):
        assert part in str(err)


@pytest.mark.parametrize(
    "junk",
    [b"this is not a protobuf \xff\xff\xff", b"", pb.Label(id="x", type=1).SerializeToString()],
    ids=["garbage", "empty", "other_message"],
)
def test_not_a_frame(tmp_path: Path, junk: bytes) -> None:
    good = serialize_frame(make_frame(0, top_shape=(4, 8), side_shape=(2, 4)))
    p = tmp_path / "mixed.tfrecord"
    write_records(p, [good, junk])
    seg = waymo.open(p)
    assert seg[0].timestamp_us > 0
    with pytest.raises(NotAFrameError) as e:
        seg[1]
    _assert_located(e.value, p, 1, 16 + len(good))
    with pytest.raises(NotAFrameError):
        list(seg)
    skipping = waymo.open(p, skip_corrupt=True)
    assert len(list(skipping)) == 1
    assert len(skipping.skipped) == 1 and skipping.skipped[0].record == 1


def _write_modified(tmp_path: Path, edit) -> tuple[Path, int]:
    """A segment of [good frame, edited frame]; returns the path and the second offset."""
    first = serialize_frame(make_frame(0, top_shape=(4, 8), side_shape=(2, 4)))
    msg = frame_to_proto(make_frame(1, top_shape=(4, 8), side_shape=(2, 4)))
    edit(msg)
    p = tmp_path / "edited.tfrecord"
    write_records(p, [first, msg.SerializeToString()])
    return p, 16 + len(first)


@pytest.mark.parametrize(
    ("field", "edit"),
    [
        (
            "range_image_compressed",
            lambda ri: setattr(ri, "range_image_compressed", b"not zlib at all"),
        ),
        (
            "range_image_compressed",
            lambda ri: setattr(
                ri,
                "range_image_compressed",
                zlib.compress(encode_matrix_float(np.zeros((4, 8, 3)))),
            ),
        ),
        (
            "camera_projection_compressed",
            lambda ri: setattr(ri, "camera_projection_compressed", b"\x78\x9c"),
        ),
        (
            "range_image_pose_compressed",
            lambda ri: setattr(ri, "range_image_pose_compressed", b"zz"),
        ),
    ],
    ids=["bad_zlib", "wrong_channels", "bad_projection", "bad_pose"],
)
def test_corrupt_range_image(tmp_path: Path, field: str, edit) -> None:
    p, offset = _write_modified(tmp_path, lambda m: edit(m.lasers[0].ri_return1))
    frame = waymo.open(p)[1]  # lazy: opening the frame works
    with pytest.raises(NotAFrameError) as e:
        frame.range_images[("TOP", 1)]
    _assert_located(e.value, p, 1, offset)
    assert e.value.field == f"lasers[TOP].ri_return1.{field}"
    assert field in str(e.value)
    with pytest.raises(NotAFrameError):
        frame.point_cloud()
    frame.range_images[("FRONT", 1)]  # the others still decode


def test_bad_calibrations(tmp_path: Path) -> None:
    def short_intrinsic(m):
        del m.context.camera_calibrations[0].intrinsic[3:]

    p, offset = _write_modified(tmp_path, short_intrinsic)
    with pytest.raises(NotAFrameError) as e:
        waymo.open(p)[1]
    _assert_located(e.value, p, 1, offset)
    assert "intrinsic" in e.value.field

    def bad_extrinsic(m):
        del m.context.laser_calibrations[1].extrinsic.transform[5:]

    p, _ = _write_modified(tmp_path, bad_extrinsic)
    with pytest.raises(NotAFrameError, match="extrinsic"):
        waymo.open(p)[1]

    def no_laser_calibration(m):
        del m.context.laser_calibrations[:]

    p, _ = _write_modified(tmp_path, no_laser_calibration)
    with pytest.raises(NotAFrameError, match="no calibration"):
        waymo.open(p)[1]


def test_bad_jpeg_is_reported_when_decoded(tmp_path: Path) -> None:
    def bad_image(m):
        m.images[1].image = b"\xff\xd8 not really a jpeg"

    p, offset = _write_modified(tmp_path, bad_image)
    frame = waymo.open(p)[1]
    with pytest.raises(DataError) as e:
        frame.images["FRONT_LEFT"]
    assert (
        str(p) in str(e.value)
        and "record 1" in str(e.value)
        and f"byte offset {offset}" in str(e.value)
    )
    assert frame.images["FRONT"].shape[2] == 3


def test_corrupt_and_truncated_segments(tmp_path: Path, segment_path: Path) -> None:
    data = segment_path.read_bytes()
    first_len = int.from_bytes(data[:8], "little")
    second = 16 + first_len
    # Flip a byte inside the second record's data: its CRC fails, the first still reads.
    bad = bytearray(data)
    bad[second + 12 + 100] ^= 0xFF
    p = tmp_path / "crc.tfrecord"
    p.write_bytes(bytes(bad))
    seg = waymo.open(p)
    seg[0]
    with pytest.raises(CorruptRecordError) as e:
        seg[1]
    _assert_located(e.value, p, 1, second)
    assert e.value.field == "data"
    assert len(list(waymo.open(p, skip_corrupt=True))) == 1
    # verify_crc=False hands the flipped bytes to the parser, which may or may not cope.
    with contextlib.suppress(DataError):
        waymo.open(p, verify_crc=False)[1]
    # Truncated inside the second record.
    t = tmp_path / "cut.tfrecord"
    t.write_bytes(data[: second + 40])
    with pytest.raises(TruncatedRecordError) as e:
        waymo.open(t)
    _assert_located(e.value, t, 1, second)
    seg = waymo.open(t, skip_corrupt=True)
    assert len(seg) == 1 and len(seg.skipped) == 1


def test_wrong_paths(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError) as e:
        waymo.open(tmp_path / "missing.tfrecord")
    assert "missing.tfrecord" in str(e.value)
    with pytest.raises(NotAFileError) as e:
        waymo.open(tmp_path)
    assert str(tmp_path) in str(e.value)
    assert isinstance(e.value, PerceiveError)


def test_parse_frame_type_errors() -> None:
    with pytest.raises(TypeError):
        waymo.parse_frame(12345)
    with pytest.raises(NotAFrameError, match="<frame>"):
        waymo.parse_frame(b"\xff\xff")


def test_out_of_range_and_non_integer_indices(segment_path: Path) -> None:
    seg = waymo.open(segment_path)
    n = len(seg)
    assert seg[-1].timestamp_us == seg[n - 1].timestamp_us
    assert seg[-n].timestamp_us == seg[0].timestamp_us
    for bad in (n, -n - 1, -2 * n):  # once wrapped, never twice
        with pytest.raises(IndexError, match=f"record {bad} out of range"):
            seg[bad]
    with pytest.raises(TypeError, match="must be an integer"):
        seg[0.0]
    assert seg[np.int64(1)].timestamp_us == seg[1].timestamp_us


def test_skipped_records_are_listed_once(tmp_path: Path, segment_path: Path) -> None:
    data = bytearray(segment_path.read_bytes())
    data[12 + 100] ^= 0xFF  # record 0's data CRC fails
    p = tmp_path / "crc0.tfrecord"
    p.write_bytes(bytes(data))
    seg = waymo.open(p, skip_corrupt=True)
    for _ in range(3):
        assert len(list(seg)) == len(seg) - 1
    assert [e.record for e in seg.skipped] == [0]


def test_membership_does_not_decode(segment_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import perceive.datasets.waymo.v1 as v1

    calls = []
    real = v1._decode_range_image
    monkeypatch.setattr(v1, "_decode_range_image", lambda *a: calls.append(a[1:3]) or real(*a))
    frame = waymo.open(segment_path)[0]
    assert ("TOP", 1) in frame.range_images and ("REAR", 3) not in frame.range_images
    assert "FRONT" in frame.images
    assert calls == []


def test_calibration_that_does_not_fit_the_range_image(tmp_path: Path) -> None:
    def few_beams(m):
        top = next(c for c in m.context.laser_calibrations if c.name == 1)
        del top.beam_inclinations[2:]

    p, _ = _write_modified(tmp_path, few_beams)
    frame = waymo.open(p)[1]
    with pytest.raises(DataError, match="2 beam inclinations, the range image 4 rows") as e:
        frame.point_cloud()
    assert str(p) in str(e.value) and "record 1" in str(e.value)
    assert e.value.field == "lasers[TOP].beam_inclinations"
    frame.point_cloud(lasers=["FRONT"])  # the other lasers are fine


def test_second_return_of_another_shape_than_the_pose(tmp_path: Path) -> None:
    def narrow_second_return(m):
        top = next(laser for laser in m.lasers if laser.name == 1)
        ri = top.ri_return2
        ri.range_image_compressed = zlib.compress(
            encode_matrix_float(np.ones((4, 4, 4), np.float32))
        )
        ri.camera_projection_compressed = b""

    p, _ = _write_modified(tmp_path, narrow_second_return)
    frame = waymo.open(p)[1]
    frame.point_cloud(returns=(1,))
    with pytest.raises(DataError, match=r"range image 4 x 4 but the per-pixel pose is 4 x 8"):
        frame.point_cloud()
