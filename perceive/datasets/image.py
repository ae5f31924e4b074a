"""JPEG decoding and encoding (libjpeg-turbo through OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np

from perceive.errors import DataError

cv2.setNumThreads(1)  # callers parallelise across frames; avoid oversubscription


def decode_jpeg(data: bytes, what: str = "image") -> np.ndarray:
    """Decode JPEG (or PNG) bytes to (H, W, 3) uint8 RGB.

    Raises:
        DataError: the bytes are not a decodable image (``what`` names it in the message).
    """
    if not data:
        raise DataError(f"{what}: image bytes are empty")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
    if img is None:
        raise DataError(f"{what}: bytes are not a decodable image ({len(data)} bytes)")
    return img


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode (H, W, 3) uint8 RGB as JPEG bytes."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
