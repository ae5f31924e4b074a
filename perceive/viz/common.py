"""Shared pieces of the visualisers: figures without pyplot, atomic PNG writing, colours,
and conversion of arrays to our typed data.

Figures are built as :class:`matplotlib.figure.Figure` objects on the Agg canvas,
never through ``pyplot``, so drawing works headless, in threads and in worker
processes, and never touches matplotlib's global state.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from perceive.datasets.types import OBJECT_TYPES, Boxes2D, Boxes3D, PointCloud
from perceive.io.atomic import atomic_write_bytes

#: RGB colour (0-1) of each Waymo ``Label.Type`` (names in ``types.OBJECT_TYPES``).
TYPE_COLORS: Mapping[int, tuple[float, float, float]] = {
    0: (0.60, 0.60, 0.60),  # UNKNOWN: grey
    1: (0.12, 0.56, 1.00),  # VEHICLE: blue
    2: (1.00, 0.27, 0.00),  # PEDESTRIAN: orange-red
    3: (1.00, 0.84, 0.00),  # SIGN: yellow
    4: (0.20, 0.80, 0.20),  # CYCLIST: green
}

#: Line style of ground truth and of predictions.
GT_STYLE: Mapping[str, object] = {"linestyle": "-", "linewidth": 1.4}
PRED_STYLE: Mapping[str, object] = {"linestyle": (0, (3, 2)), "linewidth": 1.2}


def type_color(t: int) -> tuple[float, float, float]:
    """Colour of a Waymo object type (grey for unknown values)."""
    return TYPE_COLORS.get(int(t), TYPE_COLORS[0])


def type_name(t: int) -> str:
    """Name of a Waymo object type (``"TYPE_<t>"`` outside the table)."""
    t = int(t)
    return OBJECT_TYPES[t] if 0 <= t < len(OBJECT_TYPES) else f"TYPE_{t}"


def new_figure(width_in: float, height_in: float, dpi: int = 100) -> Figure:
    """A figure on the Agg canvas (no pyplot, no global state)."""
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, dpi: int | None = None, colors: int | None = None) -> bytes:
    """Render a figure to PNG bytes.

    Args:
        fig: the figure.
        dpi: resolution (default: the figure's).
        colors: write a palette PNG of at most this many colours (2-256): photos with
            drawings on them shrink several times, for documentation pictures.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor())
    if colors is None:
        return buf.getvalue()
    if not 2 <= colors <= 256:
        raise ValueError(f"colors must be in [2, 256], got {colors}")
    from PIL import Image  # a dependency of matplotlib

    buf.seek(0)
    img = Image.open(buf).convert("RGB").quantize(colors=colors, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def save_figure(
    fig: Figure, path: str | Path, dpi: int | None = None, colors: int | None = None
) -> Path:
    """Write a figure as a PNG atomically (temporary file, then rename). Returns the path.

    ``colors`` makes a palette PNG (see :func:`figure_png`).
    """
    path = Path(path)
    atomic_write_bytes(path, figure_png(fig, dpi, colors))
    return path


def save_image(image: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 RGB array as a PNG atomically. Returns the path."""
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    path = Path(path)
    atomic_write_bytes(path, buf.tobytes())
    return path


def as_boxes3d(boxes: Boxes3D | np.ndarray | None, types: np.ndarray | None = None) -> Boxes3D:
    """Our boxes from :class:`Boxes3D`, an (N, 7) array ``x, y, z, l, w, h, heading`` or None.

    Args:
        boxes: the boxes.
        types: (N,) Waymo types for an array (default 0, unknown).
    """
    if boxes is None:
        return Boxes3D.empty()
    if isinstance(boxes, Boxes3D):
        return boxes
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    n = arr.shape[0]
    return Boxes3D(
        center=arr[:, :3],
        size=arr[:, 3:6],
        heading=arr[:, 6],
        type=np.zeros(n, np.int8) if types is None else np.asarray(types).reshape(n),
    )


def as_boxes2d(boxes: Boxes2D | np.ndarray | None, types: np.ndarray | None = None) -> Boxes2D:
    """2D boxes from :class:`Boxes2D`, an (N, 4) array ``u_min, v_min, u_max, v_max``, or None."""
    if boxes is None:
        return Boxes2D.empty()
    if isinstance(boxes, Boxes2D):
        return boxes
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = arr.shape[0]
    return Boxes2D(
        center=(arr[:, :2] + arr[:, 2:]) / 2,
        size=arr[:, 2:] - arr[:, :2],
        type=np.zeros(n, np.int8) if types is None else np.asarray(types).reshape(n),
    )


def point_arrays(points: PointCloud | np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(xyz (N, 3) float64, intensity (N,) or None)`` from a cloud or an (N, >=3) array.

    An array's fourth column, when present, is taken as intensity.
    """
    if points is None:
        return np.zeros((0, 3)), None
    if isinstance(points, PointCloud):
        return points.xyz.astype(np.float64), points.intensity
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise ValueError(f"points must be (N, >=3), got {arr.shape}")
    return arr[:, :3], (arr[:, 3] if arr.shape[1] > 3 else None)


def subsample(n: int, max_points: int | None, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` items, in order (all when it is None)."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
