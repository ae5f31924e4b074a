"""perceive's training cache: one memory-mappable file per frame plus one index for the set.

Layout of a cache folder::

    PERCEIVE_FORMAT.json            {"format": "cache", "version": 1}
    index.json                      every segment and frame (written last)
    frames/<key>/<i:06d>.pcf        one file per frame (key: the source segment's file-safe name)
    _manifests/<key>.<range>.json   per-job manifests of the conversion (resuming)

A frame file (``.pcf``) is::

    8 bytes   magic b"PCVCACHE"
    uint32    format version (little-endian)
    uint32    header length H
    H bytes   UTF-8 JSON header: segment, timestamp, pose, camera calibrations, box ids,
              and for every array and image its byte offset, dtype and shape
    ...       the arrays and the JPEG bytes, each starting at a 64-byte boundary

Arrays are stored raw (little-endian), so :func:`read_cache_frame` maps the file and
returns zero-copy, read-only views; floats in the JSON header are written with
``repr`` precision, so everything round-trips exactly. Images are the original JPEG
bytes of the source, never re-encoded.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perceive.datasets.types import (
    CAMERA_NAMES,
    POINT_FEATURES,
    Boxes3D,
    CameraCalibration,
    Frame,
    FrameContext,
)
from perceive.errors import DataError
from perceive.io.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from perceive.convert.runner import FrameStats, SegmentJob

#: Name of this format in the output folder's marker file.
FORMAT_NAME = "cache"
#: Version of the frame-file layout and index; a cache of another version is refused.
FORMAT_VERSION = 1
#: Magic bytes at the start of every frame file.
MAGIC = b"PCVCACHE"
#: Suffix of frame files.
FRAME_SUFFIX = ".pcf"
#: Name of the index file.
INDEX_NAME = "index.json"
_PREFIX = struct.Struct("<8sII")
_ALIGN = 64

#: Per-box arrays: (name in file, Boxes3D field).
_BOX_FIELDS: tuple[str, ...] = (
    "center",
    "size",
    "heading",
    "type",
    "difficulty",
    "num_lidar_points",
    "num_top_lidar_points",
    "speed",
    "accel",
)


@dataclass(frozen=True, eq=False)
class CachedFrame:
    """What the cache keeps of a frame: points with features, JPEGs, calibrations, boxes.

    The training dataset builds its samples from this, whether it reads the cache or
    Waymo files directly (:meth:`from_frame`), so both paths give identical samples.
    """

    context: FrameContext
    """Segment name and recording conditions."""
    timestamp_us: int
    """Frame timestamp, microseconds."""
    pose: np.ndarray
    """(4, 4) float64 vehicle frame -> world frame."""
    points: np.ndarray
    """(N, 5) float32 ``x, y, z, intensity, elongation``, vehicle frame, metres (all lasers,
    both returns; lasers in enum order, return 1 before return 2)."""
    laser: np.ndarray
    """(N,) uint8 Waymo laser enum of each point."""
    return_index: np.ndarray
    """(N,) uint8 return (1 or 2) of each point."""
    nlz: np.ndarray
    """(N,) bool: the point is inside a no-label zone."""
    image_bytes: Mapping[str, bytes]
    """Original encoded (JPEG) image per camera name."""
    cameras: Mapping[str, CameraCalibration]
    """Calibration per camera name."""
    boxes: Boxes3D
    """3D labels, vehicle frame."""
    source: str = ""
    """Where the frame came from, for messages."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CachedFrame):
            return NotImplemented
        return (
            self.context == other.context
            and self.timestamp_us == other.timestamp_us
            and np.array_equal(self.pose, other.pose)
            and all(
                np.array_equal(getattr(self, n), getattr(other, n))
                and getattr(self, n).dtype == getattr(other, n).dtype
                for n in ("points", "laser", "return_index", "nlz")
            )
            and dict(self.image_bytes) == dict(other.image_bytes)
            and dict(self.cameras) == dict(other.cameras)
            and self.boxes == other.boxes
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def segment(self) -> str:
        """Segment name."""
        return self.context.segment

    @staticmethod
    def from_frame(frame: Frame) -> CachedFrame:
        """The cached form of a frame (decodes its range images to points)."""
        cloud = frame.point_cloud(returns=(1, 2))
        return CachedFrame(
            context=frame.context,
            timestamp_us=int(frame.timestamp_us),
            pose=np.asarray(frame.pose, np.float64),
            points=cloud.features(),
            laser=cloud.laser.astype(np.uint8),
            return_index=cloud.return_index.astype(np.uint8),
            nlz=cloud.nlz.astype(bool),
            image_bytes={
                n: bytes(frame.image_bytes[n]) for n in CAMERA_NAMES if n in frame.image_bytes
            },
            cameras={n: frame.cameras[n] for n in CAMERA_NAMES if n in frame.cameras},
            boxes=frame.boxes,
            source=frame.source,
        )


def safe_name(segment: str) -> str:
    """A segment name usable as a file name (characters outside ``[A-Za-z0-9._-]`` -> ``_``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", segment)
    return name if name.strip(".") else "_segment"


def frame_path(root: str | Path, key: str, index: int) -> Path:
    """Path of frame ``index`` of the segment stored under ``key`` in the cache at ``root``."""
    return Path(root) / "frames" / safe_name(key) / f"{index:06d}{FRAME_SUFFIX}"


def _pad(n: int) -> int:
    return (-n) % _ALIGN


def encode_cache_frame(frame: CachedFrame) -> bytes:
    """The bytes of one frame file."""
    arrays: dict[str, np.ndarray] = {
        "points": np.ascontiguousarray(frame.points, dtype="<f4"),
        "laser": np.ascontiguousarray(frame.laser, dtype=np.uint8),
        "return_index": np.ascontiguousarray(frame.return_index, dtype=np.uint8),
        "nlz": np.ascontiguousarray(frame.nlz, dtype=bool),
    }
    for name in _BOX_FIELDS:
        a = np.asarray(getattr(frame.boxes, name))
        arrays[f"box_{name}"] = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    blobs: list[tuple[str, bytes | memoryview]] = [
        (k, v.tobytes() if v.size == 0 else memoryview(v).cast("B")) for k, v in arrays.items()
    ]
    blobs += [(f"image:{n}", frame.image_bytes[n]) for n in frame.image_bytes]
    # Offsets relative to the data start; the header size is known only after.
    entries: dict[str, list[Any]] = {}
    pos = 0
    for key, data in blobs:
        if key.startswith("image:"):
            entries[key] = [pos, len(data)]
        else:
            a = arrays[key]
            entries[key] = [pos, len(data), a.dtype.str, list(a.shape)]
        pos += len(data) + _pad(len(data))
    header: dict[str, Any] = {
        "segment": frame.context.segment,
        "time_of_day": frame.context.time_of_day,
        "location": frame.context.location,
        "weather": frame.context.weather,
        "timestamp_us": int(frame.timestamp_us),
        "pose": np.asarray(frame.pose, np.float64).reshape(16).tolist(),
        "cameras": {
            n: {
                "intrinsic": c.intrinsic.tolist(),
                "extrinsic": c.extrinsic.reshape(16).tolist(),
                "width": int(c.width),
                "height": int(c.height),
                "rolling_shutter_direction": int(c.rolling_shutter_direction),
            }
            for n, c in frame.cameras.items()
        },
        "box_ids": [str(i) for i in frame.boxes.ids],
        "source": frame.source,
        "entries": entries,
    }
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    start = _PREFIX.size + len(head)
    start += _pad(start)
    out = bytearray(start + pos)
    _PREFIX.pack_into(out, 0, MAGIC, FORMAT_VERSION, len(head))
    out[_PREFIX.size : _PREFIX.size + len(head)] = head
    for key, data in blobs:
        off = start + entries[key][0]
        out[off : off + len(data)] = data
    return bytes(out)


def write_cache_frame(path: str | Path, frame: CachedFrame) -> int:
    """Write one frame file atomically; returns its size in bytes."""
    data = encode_cache_frame(frame)
    atomic_write_bytes(path, data)
    return len(data)


def read_cache_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a frame file (reads only the start of the file).

    Raises:
        DataError: not a frame file of this version.
    """
    path = Path(path)
    with open(path, "rb") as f:
        prefix = f.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size:
            raise DataError("file is shorter than the frame-file prefix", path=path, field="magic")
        magic, version, hlen = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise DataError(
                f"not a perceive cache frame (magic {magic!r})", path=path, field="magic"
            )
        if version != FORMAT_VERSION:
            raise DataError(
                f"cache frame version {version}, this perceive reads {FORMAT_VERSION}",
                path=path,
                field="version",
            )
        try:
            return json.loads(f.read(hlen))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"frame header is not JSON: {e}", path=path, field="header") from e


