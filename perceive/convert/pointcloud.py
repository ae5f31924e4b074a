"""Point clouds as PCD or PLY files, for viewing in common tools (Open3D, CloudCompare, PCL).

::

    PERCEIVE_FORMAT.json
    index.json                        every segment and its frames (written last)
    <key>/<frame index:06d>.pcd|.ply  one cloud per frame (<key>: the source file's name)

Each cloud holds every laser and both returns in the vehicle frame (metres), with the
float32 fields ``x y z intensity elongation`` in that order; files are binary little
endian (PCD 0.7 ``DATA binary``, PLY ``binary_little_endian 1.0``), written here with
NumPy: a frame without points gives a valid empty file (Open3D refuses to write one).
Open3D's legacy reader (``open3d.io.read_point_cloud``) keeps only x, y, z; its tensor
reader (``open3d.t.io.read_point_cloud``) and :func:`read_point_cloud` keep every field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perceive.convert.cache import safe_name
from perceive.datasets.types import Frame
from perceive.errors import ConfigError, DataError
from perceive.io.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from perceive.convert.runner import FrameStats, SegmentJob

#: 2: written with NumPy in the documented field order (1: through Open3D, whose PCD files
#: listed the extra fields alphabetically).
FORMAT_VERSION = 2
#: The fields of every cloud, in file order.
FIELDS: tuple[str, ...] = ("x", "y", "z", "intensity", "elongation")


def point_cloud_bytes(points: np.ndarray, fmt: str) -> bytes:
    """The bytes of a binary PCD or PLY file of (N, 5) ``x, y, z, intensity, elongation``.

    Args:
        points: (N, 5) float, vehicle frame, metres; N may be 0.
        fmt: ``pcd`` or ``ply``.
    """
    pts = np.ascontiguousarray(points, "<f4").reshape(-1, len(FIELDS))
    n = len(pts)
    if fmt == "pcd":
        k = len(FIELDS)
        header = (
            "# .PCD v0.7 - Point Cloud Data file format\n"
            "VERSION 0.7\n"
            f"FIELDS {' '.join(FIELDS)}\n"
            f"SIZE {' '.join(['4'] * k)}\n"
            f"TYPE {' '.join(['F'] * k)}\n"
            f"COUNT {' '.join(['1'] * k)}\n"
            f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
        )
    elif fmt == "ply":
        header = (
            "ply\nformat binary_little_endian 1.0\n"
            "comment perceive: vehicle frame, metres\n"
            f"element vertex {n}\n"
            + "".join(f"property float {f}\n" for f in FIELDS)
            + "end_header\n"
        )
    else:
        raise ConfigError(f"point-cloud format must be pcd or ply, got {fmt!r}")
    return header.encode("ascii") + pts.tobytes()


def write_point_cloud(path: str | Path, points: np.ndarray) -> None:
    """Write (N, 5) float32 ``x, y, z, intensity, elongation`` as a binary PCD or PLY, atomically.

    The format follows the suffix (``.pcd`` or ``.ply``); an empty cloud gives a valid file
    of 0 points.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    atomic_write_bytes(path, point_cloud_bytes(points, fmt))


_PCD_TYPES = {("F", "4"): "<f4", ("F", "8"): "<f8"}


def _parse_header(data: bytes, path: Path) -> tuple[list[str], list[str], int, int]:
    """(field names, dtypes, point count, body offset) of a binary PCD or PLY file."""

    def bad(why: str) -> DataError:
        return DataError(why, path=path, field="header")

    is_ply = data.startswith(b"ply\n")
    end_mark = b"end_header\n" if is_ply else b"\nDATA "
    end = data.find(end_mark)
    if end < 0:
        raise bad("no end of header: not a PCD or PLY file")
    if not is_ply:
        line_end = data.find(b"\n", end + 1)
        head = data[: line_end if line_end >= 0 else len(data)].decode("ascii", "replace")
        offset = len(data) if line_end < 0 else line_end + 1
        keys: dict[str, list[str]] = {}
        for line in head.splitlines():
            parts = line.split()
            if parts and not parts[0].startswith("#"):
                keys[parts[0]] = parts[1:]
        if keys.get("DATA") != ["binary"]:
            raise bad(f"only binary PCD data is read, got DATA {keys.get('DATA')}")
        names = keys.get("FIELDS", [])
        sizes, types = keys.get("SIZE", []), keys.get("TYPE", [])
        counts = keys.get("COUNT", ["1"] * len(names))
        if not names or not (len(names) == len(sizes) == len(types) == len(counts)):
            raise bad("FIELDS, SIZE, TYPE and COUNT disagree")
        if any(c != "1" for c in counts):
            raise bad(f"only fields of COUNT 1 are read, got {counts}")
        try:
            dtypes = [_PCD_TYPES[(t, z)] for t, z in zip(types, sizes, strict=True)]
            n = int(keys["POINTS"][0])
        except (KeyError, IndexError, ValueError):
            raise bad("unsupported field type or no POINTS") from None
        return names, dtypes, n, offset
    head = data[:end].decode("ascii", "replace").splitlines()
    if "format binary_little_endian 1.0" not in head:
        raise bad("only binary_little_endian PLY is read")
    names, dtypes, n, in_vertex = [], [], -1, False
    ply_types = {"float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8"}
    for line in head:
        parts = line.split()
        if parts[:2] == ["element", "vertex"] and len(parts) == 3:
            n, in_vertex = int(parts[2]), True
        elif parts[:1] == ["element"]:
            if in_vertex:
                break
        elif in_vertex and parts[:1] == ["property"] and len(parts) == 3:
            if parts[1] not in ply_types:
                raise bad(f"property {parts[2]} has unsupported type {parts[1]}")
            names.append(parts[2])
            dtypes.append(ply_types[parts[1]])
    if n < 0:
        raise bad("no vertex element")
    return names, dtypes, n, end + len(end_mark)


