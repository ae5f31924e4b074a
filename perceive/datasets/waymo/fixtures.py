"""Small generated Waymo frames with known content, for tests and examples.

:func:`make_frame` fills range images with random ranges in chosen pixels and
remembers nothing else: the expected points of a pixel follow from the format's
definition, which tests recompute independently. The synthetic-data generator in
:mod:`perceive.synth` makes realistic scenes; this module makes tiny, fast ones.
"""

from __future__ import annotations

import numpy as np

from perceive.datasets.image import encode_jpeg
from perceive.datasets.types import (
    CAMERA_NAMES,
    Boxes2D,
    Boxes3D,
    CameraCalibration,
    Frame,
    FrameContext,
    LaserCalibration,
    RangeImage,
)
from perceive.geometry.transforms import euler_to_rotation, make_transform

#: Waymo-like laser mounting: (x, y, z, roll, pitch, yaw), metres and radians.
LASER_MOUNTS: dict[str, tuple[float, float, float, float, float, float]] = {
    "TOP": (1.43, 0.0, 2.18, 0.0, 0.0, -0.0196),
    "FRONT": (4.07, 0.0, 0.69, 0.0, 0.06, 0.0),
    "SIDE_LEFT": (3.25, 1.02, 0.98, 0.0, 0.05, np.pi / 2),
    "SIDE_RIGHT": (3.25, -1.02, 0.98, 0.0, 0.05, -np.pi / 2),
    "REAR": (-1.15, 0.0, 0.46, 0.0, 0.06, np.pi),
}

#: Waymo-like camera mounting: (x, y, z, yaw) in the vehicle frame.
CAMERA_MOUNTS: dict[str, tuple[float, float, float, float]] = {
    "FRONT": (1.54, -0.02, 2.12, 0.0),
    "FRONT_LEFT": (1.50, 0.10, 2.11, np.deg2rad(45.0)),
    "FRONT_RIGHT": (1.50, -0.12, 2.11, np.deg2rad(-45.0)),
    "SIDE_LEFT": (1.40, 0.12, 2.10, np.deg2rad(90.0)),
    "SIDE_RIGHT": (1.40, -0.14, 2.10, np.deg2rad(-90.0)),
}


def laser_calibration(name: str, height: int) -> LaserCalibration:
    """A Waymo-like calibration; TOP has explicit non-uniform inclinations, the others uniform."""
    x, y, z, roll, pitch, yaw = LASER_MOUNTS[name]
    ext = make_transform(euler_to_rotation(roll, pitch, yaw), [x, y, z])
    if name == "TOP":
        # Denser beams near the horizon, like the real TOP laser (-17.6 to +2.4 degrees).
        t = np.linspace(-1.0, 1.0, height)
        incl = np.deg2rad(-7.6 + 10.0 * np.sign(t) * np.abs(t) ** 1.6)
        return LaserCalibration(name, ext, np.sort(incl), float(incl.min()), float(incl.max()))
    return LaserCalibration(name, ext, np.zeros(0), np.deg2rad(-90.0), np.deg2rad(30.0))


def camera_calibration(name: str, width: int, height: int) -> CameraCalibration:
    """A Waymo-like calibration for an image of ``width`` x ``height`` pixels."""
    x, y, z, yaw = CAMERA_MOUNTS[name]
    f = 2060.0 * width / 1920.0
    intrinsic = np.array(
        [f, f, width / 2 + 3.1, height / 2 - 2.2, 0.035, -0.31, 0.0006, -0.0004, 0.0]
    )
    return CameraCalibration(
        name,
        intrinsic,
        make_transform(euler_to_rotation(0.0, 0.0, yaw), [x, y, z]),
        width,
        height,
        5,
    )


