"""Bird's-eye-view drawing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from perceive.datasets.types import Boxes3D
from perceive.datasets.waymo.fixtures import make_frame
from perceive.viz.bev import _to_plot, box_outlines, draw_bev, save_bev
from perceive.viz.common import as_boxes3d, new_figure


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"{path} is not a readable PNG"
    return img


def test_box_outline_and_heading_tick() -> None:
    boxes = Boxes3D(center=[[10, 5, 1]], size=[[4, 2, 1.5]], heading=[np.pi / 2], type=[1])
    outline, tick = box_outlines(boxes)
    assert outline.shape == (1, 5, 2) and tick.shape == (1, 2, 2)
    np.testing.assert_allclose(outline[0, 0], outline[0, 4])  # closed
    # Heading pi/2: the front face is 2 m further along +y.
    np.testing.assert_allclose(tick[0], [[10, 5], [10, 7]], atol=1e-12)
    # Plot axes: forward (x) is up, left (+y) is to the left.
    np.testing.assert_allclose(_to_plot(np.array([[10.0, 5.0]])), [[-5.0, 10.0]])


def test_array_boxes_are_accepted() -> None:
    arr = np.array([[1, 2, 3, 4, 2, 1.5, 0.3]], np.float32)
    b = as_boxes3d(arr, types=[2])
    assert len(b) == 1 and b.type.tolist() == [2]
    np.testing.assert_allclose(b.to_array(), arr)
    assert len(as_boxes3d(None)) == 0


def test_save_bev_with_points_gt_and_predictions(tmp_path: Path) -> None:
    frame = make_frame(0)
    pc = frame.point_cloud()
    pred = frame.boxes.to_array() + np.array([0.5, 0, 0, 0, 0, 0, 0.1], np.float32)
    path = save_bev(
        tmp_path / "a" / "bev.png", pc, gt=frame.boxes, pred=pred, scores=np.linspace(1, 0.5, 4)
    )
    img = _read(path)
    assert img.shape[0] == 800 and img.std() > 5
    intensity = save_bev(tmp_path / "i.png", pc.features()[:, :4], color_by="intensity", colors=64)
    assert _read(intensity).shape[0] == 800
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "i.png"]  # no temp files left


def test_empty_inputs_still_draw(tmp_path: Path) -> None:
    path = save_bev(tmp_path / "empty.png", np.zeros((0, 3)), gt=None)
    assert _read(path).shape[0] == 800


def test_boxes_land_where_expected(tmp_path: Path) -> None:
    """A single box far ahead in an otherwise empty view colours the top of the picture."""
    fig = new_figure(4, 4, dpi=50)
    ax = fig.add_axes((0, 0, 1, 1))
    box = Boxes3D(center=[[30, 0, 0]], size=[[8, 8, 2]], heading=[0.0], type=[1])
    draw_bev(ax, gt=box, extent=(-40, 40, -40, 40), legend=False, dark=True)
    ax.set_axis_off()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    blue = (img[..., 2] > 150) & (img[..., 0] < 100)
    rows = np.flatnonzero(blue.any(axis=1))
    assert rows.size and rows.max() < img.shape[0] * 0.4  # in the upper part (forward)


def test_bad_color_by() -> None:
    fig = new_figure(2, 2)
    with pytest.raises(ValueError, match="color_by"):
        draw_bev(fig.add_subplot(), points=np.zeros((3, 3)), color_by="speed")
    with pytest.raises(ValueError, match="intensity"):
        draw_bev(fig.add_subplot(), points=np.zeros((3, 3)), color_by="intensity")
