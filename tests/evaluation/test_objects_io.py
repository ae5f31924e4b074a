"""Reading and writing the Waymo ``Objects`` protobuf files; ground truth from frames."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perceive.datasets.types import Boxes3D
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.proto import waymo_pb2 as pb
from perceive.errors import DataError, MissingFileError, NotAFileError
from perceive.evaluation import (
    FrameDetections,
    ground_truth_from_frames,
    objects_to_proto,
    read_objects,
    write_objects,
)


def _predictions(seed: int, key: tuple[str, int], n: int = 5, camera: int = 0) -> FrameDetections:
    rng = np.random.default_rng(seed)
    boxes = np.c_[
        rng.uniform(-50, 50, (n, 3)), rng.uniform(0.5, 5, (n, 3)), rng.uniform(-np.pi, np.pi, n)
    ]
    det = FrameDetections.from_arrays(
        key[0],
        key[1],
        boxes,
        rng.random(n),
        rng.integers(1, 5, n),
        overlap_with_nlz=rng.random(n) < 0.3,
    )
    return FrameDetections(
        det.context_name, det.timestamp_us, det.boxes, det.scores, det.overlap_with_nlz, camera
    )


def test_round_trip_keeps_every_field(tmp_path):
    frames = ground_truth_from_frames([make_frame(0, num_boxes=6), make_frame(1, num_boxes=3)])
    frames += [_predictions(2, ("other", 123)), _predictions(3, ("other", 123), camera=2)]
    path = tmp_path / "sub" / "objects.bin"
    assert write_objects(path, frames) == 6 + 3 + 5 + 5
    back = read_objects(path)
    assert len(back) == 4
    for a, b in zip(frames, back, strict=True):
        assert a == b
        assert b.boxes.ids.tolist() == a.boxes.ids.tolist()
        np.testing.assert_array_equal(b.boxes.difficulty, a.boxes.difficulty)
        np.testing.assert_array_equal(b.boxes.num_lidar_points, a.boxes.num_lidar_points)
        np.testing.assert_array_equal(b.boxes.num_top_lidar_points, a.boxes.num_top_lidar_points)
        np.testing.assert_array_equal(b.boxes.speed, a.boxes.speed)
        np.testing.assert_array_equal(b.boxes.accel, a.boxes.accel)
        assert b.camera_name == a.camera_name
    assert [p.name for p in path.parent.iterdir()] == ["objects.bin"]  # no temp file left


def test_objects_of_one_frame_are_grouped_in_file_order():
    a, b = _predictions(0, ("s", 1), n=2), _predictions(1, ("s", 2), n=3)
    msg = objects_to_proto([a, b])
    # Interleave the objects: grouping must not depend on them being contiguous.
    shuffled = pb.Objects()
    for i in (2, 0, 3, 1, 4):
        shuffled.objects.add().CopyFrom(msg.objects[i])
    from perceive.evaluation import objects_from_proto

    frames = objects_from_proto(shuffled)
    assert [f.key for f in frames] == [("s", 0, 2), ("s", 0, 1)]
    assert [len(f) for f in frames] == [3, 2]
    np.testing.assert_array_equal(frames[1].scores, a.scores)


def test_proto_fields_follow_the_format(tmp_path):
    det = FrameDetections.from_arrays(
        "ctx", 42, np.array([[1, 2, 3, 4.5, 2.0, 1.5, 0.25]]), [0.75], [2]
    )
    msg = objects_to_proto([det])
    o = msg.objects[0]
    assert (o.context_name, o.frame_timestamp_micros, o.score) == ("ctx", 42, 0.75)
    assert o.object.type == 2
    assert (o.object.box.length, o.object.box.width, o.object.box.heading) == (4.5, 2.0, 0.25)
    # Official files may carry no-label-zone polygons (field 2): accepted and ignored.
    data = msg.SerializeToString() + b"\x12\x00"
    (tmp_path / "with_nlz.bin").write_bytes(data)
    assert read_objects(tmp_path / "with_nlz.bin")[0] == det


def test_empty_file_has_no_frames(tmp_path):
    path = tmp_path / "empty.bin"
    write_objects(path, [])
    assert path.read_bytes() == b""
    assert read_objects(path) == []


def test_missing_file_and_directory_are_our_errors(tmp_path):
    with pytest.raises(MissingFileError, match=r"nope\.bin"):
        read_objects(tmp_path / "nope.bin")
    with pytest.raises(NotAFileError, match=str(tmp_path)):
        read_objects(tmp_path)


def test_files_that_are_not_objects_are_rejected(tmp_path, fixture_segment):
    # A TFRecord of frames does not parse as Objects.
    with pytest.raises(DataError, match=r"fixture\.tfrecord.*not a serialized Waymo Objects"):
        read_objects(fixture_segment)
    bad = tmp_path / "random.bin"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match=r"random\.bin"):
        read_objects(bad)
    # Parses, but with fields an Objects message does not have.
    other = tmp_path / "frame.bin"
    other.write_bytes(pb.Frame(timestamp_micros=5).SerializeToString())
    with pytest.raises(DataError, match=r"frame\.bin.*no object, and top-level fields \[2\]"):
        read_objects(other)
    other.write_bytes(pb.Frame(context=pb.Context(name="seg")).SerializeToString())
    with pytest.raises(DataError, match=r"frame\.bin"):
        read_objects(other)


def test_object_without_box_or_with_nan_names_the_object(tmp_path):
    msg = objects_to_proto([_predictions(0, ("s", 1), n=3)])
    msg.objects[1].object.ClearField("box")
    path = tmp_path / "nobox.bin"
    path.write_bytes(msg.SerializeToString())
    with pytest.raises(
        DataError, match=r"nobox\.bin, record 1, field object\.box: object 1 has no box"
    ):
        read_objects(path)
    msg = objects_to_proto([_predictions(0, ("s", 1), n=3)])
    msg.objects[2].score = float("nan")
    path.write_bytes(msg.SerializeToString())
    with pytest.raises(DataError, match=r"record 2, field score: object 2 has a non-finite score"):
        read_objects(path)


def test_frame_detections_checks_and_defaults():
    boxes = Boxes3D(center=np.zeros((2, 3)), size=np.ones((2, 3)), heading=np.zeros(2), type=[1, 2])
    det = FrameDetections("s", 7, boxes)
    assert det.scores.dtype == np.float32 and det.scores.tolist() == [1.0, 1.0]
    assert det.overlap_with_nlz.tolist() == [False, False]
    assert det.key == ("s", 0, 7) and len(det) == 2
    with pytest.raises(ValueError, match="scores"):
        FrameDetections("s", 7, boxes, scores=np.ones(3))
    with pytest.raises(ValueError, match="overlap_with_nlz"):
        FrameDetections("s", 7, boxes, overlap_with_nlz=np.ones(1, bool))


def test_ground_truth_from_frames_keeps_labels():
    frame = make_frame(4, num_boxes=5)
    (gt,) = ground_truth_from_frames([frame])
    assert gt.key == (frame.segment, 0, frame.timestamp_us)
    assert gt.boxes == frame.boxes
    assert np.all(gt.scores == 1.0) and not gt.overlap_with_nlz.any()


def test_real_frame_ground_truth_round_trips_and_scores_perfectly(tmp_path, real_frame_path):
    from perceive.evaluation import evaluate_detections
    from perceive.evaluation.dataset import load_ground_truth

    (gt,) = load_ground_truth(real_frame_path)
    assert len(gt) == 75
    write_objects(tmp_path / "gt.bin", [gt])
    (back,) = read_objects(tmp_path / "gt.bin")
    assert back == gt
    # Predicting the labels themselves is perfect, once the labels without LiDAR points
    # (which the metrics drop from the ground truth) are left out of the predictions.
    has_points = np.nonzero(gt.boxes.num_lidar_points > 0)[0]
    perfect = FrameDetections(gt.context_name, gt.timestamp_us, gt.boxes[has_points])
    m = evaluate_detections([perfect], [back])
    for b in m.breakdowns:
        if b.num_ground_truth:
            assert b.ap == pytest.approx(1.0, abs=1e-6) and b.aph == pytest.approx(1.0, abs=1e-6), (
                b.name
            )
    assert m.num_ground_truth + m.num_ground_truth_dropped == 75


def test_rear_cameras_round_trip(tmp_path):
    # CameraName 6..8 (REAR_LEFT, REAR, REAR_RIGHT) are official values: frames keep them
    frames = [_predictions(0, ("s", 1), camera=7), _predictions(1, ("s", 1), camera=1)]
    path = tmp_path / "rear.bin"
    write_objects(path, frames)
    back = read_objects(path)
    assert [(f.camera_name, len(f.boxes)) for f in back] == [(7, 5), (1, 5)]


def test_newer_top_level_fields_beside_objects_are_ignored(tmp_path):
    data = objects_to_proto([_predictions(0, ("s", 1), n=3)]).SerializeToString()
    path = tmp_path / "newer.bin"
    path.write_bytes(data + bytes([0xC0, 0x3E, 0x01]))  # field 1000, varint 1
    with pytest.warns(RuntimeWarning, match=r"top-level fields \[1000\] unknown"):
        (frame,) = read_objects(path)
    assert len(frame.boxes) == 3


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda f: dataclasses.replace(f, camera_name=9), "camera_name 9 is not a Waymo camera"),
        (lambda f: dataclasses.replace(f, scores=f.scores * np.inf), "non-finite score"),
        (
            lambda f: dataclasses.replace(
                f, boxes=dataclasses.replace(f.boxes, type=np.full(len(f.boxes), 7, np.int8))
            ),
            "type outside 0..4",
        ),
    ],
)
def test_values_the_format_cannot_hold_are_refused_on_writing(tmp_path, edit, why):
    good = _predictions(0, ("s", 1), n=3)
    with pytest.raises(DataError, match=rf"frame 1 \(s, camera .*, 1\): .*{why}"):
        write_objects(tmp_path / "x.bin", [good, edit(good)])
    assert not (tmp_path / "x.bin").exists()
