"""The KITTI object layout for Waymo, as mmdetection3d's Waymo converter lays it out.

::

    PERCEIVE_FORMAT.json
    ImageSets/train.txt, val.txt, test.txt     frame ids per split (written last)
    training/ (training and validation splits), testing/ (testing split)
        velodyne/<id>.bin    (N, 6) float32 x, y, z, intensity, elongation, timestamp (us),
                             vehicle frame, all lasers, both returns, points in no-label zones
                             left out (load_dim=6, use_dim=5); float32 holds the timestamp only
                             to about a minute: timestamp/<id>.txt has it exactly
        image_<c>/<id>.jpg   the original JPEG of camera c (c = Waymo camera enum - 1:
                             0 FRONT, 1 FRONT_LEFT, 2 FRONT_RIGHT, 3 SIDE_LEFT, 4 SIDE_RIGHT)
        calib/<id>.txt       P0..P4 (3x4 pinhole intrinsics), R0_rect (identity),
                             Tr_velo_to_cam_0..4 (3x4 vehicle -> KITTI camera c), then
                             D0..D4 (k1 k2 p1 p2 k3: the lens distortion P leaves out)
        label_<c>/<id>.txt   objects whose projected box lies in camera c, with that 2D box
        label_all/<id>.txt   every object with LiDAR points, a 16th field naming the camera
                             of its 2D box (the first it projects into; -1 and 0 0 0 0: none)
        pose/<id>.txt        4x4 vehicle -> world
        timestamp/<id>.txt   frame timestamp, microseconds

``<id>`` is ``<split digit><segment index, 3 digits><frame index, 3 digits>`` (split digit
0 training, 1 validation, 2 testing). A KITTI camera frame is x right, y down, z forward;
``Tr_velo_to_cam_c = T @ inverse(E_c)`` with ``E_c`` Waymo's camera -> vehicle extrinsic and
``T`` the axis change from Waymo's camera frame (x forward, y left, z up).

A label line is ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y``: type
``Car`` (every Waymo vehicle: cars, trucks, buses), ``Pedestrian``, ``Sign`` or ``Cyclist``
(no DontCare lines; objects of type unknown are left out); ``h w l`` the box height,
width, length; ``x y z`` the bottom centre in camera 0's KITTI frame; ``rotation_y =
-heading - pi/2``, mmdetection3d's formula, which its readers and OpenPCDet's invert
(:func:`kitti_to_boxes` does the same). ``alpha = rotation_y - arctan2(x, z)``, wrapped to
[-pi, pi). ``truncated`` is the fraction of the box's volume outside the camera's image
(behind the camera, or beyond the image's edges, lens distortion included), sampled on a
6 x 6 x 6 grid: for ``label_<c>`` the camera c, for ``label_all`` the camera of its 2D box
(1 when there is none). ``occluded`` is not known and is written 0, as mmdetection3d does
(3, KITTI's "unknown", would drop every object from KITTI's difficulty levels). Objects
without a LiDAR point are left out, as mmdetection3d's converter leaves them out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from perceive.datasets.types import CAMERA_NAMES, CameraCalibration, Frame
from perceive.errors import DataError
from perceive.geometry.boxes import wrap_angle
from perceive.io.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from perceive.convert.runner import FrameStats, SegmentJob

FORMAT_NAME = "kitti"
#: 2: mmdetection3d's rotation_y, computed alpha and truncation, the camera field of
#: label_all, distortion lines, no empty boxes and no no-label-zone points.
FORMAT_VERSION = 2
#: KITTI class name of each Waymo ``Label.Type`` that is written.
KITTI_CLASS: dict[int, str] = {1: "Car", 2: "Pedestrian", 3: "Sign", 4: "Cyclist"}
#: Split folder and id digit of each dataset split.
SPLIT_DIGIT: dict[str, int] = {"training": 0, "validation": 1, "testing": 2}
#: ImageSets file of each split.
IMAGESET: dict[str, str] = {"training": "train", "validation": "val", "testing": "test"}
#: (3, 3) Waymo camera axes (x forward, y left, z up) -> KITTI camera axes
#: (x right, y down, z forward).
WAYMO_TO_KITTI_CAMERA = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def split_folder(split: str) -> str:
    """``training`` for training and validation, ``testing`` for testing (as mmdetection3d)."""
    return "testing" if split == "testing" else "training"


def frame_id(split: str, segment_index: int, frame_index: int) -> str:
    """The KITTI id of a frame, e.g. ``"0012034"``."""
    if split not in SPLIT_DIGIT:
        raise DataError(f"unknown split {split!r}; splits are {list(SPLIT_DIGIT)}")
    if not 0 <= segment_index < 1000:
        raise DataError(
            f"segment number {segment_index} of split {split} does not fit the 3-digit KITTI "
            "id (at most 1000 segments per split)",
            field="segment",
        )
    if frame_index >= 1000:
        raise DataError(
            f"frame index {frame_index} does not fit the 3-digit KITTI id", field="frame"
        )
    return f"{SPLIT_DIGIT[split]}{segment_index:03d}{frame_index:03d}"


def velo_to_cam(extrinsic: np.ndarray) -> np.ndarray:
    """(4, 4) float64 vehicle frame -> KITTI camera frame, from a camera -> vehicle extrinsic."""
    out = np.eye(4)
    out[:3, :3] = WAYMO_TO_KITTI_CAMERA
    return out @ np.linalg.inv(np.asarray(extrinsic, np.float64))


def _row(values: np.ndarray) -> str:
    return " ".join(f"{v:.12e}" for v in np.asarray(values, np.float64).reshape(-1))


def calib_text(frame: Frame) -> str:
    """The ``calib/<id>.txt`` text of a frame (cameras missing from the frame: zeros)."""
    lines = []
    trs = []
    for name in CAMERA_NAMES:
        p = np.zeros((3, 4))
        tr = np.zeros((3, 4))
        if name in frame.cameras:
            c = frame.cameras[name]
            fu, fv, cu, cv = c.intrinsic[:4]
            p[0, 0], p[1, 1], p[0, 2], p[1, 2], p[2, 2] = fu, fv, cu, cv, 1.0
            tr = velo_to_cam(c.extrinsic)[:3]
        lines.append(f"P{len(lines)}: {_row(p)}")
        trs.append(tr)
    lines.append(f"R0_rect: {_row(np.eye(3))}")
    lines += [f"Tr_velo_to_cam_{i}: {_row(tr)}" for i, tr in enumerate(trs)]
    # After the lines readers take by position: the distortion the pinhole P leaves out.
    for i, name in enumerate(CAMERA_NAMES):
        cal = frame.cameras.get(name)
        lines.append(f"D{i}: {_row(cal.intrinsic[4:] if cal is not None else np.zeros(5))}")
    return "\n".join(lines) + "\n"


def read_calib(path: str | Path) -> dict[str, np.ndarray]:
    """Parse a KITTI calib file: ``P0..P4`` (3, 4), ``R0_rect`` (3, 3), ``Tr_velo_to_cam_c``
    (3, 4) and, where present, ``D0..D4`` (5,) lens distortion ``k1 k2 p1 p2 k3``.

    Raises:
        DataError: a line is malformed (naming the file and key).
    """
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        key, _, rest = line.partition(":")
        try:
            vals = np.array([float(v) for v in rest.split()])
        except ValueError as e:
            raise DataError(f"bad number: {e}", path=path, field=key) from e
        shape = (3, 3) if key == "R0_rect" else (1, 5) if key[:1] == "D" else (3, 4)
        if vals.size != shape[0] * shape[1]:
            raise DataError(
                f"{vals.size} values, expected {shape[0] * shape[1]}", path=path, field=key
            )
        out[key] = vals.reshape(shape[1:] if shape[0] == 1 else shape)
    return out


def boxes_to_kitti(
    center: np.ndarray, size: np.ndarray, heading: np.ndarray, tr_velo_to_cam0: np.ndarray
) -> np.ndarray:
    """Our boxes as KITTI ``h, w, l, x, y, z, rotation_y``.

    Args:
        center: (M, 3) box centres, vehicle frame, metres.
        size: (M, 3) length, width, height, metres.
        heading: (M,) yaw about the vehicle z axis, radians.
        tr_velo_to_cam0: (3, 4) or (4, 4) vehicle -> KITTI camera 0.

    Returns:
        (M, 7) float64: height, width, length, bottom centre (x, y, z) in camera 0's
        KITTI frame, ``rotation_y = -heading - pi/2`` in [-pi, pi) (mmdetection3d's
        formula: exact for a camera with no yaw about the vehicle; the real FRONT camera's
        yaw of about 0.16 degrees is left out, as the readers that invert it leave it out).
    """
    tr = np.asarray(tr_velo_to_cam0, np.float64)[:3]
    center = np.asarray(center, np.float64).reshape(-1, 3)
    size = np.asarray(size, np.float64).reshape(-1, 3)
    heading = np.asarray(heading, np.float64).reshape(-1)
    bottom = center - np.c_[np.zeros((len(center), 2)), size[:, 2] / 2]
    loc = bottom @ tr[:, :3].T + tr[:, 3]
    ry = -heading - np.pi / 2
    return np.c_[size[:, 2], size[:, 1], size[:, 0], loc, wrap_angle(ry)]


def kitti_to_boxes(kitti: np.ndarray, tr_velo_to_cam0: np.ndarray) -> np.ndarray:
    """KITTI ``h, w, l, x, y, z, rotation_y`` back to our (M, 7) ``x, y, z, l, w, h, heading``.

    Args:
        kitti: (M, 7) as written in a label file (columns 8-14).
        tr_velo_to_cam0: (3, 4) or (4, 4) vehicle -> KITTI camera 0 (``Tr_velo_to_cam_0``).

    Returns:
        (M, 7) float64 boxes, vehicle frame, heading in [-pi, pi).
    """
    tr = np.eye(4)
    tr[:3] = np.asarray(tr_velo_to_cam0, np.float64)[:3]
    inv = np.linalg.inv(tr)
    k = np.asarray(kitti, np.float64).reshape(-1, 7)
    h, w, l = k[:, 0], k[:, 1], k[:, 2]
    bottom = k[:, 3:6] @ inv[:3, :3].T + inv[:3, 3]
    center = bottom + np.c_[np.zeros((len(k), 2)), h / 2]
    heading = -k[:, 6] - np.pi / 2
    return np.c_[center, l, w, h, wrap_angle(heading)]


def read_labels(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Parse a KITTI label file.

    Returns:
        ``(types, boxes2d, boxes3d)``: class names, (M, 4) ``x1 y1 x2 y2`` and
        (M, 7) ``h w l x y z rotation_y`` (a 16th field, ``label_all``'s camera, is not
        returned: see :func:`read_label_cameras`).

    Raises:
        DataError: a line does not have 15 fields of numbers.
    """
    path = Path(path)
    types, b2, b3 = [], [], []
    for n, line in enumerate(path.read_text().splitlines()):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 15:
            raise DataError(f"label line {n + 1} has {len(parts)} fields, expected 15", path=path)
        try:
            vals = [float(v) for v in parts[1:15]]
        except ValueError as e:
            raise DataError(f"label line {n + 1}: {e}", path=path) from e
        types.append(parts[0])
        b2.append(vals[3:7])
        b3.append(vals[7:14])
    return types, np.array(b2).reshape(-1, 4), np.array(b3).reshape(-1, 7)


