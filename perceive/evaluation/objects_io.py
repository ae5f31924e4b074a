"""Read and write the Waymo ``Objects`` protobuf (``.bin``) files of the metrics tools.

A file is one serialized ``Objects`` message: a flat list of ``Object`` (a ``Label``
with its box and type, a score, the no-label-zone flag, the frame's context name,
timestamp and camera). Objects of one frame are grouped into one
:class:`~perceive.evaluation.detections.FrameDetections`; frames keep the order of
their first object in the file. Writes are atomic.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError

from perceive.datasets.types import Boxes3D
from perceive.datasets.waymo.proto import waymo_pb2 as pb
from perceive.errors import DataError, MissingFileError, NotAFileError
from perceive.evaluation.detections import FrameDetections
from perceive.io.atomic import atomic_write_bytes

#: Top-level fields of the official ``Objects`` that we accept and ignore, as
#: (field number, wire type): 2 = ``no_label_zone_objects`` (length-delimited messages;
#: the per-object ``overlap_with_nlz`` flag is what the metrics use).
_IGNORED_TOP_LEVEL_FIELDS = frozenset({(2, 2)})


#: Enum values the official ``Objects`` can hold: camera (``CameraName``, 0 = none, 1..8),
#: object type (``Label.Type``, 0..4) and difficulty (``DifficultyLevel``, 0..2).
_CAMERA_VALUES = range(9)
_TYPE_VALUES = range(5)
_DIFFICULTY_VALUES = range(3)


def _check_frame(fr: FrameDetections, index: int, rows: np.ndarray) -> None:
    """Refuse what the format cannot hold, or what the metrics would refuse on reading.

    ``rows``: the frame's (N, 7) box values, as written.
    """
    b = fr.boxes

    def bad(why: str) -> DataError:
        return DataError(
            f"frame {index} ({fr.context_name}, camera {fr.camera_name}, {fr.timestamp_us}): {why}",
            field="objects",
        )

    if int(fr.camera_name) not in _CAMERA_VALUES:
        raise bad(f"camera_name {fr.camera_name} is not a Waymo camera (0 to 8)")
    if len(b) == 0:
        return
    for what, ok in (
        ("a non-finite box value", np.isfinite(rows).all(axis=1)),
        ("a non-finite score", np.isfinite(fr.scores)),
        ("a type outside 0..4", np.isin(b.type, _TYPE_VALUES)),
        ("a difficulty outside 0..2", np.isin(b.difficulty, _DIFFICULTY_VALUES)),
    ):
        if not ok.all():
            i = int(np.argmax(~ok))
            raise bad(f"object {i} has {what}")


def objects_to_proto(frames: Iterable[FrameDetections]) -> pb.Objects:
    """The ``Objects`` message of the given frames' objects (frame by frame, box by box).

    Raises:
        DataError: a value the format cannot hold or the metrics refuse (a camera outside
            0..8, a type or difficulty outside its enum, a non-finite box or score), naming
            the frame and object.
    """
    msg = pb.Objects()
    for index, fr in enumerate(frames):
        b = fr.boxes
        values = np.concatenate([b.center, b.size, b.heading[:, None]], axis=1)
        _check_frame(fr, index, values)
        n = len(b)
        if n == 0:
            continue
        rows = values.tolist()
        types = b.type.tolist()
        ids = b.ids.tolist()
        diff = b.difficulty.tolist()
        npts = b.num_lidar_points.tolist()
        ntop = b.num_top_lidar_points.tolist()
        motion = np.concatenate([b.speed, b.accel], axis=1)
        has_motion = motion.any(axis=1).tolist()
        motion_rows = motion.tolist()
        scores = fr.scores.tolist()
        nlz = fr.overlap_with_nlz.tolist()
        ctx, ts, cam = fr.context_name, fr.timestamp_us, fr.camera_name
        for i in range(n):
            o = msg.objects.add()
            label = o.object
            box = label.box
            (
                box.center_x,
                box.center_y,
                box.center_z,
                box.length,
                box.width,
                box.height,
                box.heading,
            ) = rows[i]
            label.type = types[i]
            if ids[i]:
                label.id = str(ids[i])
            if diff[i]:
                label.detection_difficulty_level = diff[i]
            if npts[i]:
                label.num_lidar_points_in_box = npts[i]
            if ntop[i]:
                label.num_top_lidar_points_in_box = ntop[i]
            if has_motion[i]:
                m = label.metadata
                m.speed_x, m.speed_y, m.speed_z, m.accel_x, m.accel_y, m.accel_z = motion_rows[i]
            o.score = scores[i]
            if nlz[i]:
                o.overlap_with_nlz = True
            o.context_name = ctx
            o.frame_timestamp_micros = ts
            if cam:
                o.camera_name = cam
    return msg


def objects_from_proto(msg: pb.Objects, source: str | Path | None = None) -> list[FrameDetections]:
    """Group an ``Objects`` message's objects into frames.

    Args:
        msg: the message.
        source: the file it came from, for error messages.

    Returns:
        One :class:`FrameDetections` per ``(context_name, camera_name, timestamp)``, in
        the order of each frame's first object.

    Raises:
        DataError: an object has no box, or a non-finite box value or score.
    """
    n = len(msg.objects)
    box_rows: list[tuple[float, ...]] = []
    meta_rows: list[tuple[float, ...]] = []
    label_rows: list[tuple[int, int, int, int]] = []
    score_rows: list[float] = []
    nlz_rows: list[bool] = []
    ids: list[str] = []
    keys: dict[tuple[str, int, int], int] = {}
    frame_rows: list[int] = []
    no_motion = (0.0,) * 6
    for i, o in enumerate(msg.objects):
        lab = o.object
        if not lab.HasField("box"):
            raise DataError(f"object {i} has no box", path=source, record=i, field="object.box")
        b = lab.box
        box_rows.append(
            (b.center_x, b.center_y, b.center_z, b.length, b.width, b.height, b.heading)
        )
        if lab.HasField("metadata"):
            m = lab.metadata
            meta_rows.append((m.speed_x, m.speed_y, m.speed_z, m.accel_x, m.accel_y, m.accel_z))
        else:
            meta_rows.append(no_motion)
        label_rows.append(
            (
                lab.type,
                lab.detection_difficulty_level,
                lab.num_lidar_points_in_box,
                lab.num_top_lidar_points_in_box,
            )
        )
        ids.append(lab.id)
        score_rows.append(o.score)
        nlz_rows.append(o.overlap_with_nlz)
        key = (o.context_name, int(o.camera_name), int(o.frame_timestamp_micros))
        frame_rows.append(keys.setdefault(key, len(keys)))
    box = np.array(box_rows, np.float64).reshape(n, 7)
    meta = np.array(meta_rows, np.float64).reshape(n, 6)
    lab_arr = np.array(label_rows, np.int64).reshape(n, 4)
    typ, diff = lab_arr[:, 0].astype(np.int8), lab_arr[:, 1].astype(np.int8)
    npts, ntop = lab_arr[:, 2].astype(np.int32), lab_arr[:, 3].astype(np.int32)
    score = np.array(score_rows, np.float32).reshape(n)
    nlz = np.array(nlz_rows, bool).reshape(n)
    frame_of = np.array(frame_rows, np.int64).reshape(n)
    bad = ~np.isfinite(box).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"non-finite box value {box[i].tolist()}", path=source, record=i, field="object.box"
        )
    if not np.isfinite(score).all():
        i = int(np.argmax(~np.isfinite(score)))
        raise DataError(
            f"object {i} has a non-finite score {score[i]}", path=source, record=i, field="score"
        )
    ids_arr = np.array(ids, dtype=object)
    out = []
    for key, f in keys.items():
        sel = np.nonzero(frame_of == f)[0]
        boxes = Boxes3D(
            center=box[sel, :3],
            size=box[sel, 3:6],
            heading=box[sel, 6],
            type=typ[sel],
            ids=ids_arr[sel],
            difficulty=diff[sel],
            num_lidar_points=npts[sel],
            num_top_lidar_points=ntop[sel],
            speed=meta[sel, :3],
            accel=meta[sel, 3:],
        )
        out.append(
            FrameDetections(
                context_name=key[0],
                camera_name=key[1],
                timestamp_us=key[2],
                boxes=boxes,
                scores=score[sel],
                overlap_with_nlz=nlz[sel],
            )
        )
    return out


def _check_input_file(path: Path) -> None:
    if not path.exists():
        raise MissingFileError("no such Objects file", path=path)
    if not path.is_file():
        raise NotAFileError("is not a file (expected a serialized Waymo Objects .bin)", path=path)


def read_objects(path: str | Path) -> list[FrameDetections]:
    """Read a Waymo ``Objects`` ``.bin`` file (predictions or ground truth).

    Args:
        path: the file. An empty file is an ``Objects`` with no objects.

    Returns:
        The objects grouped by frame (see :func:`objects_from_proto`).

    Raises:
        MissingFileError, NotAFileError: ``path`` is missing or a directory.
        DataError: the file is not a serialized ``Objects`` message (it does not parse, or
            it holds no object but fields ``Objects`` does not have, as another message
            would), or an object in it is invalid (the error names the object index as
            the record). Top-level fields of a newer ``Objects`` beside objects are ignored
            with a warning.
    """
    path = Path(path)
    _check_input_file(path)
    data = path.read_bytes()
    msg = pb.Objects()
    try:
        msg.ParseFromString(data)
    except DecodeError as e:
        raise DataError(f"not a serialized Waymo Objects protobuf: {e}", path=path) from e
    unknown = sorted(
        {(f.field_number, f.wire_type) for f in unknown_fields.UnknownFieldSet(msg)}
        - _IGNORED_TOP_LEVEL_FIELDS
    )
    if unknown and not msg.objects:
        raise DataError(
            "not a serialized Waymo Objects protobuf: no object, and top-level fields "
            f"{[number for number, _ in unknown]} that Objects does not have",
            path=path,
        )
    if unknown:
        warnings.warn(
            f"{path}: top-level fields {[number for number, _ in unknown]} unknown to this "
            "Objects schema (a newer release?) are ignored",
            RuntimeWarning,
            stacklevel=2,
        )
    return objects_from_proto(msg, source=path)


def write_objects(
    path: str | Path, frames: Sequence[FrameDetections] | Iterable[FrameDetections]
) -> int:
    """Write frames' objects as one serialized Waymo ``Objects`` message, atomically.

    Args:
        path: the output ``.bin`` file; its folder is created if missing.
        frames: the frames to write, predictions or ground truth.

    Returns:
        The number of objects written.
    """
    msg = objects_to_proto(frames)
    atomic_write_bytes(path, msg.SerializeToString())
    return len(msg.objects)
