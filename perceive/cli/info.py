"""``perceive info SEGMENT [--frame I] [--out DIR]``: summarise one frame of a Waymo v1 segment
and draw it.

Prints the segment, timestamp, cameras with their image sizes, lasers with their
range-image shapes and point counts, and the 3D labels by type; then checks the
geometry: every 3D label is projected with ``CameraCalibration.project`` and the 2D box
around its corners is compared with the file's ``projected_lidar_labels``.

Writes into ``--out``:

- ``overlay.png``: the five cameras with the 3D labels as wireframes, the file's
  projected lidar labels (thin white) and ours (dashed, coloured by type), and a BEV;
- ``overlay_FRONT.png``: the FRONT camera alone, small (palette PNG, for documents);
- ``bev.png``: the point cloud from above with the labels (only when the frame has LiDAR);
- ``info.json``: the printed figures, machine-readable.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from perceive.datasets import waymo
from perceive.datasets.types import CAMERA_NAMES, LASER_NAMES, OBJECT_TYPES, Boxes2D, Frame
from perceive.errors import ConfigError
from perceive.io.atomic import atomic_write_text


@dataclass(frozen=True)
class CameraInfo:
    """One camera of the frame."""

    name: str
    """Camera name."""
    calibrated_size: tuple[int, int] | None
    """(width, height) from the calibration, or None without calibration."""
    image_size: tuple[int, int] | None
    """(width, height) of the decoded image, or None without an image."""
    jpeg_bytes: int
    """Size of the encoded image, bytes (0 without one)."""
    camera_labels: int
    """2D labels drawn on this camera's image."""
    projected_labels: int
    """Projected lidar labels of this camera in the file."""


@dataclass(frozen=True)
class LaserInfo:
    """One laser of the frame."""

    name: str
    """Laser name."""
    calibrated: bool
    """The frame has its calibration."""
    shapes: dict[int, tuple[int, int]]
    """(H, W) of each return's range image present."""
    points: dict[int, int]
    """Points (pixels with range > 0) of each return present."""


@dataclass(frozen=True)
class ProjectionCheck:
    """3D labels projected by perceive against the file's projected lidar labels, one camera."""

    camera: str
    """Camera name."""
    compared: int
    """Labels compared: in the file, and fully in front of the camera with all corners
    projecting validly (inside the image, distortion in range)."""
    median_center_error_px: float | None
    """Median over labels of the largest |error| of the box centre (u or v), pixels."""
    median_size_error_px: float | None
    """Median over labels of the largest |error| of the box size (u or v), pixels."""
    max_center_error_px: float | None
    """Largest centre error, pixels."""


@dataclass(frozen=True)
class FrameInfo:
    """What ``perceive info`` prints about one frame."""

    path: str
    """The segment file."""
    frames: int
    """Frames in the file."""
    index: int
    """Index of the frame described."""
    segment: str
    """Segment (context) name."""
    timestamp_us: int
    """Frame timestamp, microseconds."""
    time_of_day: str
    """Recording conditions."""
    location: str
    """Recording location."""
    weather: str
    """Weather."""
    cameras: list[CameraInfo]
    """Every camera enum value, present or not."""
    lasers: list[LaserInfo]
    """Every laser enum value, present or not."""
    boxes_by_type: dict[str, int]
    """3D labels per type name."""
    projection: list[ProjectionCheck]
    """Per camera."""


def _match_ids(frame: Frame, camera: str, labels: Boxes2D) -> tuple[np.ndarray, np.ndarray]:
    """Indices of (3D boxes, file labels) paired by id (``<3D id>_<CAMERA>``)."""
    index = {str(box_id): i for i, box_id in enumerate(frame.boxes.ids)}
    suffix = f"_{camera}"
    pairs = [
        (index[i[: -len(suffix)]], j)
        for j, i in enumerate(labels.ids)
        if str(i).endswith(suffix) and i[: -len(suffix)] in index
    ]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = np.array(pairs).T
    return a, b


