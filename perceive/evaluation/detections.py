"""The 3D objects of one frame, as the metrics see them: predictions or ground truth.

:class:`FrameDetections` is the typed form of the Waymo ``Objects`` protobuf's
objects that share one frame (``context_name``, ``frame_timestamp_micros``,
``camera_name``). A detector's output becomes one with
:meth:`FrameDetections.from_arrays`; labelled frames give the ground truth with
:func:`ground_truth_from_frame`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from perceive.datasets.types import Boxes3D, FrameContext


@dataclass(frozen=True, eq=False)
class FrameDetections:
    """The 3D objects of one frame: a detector's predictions or the ground truth.

    Ground truth uses the same type with scores of 1; its boxes carry
    ``difficulty`` and ``num_lidar_points`` (see :class:`~perceive.datasets.types.Boxes3D`).
    """

    context_name: str
    """Segment (Waymo ``Context.name``) the frame belongs to."""
    timestamp_us: int
    """Frame timestamp (Waymo ``Frame.timestamp_micros``), microseconds."""
    boxes: Boxes3D
    """(N) boxes, vehicle frame, with their Waymo ``Label.Type`` in ``boxes.type``."""
    scores: np.ndarray | None = None
    """(N,) float32 confidence in [0, 1]; None for all ones (ground truth)."""
    overlap_with_nlz: np.ndarray | None = None
    """(N,) bool: the object overlaps a no-label zone (an unmatched prediction flagged so
    is not a false positive); None for all False."""
    camera_name: int = 0
    """Waymo ``CameraName`` for camera-frame objects; 0 for LiDAR (3D) objects."""

    def __post_init__(self) -> None:
        n = len(self.boxes)
        scores = (
            np.ones(n, np.float32) if self.scores is None else np.asarray(self.scores, np.float32)
        )
        nlz = (
            np.zeros(n, bool)
            if self.overlap_with_nlz is None
            else np.asarray(self.overlap_with_nlz, bool)
        )
        if scores.shape != (n,):
            raise ValueError(f"frame {self.key}: scores must be ({n},), got {scores.shape}")
        if nlz.shape != (n,):
            raise ValueError(f"frame {self.key}: overlap_with_nlz must be ({n},), got {nlz.shape}")
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "overlap_with_nlz", nlz)
        object.__setattr__(self, "timestamp_us", int(self.timestamp_us))
        object.__setattr__(self, "camera_name", int(self.camera_name))

    def __len__(self) -> int:
        return len(self.boxes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrameDetections):
            return NotImplemented
        return (
            self.key == other.key
            and self.boxes == other.boxes
            and np.array_equal(self.scores, other.scores)
            and np.array_equal(self.overlap_with_nlz, other.overlap_with_nlz)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def key(self) -> tuple[str, int, int]:
        """``(context_name, camera_name, timestamp_us)``: what identifies the frame."""
        return (self.context_name, self.camera_name, self.timestamp_us)

    @staticmethod
    def from_arrays(
        context_name: str,
        timestamp_us: int,
        boxes: np.ndarray,
        scores: np.ndarray,
        types: np.ndarray,
        *,
        overlap_with_nlz: np.ndarray | None = None,
    ) -> FrameDetections:
        """Predictions of one frame from a detector's arrays.

        Args:
            context_name: segment name.
            timestamp_us: frame timestamp, microseconds.
            boxes: (K, 7) ``x, y, z, length, width, height, heading``, vehicle frame,
                metres and radians.
            scores: (K,) confidences in [0, 1].
            types: (K,) Waymo ``Label.Type`` values (1 VEHICLE, 2 PEDESTRIAN, 3 SIGN,
                4 CYCLIST); map class indices with
                :func:`perceive.models.classes.waymo_type_of_class`.
            overlap_with_nlz: (K,) bool, or None for all False.
        """
        b = np.asarray(boxes, np.float64).reshape(-1, 7)
        return FrameDetections(
            context_name=context_name,
            timestamp_us=timestamp_us,
            boxes=Boxes3D(
                center=b[:, :3], size=b[:, 3:6], heading=b[:, 6], type=np.asarray(types).reshape(-1)
            ),
            scores=np.asarray(scores, np.float32).reshape(-1),
            overlap_with_nlz=overlap_with_nlz,
        )


class LabelledFrame(Protocol):
    """Anything with a segment context, a timestamp and 3D labels (``Frame``, ``CachedFrame``)."""

    @property
    def context(self) -> FrameContext: ...

    @property
    def timestamp_us(self) -> int: ...

    @property
    def boxes(self) -> Boxes3D: ...


def ground_truth_from_frame(frame: LabelledFrame) -> FrameDetections:
    """The ground truth of a labelled frame: its 3D labels with scores of 1.

    Args:
        frame: a :class:`~perceive.datasets.types.Frame` or anything with ``context``,
            ``timestamp_us`` and ``boxes`` (the training cache's frames).
    """
    return FrameDetections(
        context_name=frame.context.segment, timestamp_us=int(frame.timestamp_us), boxes=frame.boxes
    )


def ground_truth_from_frames(frames: Iterable[LabelledFrame]) -> list[FrameDetections]:
    """:func:`ground_truth_from_frame` of every frame, in order."""
    return [ground_truth_from_frame(f) for f in frames]
