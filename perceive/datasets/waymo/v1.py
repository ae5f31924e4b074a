"""Waymo Open Dataset v1 (TFRecord of ``Frame`` protos) reading, without TensorFlow."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from perceive.datasets.types import (
    CAMERA_NAMES,
    LASER_NAMES,
    Boxes2D,
    Boxes3D,
    CameraCalibration,
    Frame,
    FrameContext,
    LaserCalibration,
    RangeImage,
)
from perceive.datasets.waymo.proto import waymo_pb2 as pb
from perceive.datasets.waymo.wire import (
    WireError,
    inflate_matrix_float,
    inflate_matrix_int32,
    inflate_range_image,
)
from perceive.errors import DataError, NotAFrameError
from perceive.io.tfrecord import TFRecordFile
from perceive.utils.lazy import LazyMapping


@dataclass(frozen=True)
class _Origin:
    """Where a message came from, for the errors raised while decoding it."""

    source: str
    path: str | Path | None = None
    record: int | None = None
    offset: int | None = None

    def error(self, message: str, field: str | None = None) -> NotAFrameError:
        """A :class:`NotAFrameError` naming file, record, byte offset and field as far as known."""
        if self.path is None:
            return NotAFrameError(f"{self.source}: {message}", field=field)
        return NotAFrameError(
            message, path=self.path, record=self.record, offset=self.offset, field=field
        )


def _transform(t: pb.Transform, what: str, origin: _Origin) -> np.ndarray:
    if len(t.transform) != 16:
        raise origin.error(f"{what} has {len(t.transform)} values, expected 16", field=what)
    return np.asarray(t.transform, dtype=np.float64).reshape(4, 4)


def _camera_name(value: int) -> str | None:
    return CAMERA_NAMES[value - 1] if 1 <= value <= len(CAMERA_NAMES) else None


def _laser_name(value: int) -> str | None:
    return LASER_NAMES[value - 1] if 1 <= value <= len(LASER_NAMES) else None


def _boxes3d(labels: Any) -> Boxes3D:
    n = len(labels)
    if n == 0:
        return Boxes3D.empty()
    box = np.empty((n, 7))
    meta = np.empty((n, 6))
    typ = np.empty(n, np.int8)
    diff = np.empty(n, np.int8)
    npts = np.empty(n, np.int32)
    ntop = np.empty(n, np.int32)
    ids = []
    for i, lab in enumerate(labels):
        b, m = lab.box, lab.metadata
        box[i] = (b.center_x, b.center_y, b.center_z, b.length, b.width, b.height, b.heading)
        meta[i] = (m.speed_x, m.speed_y, m.speed_z, m.accel_x, m.accel_y, m.accel_z)
        typ[i] = lab.type
        diff[i] = lab.detection_difficulty_level
        npts[i] = lab.num_lidar_points_in_box
        ntop[i] = lab.num_top_lidar_points_in_box
        ids.append(lab.id)
    return Boxes3D(
        center=box[:, :3],
        size=box[:, 3:6],
        heading=box[:, 6],
        type=typ,
        ids=np.array(ids, dtype=object),
        difficulty=diff,
        num_lidar_points=npts,
        num_top_lidar_points=ntop,
        speed=meta[:, :3],
        accel=meta[:, 3:],
    )


def _boxes2d(labels: Any) -> Boxes2D:
    n = len(labels)
    if n == 0:
        return Boxes2D.empty()
    arr = np.array(
        [(lab.box.center_x, lab.box.center_y, lab.box.length, lab.box.width) for lab in labels]
    )
    return Boxes2D(
        center=arr[:, :2],
        size=arr[:, 2:],
        type=np.array([lab.type for lab in labels], np.int8),
        ids=np.array([lab.id for lab in labels], dtype=object),
    )


def _decode_range_image(
    ri: pb.RangeImage, laser: str, ret: int, with_pose: pb.RangeImage | None, origin: _Origin
) -> RangeImage:
    where = f"lasers[{laser}].ri_return{ret}"
    pose_blob = with_pose.range_image_pose_compressed if with_pose is not None else b""
    try:  # all three matrices into one buffer
        values, cp, pose = inflate_range_image(
            ri.range_image_compressed, ri.camera_projection_compressed, pose_blob
        )
    except (zlib.error, WireError, DecodeError):
        values = cp = pose = None  # decode them one by one below, to say which is bad
    try:
        field = f"{where}.range_image_compressed"
        if values is None:
            values = inflate_matrix_float(ri.range_image_compressed)
        if values.ndim != 3 or values.shape[2] != 4:
            raise WireError(f"range image has shape {values.shape}, expected (H, W, 4)")
        if ri.camera_projection_compressed:
            field = f"{where}.camera_projection_compressed"
            if cp is None:
                cp = inflate_matrix_int32(ri.camera_projection_compressed)
            if cp.shape != (*values.shape[:2], 6):
                raise WireError(
                    f"camera projection has shape {cp.shape}, expected {(*values.shape[:2], 6)}"
                )
        if pose_blob:
            field = f"lasers[{laser}].ri_return1.range_image_pose_compressed"
            if pose is None:
                pose = inflate_matrix_float(pose_blob)
            if pose.shape != (*values.shape[:2], 6):
                raise WireError(
                    f"pixel pose has shape {pose.shape}, expected {(*values.shape[:2], 6)}"
                )
    except (zlib.error, WireError, DecodeError) as e:
        raise origin.error(f"cannot decode {field}: {e}", field=field) from e
    return RangeImage(
        laser=laser, return_index=ret, values=values, camera_projection=cp, pixel_pose=pose
    )


def frame_from_proto(
    msg: pb.Frame,
    source: str = "<frame>",
    *,
    path: str | Path | None = None,
    record: int | None = None,
    offset: int | None = None,
) -> Frame:
    """Build a :class:`~perceive.datasets.types.Frame` from a parsed ``Frame`` message.

    Range images and JPEGs stay encoded until asked for.

    Args:
        msg: the message.
        source: describes where it came from, for messages (becomes ``Frame.source``).
        path, record, offset: file, record index and byte offset of the record, when
            known; errors raised now or later (by a lazily decoded range image) carry them.

    Raises:
        NotAFrameError: the message is not a usable Waymo frame.
    """
    origin = _Origin(source, path, record, offset)
    if not msg.HasField("timestamp_micros") or not msg.HasField("context"):
        raise origin.error(
            "record has no timestamp_micros/context: not a Waymo Frame", field="timestamp_micros"
        )
    ctx = msg.context
    cameras: dict[str, CameraCalibration] = {}
    for c in ctx.camera_calibrations:
        name = _camera_name(c.name)
        if name is None:
            continue
        if len(c.intrinsic) != 9:
            raise origin.error(
                f"camera {name} calibration has {len(c.intrinsic)} intrinsics, expected 9",
                field=f"context.camera_calibrations[{name}].intrinsic",
            )
        cameras[name] = CameraCalibration(
            name=name,
            intrinsic=np.asarray(c.intrinsic, np.float64),
            extrinsic=_transform(
                c.extrinsic, f"context.camera_calibrations[{name}].extrinsic", origin
            ),
            width=c.width,
            height=c.height,
            rolling_shutter_direction=c.rolling_shutter_direction,
        )
    lasers: dict[str, LaserCalibration] = {}
    for lc in ctx.laser_calibrations:
        name = _laser_name(lc.name)
        if name is None:
            continue
        lasers[name] = LaserCalibration(
            name=name,
            extrinsic=_transform(
                lc.extrinsic, f"context.laser_calibrations[{name}].extrinsic", origin
            ),
            beam_inclinations=np.asarray(lc.beam_inclinations, np.float64),
            inclination_min=lc.beam_inclination_min,
            inclination_max=lc.beam_inclination_max,
        )
    image_bytes = {}
    for im in msg.images:
        name = _camera_name(im.name)
        if name is not None and im.image:
            image_bytes[name] = im.image
    loaders: dict[tuple[str, int], Callable[[], RangeImage]] = {}
    for laser in msg.lasers:
        name = _laser_name(laser.name)
        if name is None:
            continue
        if name not in lasers:
            raise origin.error(
                f"laser {name} has range images but no calibration",
                field="context.laser_calibrations",
            )
        # The per-pixel pose is stored with return 1 only; return 2 borrows it when
        # points are built (Frame.point_cloud).
        for ret, ri in ((1, laser.ri_return1), (2, laser.ri_return2)):
            if ri.range_image_compressed:
                loaders[(name, ret)] = lambda ri=ri, name=name, ret=ret: _decode_range_image(
                    ri, name, ret, ri if ret == 1 else None, origin
                )
    stats = ctx.stats
    return Frame(
        context=FrameContext(
            segment=ctx.name,
            time_of_day=stats.time_of_day,
            location=stats.location,
            weather=stats.weather,
        ),
        timestamp_us=int(msg.timestamp_micros),
        pose=_transform(msg.pose, "pose", origin) if msg.HasField("pose") else np.eye(4),
        cameras=cameras,
        lasers=lasers,
        image_bytes=image_bytes,
        range_images=LazyMapping(loaders, what=f"{source}: range image"),
        boxes=_boxes3d(msg.laser_labels),
        camera_boxes={
            n: _boxes2d(cl.labels) for cl in msg.camera_labels if (n := _camera_name(cl.name))
        },
        projected_boxes={
            n: _boxes2d(cl.labels)
            for cl in msg.projected_lidar_labels
            if (n := _camera_name(cl.name))
        },
        source=source,
    )


def parse_frame(
    data: bytes | Any,
    source: str = "<frame>",
    *,
    path: str | Path | None = None,
    record: int | None = None,
    offset: int | None = None,
) -> Frame:
    """Parse a serialized ``Frame`` (bytes) or a ``Frame`` object of any protobuf module.

    Objects of the official ``waymo_open_dataset`` package are accepted through their
    serialized bytes, so that package is never imported here.

    Args:
        data: the bytes, or a message with ``SerializeToString``.
        source, path, record, offset: where it came from (see :func:`frame_from_proto`).

    Raises:
        NotAFrameError: the bytes are not a Waymo ``Frame``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        if not hasattr(data, "SerializeToString"):
            raise TypeError(f"expected bytes or a protobuf Frame, got {type(data).__name__}")
        data = data.SerializeToString()
    try:
        msg = pb.Frame.FromString(bytes(data))
    except DecodeError as e:
        raise _Origin(source, path, record, offset).error(f"not a Waymo Frame protobuf: {e}") from e
    return frame_from_proto(msg, source, path=path, record=record, offset=offset)


