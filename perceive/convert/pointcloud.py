"""Point clouds as PCD or PLY files (through Open3D), for viewing in common tools.

::

    PERCEIVE_FORMAT.json
    index.json                        every segment and its frames (written last)
    <key>/<frame index:06d>.pcd|.ply  one cloud per frame

Each cloud holds every laser and both returns in the vehicle frame (metres), with the
float32 fields ``x y z intensity elongation``; files are binary.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perceive.convert.cache import safe_name
from perceive.datasets.types import Frame
from perceive.errors import ConfigError, DataError
from perceive.io.atomic import (
    atomic_write_text,
    default_file_mode,
    fsync_path,
    replace_durably,
)

if TYPE_CHECKING:
    from perceive.convert.runner import FrameStats, SegmentJob

FORMAT_VERSION = 1


def _o3d() -> Any:
    try:
        import open3d as o3d
    except ModuleNotFoundError as e:  # pragma: no cover - open3d is in the synth extra
        raise ConfigError("PCD/PLY output needs open3d: pip install 'perceive[synth]'") from e
    return o3d


def write_point_cloud(path: str | Path, points: np.ndarray) -> None:
    """Write (N, 5) float32 ``x, y, z, intensity, elongation`` as a binary PCD or PLY, atomically.

    The format follows the suffix (``.pcd`` or ``.ply``). Open3D writes to a path, so the
    file goes to a temporary name with the same suffix in the same folder, then is renamed.
    """
    o3d = _o3d()
    path = Path(path)
    pts = np.ascontiguousarray(points, np.float32).reshape(-1, 5)
    pc = o3d.t.geometry.PointCloud()
    pc.point.positions = o3d.core.Tensor(np.ascontiguousarray(pts[:, :3]))
    pc.point.intensity = o3d.core.Tensor(np.ascontiguousarray(pts[:, 3:4]))
    pc.point.elongation = o3d.core.Tensor(np.ascontiguousarray(pts[:, 4:5]))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    try:
        os.chmod(tmp, default_file_mode())  # mkstemp makes it private; other outputs are not
        if not o3d.t.io.write_point_cloud(tmp, pc, write_ascii=False, compressed=False):
            raise DataError("Open3D could not write the point cloud", path=path)
        fsync_path(tmp)
        replace_durably(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_point_cloud(path: str | Path) -> np.ndarray:
    """Read a cloud written by :func:`write_point_cloud`: (N, 5) float32.

    Raises:
        DataError: the file cannot be read or lacks a field.
    """
    o3d = _o3d()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such point cloud: {path}")
    pc = o3d.t.io.read_point_cloud(str(path))
    fields = set(pc.point)
    for f in ("positions", "intensity", "elongation"):
        if f not in fields and len(fields):
            raise DataError(
                f"point cloud has no {f!r} field (fields: {sorted(fields)})", path=path, field=f
            )
    if "positions" not in fields:
        return np.zeros((0, 5), np.float32)
    return np.concatenate(
        [
            pc.point.positions.numpy(),
            pc.point.intensity.numpy().reshape(-1, 1),
            pc.point.elongation.numpy().reshape(-1, 1),
        ],
        axis=1,
    ).astype(np.float32)


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
            "fields": ["x", "y", "z", "intensity", "elongation"],
            "segments": list(segs.values()),
        }
        atomic_write_text(self.out / "index.json", json.dumps(index, indent=1) + "\n")