def read_point_cloud(path: str | Path) -> np.ndarray:
    """Read a binary PCD or PLY cloud with float fields ``x y z intensity elongation`` (any
    order, other fields ignored): (N, 5) float32 in :data:`FIELDS` order.

    Raises:
        FileNotFoundError: no such file.
        DataError: the file is not such a cloud, lacks a field, or is cut short.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such point cloud: {path}")
    data = path.read_bytes()
    names, dtypes, n, offset = _parse_header(data, path)
    missing = [f for f in FIELDS if f not in names]
    if missing:
        raise DataError(
            f"point cloud has no {missing[0]!r} field (fields: {names})",
            path=path,
            field=missing[0],
        )
    record = np.dtype(
        [(f"f{i}_{nm}", dt) for i, (nm, dt) in enumerate(zip(names, dtypes, strict=True))]
    )
    if len(data) - offset < n * record.itemsize:
        raise DataError(
            f"{n} points need {n * record.itemsize} bytes after the header, "
            f"the file has {len(data) - offset}",
            path=path,
        )
    rows = np.frombuffer(data, record, count=n, offset=offset)
    cols = {nm: rows[f"f{i}_{nm}"] for i, nm in enumerate(names)}
    return np.stack([cols[f] for f in FIELDS], axis=1).astype(np.float32).reshape(-1, 5)


class PointCloudWriter:
    """Writes one PCD or PLY per frame (used by :mod:`perceive.convert.runner`)."""

    version = FORMAT_VERSION

    def __init__(self, out: str | Path, fmt: str) -> None:
        if fmt not in ("pcd", "ply"):
            raise ConfigError(f"point-cloud format must be pcd or ply, got {fmt!r}")
        self.out = Path(out)
        self.format_name = fmt

    def path(self, job: SegmentJob, index: int) -> Path:
        """File of frame ``index`` of a job's segment."""
        return self.out / safe_name(job.key) / f"{index:06d}.{self.format_name}"

    def _stats_path(self, job: SegmentJob, index: int) -> Path:
        return self.out / "_manifests" / "frames" / safe_name(job.key) / f"{index:06d}.json"

    def frame_done(self, job: SegmentJob, index: int) -> FrameStats | None:
        """Stats of a frame whose cloud is complete (its stats file, written after it, exists)."""
        from perceive.convert.runner import FrameStats

        p = self._stats_path(job, index)
        if not p.exists() or not self.path(job, index).exists():
            return None
        try:
            return FrameStats(**json.loads(p.read_text()))
        except (json.JSONDecodeError, TypeError):
            return None

    def write_frame(self, job: SegmentJob, index: int, frame: Frame) -> FrameStats:
        """Write one frame's cloud."""
        from perceive.convert.runner import FrameStats

        pts = frame.point_cloud(returns=(1, 2)).features()
        write_point_cloud(self.path(job, index), pts)
        stats = FrameStats(int(frame.timestamp_us), len(pts), len(frame.boxes), frame.segment)
        atomic_write_text(self._stats_path(job, index), json.dumps(stats.__dict__))
        return stats

    def finalize(self, manifests: Sequence[dict]) -> None:
        """Write ``index.json``: per segment, its frame files and timestamps."""
        from perceive.convert.runner import manifest_order

        segs: dict[str, dict[str, Any]] = {}
        for m in sorted(manifests, key=manifest_order):
            key = m["job"]["key"]
            s = segs.setdefault(key, {"key": key, "segment": m["segment"], "frames": []})
            s["segment"] = s["segment"] or m["segment"]
            s["frames"] += [
                {
                    "file": f"{safe_name(key)}/{f[0]:06d}.{self.format_name}",
                    "index": f[0],
                    "timestamp_us": f[1],
                    "num_points": f[2],
                }
                for f in m["frames"]
            ]
        for s in segs.values():
            s["frames"].sort(key=lambda f: f["index"])
        index = {
            "format": self.format_name,
            "version": self.version,
            "fields": list(FIELDS),
            "segments": list(segs.values()),
        }
        atomic_write_text(self.out / "index.json", json.dumps(index, indent=1) + "\n")
