"""Drawing on camera images: LiDAR points coloured by depth, 2D boxes, 3D box wireframes.

Every function draws into a matplotlib ``Axes`` that shows the image in pixel
coordinates (u right, v down), so panels compose into grids (see
:mod:`perceive.viz.figures`). 3D geometry goes through
:meth:`CameraCalibration.project <perceive.datasets.types.CameraCalibration.project>`,
the Waymo distortion model included: box edges are sampled and drawn as curves,
and parts behind the camera or where the distortion model is invalid are left out.

>>> fig = new_figure(12, 8)                                   # doctest: +SKIP
>>> ax = fig.add_subplot()                                    # doctest: +SKIP
>>> show_image(ax, frame.images["FRONT"])                     # doctest: +SKIP
>>> draw_points_camera(ax, frame.cameras["FRONT"], frame.point_cloud())  # doctest: +SKIP
>>> draw_boxes_3d(ax, frame.cameras["FRONT"], frame.boxes)    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.patches import Rectangle

from perceive.datasets.types import Boxes2D, Boxes3D, CameraCalibration, PointCloud
from perceive.viz.common import (
    GT_STYLE,
    PRED_STYLE,
    as_boxes2d,
    as_boxes3d,
    new_figure,
    point_arrays,
    save_figure,
    subsample,
    type_color,
)

#: The 12 edges of a box as pairs of corner indices (corner order of ``box_corners``).
BOX_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 0),  # bottom
    (4, 5),
    (5, 6),
    (6, 7),
    (7, 4),  # top
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),  # verticals
)
#: Front face edges (corners 0, 3, 4, 7 are at +x, the heading side): drawn crossed.
FRONT_CROSS: tuple[tuple[int, int], ...] = ((0, 7), (3, 4))


def fit_image(
    image: np.ndarray, camera: CameraCalibration, max_width: int | None
) -> tuple[np.ndarray, CameraCalibration]:
    """Downscale an image (INTER_AREA) and its calibration so its width is at most ``max_width``."""
    h, w = image.shape[:2]
    if max_width is None or w <= max_width:
        return image, camera
    nw, nh = int(max_width), max(1, round(h * max_width / w))
    return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA), camera.resized(nw, nh)


def show_image(ax: Axes, image: np.ndarray, title: str | None = None) -> None:
    """Show an (H, W, 3) uint8 RGB image in pixel coordinates, without axes."""
    h, w = image.shape[:2]
    ax.imshow(image, extent=(0, w, h, 0), interpolation="antialiased")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def project_loose(camera: CameraCalibration, xyz: np.ndarray, margin: float = 1.0):
    """Project points, keeping those off the image too (within ``margin`` image sizes).

    Returns ``(uv (N, 2), depth (N,), ok (N,))``: ``ok`` is in front of the camera,
    distortion factor in range, and within the enlarged image (points beyond it are
    where the polynomial distortion model stops being meaningful).
    """
    w, h = camera.width, camera.height
    mw, mh = int(np.ceil(margin * w)), int(np.ceil(margin * h))
    intr = camera.intrinsic.copy()
    intr[2] += mw
    intr[3] += mh
    big = replace(camera, intrinsic=intr, width=w + 2 * mw, height=h + 2 * mh)
    uv, depth, ok = big.project(xyz)
    return uv - [mw, mh], depth, ok


def draw_points_camera(
    ax: Axes,
    camera: CameraCalibration,
    points: PointCloud | np.ndarray,
    max_depth: float = 60.0,
    max_points: int | None = 100_000,
    size: float = 1.0,
    cmap: str = "turbo",
):
    """Scatter vehicle-frame points projected into the image, coloured by depth.

    Args:
        ax: axes showing the camera's image (same size as the calibration).
        camera: the calibration.
        points: a cloud or an (N, >=3) array, vehicle frame, metres.
        max_depth: depth (metres) at the end of the colour map.
        max_points: draw at most this many of the visible points.
        size: marker area, points^2.
        cmap: matplotlib colour map name (near: start of the map).

    Returns:
        The scatter artist, or None when no point is visible.
    """
    xyz, _ = point_arrays(points)
    uv, depth, valid = camera.project(xyz)
    idx = np.flatnonzero(valid)
    idx = idx[subsample(idx.size, max_points)]
    if idx.size == 0:
        return None
    order = idx[np.argsort(-depth[idx])]  # far first, near on top
    return ax.scatter(
        uv[order, 0],
        uv[order, 1],
        c=depth[order],
        s=size,
        cmap=cmap,
        vmin=0.0,
        vmax=max_depth,
        linewidths=0,
        rasterized=True,
    )


def draw_boxes_2d(
    ax: Axes,
    boxes: Boxes2D | np.ndarray,
    prediction: bool = False,
    color: tuple[float, float, float] | None = None,
    labels: list[str] | None = None,
    linewidth: float | None = None,
) -> None:
    """Axis-aligned image boxes.

    Args:
        ax: axes showing the image.
        boxes: :class:`Boxes2D` or an (N, 4) array ``u_min, v_min, u_max, v_max``.
        prediction: dashed (predictions) instead of solid (ground truth).
        color: one colour for all boxes instead of the colour of each type.
        labels: text written at each box's top-left corner.
        linewidth: overrides the style's line width.
    """
    boxes = as_boxes2d(boxes)
    style = dict(PRED_STYLE if prediction else GT_STYLE)
    if linewidth is not None:
        style["linewidth"] = linewidth
    for i, (u0, v0, u1, v1) in enumerate(boxes.xyxy()):
        c = color or type_color(boxes.type[i])
        ax.add_patch(Rectangle((u0, v0), u1 - u0, v1 - v0, fill=False, edgecolor=c, **style))
        if labels is not None and i < len(labels):
            ax.text(u0, v0, labels[i], color=c, fontsize=6, va="bottom", clip_on=True)


def box_wireframes(
    camera: CameraCalibration, boxes: Boxes3D, samples: int = 12, front_cross: bool = True
) -> list[list[np.ndarray]]:
    """Projected wireframe polylines of each box.

    Each edge is sampled at ``samples`` points so that lens distortion bends it as
    in the image; pieces behind the camera or outside the distortion model's valid
    range are cut out.

    Returns:
        For each box, a list of (K, 2) pixel polylines (possibly empty).
    """
    corners = boxes.corners()
    edges = list(BOX_EDGES) + (list(FRONT_CROSS) if front_cross else [])
    a = np.array([e[0] for e in edges])
    b = np.array([e[1] for e in edges])
    t = np.linspace(0.0, 1.0, samples)[:, None]
    out: list[list[np.ndarray]] = []
    for k in range(len(boxes)):
        c = corners[k]
        pts = c[a][:, None, :] * (1 - t) + c[b][:, None, :] * t  # (E, S, 3)
        uv, _, ok = project_loose(camera, pts.reshape(-1, 3))
        uv, ok = uv.reshape(len(edges), samples, 2), ok.reshape(len(edges), samples)
        lines = []
        for e in range(len(edges)):
            # Split each edge into runs of consecutive valid samples.
            run: list[np.ndarray] = []
            for s in range(samples):
                if ok[e, s]:
                    run.append(uv[e, s])
                elif run:
                    if len(run) > 1:
                        lines.append(np.array(run))
                    run = []
            if len(run) > 1:
                lines.append(np.array(run))
        out.append(lines)
    return out


def draw_boxes_3d(
    ax: Axes,
    camera: CameraCalibration,
    boxes: Boxes3D | np.ndarray,
    prediction: bool = False,
    color: tuple[float, float, float] | None = None,
    linewidth: float | None = None,
) -> None:
    """Wireframes of vehicle-frame 3D boxes projected into the image (front face crossed).

    Args:
        ax: axes showing the camera's image (same size as the calibration).
        camera: the calibration.
        boxes: :class:`Boxes3D` or an (N, 7) array.
        prediction: dashed (predictions) instead of solid (ground truth).
        color: one colour for all boxes instead of the colour of each type.
        linewidth: overrides the style's line width.
    """
    boxes = as_boxes3d(boxes)
    if len(boxes) == 0:
        return
    style = dict(PRED_STYLE if prediction else GT_STYLE)
    if linewidth is not None:
        style["linewidth"] = linewidth
    segments, colors = [], []
    for k, lines in enumerate(box_wireframes(camera, boxes)):
        segments += lines
        colors += [color or type_color(boxes.type[k])] * len(lines)
    if segments:
        ax.add_collection(LineCollection(segments, colors=colors, **style))


def image_boxes_of_3d(camera: CameraCalibration, boxes: Boxes3D) -> tuple[Boxes2D, np.ndarray]:
    """The 2D box around each 3D box's projected corners, clipped to the image.

    The same construction as the dataset's ``projected_lidar_labels``. Only boxes whose
    eight corners all project meaningfully get one: in front of the camera, with the
    distortion factor in its valid range, within one image size of the image (see
    :func:`project_loose`); far off-axis the distortion polynomial folds back and the
    "box" would be nonsense.

    Returns:
        ``(boxes2d, index)``: the 2D boxes and (M,) int64 indices into ``boxes``.
    """
    if len(boxes) == 0:
        return Boxes2D.empty(), np.zeros(0, np.int64)
    corners = boxes.corners()
    uv, _, ok = project_loose(camera, corners.reshape(-1, 3))
    uv, ok = uv.reshape(-1, 8, 2), ok.reshape(-1, 8)
    keep = np.flatnonzero(ok.all(axis=1))
    size = np.array([camera.width, camera.height], np.float64)
    lo = np.clip(uv[keep].min(axis=1), 0, size)
    hi = np.clip(uv[keep].max(axis=1), 0, size)
    nonempty = ((hi - lo) > 0).all(axis=1)
    keep, lo, hi = keep[nonempty], lo[nonempty], hi[nonempty]
    return (
        Boxes2D(center=(lo + hi) / 2, size=hi - lo, type=boxes.type[keep], ids=boxes.ids[keep]),
        keep,
    )


def draw_camera(
    ax: Axes,
    image: np.ndarray,
    camera: CameraCalibration,
    points: PointCloud | np.ndarray | None = None,
    gt: Boxes3D | np.ndarray | None = None,
    pred: Boxes3D | np.ndarray | None = None,
    boxes_2d: Boxes2D | np.ndarray | None = None,
    title: str | None = None,
    max_width: int | None = 960,
    max_depth: float = 60.0,
    pred_2d: Boxes2D | np.ndarray | None = None,
) -> None:
    """A complete camera panel: image, points by depth, 2D boxes, 3D wireframes.

    Args:
        ax: the axes.
        image: (H, W, 3) uint8 RGB, the size of ``camera``.
        camera: its calibration.
        points: LiDAR points, vehicle frame (optional).
        gt: ground-truth 3D boxes (solid wireframes).
        pred: predicted 3D boxes (dashed wireframes).
        boxes_2d: 2D boxes drawn as thin solid white rectangles (e.g. the file's labels).
        title: panel title.
        max_width: downscale wider images first (faster, smaller files); None keeps the size.
        max_depth: depth at the end of the colour map, metres.
        pred_2d: 2D boxes drawn dashed in the colour of their type (e.g. predictions, or
            boxes computed here to compare with ``boxes_2d``).
    """
    if image.shape[:2] != (camera.height, camera.width):
        raise ValueError(
            f"camera {camera.name}: image is {image.shape[1]}x{image.shape[0]}, "
            f"calibration {camera.width}x{camera.height}"
        )
    scale = 1.0
    small, cam = fit_image(image, camera, max_width)
    if cam is not camera:
        scale = cam.width / camera.width
    show_image(ax, small, title)
    if points is not None:
        draw_points_camera(ax, cam, points, max_depth=max_depth)
    if boxes_2d is not None:
        b2 = as_boxes2d(boxes_2d)
        b2 = Boxes2D(center=b2.center * scale, size=b2.size * scale, type=b2.type, ids=b2.ids)
        draw_boxes_2d(ax, b2, color=(1.0, 1.0, 1.0), linewidth=0.8)
    if pred_2d is not None:
        p2 = as_boxes2d(pred_2d)
        p2 = Boxes2D(center=p2.center * scale, size=p2.size * scale, type=p2.type, ids=p2.ids)
        draw_boxes_2d(ax, p2, prediction=True)
    if gt is not None:
        draw_boxes_3d(ax, cam, gt)
    if pred is not None:
        draw_boxes_3d(ax, cam, pred, prediction=True)


def save_camera(
    path: str | Path,
    image: np.ndarray,
    camera: CameraCalibration,
    *,
    dpi: int = 100,
    colors: int | None = None,
    **panel: Any,
) -> Path:
    """Draw one camera panel and write it as a PNG atomically.

    Args:
        path: the PNG to write.
        image, camera: as for :func:`draw_camera`.
        dpi: resolution of the figure (the panel keeps the image's pixel size).
        colors: ask for a palette PNG of at most that many colours (smaller files).
        **panel: the other keyword arguments of :func:`draw_camera` (``points``, ``gt``,
            ``pred``, ``boxes_2d``, ``pred_2d``, ``title``, ``max_width``, ``max_depth``).
    """
    max_width = panel.setdefault("max_width", 960)
    title = panel.get("title")
    w = min(camera.width, max_width or camera.width)
    h = camera.height * w / camera.width
    fig = new_figure(w / dpi, h / dpi + (0.3 if title else 0.0), dpi)
    ax = fig.add_axes((0, 0, 1, h / (h + (30 if title else 0))))
    draw_camera(ax, image, camera, **panel)
    return save_figure(fig, path, colors=colors)