def projection_check(frame: Frame, camera: str) -> tuple[ProjectionCheck, Boxes2D]:
    """Compare the 3D labels projected here with the file's projected labels for one camera.

    Returns:
        The check, and perceive's 2D boxes of the 3D labels in this camera (for drawing).
    """
    from perceive.viz.camera import image_boxes_of_3d

    cam = frame.cameras[camera]
    ours, idx = image_boxes_of_3d(cam, frame.boxes)
    file_labels = frame.projected_boxes.get(camera, Boxes2D.empty())
    box_i, label_j = _match_ids(frame, camera, file_labels)
    errors_c, errors_s = [], []
    if len(box_i):
        corners = frame.boxes.corners()[box_i]
        _, depth, valid = cam.project(corners.reshape(-1, 3))
        usable = (depth.reshape(-1, 8) > 0).all(1) & valid.reshape(-1, 8).all(1)
        pos = {int(k): n for n, k in enumerate(idx)}
        for k, j, ok in zip(box_i, label_j, usable, strict=True):
            if not ok or int(k) not in pos:
                continue
            n = pos[int(k)]
            errors_c.append(float(np.abs(ours.center[n] - file_labels.center[j]).max()))
            errors_s.append(float(np.abs(ours.size[n] - file_labels.size[j]).max()))
    check = ProjectionCheck(
        camera=camera,
        compared=len(errors_c),
        median_center_error_px=float(np.median(errors_c)) if errors_c else None,
        median_size_error_px=float(np.median(errors_s)) if errors_s else None,
        max_center_error_px=float(np.max(errors_c)) if errors_c else None,
    )
    return check, ours


def describe(seg: waymo.Segment, index: int) -> tuple[FrameInfo, Frame, dict[str, Boxes2D]]:
    """Everything ``perceive info`` prints about frame ``index``, the frame, and perceive's
    2D boxes of the 3D labels per camera."""
    frame = seg[index]
    cameras = []
    for name in CAMERA_NAMES:
        cal = frame.cameras.get(name)
        data = frame.image_bytes.get(name, b"")
        img = frame.images[name] if data else None
        cameras.append(
            CameraInfo(
                name=name,
                calibrated_size=None if cal is None else (cal.width, cal.height),
                image_size=None if img is None else (img.shape[1], img.shape[0]),
                jpeg_bytes=len(data),
                camera_labels=len(frame.camera_boxes.get(name, ())),
                projected_labels=len(frame.projected_boxes.get(name, ())),
            )
        )
    lasers = []
    for name in LASER_NAMES:
        shapes, points = {}, {}
        for ret in (1, 2):
            if (name, ret) in frame.range_images:
                ri = frame.range_images[(name, ret)]
                shapes[ret] = ri.shape
                points[ret] = int((ri.values[..., 0] > 0).sum())
        lasers.append(LaserInfo(name, name in frame.lasers, shapes, points))
    types = frame.boxes.type_names
    by_type = {t: types.count(t) for t in [*OBJECT_TYPES, *sorted(set(types) - set(OBJECT_TYPES))]}
    checks, ours = [], {}
    for name in CAMERA_NAMES:
        if name in frame.cameras:
            check, boxes = projection_check(frame, name)
            checks.append(check)
            ours[name] = boxes
    info = FrameInfo(
        path=str(seg.path),
        frames=len(seg),
        index=index,
        segment=frame.segment,
        timestamp_us=frame.timestamp_us,
        time_of_day=frame.context.time_of_day,
        location=frame.context.location,
        weather=frame.context.weather,
        cameras=cameras,
        lasers=lasers,
        boxes_by_type={k: v for k, v in by_type.items() if v},
        projection=checks,
    )
    return info, frame, ours


