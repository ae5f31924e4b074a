"""Host-side preprocessing: a :class:`~perceive.datasets.types.Frame` -> the model's four inputs.

The same steps the runner performs (see ``/work/contracts.md``): every camera image is
resized to the model's image size with ``cv2.resize(INTER_AREA)`` and its intrinsics
scaled with :meth:`CameraCalibration.resized`; points are
:meth:`PointCloud.features` (float32). NumPy only (no torch), so the runner can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from perceive.datasets.types import POINT_FEATURES, Frame
from perceive.errors import MissingComponentError


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """The four inputs of the single-frame model, as NumPy arrays."""

    points: np.ndarray
    """(N, F) float32, vehicle frame, metres."""
    images: np.ndarray
    """(C, H, W, 3) uint8 RGB at the model's image size."""
    intrinsics: np.ndarray
    """(C, 9) float32 for that image size."""
    extrinsics: np.ndarray
    """(C, 4, 4) float32 camera -> vehicle."""

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(points, images, intrinsics, extrinsics)`` in the model's input order."""
        return self.points, self.images, self.intrinsics, self.extrinsics


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3) uint8 with ``cv2.INTER_AREA``."""
    if image.shape[1] == width and image.shape[0] == height:
        return np.ascontiguousarray(image)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def frame_inputs(
    frame: Frame,
    *,
    cameras: Sequence[str],
    image_size: tuple[int, int],
    point_features: Sequence[str] = POINT_FEATURES,
    points: np.ndarray | None = None,
) -> ModelInputs:
    """The model inputs of one frame.

    Args:
        frame: a frame from any reader.
        cameras: camera names in the model's order; each must be in the frame.
        image_size: ``(width, height)`` of the model's images, pixels.
        point_features: point columns (see :data:`perceive.datasets.types.POINT_FEATURES`).
        points: (N, F) float32 to use instead of the frame's own cloud (all lasers, both returns).

    Returns:
        :class:`ModelInputs`.
    """
    w, h = image_size
    images, intr, ext = [], [], []
    for name in cameras:
        if name not in frame.cameras or name not in frame.image_bytes:
            raise MissingComponentError(
                f"{frame.source or frame.segment}: frame has no camera {name!r} (image and "
                f"calibration needed); present: {sorted(frame.image_bytes)}"
            )
        calib = frame.cameras[name]
        img = frame.images[name]
        images.append(resize_image(img, w, h))
        resized = calib.resized(w, h)
        intr.append(resized.intrinsic.astype(np.float32))
        ext.append(resized.extrinsic.astype(np.float32))
    if points is None:
        if frame.range_images:
            points = frame.point_cloud().features(point_features)
        else:
            points = np.zeros((0, len(point_features)), np.float32)
    return ModelInputs(
        points=np.ascontiguousarray(points, dtype=np.float32),
        images=np.stack(images).astype(np.uint8, copy=False),
        intrinsics=np.stack(intr).astype(np.float32),
        extrinsics=np.stack(ext).astype(np.float32),
    )
