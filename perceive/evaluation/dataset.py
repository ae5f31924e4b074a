"""Ground truth of a dataset on disk: Waymo v1 segments or a perceive training cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from perceive.errors import DataError, MissingFileError
from perceive.evaluation.detections import FrameDetections, ground_truth_from_frame

#: Marker file of perceive's converted folders (see :mod:`perceive.convert`).
_FORMAT_MARKER = "PERCEIVE_FORMAT.json"


def _v1_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(".tfrecord"))


def iter_ground_truth(path: str | Path) -> Iterator[FrameDetections]:
    """The ground truth of every frame of a dataset, in file and record order.

    Args:
        path: a Waymo v1 ``.tfrecord`` file, a folder of them, or a perceive training
            cache folder (``perceive convert --to cache``).

    Raises:
        MissingFileError: ``path`` does not exist.
        DataError: the folder holds neither ``.tfrecord`` files nor a cache, or a file
            in it is unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError("no such dataset file or folder", path=path)
    if path.is_dir() and (path / _FORMAT_MARKER).exists():
        from perceive.convert.cache import CacheReader

        reader = CacheReader(path)
        for i in range(len(reader)):
            yield ground_truth_from_frame(reader[i])
        return
    files = _v1_files(path)
    if not files:
        raise DataError("no Waymo .tfrecord files and no perceive cache here", path=path)
    from perceive.datasets import waymo

    for f in files:
        with waymo.open(f) as seg:
            for frame in seg:
                yield ground_truth_from_frame(frame)


def load_ground_truth(path: str | Path) -> list[FrameDetections]:
    """:func:`iter_ground_truth` as a list."""
    return list(iter_ground_truth(path))