def format_info(info: FrameInfo) -> str:
    """The printed summary."""
    when = datetime.fromtimestamp(info.timestamp_us / 1e6, tz=UTC).strftime(
        "%Y-%m-%d %H:%M:%S.%f UTC"
    )
    lines = [
        f"file       {info.path}  ({info.frames} frame{'s' if info.frames != 1 else ''})",
        f"frame      {info.index}",
        f"segment    {info.segment}",
        f"timestamp  {info.timestamp_us} us  ({when})",
        f"context    {info.time_of_day or '-'}, {info.location or '-'}, {info.weather or '-'}",
        "cameras    name          calibration   image         jpeg KB  2D labels  projected",
    ]
    for c in info.cameras:
        cal = "x".join(map(str, c.calibrated_size)) if c.calibrated_size else "-"
        img = "x".join(map(str, c.image_size)) if c.image_size else "-"
        lines.append(
            f"           {c.name:<13} {cal:<13} {img:<13} {c.jpeg_bytes / 1024:>7.0f}"
            f"  {c.camera_labels:>9}  {c.projected_labels:>9}"
        )
    lines.append("lasers     name          calibrated  return 1 (HxW, points)    return 2")
    for la in info.lasers:
        rets = []
        for r in (1, 2):
            if r in la.shapes:
                h, w = la.shapes[r]
                rets.append(f"{h}x{w}, {la.points[r]}")
            else:
                rets.append("-")
        lines.append(
            f"           {la.name:<13} {'yes' if la.calibrated else 'no':<11} "
            f"{rets[0]:<25} {rets[1]}"
        )
    total = sum(la.points.get(r, 0) for la in info.lasers for r in (1, 2))
    lines.append(f"points     {total} (all lasers, both returns)")
    n = sum(info.boxes_by_type.values())
    by_type = ", ".join(f"{k} {v}" for k, v in info.boxes_by_type.items())
    lines.append(f"3D labels  {n}" + (f" ({by_type})" if by_type else ""))
    lines.append(
        "projection 3D labels projected with cam.project vs the file's projected_lidar_labels"
    )
    lines.append(
        "           camera        compared  median centre err  median size err  max centre err"
    )
    for p in info.projection:
        if p.compared:
            lines.append(
                f"           {p.camera:<13} {p.compared:>8}  {p.median_center_error_px:>14.3f} px"
                f"  {p.median_size_error_px:>12.3f} px  {p.max_center_error_px:>11.3f} px"
            )
        else:
            lines.append(f"           {p.camera:<13} {0:>8}")
    return "\n".join(lines)


def write_pictures(
    frame: Frame, ours: dict[str, Boxes2D], out: Path, panel_width: int = 640
) -> list[Path]:
    """The overlay grid, the small FRONT overlay, and the BEV (with LiDAR). Returns the paths."""
    from perceive.viz.bev import save_bev
    from perceive.viz.camera import save_camera
    from perceive.viz.figures import save_frame_figure

    points = frame.point_cloud() if frame.range_images else None
    legend = (
        "wireframes: 3D labels; white: file's projected_lidar_labels; dashed: ours (cam.project)"
    )
    paths = [
        save_frame_figure(
            out / "overlay.png",
            frame,
            points=points,
            boxes_2d=frame.projected_boxes,
            pred_2d=ours,
            title=f"{frame.segment}  t={frame.timestamp_us}\n{legend}",
            panel_width=panel_width,
        )
    ]
    if "FRONT" in frame.cameras and "FRONT" in frame.image_bytes:
        paths.append(
            save_camera(
                out / "overlay_FRONT.png",
                frame.images["FRONT"],
                frame.cameras["FRONT"],
                points=points,
                gt=frame.boxes,
                boxes_2d=frame.projected_boxes.get("FRONT"),
                pred_2d=ours.get("FRONT"),
                title="FRONT: " + legend,
                max_width=800,
                colors=160,
            )
        )
    if points is not None and len(points):
        paths.append(
            save_bev(out / "bev.png", points, gt=frame.boxes, title=f"{frame.segment} BEV")
        )
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``perceive info``."""
    parser.add_argument("segment", type=Path, help="a Waymo v1 .tfrecord segment")
    parser.add_argument(
        "--frame", type=int, default=0, help="frame index (default 0; negative from the end)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("outputs/info"), help="folder for the pictures"
    )
    parser.add_argument("--no-pictures", action="store_true", help="only print the summary")


def run(args: argparse.Namespace) -> int:
    """Print the summary of one frame and write its pictures."""
    with waymo.open(args.segment) as seg:
        if not -len(seg) <= args.frame < len(seg):
            raise ConfigError(
                f"{args.segment} has {len(seg)} frames; --frame {args.frame} is out of range"
            )
        index = args.frame % len(seg)
        info, frame, ours = describe(seg, index)
        print(format_info(info))
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "info.json", json.dumps(asdict(info), indent=2) + "\n")
        written = [args.out / "info.json"]
        if not args.no_pictures:
            written += write_pictures(frame, ours, args.out)
    print("wrote      " + "\n           ".join(str(p) for p in written))
    return 0
