"""Pictures of frames, point clouds and boxes (matplotlib, Agg canvas, PNG written atomically).

- :mod:`perceive.viz.bev`: bird's-eye view of a point cloud (by height or intensity)
  with 3D boxes as oriented rectangles and heading ticks; ground truth solid,
  predictions dashed, coloured by object type.
- :mod:`perceive.viz.camera`: on a camera image, LiDAR points coloured by depth, 2D
  boxes and projected 3D box wireframes (Waymo distortion model included).
- :mod:`perceive.viz.figures`: the five cameras and a BEV in one PNG.
- :mod:`perceive.viz.common`: colours per type, figure creation and atomic saving.

Every ``draw_*`` function draws into a given matplotlib ``Axes`` (compose freely);
every ``save_*`` function builds its own figure and writes a PNG. Inputs are our
typed data (:class:`~perceive.datasets.types.Frame`, ``PointCloud``, ``Boxes3D``,
``Boxes2D``, ``CameraCalibration``) or plain arrays: points (N, >=3) with optional
intensity in column 3, 3D boxes (N, 7) ``x, y, z, l, w, h, heading``, 2D boxes (N, 4)
``u_min, v_min, u_max, v_max``.
"""

from __future__ import annotations

from perceive.viz.bev import draw_bev, draw_boxes_bev, draw_points_bev, save_bev
from perceive.viz.camera import (
    draw_boxes_2d,
    draw_boxes_3d,
    draw_camera,
    draw_points_camera,
    image_boxes_of_3d,
    save_camera,
)
from perceive.viz.common import TYPE_COLORS, new_figure, save_figure, save_image
from perceive.viz.figures import save_frame_figure, save_grid

__all__ = [
    "TYPE_COLORS",
    "draw_bev",
    "draw_boxes_2d",
    "draw_boxes_3d",
    "draw_boxes_bev",
    "draw_camera",
    "draw_points_bev",
    "draw_points_camera",
    "image_boxes_of_3d",
    "new_figure",
    "save_bev",
    "save_camera",
    "save_figure",
    "save_frame_figure",
    "save_grid",
    "save_image",
]