def read_label_cameras(path: str | Path) -> np.ndarray:
    """(M,) int64 camera index of each line of a ``label_all`` file (-1: no 2D box).

    Raises:
        DataError: a line has no 16th field, or it is not an integer.
    """
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text().splitlines()):
        parts = line.split()
        if not parts:
            continue
        try:
            out.append(int(parts[15]))
        except (IndexError, ValueError):
            raise DataError(f"label line {n + 1}: no camera index in field 16", path=path) from None
    return np.array(out, np.int64)


#: Samples per box axis for :func:`truncation` (6**3 points per box).
TRUNCATION_GRID = 6


def truncation(
    center: np.ndarray, size: np.ndarray, heading: np.ndarray, camera: CameraCalibration
) -> np.ndarray:
    """Fraction of each box's volume outside a camera's image (KITTI's ``truncated``).

    The box is sampled at the centres of a :data:`TRUNCATION_GRID`-cubed grid of cells; a
    sample counts as outside when it is behind the camera or projects (lens distortion
    included) outside the image.

    Args:
        center: (M, 3) box centres, vehicle frame, metres.
        size: (M, 3) length, width, height, metres.
        heading: (M,) yaw about the vehicle z axis, radians.
        camera: the camera.

    Returns:
        (M,) float64 in [0, 1].
    """
    center = np.asarray(center, np.float64).reshape(-1, 3)
    size = np.asarray(size, np.float64).reshape(-1, 3)
    heading = np.asarray(heading, np.float64).reshape(-1)
    g = (np.arange(TRUNCATION_GRID) + 0.5) / TRUNCATION_GRID - 0.5
    local = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)  # (S, 3)
    offs = local[None] * size[:, None]  # (M, S, 3)
    c, s = np.cos(heading)[:, None], np.sin(heading)[:, None]
    xyz = (
        np.stack(
            [
                c * offs[..., 0] - s * offs[..., 1],
                s * offs[..., 0] + c * offs[..., 1],
                offs[..., 2],
            ],
            -1,
        )
        + center[:, None]
    )
    _, _, valid = camera.project(xyz.reshape(-1, 3))
    return 1.0 - valid.reshape(len(center), -1).mean(axis=1)