def read_cache_frame(path: str | Path, mmap: bool = True) -> CachedFrame:
    """Read a frame file.

    Args:
        path: the ``.pcf`` file.
        mmap: map the file and return read-only views into it (no copy of the points);
            otherwise read it into memory.

    Raises:
        DataError: not a frame file, another version, or truncated (naming the file and field).
    """
    path = Path(path)
    try:
        buf = (
            np.memmap(path, dtype=np.uint8, mode="r") if mmap else np.fromfile(path, dtype=np.uint8)
        )
    except ValueError as e:  # empty file
        raise DataError(f"cannot map cache frame: {e}", path=path) from e
    if buf.shape[0] < _PREFIX.size:
        raise DataError("file is shorter than the frame-file prefix", path=path, field="magic")
    magic, version, hlen = _PREFIX.unpack(buf[: _PREFIX.size].tobytes())
    if magic != MAGIC:
        raise DataError(f"not a perceive cache frame (magic {magic!r})", path=path, field="magic")
    if version != FORMAT_VERSION:
        raise DataError(
            f"cache frame version {version}, this perceive reads {FORMAT_VERSION}",
            path=path,
            field="version",
        )
    try:
        header = json.loads(buf[_PREFIX.size : _PREFIX.size + hlen].tobytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"frame header is not JSON: {e}", path=path, field="header") from e
    start = _PREFIX.size + hlen
    start += _pad(start)
    entries = header["entries"]

    def array(key: str) -> np.ndarray:
        off, n, dt, shape = entries[key]
        if start + off + n > buf.shape[0]:
            raise DataError(
                f"array {key} runs past the end of the file (truncated)", path=path, field=key
            )
        return buf[start + off : start + off + n].view(np.dtype(dt)).reshape(shape)

    images = {}
    for key, (off, n) in ((k, v) for k, v in entries.items() if k.startswith("image:")):
        if start + off + n > buf.shape[0]:
            raise DataError("image runs past the end of the file (truncated)", path=path, field=key)
        images[key[len("image:") :]] = buf[start + off : start + off + n].tobytes()
    cameras = {
        n: CameraCalibration(
            name=n,
            intrinsic=np.asarray(c["intrinsic"], np.float64),
            extrinsic=np.asarray(c["extrinsic"], np.float64).reshape(4, 4),
            width=c["width"],
            height=c["height"],
            rolling_shutter_direction=c["rolling_shutter_direction"],
        )
        for n, c in header["cameras"].items()
    }
    box_kw = {name: array(f"box_{name}") for name in _BOX_FIELDS}
    boxes = Boxes3D(ids=np.array(header["box_ids"], dtype=object), **box_kw)
    return CachedFrame(
        context=FrameContext(
            segment=header["segment"],
            time_of_day=header["time_of_day"],
            location=header["location"],
            weather=header["weather"],
        ),
        timestamp_us=int(header["timestamp_us"]),
        pose=np.asarray(header["pose"], np.float64).reshape(4, 4),
        points=array("points"),
        laser=array("laser"),
        return_index=array("return_index"),
        nlz=array("nlz"),
        image_bytes=images,
        cameras=cameras,
        boxes=boxes,
        source=str(path),
    )


