"""Our Waymo schema: the committed module agrees with the .proto, the field numbers are the
format's, and frames of another protobuf module (the official package's) are accepted."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from perceive.datasets import waymo
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.proto import waymo_pb2 as pb
from perceive.datasets.waymo.v1_writer import serialize_frame

from ._pools import foreign_schema
from .test_v1 import _assert_frames_equal

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(
    importlib.util.find_spec("grpc_tools") is None, reason="needs grpcio-tools (dev extra)"
)
def test_generated_module_agrees_with_proto() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "regen_proto.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "up to date" in out.stdout


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        (
            pb.Frame,
            {
                "context": 1,
                "timestamp_micros": 2,
                "pose": 3,
                "images": 4,
                "lasers": 5,
                "laser_labels": 6,
                "no_label_zones": 7,
                "camera_labels": 8,
                "projected_lidar_labels": 9,
            },
        ),
        (
            pb.Label.Box,
            {
                "center_x": 1,
                "center_y": 2,
                "center_z": 3,
                "width": 4,
                "length": 5,
                "height": 6,
                "heading": 7,
            },
        ),
        (
            pb.Label.Metadata,
            {"speed_x": 1, "speed_y": 2, "accel_x": 3, "accel_y": 4, "speed_z": 5, "accel_z": 6},
        ),
        (
            pb.Label,
            {
                "box": 1,
                "metadata": 2,
                "type": 3,
                "id": 4,
                "detection_difficulty_level": 5,
                "num_lidar_points_in_box": 7,
                "num_top_lidar_points_in_box": 13,
            },
        ),
        (
            pb.RangeImage,
            {
                "range_image_compressed": 2,
                "camera_projection_compressed": 3,
                "range_image_pose_compressed": 4,
            },
        ),
        (
            pb.CameraCalibration,
            {
                "name": 1,
                "intrinsic": 2,
                "extrinsic": 3,
                "width": 4,
                "height": 5,
                "rolling_shutter_direction": 6,
            },
        ),
        (
            pb.LaserCalibration,
            {
                "name": 1,
                "beam_inclinations": 2,
                "beam_inclination_min": 3,
                "beam_inclination_max": 4,
                "extrinsic": 5,
            },
        ),
        (pb.CameraImage, {"name": 1, "image": 2, "pose": 3}),
        (pb.Laser, {"name": 1, "ri_return1": 2, "ri_return2": 3}),
        (pb.Context, {"name": 1, "camera_calibrations": 2, "laser_calibrations": 3, "stats": 4}),
        (
            pb.Object,
            {
                "object": 1,
                "score": 2,
                "overlap_with_nlz": 3,
                "context_name": 4,
                "frame_timestamp_micros": 5,
                "camera_name": 6,
            },
        ),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_field_numbers_are_the_formats(message, fields: dict[str, int]) -> None:
    got = {f.name: f.number for f in message.DESCRIPTOR.fields}
    for name, number in fields.items():
        assert got[name] == number, name


def test_matrix_data_is_packed_and_transforms_unpacked() -> None:
    """Wire forms as in the format's proto2 files (a proto3 schema would pack transforms)."""
    assert pb.MatrixFloat(data=[1.0, 2.0]).SerializeToString()[:1] == b"\x0a"  # packed: one chunk
    t = pb.Transform(transform=[0.0] * 16).SerializeToString()
    assert t.count(b"\x09") == 16  # 16 separate fixed64 fields


def test_parse_frame_accepts_foreign_protobuf_objects() -> None:
    """A Frame message of a second, independently built schema is read via its bytes."""
    foreign = foreign_schema()
    assert foreign.Frame.DESCRIPTOR.full_name == "waymo.open_dataset.Frame"
    original = make_frame(5, top_shape=(8, 16), side_shape=(4, 8))
    msg = foreign.Frame.FromString(serialize_frame(original))
    assert not isinstance(msg, pb.Frame)
    frame = waymo.parse_frame(msg)
    _assert_frames_equal(frame, original)
    np.testing.assert_array_equal(frame.point_cloud().xyz, original.point_cloud().xyz)


def test_foreign_writer_with_unpacked_fields_is_read() -> None:
    """Bytes written by a schema that does not pack the matrix data still decode."""
    foreign = foreign_schema(packed=False)
    original = make_frame(6, top_shape=(4, 8), side_shape=(2, 4))
    msg = foreign.Frame.FromString(serialize_frame(original))
    # Re-encode a range image through the unpacked schema.
    ri = msg.lasers[0].ri_return1
    mf = foreign.MatrixFloat()
    mf.ParseFromString(zlib.decompress(ri.range_image_compressed))
    unpacked = mf.SerializeToString()
    assert unpacked[:1] == b"\x0d"  # field 1 as separate fixed32 values
    ri.range_image_compressed = zlib.compress(unpacked)
    frame = waymo.parse_frame(msg.SerializeToString())
    assert frame.range_images[("TOP", 1)] == original.range_images[("TOP", 1)]
