"""Waymo v2 parquet: written frames read back identical to the v1 reading of the same frames."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perceive.datasets import waymo
from perceive.datasets.types import Frame
from perceive.datasets.waymo import v2
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.v1_writer import write_segment
from perceive.errors import DataError, MissingComponentError

SEGMENT = "seg_v2"


def _frames(n: int = 3) -> list[Frame]:
    out = []
    for i in range(n):
        f = make_frame(i)
        ris = dict(f.range_images)
        if i == 1:  # some lasers without range images, one without a second return
            ris = {k: v for k, v in ris.items() if k[0] not in ("SIDE_LEFT", "SIDE_RIGHT")}
            del ris[("FRONT", 2)]
        ctx = dataclasses.replace(f.context, segment=SEGMENT)
        out.append(dataclasses.replace(f, context=ctx, range_images=ris))
    return out


def assert_same_frame(a: Frame, b: Frame) -> None:
    """Every field of two frames is equal (arrays exactly, mappings key by key)."""
    assert a.context == b.context
    assert a.timestamp_us == b.timestamp_us
    np.testing.assert_array_equal(a.pose, b.pose)
    for name in ("cameras", "lasers", "image_bytes", "camera_boxes", "projected_boxes"):
        x, y = getattr(a, name), getattr(b, name)
        assert set(x) == set(y), name
        for k in x:
            assert x[k] == y[k], (name, k)
    assert a.boxes == b.boxes
    assert list(a.range_images) == list(b.range_images)
    for k in a.range_images:
        assert a.range_images[k] == b.range_images[k], k
    assert a.point_cloud() == b.point_cloud()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("v2")
    frames = _frames()
    write_segment(d / "seg.tfrecord", frames)
    assert v2.write_v2_segment(d / "root", frames) == 3
    return d / "seg.tfrecord", d / "root"


def test_v1_and_v2_read_identical_frames(written: tuple[Path, Path]) -> None:
    v1_path, root = written
    seg1, seg2 = waymo.open(v1_path), waymo.open_v2(root, SEGMENT)
    assert len(seg1) == len(seg2) == 3
    np.testing.assert_array_equal(seg2.timestamps, [f.timestamp_us for f in seg1])
    for i in range(3):
        assert_same_frame(seg1[i], seg2[i])


def test_random_access_reads_one_row_group(
    written: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root = written
    seg = v2.open_v2(root, SEGMENT)
    lidar = seg.components["lidar"]
    assert lidar.file.metadata.num_row_groups == 3  # one per frame
    calls: list[tuple[list[int], list[str]]] = []
    orig = pq.ParquetFile.read_row_groups

    def spy(self, groups, columns=None, **kw):
        calls.append((list(groups), list(columns or [])))
        return orig(self, groups, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    f = seg[-1]
    assert all(g == [2] for g, _ in calls)
    # Building the frame reads no range-image values; reading one range image does.
    assert not any(c.endswith(".values") for _, cols in calls for c in cols)
    _ = f.range_images[("TOP", 1)]
    assert any(
        c == "[LiDARComponent].range_image_return1.values" for _, cols in calls for c in cols
    )
    with pytest.raises(IndexError):
        seg[3]


def test_real_frame_round_trip(real_frame_path: Path, tmp_path: Path) -> None:
    frame = waymo.open(real_frame_path)[0]
    v2.write_v2_segment(tmp_path, [frame])
    again = waymo.open_v2(tmp_path, frame.segment)[0]
    assert_same_frame(frame, again)
    assert len(again.boxes) == 75


def test_missing_component_and_subset(written: tuple[Path, Path], tmp_path: Path) -> None:
    _, root = written
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    (copy / "training" / "lidar_pose" / f"{SEGMENT}.parquet").unlink()
    with pytest.raises(MissingComponentError, match="lidar_pose"):
        waymo.open_v2(copy, SEGMENT)
    cams = waymo.open_v2(copy, SEGMENT, components=("camera_image", "camera_calibration"))
    f = cams[0]
    assert set(f.image_bytes) == set(_frames(1)[0].image_bytes) and len(f.range_images) == 0
    with pytest.raises(MissingComponentError, match="nonsense"):
        waymo.open_v2(copy, SEGMENT, components=("nonsense",))


def test_missing_column_is_named(written: tuple[Path, Path], tmp_path: Path) -> None:
    _, root = written
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    path = copy / "training" / "lidar_box" / f"{SEGMENT}.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["[LiDARBoxComponent].box.heading"]), path)
    seg = waymo.open_v2(copy, SEGMENT)
    with pytest.raises(MissingComponentError, match=r"box\.heading"):
        seg[0]


def test_written_types_follow_the_official_schema(written: tuple[Path, Path]) -> None:
    """The types the official v2 component schemas declare (checked against
    ``waymo_open_dataset.v2`` 1.6.7): fixed-size lists for transforms and range-image
    shapes, int64 point counts, float32 camera projections."""
    _, root = written

    def schema(component: str) -> pa.Schema:
        return pq.read_schema(root / "training" / component / f"{SEGMENT}.parquet")

    tf16, shape3 = pa.list_(pa.float64(), 16), pa.list_(pa.int32(), 3)
    for component, column in [
        ("camera_image", "[CameraImageComponent].pose.transform"),
        ("camera_calibration", "[CameraCalibrationComponent].extrinsic.transform"),
        ("lidar_calibration", "[LiDARCalibrationComponent].extrinsic.transform"),
        ("vehicle_pose", "[VehiclePoseComponent].world_from_vehicle.transform"),
    ]:
        assert schema(component).field(column).type == tf16, column
    for component, prefix, returns in [
        ("lidar", "[LiDARComponent]", (1, 2)),
        ("lidar_pose", "[LiDARPoseComponent]", (1,)),
        ("lidar_camera_projection", "[LiDARCameraProjectionComponent]", (1, 2)),
    ]:
        for r in returns:
            assert schema(component).field(f"{prefix}.range_image_return{r}.shape").type == shape3
    lcp = schema("lidar_camera_projection")
    assert lcp.field("[LiDARCameraProjectionComponent].range_image_return1.values").type == (
        pa.list_(pa.float32())
    )
    box = schema("lidar_box")
    for col in ("num_lidar_points_in_box", "num_top_lidar_points_in_box"):
        assert box.field(f"[LiDARBoxComponent].{col}").type == pa.int64()


def test_column_types_come_from_the_schema(written: tuple[Path, Path], tmp_path: Path) -> None:
    """Another release's integer widths or a large_list read the same values."""
    _, root = written
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    path = copy / "training" / "lidar_box" / f"{SEGMENT}.parquet"
    t = pq.read_table(path)
    t = t.set_column(
        t.schema.get_field_index("[LiDARBoxComponent].type"),
        "[LiDARBoxComponent].type",
        t.column("[LiDARBoxComponent].type").cast(pa.int32()),
    )
    t = t.set_column(
        t.schema.get_field_index("key.frame_timestamp_micros"),
        "key.frame_timestamp_micros",
        t.column("key.frame_timestamp_micros").cast(pa.uint64()),
    )
    pq.write_table(t, path)
    vp = copy / "training" / "vehicle_pose" / f"{SEGMENT}.parquet"
    t = pq.read_table(vp)
    col = "[VehiclePoseComponent].world_from_vehicle.transform"
    t = t.set_column(
        t.schema.get_field_index(col), col, t.column(col).cast(pa.large_list(pa.float64()))
    )
    pq.write_table(t, vp)
    a, b = waymo.open_v2(root, SEGMENT)[1], waymo.open_v2(copy, SEGMENT)[1]
    assert a.boxes == b.boxes
    np.testing.assert_array_equal(a.pose, b.pose)


