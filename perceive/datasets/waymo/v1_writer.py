"""Writing frames as genuine Waymo v1 ``Frame`` records.

Range images are zlib-compressed ``MatrixFloat``/``MatrixInt32`` messages, exactly
as the dataset stores them, so the official toolkit reads what we write.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from perceive.datasets.types import Boxes2D, Boxes3D, Frame, camera_id, laser_id
from perceive.datasets.waymo.proto import waymo_pb2 as pb
from perceive.datasets.waymo.wire import encode_matrix_float, encode_matrix_int32
from perceive.io.tfrecord import write_records

#: zlib level for range images (the dataset's files use the default level).
ZLIB_LEVEL = 6


def _set_transform(t: pb.Transform, m: np.ndarray) -> None:
    t.transform[:] = np.asarray(m, np.float64).reshape(16).tolist()


def _fill_label(lab: pb.Label, boxes: Boxes3D, i: int) -> None:
    b = lab.box
    b.center_x, b.center_y, b.center_z = (float(v) for v in boxes.center[i])
    b.length, b.width, b.height = (float(v) for v in boxes.size[i])
    b.heading = float(boxes.heading[i])
    m = lab.metadata
    m.speed_x, m.speed_y, m.speed_z = (float(v) for v in boxes.speed[i])
    m.accel_x, m.accel_y, m.accel_z = (float(v) for v in boxes.accel[i])
    lab.type = int(boxes.type[i])
    lab.id = str(boxes.ids[i])
    lab.detection_difficulty_level = int(boxes.difficulty[i])
    lab.num_lidar_points_in_box = int(boxes.num_lidar_points[i])
    lab.num_top_lidar_points_in_box = int(boxes.num_top_lidar_points[i])


def _fill_labels_2d(cl: pb.CameraLabels, camera: str, boxes: Boxes2D) -> None:
    cl.name = camera_id(camera)
    for i in range(len(boxes)):
        lab = cl.labels.add()
        lab.box.center_x, lab.box.center_y = (float(v) for v in boxes.center[i])
        lab.box.length, lab.box.width = (float(v) for v in boxes.size[i])
        lab.type = int(boxes.type[i])
        lab.id = str(boxes.ids[i])


def frame_to_proto(frame: Frame) -> pb.Frame:
    """The ``Frame`` message for a frame (range images compressed here)."""
    msg = pb.Frame()
    ctx = msg.context
    ctx.name = frame.context.segment
    ctx.stats.time_of_day = frame.context.time_of_day
    ctx.stats.location = frame.context.location
    ctx.stats.weather = frame.context.weather
    # object counts by type, as the dataset's files carry them (the v2 stats component too)
    for field, (types, counts) in zip(
        (ctx.stats.laser_object_counts, ctx.stats.camera_object_counts),
        frame.object_counts(),
        strict=True,
    ):
        for t, n in zip(types, counts, strict=True):
            oc = field.add()
            oc.type, oc.count = t, n
    for name, cal in frame.cameras.items():
        c = ctx.camera_calibrations.add()
        c.name = camera_id(name)
        c.intrinsic[:] = cal.intrinsic.tolist()
        _set_transform(c.extrinsic, cal.extrinsic)
        c.width, c.height = cal.width, cal.height
        c.rolling_shutter_direction = cal.rolling_shutter_direction
    for name, lc in frame.lasers.items():
        c = ctx.laser_calibrations.add()
        c.name = laser_id(name)
        c.beam_inclinations[:] = lc.beam_inclinations.tolist()
        c.beam_inclination_min = lc.inclination_min
        c.beam_inclination_max = lc.inclination_max
        _set_transform(c.extrinsic, lc.extrinsic)
    msg.timestamp_micros = frame.timestamp_us
    _set_transform(msg.pose, frame.pose)
    for name, data in frame.image_bytes.items():
        im = msg.images.add()
        im.name = camera_id(name)
        im.image = data
        _set_transform(im.pose, frame.pose)
        im.pose_timestamp = frame.timestamp_us * 1e-6  # global shutter: the frame's time, s
    for name in frame.laser_names:
        laser = msg.lasers.add()
        laser.name = laser_id(name)
        for ret, field in ((1, laser.ri_return1), (2, laser.ri_return2)):
            if (name, ret) not in frame.range_images:
                continue
            ri = frame.range_images[(name, ret)]
            field.range_image_compressed = zlib.compress(encode_matrix_float(ri.values), ZLIB_LEVEL)
            if ri.camera_projection is not None:
                field.camera_projection_compressed = zlib.compress(
                    encode_matrix_int32(ri.camera_projection), ZLIB_LEVEL
                )
            if ri.pixel_pose is not None and ret == 1:
                field.range_image_pose_compressed = zlib.compress(
                    encode_matrix_float(ri.pixel_pose), ZLIB_LEVEL
                )
    for i in range(len(frame.boxes)):
        _fill_label(msg.laser_labels.add(), frame.boxes, i)
    for cam, boxes in frame.camera_boxes.items():
        _fill_labels_2d(msg.camera_labels.add(), cam, boxes)
    for cam, boxes in frame.projected_boxes.items():
        _fill_labels_2d(msg.projected_lidar_labels.add(), cam, boxes)
    return msg


def serialize_frame(frame: Frame) -> bytes:
    """A frame as the bytes of one v1 record."""
    return frame_to_proto(frame).SerializeToString()


def write_segment(path: str | Path, frames: Iterable[Frame]) -> int:
    """Write frames to a v1 ``.tfrecord`` file atomically. Returns the number written."""
    return write_records(path, (serialize_frame(f) for f in frames))
