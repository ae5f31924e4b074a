"""Waymo Open Dataset reading and writing without TensorFlow.

>>> from perceive.datasets import waymo
>>> seg = waymo.open("segment.tfrecord")      # doctest: +SKIP
>>> frame = seg[0]                            # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from perceive.datasets.waymo.v1 import Segment, frame_from_proto, parse_frame


def open(path: str | Path, skip_corrupt: bool = False, verify_crc: bool = True) -> Segment:  # noqa: A001
    """Open a v1 segment (``.tfrecord``) for random access; see :class:`Segment`."""
    return Segment(path, skip_corrupt=skip_corrupt, verify_crc=verify_crc)


__all__ = ["Segment", "frame_from_proto", "open", "parse_frame"]