def test_corrupt_component_names_the_file(written: tuple[Path, Path], tmp_path: Path) -> None:
    _, root = written
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    path = copy / "training" / "camera_image" / f"{SEGMENT}.parquet"
    path.write_bytes(path.read_bytes()[:1000])
    seg = waymo.open_v2(copy, SEGMENT)
    with pytest.raises(DataError, match="camera_image"):
        seg[0]


def test_range_image_shape_mismatch(written: tuple[Path, Path], tmp_path: Path) -> None:
    _, root = written
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    path = copy / "training" / "lidar" / f"{SEGMENT}.parquet"
    t = pq.read_table(path)
    col = "[LiDARComponent].range_image_return1.shape"
    bad = pa.array([[3, 3, 4]] * t.num_rows, type=t.schema.field(col).type)
    pq.write_table(t.set_column(t.schema.get_field_index(col), col, bad), path)
    f = waymo.open_v2(copy, SEGMENT)[0]
    with pytest.raises(DataError, match="range_image_return1"):
        f.range_images[("TOP", 1)]


def test_writer_refuses_what_v2_cannot_hold(tmp_path: Path) -> None:
    frames = _frames(2)
    other = dataclasses.replace(
        frames[1], context=dataclasses.replace(frames[1].context, segment="other")
    )
    with pytest.raises(ValueError, match="segment"):
        v2.write_v2_segment(tmp_path, [frames[0], other])
    cams = dict(frames[1].cameras)
    cams["FRONT"] = cams["FRONT"].resized(10, 10)
    with pytest.raises(ValueError, match="calibration"):
        v2.write_v2_segment(tmp_path, [frames[0], dataclasses.replace(frames[1], cameras=cams)])
    with pytest.raises(ValueError):
        v2.write_v2_segment(tmp_path, [])
    # Nothing half-written is left behind.
    assert not list(tmp_path.rglob("*.parquet"))


