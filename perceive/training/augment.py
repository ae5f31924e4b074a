"""Global scene augmentations applied consistently to points, boxes and camera extrinsics.

An augmentation is one affine map ``A`` of the vehicle frame: a flip about the x axis
(``y -> -y``), then a rotation about z, then a uniform scale, then a translation. Points
and box centres are mapped by ``A``, box sizes are scaled, headings are rotated (and
mirrored by the flip), and every camera extrinsic ``E`` (camera -> vehicle) becomes
``A @ E``. The images are left untouched: a point projects to the same pixel before and
after, because ``(A @ E)^-1 @ (A @ p) = E^-1 @ p``. With a flip or a scale, ``A @ E`` is
no longer a rigid transform, so consumers must invert extrinsics with a general 4x4
inverse, not with a transpose.

Ground-truth sampling (pasting objects from other frames, with their points) is in
:class:`GTDatabase`; it changes only the LiDAR and the boxes, not the images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from perceive.errors import ConfigError
from perceive.geometry.boxes import points_in_boxes, wrap_angle


@dataclass(frozen=True)
class GTSamplingConfig:
    """Ground-truth sampling: paste objects (box + its points) from a database into a scene."""

    max_per_class: tuple[int, ...] = (10, 10, 10, 0)
    """Objects to add per class index (VEHICLE, PEDESTRIAN, CYCLIST, SIGN) at most."""
    min_points: int = 5
    """Objects with fewer LiDAR points are not put into the database."""
    prob: float = 1.0
    """Probability of applying ground-truth sampling to a sample."""

    def __post_init__(self) -> None:
        from perceive.utils.config_types import check_field_types

        check_field_types(GTSamplingConfig, vars(self), "gt_sampling")
        if any(isinstance(n, bool) or not isinstance(n, int) for n in self.max_per_class):
            raise ConfigError(f"max_per_class must be integers, got {self.max_per_class}")
        if any(n < 0 for n in self.max_per_class):
            raise ConfigError(f"max_per_class must be >= 0, got {self.max_per_class}")
        if self.min_points < 1:
            raise ConfigError(f"min_points must be >= 1, got {self.min_points}")
        if not 0.0 <= self.prob <= 1.0:
            raise ConfigError(f"prob must be in [0, 1], got {self.prob}")


@dataclass(frozen=True)
class AugmentConfig:
    """Random global augmentations (all disabled by setting them to their identity)."""

    rotation: float = math.pi / 4
    """Largest rotation about z, radians; the angle is uniform in ``[-rotation, rotation]``."""
    flip_prob: float = 0.5
    """Probability of flipping the scene about the x axis (``y -> -y``)."""
    scale: tuple[float, float] = (0.95, 1.05)
    """Range of the uniform scale factor."""
    translation_std: float = 0.2
    """Standard deviation of the translation along each axis, metres."""
    gt_sampling: GTSamplingConfig | None = None
    """Ground-truth sampling, or None for none (needs a :class:`GTDatabase`)."""

    def __post_init__(self) -> None:
        from perceive.utils.config_types import check_field_types

        check_field_types(AugmentConfig, vars(self), "augment")
        if len(self.scale) != 2 or any(not isinstance(v, int | float) for v in self.scale):
            raise ConfigError(f"scale must be (low, high), got {self.scale!r}")
        if not 0.0 <= self.rotation <= math.pi:
            raise ConfigError(f"rotation must be in [0, pi], got {self.rotation}")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ConfigError(f"flip_prob must be in [0, 1], got {self.flip_prob}")
        lo, hi = self.scale
        if not 0.0 < lo <= hi:
            raise ConfigError(f"scale must be (low, high) with 0 < low <= high, got {self.scale}")
        if self.translation_std < 0:
            raise ConfigError(f"translation_std must be >= 0, got {self.translation_std}")

    @staticmethod
    def none() -> AugmentConfig:
        """The identity: no augmentation."""
        return AugmentConfig(rotation=0.0, flip_prob=0.0, scale=(1.0, 1.0), translation_std=0.0)


@dataclass(frozen=True)
class GlobalTransform:
    """One drawn augmentation: flip, then rotate, then scale, then translate."""

    flip: bool = False
    """Mirror ``y -> -y`` first."""
    yaw: float = 0.0
    """Rotation about z, radians."""
    scale: float = 1.0
    """Uniform scale factor."""
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Translation, metres."""

    @property
    def matrix(self) -> np.ndarray:
        """(4, 4) float64 map of the vehicle frame to the augmented vehicle frame."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        lin = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) * self.scale
        if self.flip:
            lin = lin @ np.diag([1.0, -1.0, 1.0])
        out = np.eye(4)
        out[:3, :3] = lin
        out[:3, 3] = self.translation
        return out

    @staticmethod
    def sample(config: AugmentConfig, rng: np.random.Generator) -> GlobalTransform:
        """Draw an augmentation from ``config``."""
        return GlobalTransform(
            flip=bool(rng.random() < config.flip_prob),
            yaw=float(rng.uniform(-config.rotation, config.rotation)),
            scale=float(rng.uniform(*config.scale)),
            translation=tuple(float(v) for v in rng.normal(0.0, config.translation_std, 3)),
        )


def transform_points(t: GlobalTransform, points: np.ndarray) -> np.ndarray:
    """Apply an augmentation to points.

    Args:
        t: the augmentation.
        points: (N, F) float32, columns 0-2 x, y, z in the vehicle frame (metres);
            the other columns (intensity, elongation...) are kept.

    Returns:
        (N, F) float32, a new array.
    """
    m = t.matrix
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :3] = (points[:, :3].astype(np.float64) @ m[:3, :3].T + m[:3, 3]).astype(np.float32)
    return out


def transform_boxes(t: GlobalTransform, boxes: np.ndarray) -> np.ndarray:
    """Apply an augmentation to boxes.

    Args:
        t: the augmentation.
        boxes: (M, 7) float32 ``x, y, z, length, width, height, heading`` (vehicle frame,
            metres, radians).

    Returns:
        (M, 7) float32, heading wrapped to [-pi, pi).
    """
    m = t.matrix
    b = np.asarray(boxes, dtype=np.float64)
    out = np.empty_like(b)
    out[:, :3] = b[:, :3] @ m[:3, :3].T + m[:3, 3]
    out[:, 3:6] = b[:, 3:6] * t.scale
    heading = -b[:, 6] if t.flip else b[:, 6]
    out[:, 6] = wrap_angle(heading + t.yaw)
    return out.astype(np.float32)


def transform_extrinsics(t: GlobalTransform, extrinsics: np.ndarray) -> np.ndarray:
    """Apply an augmentation to camera extrinsics.

    Args:
        t: the augmentation.
        extrinsics: (C, 4, 4) camera frame -> vehicle frame.

    Returns:
        (C, 4, 4) float32 camera frame -> augmented vehicle frame (``A @ E``).
    """
    return (t.matrix[None] @ np.asarray(extrinsics, dtype=np.float64)).astype(np.float32)


@dataclass(frozen=True)
class GTObject:
    """One object of the ground-truth database."""

    box: np.ndarray
    """(7,) float32 box, vehicle frame of the frame it came from."""
    label: int
    """Class index."""
    points: np.ndarray
    """(K, F) float32 the points inside the box."""
    difficulty: int = 0
    """Detection difficulty of the source box."""


@dataclass
class GTDatabase:
    """Objects (box and points) collected from training frames, per class index.

    Build it with :meth:`add_frame` over the training set (or some of it). It holds
    only NumPy arrays, so it is picklable for DataLoader workers.
    """

    num_classes: int = 4
    """Number of class indices."""
    objects: list[list[GTObject]] = field(default_factory=list)
    """Objects per class index."""

    def __post_init__(self) -> None:
        if not self.objects:
            self.objects = [[] for _ in range(self.num_classes)]

    def add_frame(
        self,
        points: np.ndarray,
        boxes: np.ndarray,
        labels: np.ndarray,
        difficulty: np.ndarray | None = None,
        min_points: int = 5,
    ) -> int:
        """Add the labelled objects of one frame; returns how many were added.

        Args:
            points: (N, F) float32 points, vehicle frame.
            boxes: (M, 7) float32 boxes, same frame.
            labels: (M,) int64 class index (-1 ignored).
            difficulty: (M,) detection difficulty, or None.
            min_points: skip objects with fewer points.
        """
        if len(boxes) == 0:
            return 0
        inside = points_in_boxes(points[:, :3], boxes[:, :3], boxes[:, 3:6], boxes[:, 6])
        added = 0
        for j in range(len(boxes)):
            lab = int(labels[j])
            if not 0 <= lab < self.num_classes:
                continue
            pts = points[inside[:, j]]
            if len(pts) < min_points:
                continue
            self.objects[lab].append(
                GTObject(
                    np.asarray(boxes[j], np.float32),
                    lab,
                    pts.copy(),
                    0 if difficulty is None else int(difficulty[j]),
                )
            )
            added += 1
        return added

    def __len__(self) -> int:
        return sum(len(o) for o in self.objects)


def _bev_radius(boxes: np.ndarray) -> np.ndarray:
    return 0.5 * np.hypot(boxes[:, 3], boxes[:, 4])


def gt_sample(
    db: GTDatabase,
    config: GTSamplingConfig,
    points: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    difficulty: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Paste database objects that do not collide (in bird's eye view) with the scene's boxes.

    Scene points inside a pasted box are removed and the object's points added.

    Args:
        db: the database.
        config: how many objects per class.
        points: (N, F) float32 scene points, vehicle frame.
        boxes: (M, 7) float32 scene boxes.
        labels: (M,) int64 class indices.
        difficulty: (M,) int64 detection difficulty.
        rng: random generator.

    Returns:
        ``(points, boxes, labels, difficulty)`` with the pasted objects appended (the
        sample's points per box are counted later, after every augmentation).
    """
    unchanged = (points, boxes, labels, difficulty)
    if rng.random() >= config.prob:
        return unchanged
    chosen: list[GTObject] = []
    all_boxes = np.asarray(boxes, np.float32).reshape(-1, 7)
    for cls, limit in enumerate(config.max_per_class[: db.num_classes]):
        pool = db.objects[cls]
        if limit == 0 or not pool:
            continue
        for k in rng.choice(len(pool), size=min(limit, len(pool)), replace=False):
            obj = pool[int(k)]
            cand = obj.box[None]
            if len(all_boxes):
                dist = np.hypot(*(all_boxes[:, :2] - cand[:, :2]).T)
                if np.any(dist < _bev_radius(all_boxes) + _bev_radius(cand)):
                    continue
            chosen.append(obj)
            all_boxes = np.concatenate([all_boxes, cand])
    if not chosen:
        return unchanged
    new_boxes = np.stack([o.box for o in chosen]).astype(np.float32)
    inside = points_in_boxes(
        points[:, :3], new_boxes[:, :3], new_boxes[:, 3:6], new_boxes[:, 6]
    ).any(axis=1)
    points = np.concatenate([points[~inside], *[o.points for o in chosen]]).astype(np.float32)
    boxes = np.concatenate([np.asarray(boxes, np.float32).reshape(-1, 7), new_boxes])
    labels = np.concatenate([labels, np.array([o.label for o in chosen], np.int64)])
    difficulty = np.concatenate([difficulty, np.array([o.difficulty for o in chosen], np.int64)])
    return points, boxes, labels, difficulty