@dataclass(frozen=True)
class CacheEntry:
    """One frame of a cache index."""

    key: str
    """Folder of the segment's frames (the source segment's file-safe name)."""
    segment: str
    """Segment name from the data."""
    index: int
    """Frame index within its segment (the source's record order)."""
    timestamp_us: int
    """Frame timestamp."""
    num_points: int
    """Points in the frame (all lasers and returns)."""
    num_boxes: int
    """3D boxes in the frame."""


class CacheReader:
    """Random access to the frames of a cache folder, through its index.

    Holds only paths and the index, so it pickles cheaply into DataLoader workers;
    each read maps one frame file.

    Raises:
        DataError: the folder is not a complete cache of this version.
    """

    def __init__(self, root: str | Path) -> None:
        from perceive.convert.runner import check_format_marker

        self.root = Path(root)
        check_format_marker(self.root, FORMAT_NAME, FORMAT_VERSION, must_exist=True)
        index_path = self.root / INDEX_NAME
        if not index_path.exists():
            raise DataError("cache has no index (conversion not finished?)", path=index_path)
        try:
            index = json.loads(index_path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"index is not JSON: {e}", path=index_path) from e
        if index.get("format") != FORMAT_NAME or index.get("version") != FORMAT_VERSION:
            raise DataError(
                f"index is not a {FORMAT_NAME} v{FORMAT_VERSION} index", path=index_path
            )
        self.entries: list[CacheEntry] = [
            CacheEntry(seg["key"], seg["segment"], *f)
            for seg in index["segments"]
            for f in seg["frames"]
        ]
        self.segments: list[str] = [seg["segment"] for seg in index["segments"]]

    def __len__(self) -> int:
        return len(self.entries)

    def frame_in_segment(self, i: int) -> int:
        """The number of frame ``i`` of the set within its segment."""
        return int(self.entries[i].index)

    def path(self, i: int) -> Path:
        """File of frame ``i`` of the set."""
        e = self.entries[i]
        return frame_path(self.root, e.key, e.index)

    def __getitem__(self, i: int) -> CachedFrame:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"{self.root}: frame {i} out of range (cache has {len(self)})")
        return read_cache_frame(self.path(i))

    def __repr__(self) -> str:
        return f"CacheReader({str(self.root)!r}, frames={len(self)}, segments={len(self.segments)})"


