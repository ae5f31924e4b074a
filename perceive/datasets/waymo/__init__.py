"""Waymo Open Dataset reading and writing without TensorFlow.

>>> from perceive.datasets import waymo
>>> seg = waymo.open("segment.tfrecord")      # doctest: +SKIP
>>> frame = seg[0]                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from perceive.datasets.waymo.v1 import Segment, frame_from_proto, parse_frame

if TYPE_CHECKING:
    from perceive.datasets.waymo.v2 import V2Segment


def open(path: str | Path, skip_corrupt: bool = False, verify_crc: bool = True) -> Segment:
    """Open a v1 segment (``.tfrecord``) for random access; see :class:`Segment`."""
    return Segment(path, skip_corrupt=skip_corrupt, verify_crc=verify_crc)


def open_v2(
    root: str | Path,
    segment: str,
    split: str = "training",
    components: Sequence[str] | None = None,
) -> V2Segment:
    """Open a v2 (parquet) segment for random access by frame; see :class:`V2Segment`."""
    from perceive.datasets.waymo.v2 import V2Segment

    return V2Segment(root, segment, split=split, components=components)


__all__ = ["Segment", "frame_from_proto", "open", "open_v2", "parse_frame"]