def _label_line(
    kind: str, trunc: float, box2d: Sequence[float], k: np.ndarray, camera: int | None = None
) -> str:
    x1, y1, x2, y2 = box2d
    h, w, l, x, y, z, ry = k
    alpha = float(wrap_angle(np.array(ry - np.arctan2(x, z))))
    line = (
        f"{kind} {trunc:.2f} 0 {alpha:.4f} {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} "
        f"{h:.4f} {w:.4f} {l:.4f} {x:.4f} {y:.4f} {z:.4f} {ry:.4f}"
    )
    return line if camera is None else f"{line} {camera}"


def label_texts(frame: Frame) -> dict[str, str]:
    """The label files of a frame: ``{"all": text, "0": text, ..., "4": text}``.

    Objects of the written types with at least one LiDAR point; see the module docstring
    for the fields.
    """
    boxes = frame.boxes
    keep = [
        i
        for i in range(len(boxes))
        if int(boxes.type[i]) in KITTI_CLASS and int(boxes.num_lidar_points[i]) > 0
    ]
    cam0 = frame.cameras.get("FRONT")
    tr0 = velo_to_cam(cam0.extrinsic) if cam0 is not None else np.eye(4)
    k = boxes_to_kitti(boxes.center, boxes.size, boxes.heading, tr0)
    # 2D boxes: projected boxes carry ids "<3D id>_<CAMERA>".
    proj: dict[str, dict[str, np.ndarray]] = {}
    for cam, b2 in frame.projected_boxes.items():
        xyxy = b2.xyxy()
        if cam in frame.cameras:
            c = frame.cameras[cam]
            xyxy = np.clip(xyxy, 0, [c.width, c.height, c.width, c.height])
        for j, pid in enumerate(b2.ids):
            base = str(pid)[: -len(cam) - 1] if str(pid).endswith(f"_{cam}") else str(pid)
            proj.setdefault(base, {})[cam] = xyxy[j]
    trunc = {
        cam: truncation(boxes.center, boxes.size, boxes.heading, frame.cameras[cam])
        for cam in CAMERA_NAMES
        if cam in frame.cameras
    }
    files: dict[str, list[str]] = {"all": [], **{str(c): [] for c in range(len(CAMERA_NAMES))}}
    for i in keep:
        kind = KITTI_CLASS[int(boxes.type[i])]
        seen = proj.get(str(boxes.ids[i]), {})
        first = next((c for c, cam in enumerate(CAMERA_NAMES) if cam in seen), -1)
        if first < 0:
            files["all"].append(_label_line(kind, 1.0, (0.0, 0.0, 0.0, 0.0), k[i], -1))
        else:
            cam = CAMERA_NAMES[first]
            t = trunc[cam][i] if cam in trunc else 0.0
            files["all"].append(_label_line(kind, t, seen[cam], k[i], first))
        for c, cam in enumerate(CAMERA_NAMES):
            if cam in seen:
                t = trunc[cam][i] if cam in trunc else 0.0
                files[str(c)].append(_label_line(kind, t, seen[cam], k[i]))
    return {key: "".join(line + "\n" for line in lines) for key, lines in files.items()}


