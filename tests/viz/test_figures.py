"""The five-camera + BEV grid."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from perceive.datasets.waymo.fixtures import make_frame
from perceive.viz.common import save_image
from perceive.viz.figures import save_frame_figure, save_grid


def test_frame_figure(tmp_path: Path) -> None:
    frame = make_frame(1, image_size=(96, 64))
    path = save_frame_figure(
        tmp_path / "f.png", frame, panel_width=200, pred=frame.boxes.to_array()
    )
    img = cv2.imread(str(path))
    assert img is not None and img.shape[1] == 600


def test_grid_with_missing_cameras_and_no_bev(tmp_path: Path) -> None:
    frame = make_frame(2, image_size=(96, 64), cameras=("FRONT",), lasers=())
    images = {"FRONT": frame.images["FRONT"]}
    path = save_grid(
        tmp_path / "g.png", images, frame.cameras, bev=False, panel_width=150, colors=32
    )
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.shape[1] == 450


def test_save_image_round_trip(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 255
    path = save_image(rgb, tmp_path / "red.png")
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, rgb)
