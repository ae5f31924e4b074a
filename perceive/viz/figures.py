"""Whole-frame figures: the five camera images and a bird's-eye view in one PNG.

Layout (2 rows x 3 columns)::

    FRONT_LEFT   FRONT   FRONT_RIGHT
    SIDE_LEFT    BEV     SIDE_RIGHT

Cameras a frame lacks leave their panel blank with a note; the BEV panel shows
the points (when given) and the boxes.

>>> save_frame_figure("frame.png", frame, pred=boxes, scores=scores)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from perceive.datasets.types import Boxes2D, Boxes3D, CameraCalibration, Frame, PointCloud
from perceive.viz.bev import DEFAULT_EXTENT, draw_bev
from perceive.viz.camera import draw_camera
from perceive.viz.common import new_figure, save_figure

#: Panel of each camera in the 2 x 3 grid: (row, column).
GRID_POSITIONS: Mapping[str, tuple[int, int]] = {
    "FRONT_LEFT": (0, 0),
    "FRONT": (0, 1),
    "FRONT_RIGHT": (0, 2),
    "SIDE_LEFT": (1, 0),
    "SIDE_RIGHT": (1, 2),
}
#: Panel of the bird's-eye view.
BEV_POSITION: tuple[int, int] = (1, 1)


def _blank(ax: Axes, text: str) -> None:
    ax.set_facecolor("0.15")
    ax.text(
        0.5, 0.5, text, color="0.8", ha="center", va="center", transform=ax.transAxes, fontsize=9
    )
    ax.set_xticks([])
    ax.set_yticks([])


def save_grid(
    path: str | Path,
    images: Mapping[str, np.ndarray],
    cameras: Mapping[str, CameraCalibration],
    points: PointCloud | np.ndarray | None = None,
    gt: Boxes3D | np.ndarray | None = None,
    pred: Boxes3D | np.ndarray | None = None,
    scores: np.ndarray | None = None,
    boxes_2d: Mapping[str, Boxes2D] | None = None,
    title: str | None = None,
    bev: bool = True,
    pred_2d: Mapping[str, Boxes2D] | None = None,
    bev_extent: tuple[float, float, float, float] = DEFAULT_EXTENT,
    panel_width: int = 640,
    dpi: int = 100,
    colors: int | None = None,
) -> Path:
    """Write the five-camera + BEV grid as a PNG atomically. Returns the path.

    Args:
        path: output PNG.
        images: (H, W, 3) uint8 RGB per camera name.
        cameras: calibration per camera name (images without one are skipped).
        points: LiDAR points, vehicle frame, drawn in the cameras (by depth) and the BEV.
        gt: ground-truth 3D boxes (solid), vehicle frame.
        pred: predicted 3D boxes (dashed), vehicle frame.
        scores: scores of ``pred`` (BEV labels).
        boxes_2d: 2D boxes per camera name, drawn as thin white rectangles.
        pred_2d: 2D boxes per camera name, drawn dashed in the colour of their type.
        title: figure title.
        bev: draw the BEV panel.
        bev_extent: (x_min, x_max, y_min, y_max) of the BEV, metres.
        panel_width: width of each camera panel in pixels (images are downscaled to it).
        dpi: resolution.
        colors: write a palette PNG of at most this many colours (smaller files).
    """
    pw = panel_width / dpi
    title_in = 0.1 + 0.22 * len(title.splitlines()) if title else 0.0
    height_in = 2 * pw * 0.72 + title_in + 0.3
    fig = new_figure(3 * pw, height_in, dpi)
    top = 1.0 - (title_in + 0.3) / height_in  # room for the title and the panel titles
    grid = fig.add_gridspec(
        2, 3, wspace=0.02, hspace=0.1, left=0.01, right=0.99, bottom=0.05, top=top
    )
    for name, (r, c) in GRID_POSITIONS.items():
        ax = fig.add_subplot(grid[r, c])
        if name not in images or name not in cameras:
            _blank(ax, f"{name}: no image")
            continue
        draw_camera(
            ax,
            images[name],
            cameras[name],
            points=points,
            gt=gt,
            pred=pred,
            boxes_2d=None if boxes_2d is None else boxes_2d.get(name),
            pred_2d=None if pred_2d is None else pred_2d.get(name),
            title=name,
            max_width=panel_width,
        )
    ax = fig.add_subplot(grid[BEV_POSITION])
    if bev:
        draw_bev(ax, points=points, gt=gt, pred=pred, scores=scores, extent=bev_extent, title="BEV")
    else:
        _blank(ax, "no BEV")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, colors=colors)


def save_frame_figure(
    path: str | Path,
    frame: Frame,
    points: PointCloud | np.ndarray | str | None = "auto",
    gt: Boxes3D | np.ndarray | str | None = "auto",
    pred: Boxes3D | np.ndarray | None = None,
    scores: np.ndarray | None = None,
    boxes_2d: Mapping[str, Boxes2D] | None = None,
    title: str | None = None,
    **kwargs,
) -> Path:
    """:func:`save_grid` for a :class:`Frame`: its images, calibrations, points and labels.

    Args:
        path: output PNG.
        frame: the frame; its images are decoded here.
        points: ``"auto"``: the frame's point cloud (all lasers, both returns), or given.
        gt: ``"auto"``: the frame's 3D labels, or given (None for none).
        pred, scores, boxes_2d, title: as in :func:`save_grid`.
        **kwargs: passed to :func:`save_grid`.
    """
    if isinstance(points, str):
        points = frame.point_cloud() if frame.range_images else None
    if isinstance(gt, str):
        gt = frame.boxes
    images = {n: frame.images[n] for n in frame.image_bytes if n in frame.cameras}
    return save_grid(
        path,
        images,
        frame.cameras,
        points=points,
        gt=gt,
        pred=pred,
        scores=scores,
        boxes_2d=boxes_2d,
        title=title if title is not None else f"{frame.segment}  t={frame.timestamp_us}",
        **kwargs,
    )
