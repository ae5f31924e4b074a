"""Bird's-eye view: a point cloud seen from above with 3D boxes as oriented rectangles.

Vehicle frame (x forward, y left), drawn with x pointing up the picture and y to the
left, as a driver sees the map. Ground truth is drawn in solid lines, predictions in
dashed lines, both coloured by object type; a short tick from each box centre to
the middle of its front edge shows the heading.

>>> fig = new_figure(8, 8)                                        # doctest: +SKIP
>>> ax = fig.add_subplot()                                        # doctest: +SKIP
>>> draw_bev(ax, points=frame.point_cloud(), gt=frame.boxes)      # doctest: +SKIP
>>> save_bev("bev.png", points=frame.point_cloud(), gt=frame.boxes, pred=boxes, scores=s)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from perceive.datasets.types import Boxes3D, PointCloud
from perceive.viz.common import (
    GT_STYLE,
    PRED_STYLE,
    as_boxes3d,
    new_figure,
    point_arrays,
    save_figure,
    subsample,
    type_color,
    type_name,
)

#: Default view: (x_min, x_max, y_min, y_max), vehicle frame, metres.
DEFAULT_EXTENT: tuple[float, float, float, float] = (-40.0, 80.0, -60.0, 60.0)


def _to_plot(xy: np.ndarray) -> np.ndarray:
    """Vehicle (x, y) -> plot (horizontal, vertical) = (-y, x): forward is up, left is left."""
    return np.stack([-xy[..., 1], xy[..., 0]], axis=-1)


def box_outlines(boxes: Boxes3D) -> tuple[np.ndarray, np.ndarray]:
    """Footprints and heading ticks of boxes, vehicle frame.

    Returns:
        ``outline`` (N, 5, 2) float64 closed footprint polygons (x, y), and ``tick`` (N, 2, 2)
        segments from each centre to the middle of its front face.
    """
    # Bottom face: front-left, rear-left, rear-right, front-right.
    corners = boxes.corners()[:, :4, :2]
    outline = np.concatenate([corners, corners[:, :1]], axis=1)
    front = (corners[:, 0] + corners[:, 3]) / 2
    tick = np.stack([boxes.center[:, :2], front], axis=1)
    return outline, tick


def draw_points_bev(
    ax: Axes,
    points: PointCloud | np.ndarray,
    color_by: str = "height",
    extent: tuple[float, float, float, float] = DEFAULT_EXTENT,
    max_points: int | None = 200_000,
    size: float = 0.3,
    value_range: tuple[float, float] | None = None,
    cmap: str | None = None,
):
    """Scatter points seen from above.

    Args:
        ax: the axes.
        points: a :class:`PointCloud` or an (N, >=3) array (column 3 is intensity).
        color_by: ``"height"`` (z, metres) or ``"intensity"``.
        extent: (x_min, x_max, y_min, y_max) of the view; points outside are dropped.
        max_points: draw a random subset of at most this many points (None: all).
        size: marker area, points^2.
        value_range: colour scale limits (default: z in [-2, 4] m, intensity in [0, 1]).
        cmap: a matplotlib colour map name.

    Returns:
        The scatter artist (for a colour bar), or None when there is nothing to draw.
    """
    xyz, intensity = point_arrays(points)
    if color_by == "height":
        values, default_range, default_cmap = xyz[:, 2], (-2.0, 4.0), "viridis"
    elif color_by == "intensity":
        if intensity is None:
            raise ValueError("color_by='intensity' needs a PointCloud or an (N, 4) array")
        values, default_range, default_cmap = np.tanh(intensity), (0.0, 1.0), "inferno"
    else:
        raise ValueError(f"color_by must be 'height' or 'intensity', not {color_by!r}")
    x0, x1, y0, y1 = extent
    inside = (xyz[:, 0] >= x0) & (xyz[:, 0] <= x1) & (xyz[:, 1] >= y0) & (xyz[:, 1] <= y1)
    idx = np.flatnonzero(inside)[subsample(int(inside.sum()), max_points)]
    if idx.size == 0:
        return None
    p = _to_plot(xyz[idx, :2])
    lo, hi = value_range or default_range
    return ax.scatter(
        p[:, 0],
        p[:, 1],
        c=values[idx],
        s=size,
        cmap=cmap or default_cmap,
        vmin=lo,
        vmax=hi,
        linewidths=0,
        rasterized=True,
    )


def draw_boxes_bev(
    ax: Axes,
    boxes: Boxes3D | np.ndarray,
    prediction: bool = False,
    scores: np.ndarray | None = None,
    color: tuple[float, float, float] | None = None,
    show_ids: bool = False,
) -> None:
    """Draw boxes as oriented rectangles with a heading tick.

    Args:
        ax: the axes.
        boxes: :class:`Boxes3D` or an (N, 7) array (type unknown).
        prediction: dashed lines (predictions) instead of solid ones (ground truth).
        scores: (N,) scores written beside predicted boxes.
        color: one colour for all boxes instead of the colour of each type.
        show_ids: write each box's tracking id.
    """
    boxes = as_boxes3d(boxes)
    if len(boxes) == 0:
        return
    outline, tick = box_outlines(boxes)
    colors = [color or type_color(t) for t in boxes.type]
    style = dict(PRED_STYLE if prediction else GT_STYLE)
    ax.add_collection(LineCollection(list(_to_plot(outline)), colors=colors, **style))
    ax.add_collection(
        LineCollection(list(_to_plot(tick)), colors=colors, linewidth=style["linewidth"])
    )
    labels = []
    if scores is not None:
        labels = [f"{s:.2f}" for s in np.asarray(scores).reshape(-1)]
    elif show_ids:
        labels = [str(i)[:6] for i in boxes.ids]
    for lab, c, corner in zip(labels, colors, outline[:, 0], strict=False):
        x, y = _to_plot(corner)
        ax.text(x, y, lab, color=c, fontsize=6, ha="left", va="bottom", clip_on=True)


def draw_ego(ax: Axes, length: float = 4.8, width: float = 2.1) -> None:
    """The ego vehicle: a grey rectangle at the origin pointing forward."""
    ego = Boxes3D(
        center=[[length / 2 - 1.0, 0, 0]], size=[[length, width, 1.5]], heading=[0.0], type=[0]
    )
    outline, tick = box_outlines(ego)
    ax.fill(*_to_plot(outline[0]).T, color="0.5", alpha=0.8, zorder=3)
    ax.plot(*_to_plot(tick[0]).T, color="w", linewidth=1, zorder=4)


def draw_bev(
    ax: Axes,
    points: PointCloud | np.ndarray | None = None,
    gt: Boxes3D | np.ndarray | None = None,
    pred: Boxes3D | np.ndarray | None = None,
    scores: np.ndarray | None = None,
    color_by: str = "height",
    extent: tuple[float, float, float, float] = DEFAULT_EXTENT,
    max_points: int | None = 200_000,
    title: str | None = None,
    legend: bool = True,
    dark: bool = True,
) -> None:
    """A complete BEV panel: points, ground truth, predictions, ego vehicle, legend, grid.

    Args:
        ax: the axes to draw into.
        points: cloud or (N, >=3) array, vehicle frame, metres (optional).
        gt: ground-truth boxes (solid), vehicle frame.
        pred: predicted boxes (dashed), vehicle frame.
        scores: (N,) scores of ``pred``, written beside them.
        color_by: ``"height"`` or ``"intensity"``.
        extent: (x_min, x_max, y_min, y_max) vehicle frame, metres.
        max_points: point subsampling limit.
        title: panel title.
        legend: draw a legend of the object types present and the line styles.
        dark: black background (points read better).
    """
    bg, fg = ("black", "0.85") if dark else ("white", "0.2")
    ax.set_facecolor(bg)
    if points is not None:
        draw_points_bev(ax, points, color_by=color_by, extent=extent, max_points=max_points)
    gt_boxes, pred_boxes = as_boxes3d(gt), as_boxes3d(pred)
    draw_boxes_bev(ax, gt_boxes)
    draw_boxes_bev(ax, pred_boxes, prediction=True, scores=scores)
    draw_ego(ax)
    x0, x1, y0, y1 = extent
    ax.set_xlim(-y1, -y0)
    ax.set_ylim(x0, x1)
    ax.set_aspect("equal")
    ax.grid(True, color=fg, alpha=0.25, linewidth=0.5)
    ax.set_xlabel("-y (left <-> right), m", fontsize=8)
    ax.set_ylabel("x (forward), m", fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    if legend:
        types = sorted(set(gt_boxes.type.tolist()) | set(pred_boxes.type.tolist()))
        handles = [
            Line2D([], [], color=type_color(t), **GT_STYLE, label=type_name(t)) for t in types
        ]
        if len(gt_boxes) and len(pred_boxes):
            handles += [
                Line2D([], [], color=fg, **GT_STYLE, label="ground truth"),
                Line2D([], [], color=fg, **PRED_STYLE, label="prediction"),
            ]
        if handles:
            leg = ax.legend(handles=handles, loc="upper right", fontsize=6, framealpha=0.6)
            leg.get_frame().set_facecolor(bg)
            for text in leg.get_texts():
                text.set_color(fg)


def save_bev(
    path: str | Path,
    points: PointCloud | np.ndarray | None = None,
    gt: Boxes3D | np.ndarray | None = None,
    pred: Boxes3D | np.ndarray | None = None,
    scores: np.ndarray | None = None,
    color_by: str = "height",
    extent: tuple[float, float, float, float] = DEFAULT_EXTENT,
    max_points: int | None = 200_000,
    title: str | None = None,
    size_in: float = 8.0,
    dpi: int = 100,
    colors: int | None = None,
) -> Path:
    """Draw a BEV (see :func:`draw_bev`) and write it as a PNG atomically. Returns the path.

    ``size_in`` is the figure height in inches; ``colors`` asks for a palette PNG.
    """
    x0, x1, y0, y1 = extent
    fig = new_figure(size_in * (y1 - y0) / (x1 - x0) + 0.8, size_in, dpi)
    ax = fig.add_subplot()
    draw_bev(ax, points, gt, pred, scores, color_by, extent, max_points, title)
    fig.tight_layout()
    return save_figure(fig, path, colors=colors)