def test_segment_pickles_and_lists(written: tuple[Path, Path]) -> None:
    _, root = written
    seg = waymo.open_v2(root, SEGMENT)
    _ = seg[0]
    again = pickle.loads(pickle.dumps(seg))
    assert_same_frame(seg[2], again[2])
    assert v2.list_segments(root) == [SEGMENT]
    assert v2.is_v2_root(root) and not v2.is_v2_root(root / "training")


@pytest.mark.slow
def test_synthetic_segment_reads_the_same_in_v1_and_v2(tmp_path: Path) -> None:
    """The synthetic generator's frames, written both ways, read back identical."""
    synth = pytest.importorskip("perceive.synth.generate")
    from perceive.synth.config import preset

    frames = [sf.frame for sf in synth.SegmentGenerator(preset("tiny"), 0, 0, 2)]
    write_segment(tmp_path / "s.tfrecord", frames)
    seg1 = waymo.open(tmp_path / "s.tfrecord")
    v2.write_v2_segment(tmp_path / "root", iter(seg1))
    seg2 = waymo.open_v2(tmp_path / "root", frames[0].segment)
    assert len(seg2) == 2
    for i in range(2):
        assert_same_frame(seg1[i], seg2[i])
        assert len(seg2[i].point_cloud()) > 0


@pytest.mark.parametrize(
    ("component", "column"),
    [
        ("camera_calibration", "[CameraCalibrationComponent].extrinsic.transform"),
        ("lidar_calibration", "[LiDARCalibrationComponent].extrinsic.transform"),
    ],
)
def test_extrinsic_of_wrong_size_is_named(
    written: tuple[Path, Path], tmp_path: Path, component: str, column: str
) -> None:
    _, root = written
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    path = copy / "training" / component / f"{SEGMENT}.parquet"
    t = pq.read_table(path)
    # a variable-length list (as another writer may store it) with one value missing
    bad = pa.array([[1.0] * 15] * t.num_rows, type=pa.list_(pa.float64()))
    pq.write_table(t.set_column(t.schema.get_field_index(column), column, bad), path)
    with pytest.raises(DataError, match=r"extrinsic has 15 values, expected 16") as err:
        waymo.open_v2(copy, SEGMENT)[0].cameras  # noqa: B018
        waymo.open_v2(copy, SEGMENT)[0].lasers  # noqa: B018
    assert component in str(err.value) and column in str(err.value)


def _edit(root: Path, tmp_path: Path, component: str, edit) -> Path:
    """A copy of ``root`` whose ``component`` file is rewritten as ``edit(table)``."""
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    path = copy / "training" / component / f"{SEGMENT}.parquet"
    pq.write_table(edit(pq.read_table(path)), path)
    return copy