class Segment:
    """A v1 segment file: ``len(seg)``, ``seg[i]``, iteration, context manager.

    Args:
        path: a ``.tfrecord`` file.
        skip_corrupt: on a corrupt tail, keep the readable records (see
            :attr:`skipped`); iteration also skips records that fail to parse.
        verify_crc: check record data checksums.
    """

    def __init__(
        self, path: str | Path, skip_corrupt: bool = False, verify_crc: bool = True
    ) -> None:
        self.path = Path(path)
        self.skip_corrupt = skip_corrupt
        self._file = TFRecordFile(self.path, skip_corrupt=skip_corrupt, verify=verify_crc)
        #: Errors of records that were skipped (only with ``skip_corrupt``).
        self.skipped: list[DataError] = list(self._file.errors)

    def __len__(self) -> int:
        return len(self._file)

    def read_bytes(self, index: int) -> bytes:
        """The serialized ``Frame`` of record ``index``."""
        return self._file.read(index)

    def __getitem__(self, index: int) -> Frame:
        index = self._file.record_index(index)
        data = self._file.read(index)
        offset = self._file.spans[index].offset
        source = f"{self.path}, record {index}, byte offset {offset}"
        return parse_frame(data, source, path=self.path, record=index, offset=offset)

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            try:
                yield self[i]
            except DataError as e:
                if not self.skip_corrupt:
                    raise
                if all(s.record != e.record for s in self.skipped):  # once, not per pass
                    self.skipped.append(e)

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> Segment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Segment({str(self.path)!r}, frames={len(self)})"