class CacheWriter:
    """Writes frames into a cache folder (used by :mod:`perceive.convert.runner`)."""

    format_name = FORMAT_NAME
    version = FORMAT_VERSION

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    def frame_done(self, job: SegmentJob, index: int) -> FrameStats | None:
        """Stats of frame ``index`` if its file exists (atomic writes: then it is complete)."""
        from perceive.convert.runner import FrameStats

        path = frame_path(self.out, job.key, index)
        if not path.exists():
            return None
        try:
            h = read_cache_header(path)
        except DataError:
            return None  # not ours or damaged: convert again
        e = h["entries"]
        return FrameStats(
            int(h["timestamp_us"]), e["points"][3][0], e["box_center"][3][0], h["segment"]
        )

    def write_frame(self, job: SegmentJob, index: int, frame: Frame) -> FrameStats:
        """Write one frame file."""
        from perceive.convert.runner import FrameStats

        cf = CachedFrame.from_frame(frame)
        write_cache_frame(frame_path(self.out, job.key, index), cf)
        return FrameStats(cf.timestamp_us, len(cf.points), len(cf.boxes), cf.segment)

    def finalize(self, manifests: Sequence[dict]) -> None:
        """Write ``index.json``: every segment and its frames, in source order."""
        from perceive.convert.runner import manifest_order

        segments: dict[str, dict[str, Any]] = {}
        for m in sorted(manifests, key=manifest_order):
            job = m["job"]
            seg = segments.setdefault(
                job["key"],
                {
                    "key": job["key"],
                    "segment": m["segment"],
                    "source": job["path"]
                    if job["kind"] == "v1"
                    else f"{job['path']}:{job['segment']}",
                    "split": job["split"],
                    "frames": [],
                    "skipped": [],
                },
            )
            seg["segment"] = seg["segment"] or m["segment"]
            seg["frames"] += m["frames"]
            seg["skipped"] += m["skipped"]
        for seg in segments.values():
            seg["frames"].sort()
        index = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "point_features": list(POINT_FEATURES),
            "frame_fields": ["index", "timestamp_us", "num_points", "num_boxes"],
            "segments": list(segments.values()),
        }
        atomic_write_text(self.out / INDEX_NAME, json.dumps(index) + "\n")