def velodyne_points(frame: Frame) -> np.ndarray:
    """(N, 6) float32 x, y, z, intensity, elongation, timestamp (us) of a frame.

    Both returns of every laser, without the points in no-label zones (as mmdetection3d's
    converter leaves them out). The timestamp column is float32, as that layout has it:
    exact only to about a minute (``timestamp/<id>.txt`` holds it exactly).
    """
    cloud = frame.point_cloud(returns=(1, 2))
    if len(cloud) and cloud.nlz.any():
        cloud = cloud.select(~cloud.nlz)
    pts = np.empty((len(cloud), 6), np.float32)
    pts[:, :5] = cloud.features()
    pts[:, 5] = np.float32(frame.timestamp_us)
    return pts


class KittiWriter:
    """Writes frames in the KITTI layout (used by :mod:`perceive.convert.runner`)."""

    format_name = FORMAT_NAME
    version = FORMAT_VERSION

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    def _path(self, job: SegmentJob, index: int, what: str, suffix: str) -> Path:
        fid = frame_id(job.split, job.segment_index, index)
        return self.out / split_folder(job.split) / what / f"{fid}{suffix}"

    def _stats_path(self, job: SegmentJob, index: int) -> Path:
        # Outside the KITTI tree, so that it stays exactly the documented layout.
        return (
            self.out
            / "_manifests"
            / "frames"
            / f"{frame_id(job.split, job.segment_index, index)}.json"
        )

    def frame_done(self, job: SegmentJob, index: int) -> FrameStats | None:
        """Stats of a frame whose files are complete (its stats file, written last, exists).

        Raises:
            DataError: the frame's KITTI id holds a frame of another segment (another set
                of sources converted into this folder before): writing would overwrite it.
        """
        from perceive.convert.runner import FrameStats

        p = self._stats_path(job, index)
        if not p.exists():
            return None
        try:
            d = json.loads(p.read_text())
            owner = d.pop("key", job.key)
            stats = FrameStats(**d)
        except (json.JSONDecodeError, TypeError, AttributeError):
            return None
        if owner != job.key:
            fid = frame_id(job.split, job.segment_index, index)
            raise DataError(
                f"KITTI id {fid} holds frame {index} of segment {owner!r}, not of {job.key!r}: "
                "another set of sources was converted into this folder; use a new --out",
                path=p,
            )
        return stats

    def write_frame(self, job: SegmentJob, index: int, frame: Frame) -> FrameStats:
        """Write every file of one frame; computed first, so a bad frame writes nothing."""
        from perceive.convert.runner import FrameStats

        points = velodyne_points(frame)
        labels = label_texts(frame)
        calib = calib_text(frame)
        for c, name in enumerate(CAMERA_NAMES):
            if name in frame.image_bytes:
                atomic_write_bytes(
                    self._path(job, index, f"image_{c}", ".jpg"), bytes(frame.image_bytes[name])
                )
        atomic_write_text(self._path(job, index, "calib", ".txt"), calib)
        for key, text in labels.items():
            atomic_write_text(self._path(job, index, f"label_{key}", ".txt"), text)
        pose = (
            "\n".join(" ".join(f"{v:.12e}" for v in row) for row in np.asarray(frame.pose)) + "\n"
        )
        atomic_write_text(self._path(job, index, "pose", ".txt"), pose)
        atomic_write_text(
            self._path(job, index, "timestamp", ".txt"), f"{int(frame.timestamp_us)}\n"
        )
        atomic_write_bytes(self._path(job, index, "velodyne", ".bin"), points.tobytes())
        n_boxes = labels["all"].count("\n")
        stats = FrameStats(int(frame.timestamp_us), len(points), n_boxes, frame.segment)
        atomic_write_text(
            self._stats_path(job, index), json.dumps({**stats.__dict__, "key": job.key})
        )
        return stats

    def finalize(self, manifests: Sequence[dict]) -> None:
        """Write ``ImageSets/<split>.txt`` with the ids of every converted frame."""
        ids: dict[str, list[str]] = {}
        for m in manifests:
            job = m["job"]
            ids.setdefault(job["split"], []).extend(
                frame_id(job["split"], job["segment_index"], f[0]) for f in m["frames"]
            )
        for split, name in IMAGESET.items():  # every split's file, empty when it has no frame
            atomic_write_text(
                self.out / "ImageSets" / f"{name}.txt",
                "".join(f"{i}\n" for i in sorted(ids.get(split, []))),
            )