def _set(t: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return t.set_column(t.schema.get_field_index(column), column, values)


def _nulls(t: pa.Table, column: str) -> pa.Table:
    return _set(t, column, pa.nulls(t.num_rows, type=t.schema.field(column).type))


@pytest.mark.parametrize(
    ("component", "column"),
    [
        ("lidar_box", "[LiDARBoxComponent].type"),
        ("lidar_box", "[LiDARBoxComponent].box.center.x"),
        ("camera_calibration", "[CameraCalibrationComponent].intrinsic.f_u"),
        ("camera_calibration", "[CameraCalibrationComponent].width"),
        ("lidar_calibration", "[LiDARCalibrationComponent].beam_inclination.min"),
        ("projected_lidar_box", "key.camera_name"),
        ("lidar", "key.laser_name"),
        ("camera_image", "[CameraImageComponent].image"),
    ],
)
def test_nulls_are_named_not_read_as_zero(
    written: tuple[Path, Path], tmp_path: Path, component: str, column: str
) -> None:
    copy = _edit(written[1], tmp_path, component, lambda t: _nulls(t, column))
    with pytest.raises(DataError) as e:
        waymo.open_v2(copy, SEGMENT)[0]
    assert e.value.field == column and f"{component}/{SEGMENT}.parquet" in e.value.path
    assert "null" in str(e.value)


def test_wrong_column_types_are_named(written: tuple[Path, Path], tmp_path: Path) -> None:
    col = "key.frame_timestamp_micros"
    copy = _edit(
        written[1], tmp_path, "vehicle_pose", lambda t: _set(t, col, t[col].cast(pa.string()))
    )
    with pytest.raises(DataError, match="column of type string, expected integers") as e:
        len(waymo.open_v2(copy, SEGMENT))
    assert e.value.field == col
    col = "[LiDARBoxComponent].type"
    copy = _edit(
        written[1], tmp_path / "2", "lidar_box", lambda t: _set(t, col, t[col].cast(pa.float32()))
    )
    with pytest.raises(DataError, match="column of type float, expected integers"):
        waymo.open_v2(copy, SEGMENT)[0]


def test_rows_of_another_segment_are_refused(written: tuple[Path, Path], tmp_path: Path) -> None:
    col = "key.segment_context_name"
    copy = _edit(
        written[1], tmp_path, "lidar_box", lambda t: _set(t, col, pa.array(["other"] * t.num_rows))
    )
    with pytest.raises(DataError, match="row of segment 'other' in the file of segment") as e:
        waymo.open_v2(copy, SEGMENT)[0]
    assert e.value.field == col and e.value.record == 0


def test_repeated_keys_are_refused(written: tuple[Path, Path], tmp_path: Path) -> None:
    copy = _edit(
        written[1], tmp_path, "vehicle_pose", lambda t: pa.concat_tables([t, t.slice(1, 1)])
    )
    with pytest.raises(DataError, match="2 vehicle poses; expected one per frame") as e:
        len(waymo.open_v2(copy, SEGMENT))
    assert e.value.record == 3
    copy = _edit(
        written[1], tmp_path / "2", "camera_image", lambda t: pa.concat_tables([t, t.slice(0, 1)])
    )
    with pytest.raises(DataError, match="two rows for"):
        waymo.open_v2(copy, SEGMENT)[0]


def test_range_image_columns_come_in_pairs(written: tuple[Path, Path], tmp_path: Path) -> None:
    values = "[LiDARComponent].range_image_return1.values"
    copy = _edit(written[1], tmp_path, "lidar", lambda t: t.drop_columns([values]))
    with pytest.raises(DataError, match="but no") as e:
        waymo.open_v2(copy, SEGMENT)[0]
    assert e.value.field == values
    # the values of one laser null, its shape still there: an error, not a dropped return
    copy = _edit(written[1], tmp_path / "2", "lidar", lambda t: _nulls(t, values))
    frame = waymo.open_v2(copy, SEGMENT)[0]
    assert ("TOP", 1) in frame.range_images
    with pytest.raises(DataError, match="a shape but no values"):
        frame.point_cloud()


def test_indices_and_context_manager(written: tuple[Path, Path]) -> None:
    with waymo.open_v2(written[1], SEGMENT) as seg:
        n = len(seg)
        assert seg[-n].timestamp_us == seg[0].timestamp_us
        for bad in (n, -n - 1):
            with pytest.raises(IndexError, match=f"frame {bad} out of range"):
                seg[bad]
        with pytest.raises(TypeError, match="must be an integer"):
            seg[1.0]
    assert seg[0].timestamp_us == seg[-n].timestamp_us  # reopens after close