def make_frame(
    seed: int = 0,
    *,
    top_shape: tuple[int, int] = (16, 128),
    side_shape: tuple[int, int] = (8, 32),
    lasers: tuple[str, ...] = ("TOP", "FRONT", "SIDE_LEFT", "SIDE_RIGHT", "REAR"),
    cameras: tuple[str, ...] = CAMERA_NAMES,
    image_size: tuple[int, int] = (64, 48),
    fill: float = 0.7,
    with_pixel_pose: bool = True,
    num_boxes: int = 4,
) -> Frame:
    """A small frame with random range images, images and boxes.

    Args:
        seed: random seed; the frame is a pure function of the arguments.
        top_shape: (H, W) of the TOP range images.
        side_shape: (H, W) of the other lasers' range images.
        lasers, cameras: which sensors to include.
        image_size: (width, height) of every camera image.
        fill: fraction of range-image pixels that hold a point.
        with_pixel_pose: give the TOP laser a per-pixel pose.
        num_boxes: number of 3D boxes.
    """
    rng = np.random.default_rng(seed)
    pose = make_transform(
        euler_to_rotation(0.01, -0.02, rng.uniform(-np.pi, np.pi)), rng.uniform(-50, 50, 3)
    )
    laser_cals = {}
    range_images: dict[tuple[str, int], RangeImage] = {}
    for name in lasers:
        h, w = top_shape if name == "TOP" else side_shape
        laser_cals[name] = laser_calibration(name, h)
        pixel_pose = None
        if name == "TOP" and with_pixel_pose:
            pixel_pose = np.empty((h, w, 6), np.float32)
            pixel_pose[..., :3] = rng.normal(0, 0.01, (h, w, 3))
            pixel_pose[..., 2] += np.arctan2(pose[1, 0], pose[0, 0])
            pixel_pose[..., 3:] = pose[:3, 3] + rng.normal(0, 0.3, (h, w, 3))
        for ret in (1, 2):
            vals = np.zeros((h, w, 4), np.float32)
            hit = rng.random((h, w)) < (fill if ret == 1 else fill / 3)
            vals[..., 0] = np.where(hit, rng.uniform(0.5, 75.0, (h, w)), -1.0)
            vals[..., 1] = np.where(hit, rng.uniform(0, 1, (h, w)), 0)
            vals[..., 2] = np.where(hit, rng.uniform(0, 0.5, (h, w)), 0)
            vals[..., 3] = np.where(hit & (rng.random((h, w)) < 0.05), 1.0, -1.0)
            cp = np.zeros((h, w, 6), np.int32)
            cp[..., 0] = np.where(hit, rng.integers(0, 6, (h, w)), 0)
            cp[..., 1] = rng.integers(0, image_size[0], (h, w))
            cp[..., 2] = rng.integers(0, image_size[1], (h, w))
            range_images[(name, ret)] = RangeImage(
                name, ret, vals, cp, pixel_pose if ret == 1 else None
            )
    cams = {n: camera_calibration(n, *image_size) for n in cameras}
    image_bytes = {}
    for n in cameras:
        img = rng.integers(0, 255, (image_size[1], image_size[0], 3), dtype=np.uint8)
        image_bytes[n] = encode_jpeg(img)
    boxes = Boxes3D(
        center=np.c_[
            rng.uniform(5, 40, num_boxes),
            rng.uniform(-10, 10, num_boxes),
            rng.uniform(0.5, 1.5, num_boxes),
        ],
        size=np.c_[
            rng.uniform(3.5, 5.0, num_boxes),
            rng.uniform(1.7, 2.1, num_boxes),
            rng.uniform(1.4, 2.0, num_boxes),
        ],
        heading=rng.uniform(-np.pi, np.pi, num_boxes),
        type=rng.integers(1, 5, num_boxes),
        ids=[f"obj{seed}_{i}" for i in range(num_boxes)],
        difficulty=rng.integers(1, 3, num_boxes),
        num_lidar_points=rng.integers(0, 300, num_boxes),
        num_top_lidar_points=rng.integers(0, 200, num_boxes),
        speed=rng.normal(0, 3, (num_boxes, 3)),
        accel=rng.normal(0, 1, (num_boxes, 3)),
    )
    projected = {}
    for n, cal in cams.items():
        corners = boxes.corners().reshape(-1, 3)
        uv, depth, _ = cal.project(corners)
        uv = uv.reshape(num_boxes, 8, 2)
        front = (depth.reshape(num_boxes, 8) > 0).all(axis=1)
        lo, hi = uv.min(axis=1)[front], uv.max(axis=1)[front]
        projected[n] = Boxes2D(
            center=(lo + hi) / 2,
            size=hi - lo,
            type=boxes.type[front],
            ids=[f"{i}_{n}" for i in boxes.ids[front]],
        )
    return Frame(
        context=FrameContext(
            segment=f"fixture_{seed}", time_of_day="Day", location="location_test", weather="sunny"
        ),
        timestamp_us=1_600_000_000_000_000 + seed * 100_000,
        pose=pose,
        cameras=cams,
        lasers=laser_cals,
        image_bytes=image_bytes,
        range_images=range_images,
        boxes=boxes,
        camera_boxes={n: Boxes2D.empty() for n in cameras},
        projected_boxes=projected,
        source=f"fixture seed {seed}",
    )
