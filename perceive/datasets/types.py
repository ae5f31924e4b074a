"""Typed data shared by every part of perceive: frames, calibrations, point clouds, boxes.

All are frozen dataclasses holding NumPy arrays. Readers (Waymo v1, Waymo v2, our
cache) produce them; the training pipeline, the converters, the detector and the
visualisers consume them. Units are metres and radians; frames are named in each
field's docstring.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property

import numpy as np

from perceive.errors import MissingComponentError
from perceive.geometry.boxes import box_corners, points_in_boxes
from perceive.geometry.camera import project_points
from perceive.geometry.range_image import beam_inclinations

#: Camera names; ``CAMERA_NAMES[i - 1]`` is the name of Waymo enum value ``i``.
CAMERA_NAMES: tuple[str, ...] = ("FRONT", "FRONT_LEFT", "FRONT_RIGHT", "SIDE_LEFT", "SIDE_RIGHT")
#: Laser names; ``LASER_NAMES[i - 1]`` is the name of Waymo enum value ``i``.
LASER_NAMES: tuple[str, ...] = ("TOP", "FRONT", "SIDE_LEFT", "SIDE_RIGHT", "REAR")
#: Object type names indexed by the Waymo ``Label.Type`` value.
OBJECT_TYPES: tuple[str, ...] = ("UNKNOWN", "VEHICLE", "PEDESTRIAN", "SIGN", "CYCLIST")


def camera_id(name: str) -> int:
    """Waymo enum value of a camera name (``"FRONT"`` -> 1)."""
    try:
        return CAMERA_NAMES.index(name) + 1
    except ValueError:
        raise MissingComponentError(
            f"unknown camera {name!r}; cameras are {CAMERA_NAMES}"
        ) from None


def laser_id(name: str) -> int:
    """Waymo enum value of a laser name (``"TOP"`` -> 1)."""
    try:
        return LASER_NAMES.index(name) + 1
    except ValueError:
        raise MissingComponentError(f"unknown laser {name!r}; lasers are {LASER_NAMES}") from None


class ComponentDict(dict):
    """A ``dict`` of sensor components whose missing keys raise :class:`MissingComponentError`.

    ``frame.cameras["SIDE_LEFT"]`` on a frame without that camera then says which
    component is missing, which are present and where the frame came from, instead of
    a bare ``KeyError``. (``MissingComponentError`` is a ``KeyError``, so ``in``,
    ``get`` and ``except KeyError`` work as for any dict.)
    """

    def __init__(self, data: Mapping = (), what: str = "component") -> None:
        super().__init__(data)
        self.what = what

    def __missing__(self, key: object) -> object:
        raise MissingComponentError.absent(self.what, key, self)

    def __reduce__(self):  # keep ``what`` through pickling
        return (ComponentDict, (dict(self), self.what))


def _eq_arrays(a: object, b: object) -> bool:
    """Dataclass equality that compares NumPy arrays exactly (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    for f in fields(a):  # type: ignore[arg-type]
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            x, y = np.asarray(x), np.asarray(y)
            if x.shape != y.shape or x.dtype.kind != y.dtype.kind:
                return False
            if x.dtype.kind == "f":
                if not np.array_equal(x, y, equal_nan=True):
                    return False
            elif not np.array_equal(x, y):
                return False
        elif isinstance(x, Mapping) and isinstance(y, Mapping):
            if set(x) != set(y) or any(x[k] != y[k] for k in x):
                return False
        elif x != y:
            return False
    return True


@dataclass(frozen=True, eq=False)
class CameraCalibration:
    """Calibration of one camera."""

    name: str
    """Camera name, one of :data:`CAMERA_NAMES`."""
    intrinsic: np.ndarray
    """(9,) float64: ``f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3`` (pixels; distortion unitless)."""
    extrinsic: np.ndarray
    """(4, 4) float64 camera frame -> vehicle frame (camera x forward, y left, z up)."""
    width: int
    """Image width, pixels."""
    height: int
    """Image height, pixels."""
    rolling_shutter_direction: int = 5
    """Waymo ``RollingShutterReadOutDirection``; perceive models global shutter only (5)."""

    def __post_init__(self) -> None:
        intr = np.asarray(self.intrinsic, dtype=np.float64).reshape(-1)
        if intr.shape != (9,):
            raise ValueError(f"camera {self.name}: intrinsic needs 9 values, got {intr.shape[0]}")
        ext = np.asarray(self.extrinsic, dtype=np.float64)
        if ext.shape != (4, 4):
            raise ValueError(f"camera {self.name}: extrinsic must be 4x4, got {ext.shape}")
        object.__setattr__(self, "intrinsic", intr)
        object.__setattr__(self, "extrinsic", ext)

    __eq__ = _eq_arrays  # type: ignore[assignment]

    @property
    def K(self) -> np.ndarray:  # noqa: N802 (the usual name of the matrix)
        """(3, 3) float64 intrinsic matrix (for the camera's image axes u right, v down)."""
        fu, fv, cu, cv = self.intrinsic[:4]
        return np.array([[fu, 0.0, cu], [0.0, fv, cv], [0.0, 0.0, 1.0]])

    @property
    def distortion(self) -> np.ndarray:
        """(5,) float64 ``k1, k2, p1, p2, k3``."""
        return self.intrinsic[4:]

    def project(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project (N, 3) vehicle-frame points to pixels: ``(uv (N, 2), depth (N,), valid (N,))``.

        See :func:`perceive.geometry.camera.project_points`.
        """
        return project_points(xyz, self.intrinsic, self.extrinsic, self.width, self.height)

    def resized(self, width: int, height: int) -> CameraCalibration:
        """The same camera with its image scaled to ``width`` x ``height`` pixels."""
        sx, sy = width / self.width, height / self.height
        intr = self.intrinsic.copy()
        intr[[0, 2]] *= sx
        intr[[1, 3]] *= sy
        return replace(self, intrinsic=intr, width=int(width), height=int(height))


@dataclass(frozen=True, eq=False)
class LaserCalibration:
    """Calibration of one laser."""

    name: str
    """Laser name, one of :data:`LASER_NAMES`."""
    extrinsic: np.ndarray
    """(4, 4) float64 laser frame -> vehicle frame."""
    beam_inclinations: np.ndarray
    """(H,) float64 radians in ascending order as stored, or empty for a uniform spacing."""
    inclination_min: float
    """Lowest beam inclination, radians (used when ``beam_inclinations`` is empty)."""
    inclination_max: float
    """Highest beam inclination, radians."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "extrinsic", np.asarray(self.extrinsic, dtype=np.float64))
        object.__setattr__(
            self,
            "beam_inclinations",
            np.asarray(self.beam_inclinations, dtype=np.float64).reshape(-1),
        )
        if self.extrinsic.shape != (4, 4):
            raise ValueError(
                f"laser {self.name}: extrinsic must be 4x4, got {self.extrinsic.shape}"
            )

    __eq__ = _eq_arrays  # type: ignore[assignment]

    def inclinations(self, height: int) -> np.ndarray:
        """(H,) float64 inclination per range-image row, row 0 the highest beam."""
        return beam_inclinations(
            self.beam_inclinations, self.inclination_min, self.inclination_max, height
        )


@dataclass(frozen=True, eq=False)
class RangeImage:
    """One return of one laser as a range image."""

    laser: str
    """Laser name."""
    return_index: int
    """1 for the first (strongest) return, 2 for the second."""
    values: np.ndarray
    """(H, W, 4) float32: range (metres, <= 0 where no point), intensity, elongation,
    no-label-zone flag (1 inside, -1 outside)."""
    camera_projection: np.ndarray | None = None
    """(H, W, 6) int32 ``(camera, x, y, camera, x, y)``: the first two cameras each pixel's
    point projects into (camera 0: none), or None."""
    pixel_pose: np.ndarray | None = None
    """(H, W, 6) float32 ``roll, pitch, yaw, x, y, z`` vehicle -> world at each pixel's time
    (TOP laser only), or None."""

    __eq__ = _eq_arrays  # type: ignore[assignment]

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W)."""
        return self.values.shape[0], self.values.shape[1]


#: Names of the per-point features of :meth:`PointCloud.features`.
POINT_FEATURES: tuple[str, ...] = ("x", "y", "z", "intensity", "elongation")


@dataclass(frozen=True, eq=False)
class PointCloud:
    """A LiDAR point cloud with per-point attributes, all arrays of length N."""

    xyz: np.ndarray
    """(N, 3) float32 vehicle frame, metres."""
    intensity: np.ndarray
    """(N,) float32."""
    elongation: np.ndarray
    """(N,) float32."""
    nlz: np.ndarray
    """(N,) bool: inside a no-label zone."""
    laser: np.ndarray
    """(N,) uint8 Waymo laser enum (1 TOP ... 5 REAR)."""
    return_index: np.ndarray
    """(N,) uint8: 1 or 2."""
    range: np.ndarray
    """(N,) float32 range from the laser, metres."""
    pixel: np.ndarray
    """(N, 2) int32 (row, column) in the range image the point came from."""
    camera_projection: np.ndarray
    """(N, 6) int32 ``(camera, x, y, camera, x, y)``, zeros where unknown."""

    __eq__ = _eq_arrays  # type: ignore[assignment]

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    def features(self, names: Sequence[str] = POINT_FEATURES) -> np.ndarray:
        """(N, F) float32 matrix of the named features (see :data:`POINT_FEATURES`)."""
        cols = []
        for n in names:
            if n in ("x", "y", "z"):
                cols.append(self.xyz[:, "xyz".index(n)])
            elif n in ("intensity", "elongation", "range"):
                cols.append(getattr(self, n))
            else:
                raise ValueError(
                    f"unknown point feature {n!r}; known: {[*POINT_FEATURES, 'range']}"
                )
        return (
            np.stack(cols, axis=1).astype(np.float32, copy=False)
            if cols
            else np.zeros((len(self), 0), np.float32)
        )

    def select(self, mask: np.ndarray) -> PointCloud:
        """The points where ``mask`` (bool (N,) or integer indices) selects."""
        return PointCloud(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @staticmethod
    def empty() -> PointCloud:
        """A cloud with no points."""
        return PointCloud(
            xyz=np.zeros((0, 3), np.float32),
            intensity=np.zeros(0, np.float32),
            elongation=np.zeros(0, np.float32),
            nlz=np.zeros(0, bool),
            laser=np.zeros(0, np.uint8),
            return_index=np.zeros(0, np.uint8),
            range=np.zeros(0, np.float32),
            pixel=np.zeros((0, 2), np.int32),
            camera_projection=np.zeros((0, 6), np.int32),
        )

    @staticmethod
    def concat(clouds: Iterable[PointCloud]) -> PointCloud:
        """Concatenate clouds in order."""
        clouds = list(clouds)
        if not clouds:
            return PointCloud.empty()
        return PointCloud(
            **{
                f.name: np.concatenate([getattr(c, f.name) for c in clouds])
                for f in fields(PointCloud)
            }
        )


def _str_array(ids: Iterable[str] | np.ndarray) -> np.ndarray:
    arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=object)
    return arr.reshape(-1)


def _ids(ids: Iterable[str] | np.ndarray, n: int, what: str) -> np.ndarray:
    """(n,) object array of ids; no ids at all gives n empty strings."""
    arr = _str_array(ids)
    if arr.shape[0] == 0:
        return np.array([""] * n, dtype=object)
    if arr.shape[0] != n:
        raise ValueError(f"{what}: {arr.shape[0]} ids for {n} boxes")
    return arr


@dataclass(frozen=True, eq=False)
class Boxes3D:
    """N upright 3D boxes with their label attributes."""

    center: np.ndarray
    """(N, 3) float64 box centres, vehicle frame, metres."""
    size: np.ndarray
    """(N, 3) float64 length (along heading), width, height, metres."""
    heading: np.ndarray
    """(N,) float64 yaw of the box x axis, vehicle frame, radians in [-pi, pi)."""
    type: np.ndarray
    """(N,) int8 Waymo ``Label.Type`` (see :data:`OBJECT_TYPES`)."""
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    """(N,) object array of str: tracking ids, stable across a segment's frames."""
    difficulty: np.ndarray | None = None
    """(N,) int8 detection difficulty (0 unknown, 1 LEVEL_1, 2 LEVEL_2)."""
    num_lidar_points: np.ndarray | None = None
    """(N,) int32 LiDAR points inside the box (all lasers)."""
    num_top_lidar_points: np.ndarray | None = None
    """(N,) int32 TOP LiDAR points inside the box."""
    speed: np.ndarray | None = None
    """(N, 3) float64 velocity, vehicle frame, m/s."""
    accel: np.ndarray | None = None
    """(N, 3) float64 acceleration, vehicle frame, m/s^2."""

    def __post_init__(self) -> None:
        n = np.asarray(self.center).reshape(-1, 3).shape[0]
        set_ = object.__setattr__
        set_(self, "center", np.asarray(self.center, np.float64).reshape(n, 3))
        set_(self, "size", np.asarray(self.size, np.float64).reshape(n, 3))
        set_(self, "heading", np.asarray(self.heading, np.float64).reshape(n))
        set_(self, "type", np.asarray(self.type, np.int8).reshape(n))
        set_(self, "ids", _ids(self.ids, n, "Boxes3D"))
        for name, dt, shape in (
            ("difficulty", np.int8, (n,)),
            ("num_lidar_points", np.int32, (n,)),
            ("num_top_lidar_points", np.int32, (n,)),
            ("speed", np.float64, (n, 3)),
            ("accel", np.float64, (n, 3)),
        ):
            v = getattr(self, name)
            set_(self, name, np.zeros(shape, dt) if v is None else np.asarray(v, dt).reshape(shape))

    __eq__ = _eq_arrays  # type: ignore[assignment]

    def __len__(self) -> int:
        return int(self.center.shape[0])

    def __getitem__(self, index: np.ndarray | slice | int) -> Boxes3D:
        if isinstance(index, int | np.integer):
            index = np.array([index])
        return Boxes3D(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def empty() -> Boxes3D:
        """No boxes."""
        return Boxes3D(
            center=np.zeros((0, 3)), size=np.zeros((0, 3)), heading=np.zeros(0), type=np.zeros(0)
        )

    @staticmethod
    def concat(boxes: Iterable[Boxes3D]) -> Boxes3D:
        """Concatenate box sets in order."""
        boxes = list(boxes)
        if not boxes:
            return Boxes3D.empty()
        return Boxes3D(
            **{f.name: np.concatenate([getattr(b, f.name) for b in boxes]) for f in fields(Boxes3D)}
        )

    def corners(self) -> np.ndarray:
        """(N, 8, 3) float64 corners, vehicle frame (see ``geometry.boxes.box_corners``)."""
        return box_corners(self.center, self.size, self.heading)

    def contains(self, xyz: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """(M, N) bool: point m lies inside box n."""
        return points_in_boxes(xyz, self.center, self.size, self.heading, margin)

    def to_array(self) -> np.ndarray:
        """(N, 7) float32 ``x, y, z, length, width, height, heading`` (the detector's layout)."""
        return np.concatenate([self.center, self.size, self.heading[:, None]], axis=1).astype(
            np.float32
        )

    @property
    def type_names(self) -> list[str]:
        """Type of each box as a name (``"VEHICLE"``...)."""
        return [OBJECT_TYPES[t] if 0 <= t < len(OBJECT_TYPES) else f"TYPE_{t}" for t in self.type]


@dataclass(frozen=True, eq=False)
class Boxes2D:
    """N axis-aligned image boxes."""

    center: np.ndarray
    """(N, 2) float64 centre (u, v), pixels."""
    size: np.ndarray
    """(N, 2) float64 extent along u (the format's "length") and along v ("width"), pixels."""
    type: np.ndarray
    """(N,) int8 Waymo ``Label.Type``."""
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    """(N,) object array of str ids (projected LiDAR labels: ``<3D id>_<CAMERA>``)."""

    def __post_init__(self) -> None:
        n = np.asarray(self.center).reshape(-1, 2).shape[0]
        object.__setattr__(self, "center", np.asarray(self.center, np.float64).reshape(n, 2))
        object.__setattr__(self, "size", np.asarray(self.size, np.float64).reshape(n, 2))
        object.__setattr__(self, "type", np.asarray(self.type, np.int8).reshape(n))
        object.__setattr__(self, "ids", _ids(self.ids, n, "Boxes2D"))

    __eq__ = _eq_arrays  # type: ignore[assignment]

    def __len__(self) -> int:
        return int(self.center.shape[0])

    @staticmethod
    def empty() -> Boxes2D:
        """No boxes."""
        return Boxes2D(center=np.zeros((0, 2)), size=np.zeros((0, 2)), type=np.zeros(0))

    def xyxy(self) -> np.ndarray:
        """(N, 4) float64 ``u_min, v_min, u_max, v_max``."""
        half = self.size / 2
        return np.concatenate([self.center - half, self.center + half], axis=1)


@dataclass(frozen=True)
class FrameContext:
    """Where and when a frame was recorded."""

    segment: str
    """Segment (context) name."""
    time_of_day: str = ""
    """For example ``"Day"``."""
    location: str = ""
    """For example ``"location_sf"``."""
    weather: str = ""
    """For example ``"sunny"``."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One time step of a driving log: calibrations, camera images, LiDAR, labels.

    Heavy data is decoded lazily: :attr:`images` decodes a JPEG on first access to
    that camera, :attr:`range_images` decompresses a laser return on first access,
    and :meth:`point_cloud` builds points only when called.
    """

    context: FrameContext
    """Segment name and recording conditions."""
    timestamp_us: int
    """Frame timestamp, microseconds."""
    pose: np.ndarray
    """(4, 4) float64 vehicle frame -> world frame."""
    cameras: Mapping[str, CameraCalibration]
    """Calibration per camera name."""
    lasers: Mapping[str, LaserCalibration]
    """Calibration per laser name."""
    image_bytes: Mapping[str, bytes]
    """Encoded (JPEG) image per camera name, exactly as stored."""
    range_images: Mapping[tuple[str, int], RangeImage]
    """Range image per ``(laser name, return index)`` present in the frame (lazily decoded)."""
    boxes: Boxes3D
    """3D labels, vehicle frame."""
    camera_boxes: Mapping[str, Boxes2D] = field(default_factory=dict)
    """2D labels drawn on each camera's image."""
    projected_boxes: Mapping[str, Boxes2D] = field(default_factory=dict)
    """3D labels projected into each camera by the dataset's tooling."""
    source: str = ""
    """Where the frame came from (file and record), for messages."""

    def __post_init__(self) -> None:
        # Plain dicts become ComponentDicts: a missing camera/laser raises our error.
        where = f"{self.source}: " if self.source else ""
        for name, what in (
            ("cameras", "camera calibration"),
            ("lasers", "laser calibration"),
            ("image_bytes", "camera image"),
            ("range_images", "range image"),
            ("camera_boxes", "camera labels of camera"),
            ("projected_boxes", "projected lidar labels of camera"),
        ):
            value = getattr(self, name)
            if isinstance(value, dict) and not isinstance(value, ComponentDict):
                object.__setattr__(self, name, ComponentDict(value, what=f"{where}{what}"))

    @property
    def segment(self) -> str:
        """Segment name (``context.segment``)."""
        return self.context.segment

    @cached_property
    def images(self) -> Mapping[str, np.ndarray]:
        """(H, W, 3) uint8 RGB image per camera name, decoded on first access."""
        from perceive.datasets.image import decode_jpeg
        from perceive.utils.lazy import LazyMapping

        def loader(name: str):
            return lambda: decode_jpeg(
                self.image_bytes[name], what=f"{self.source}: camera {name} image"
            )

        return LazyMapping(
            {n: loader(n) for n in self.image_bytes}, what=f"{self.source}: camera image"
        )

    def object_counts(self) -> tuple[tuple[list[int], list[int]], tuple[list[int], list[int]]]:
        """Objects per ``Label.Type``, as the files' stats carry them: ``(laser, camera)``,
        each ``(types, counts)`` in ascending type order (3D labels; camera labels of all
        cameras)."""

        def counts(types: np.ndarray) -> tuple[list[int], list[int]]:
            u, c = np.unique(np.asarray(types, np.int64), return_counts=True)
            return u.tolist(), c.tolist()

        cam = [b.type for b in self.camera_boxes.values()]
        return counts(self.boxes.type), counts(np.concatenate(cam or [np.zeros(0)]))

    @property
    def laser_names(self) -> list[str]:
        """Lasers with range images in this frame, in enum order."""
        present = {k[0] for k in self.range_images}
        return [n for n in LASER_NAMES if n in present]

    def point_cloud(
        self,
        lasers: Sequence[str] | None = None,
        returns: Sequence[int] = (1, 2),
        drop_nlz: bool = False,
    ) -> PointCloud:
        """Points of the chosen lasers and returns, vehicle frame.

        Args:
            lasers: laser names; None for every laser present in the frame. Naming a
                laser the frame lacks raises :class:`~perceive.errors.MissingComponentError`.
            returns: which returns, any of 1 and 2.
            drop_nlz: drop points inside no-label zones.

        Returns:
            The cloud, lasers in enum order, return 1 before return 2 for each laser,
            pixels in row-major order.
        """
        from perceive.datasets.lidar import frame_point_cloud

        return frame_point_cloud(self, lasers, returns, drop_nlz)
