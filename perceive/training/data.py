"""The training data pipeline: a PyTorch dataset over the cache or Waymo files, and collate.

>>> cfg = DatasetConfig(cameras=("FRONT",), image_size=(480, 320))     # doctest: +SKIP
>>> ds = FrameDataset.from_cache("cache/", cfg)                         # doctest: +SKIP
>>> loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate)  # doctest: +SKIP
>>> batch = next(iter(loader)).to("cuda")                               # doctest: +SKIP

Every source gives a :class:`~perceive.convert.cache.CachedFrame` per index, and one
function (:func:`make_sample`) turns it into a :class:`Sample`, so the cache and the
direct readers give identical samples. The dataset holds only paths and small indexes;
files are opened lazily in the process that reads them (safe with DataLoader workers,
forked or spawned). Randomness is a pure function of ``(config.seed, epoch, index)``,
so a run is reproducible whatever the number of workers.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from perceive.convert.cache import CachedFrame, CacheReader
from perceive.datasets.image import decode_jpeg
from perceive.datasets.types import CAMERA_NAMES, POINT_FEATURES
from perceive.errors import ConfigError, MissingComponentError
from perceive.geometry.boxes import count_points_in_boxes
from perceive.models.classes import class_of_waymo_type
from perceive.training.augment import (
    AugmentConfig,
    GlobalTransform,
    GTDatabase,
    gt_sample,
    transform_boxes,
    transform_extrinsics,
    transform_points,
)


@dataclass(frozen=True)
class DatasetConfig:
    """What a training sample holds and how it is augmented."""

    cameras: tuple[str, ...] = CAMERA_NAMES
    """Cameras in the order of the sample's image axis (names of :data:`CAMERA_NAMES`)."""
    image_size: tuple[int, int] = (480, 320)
    """(width, height) every camera image is resized to (``cv2.INTER_AREA``), pixels."""
    point_range: tuple[float, float, float, float, float, float] = (
        -75.2,
        -75.2,
        -2.0,
        75.2,
        75.2,
        4.0,
    )
    """Points kept: ``xmin, ymin, zmin, xmax, ymax, zmax``, vehicle frame after augmentation, m."""
    max_points: int = 150_000
    """At most this many points per sample (a random subset when there are more)."""
    returns: tuple[int, ...] = (1, 2)
    """LiDAR returns used (1 and/or 2)."""
    drop_nlz: bool = False
    """Drop points inside no-label zones."""
    min_box_points: int = 1
    """Drop boxes with fewer LiDAR points (Waymo's metrics ignore boxes with none)."""
    filter_boxes_by_range: bool = True
    """Drop boxes whose centre lies outside ``point_range`` (after augmentation)."""
    augment: AugmentConfig | None = None
    """Augmentations, or None for none (evaluation)."""
    point_features: tuple[str, ...] = POINT_FEATURES
    """Columns of the sample's points, in order (the model's ``pillars.point_features``;
    the cache stores :data:`POINT_FEATURES`)."""
    seed: int = 0
    """Seed of the sample randomness (augmentation, point subsampling)."""
    fast_decode: bool = False
    """Decode JPEGs at 1/2, 1/4 or 1/8 scale in the DCT domain when the target size allows
    it (about twice as fast; pixels differ by about 0.5 levels on average from the full
    decode + ``INTER_AREA`` that the deployed runner uses)."""

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ConfigError("cameras must name at least one camera")
        for c in self.cameras:
            if c not in CAMERA_NAMES:
                raise ConfigError(f"unknown camera {c!r}; cameras are {CAMERA_NAMES}")
        if len(set(self.cameras)) != len(self.cameras):
            raise ConfigError(f"cameras repeat a name: {self.cameras}")
        object.__setattr__(self, "point_features", tuple(self.point_features))
        unknown = set(self.point_features) - set(POINT_FEATURES)
        if unknown or len(set(self.point_features)) != len(self.point_features):
            raise ConfigError(
                f"point_features must name each of {POINT_FEATURES} at most once, "
                f"got {self.point_features}"
            )
        w, h = self.image_size
        if w <= 0 or h <= 0:
            raise ConfigError(f"image_size must be positive (width, height), got {self.image_size}")
        r = self.point_range
        if len(r) != 6 or not (r[0] < r[3] and r[1] < r[4] and r[2] < r[5]):
            raise ConfigError(f"point_range must be (xmin, ymin, zmin, xmax, ymax, zmax), got {r}")
        if self.max_points <= 0:
            raise ConfigError(f"max_points must be > 0, got {self.max_points}")
        if not self.returns or any(x not in (1, 2) for x in self.returns):
            raise ConfigError(f"returns must be a non-empty subset of (1, 2), got {self.returns}")
        if self.min_box_points < 0:
            raise ConfigError(f"min_box_points must be >= 0, got {self.min_box_points}")


@dataclass(frozen=True)
class Sample:
    """One training frame as tensors (see /contracts: the training batch)."""

    points: torch.Tensor
    """(N, 5) float32 ``x, y, z, intensity, elongation``, vehicle frame, metres."""
    images: torch.Tensor
    """(C, H, W, 3) uint8 RGB, cameras in the config's order, resized to the config's size."""
    intrinsics: torch.Tensor
    """(C, 9) float32 ``f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3`` for the resized images."""
    extrinsics: torch.Tensor
    """(C, 4, 4) float32 camera frame -> (augmented) vehicle frame."""
    boxes: torch.Tensor
    """(M, 7) float32 ``x, y, z, length, width, height, heading``, vehicle frame."""
    labels: torch.Tensor
    """(M,) int64 class index (:mod:`perceive.models.classes`)."""
    difficulty: torch.Tensor
    """(M,) int64 detection difficulty (0 unknown, 1 LEVEL_1, 2 LEVEL_2)."""
    num_points: torch.Tensor
    """(M,) int64 points of this sample inside each box (faces included): counted after
    augmentation, the range filter and the point budget, so they can be fewer than the
    label's ``num_lidar_points`` (which ``DatasetConfig.min_box_points`` filters on)."""
    segment: str
    """Segment name."""
    timestamp_us: int
    """Frame timestamp, microseconds."""


@dataclass(frozen=True)
class Batch:
    """Samples collated by :func:`collate`."""

    points: torch.Tensor
    """(P, 5) float32, the samples' points concatenated."""
    point_batch: torch.Tensor
    """(P,) int64 sample index of each point."""
    images: torch.Tensor
    """(B, C, H, W, 3) uint8."""
    intrinsics: torch.Tensor
    """(B, C, 9) float32."""
    extrinsics: torch.Tensor
    """(B, C, 4, 4) float32 camera -> vehicle."""
    boxes: torch.Tensor
    """(B, Mmax, 7) float32, zero padded."""
    labels: torch.Tensor
    """(B, Mmax) int64, padded with -1."""
    difficulty: torch.Tensor
    """(B, Mmax) int64, padded with 0."""
    num_points: torch.Tensor
    """(B, Mmax) int64, padded with 0."""
    segments: tuple[str, ...]
    """Segment of each sample."""
    timestamps: tuple[int, ...]
    """Timestamp of each sample, microseconds."""

    def __len__(self) -> int:
        return len(self.segments)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch with every tensor moved to ``device``."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = (
                v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v
            )
        return Batch(**kw)

    def pin_memory(self) -> Batch:
        """The batch in pinned host memory (called by DataLoader with ``pin_memory=True``)."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v.pin_memory() if isinstance(v, torch.Tensor) else v
        return Batch(**kw)


def collate(samples: Sequence[Sample]) -> Batch:
    """Collate samples with different numbers of points and boxes into a :class:`Batch`."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    b = len(samples)
    mmax = max(int(s.boxes.shape[0]) for s in samples)
    boxes = torch.zeros((b, mmax, 7), dtype=torch.float32)
    labels = torch.full((b, mmax), -1, dtype=torch.int64)
    difficulty = torch.zeros((b, mmax), dtype=torch.int64)
    num_points = torch.zeros((b, mmax), dtype=torch.int64)
    for i, s in enumerate(samples):
        m = int(s.boxes.shape[0])
        boxes[i, :m] = s.boxes
        labels[i, :m] = s.labels
        difficulty[i, :m] = s.difficulty
        num_points[i, :m] = s.num_points
    counts = torch.tensor([int(s.points.shape[0]) for s in samples], dtype=torch.int64)
    return Batch(
        points=torch.cat([s.points for s in samples]) if b else torch.zeros((0, 5)),
        point_batch=torch.repeat_interleave(torch.arange(b, dtype=torch.int64), counts),
        images=torch.stack([s.images for s in samples]),
        intrinsics=torch.stack([s.intrinsics for s in samples]),
        extrinsics=torch.stack([s.extrinsics for s in samples]),
        boxes=boxes,
        labels=labels,
        difficulty=difficulty,
        num_points=num_points,
        segments=tuple(s.segment for s in samples),
        timestamps=tuple(int(s.timestamp_us) for s in samples),
    )


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


_REDUCED = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def _decode(
    data: bytes, source_size: tuple[int, int], size: tuple[int, int], fast: bool, what: str
) -> np.ndarray:
    """(H, W, 3) uint8 RGB image of ``size`` (W, H) from JPEG bytes of ``source_size``."""
    if fast:
        factor = max(
            (
                k
                for k in (8, 4, 2)
                if source_size[0] >= k * size[0] and source_size[1] >= k * size[1]
            ),
            default=1,
        )
        if factor > 1:
            flag = (_REDUCED[factor] & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB
            img = cv2.imdecode(np.frombuffer(data, np.uint8), flag) if data else None
            if img is not None:
                return _resize(img, size)
    return _resize(decode_jpeg(data, what=what), size)


def lidar_targets(
    frame: CachedFrame, config: DatasetConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points and boxes of a frame before augmentation and range filtering.

    Returns:
        ``points`` (N, 5) float32 (the configured returns, no-label zones dropped if
        asked), ``boxes`` (M, 7) float32, ``labels`` (M,) int64 class index,
        ``difficulty`` (M,) int64: boxes of detector classes whose labels count at
        least ``config.min_box_points`` LiDAR points (``num_lidar_points``).
    """
    keep = np.isin(frame.return_index, np.asarray(config.returns, np.uint8))
    if config.drop_nlz:
        keep &= ~np.asarray(frame.nlz, bool)
    points = np.asarray(frame.points[keep], np.float32)
    bx = frame.boxes
    labels = class_of_waymo_type(bx.type)
    box_keep = (labels >= 0) & (bx.num_lidar_points >= config.min_box_points)
    return (
        points,
        bx.to_array()[box_keep],
        labels[box_keep],
        bx.difficulty[box_keep].astype(np.int64),
    )


def make_sample(
    frame: CachedFrame,
    config: DatasetConfig,
    rng: np.random.Generator | None = None,
    gt_database: GTDatabase | None = None,
) -> Sample:
    """Build the sample of one frame.

    Args:
        frame: the frame (from the cache or a Waymo reader).
        config: what to keep and how to augment.
        rng: random generator for augmentation and point subsampling; None for a
            generator seeded with ``config.seed``.
        gt_database: objects for ground-truth sampling (used when the config asks for it).

    Raises:
        MissingComponentError: a configured camera is not in the frame.
    """
    rng = np.random.default_rng(config.seed) if rng is None else rng
    points, boxes, labels, difficulty = lidar_targets(frame, config)
    # Cameras.
    w, h = config.image_size
    images = np.empty((len(config.cameras), h, w, 3), np.uint8)
    intrinsics = np.empty((len(config.cameras), 9), np.float32)
    extrinsics = np.empty((len(config.cameras), 4, 4), np.float64)
    for c, name in enumerate(config.cameras):
        if name not in frame.cameras or name not in frame.image_bytes:
            raise MissingComponentError(
                f"{frame.source or frame.segment}: camera {name!r} is not in the frame "
                f"(cameras: {sorted(frame.image_bytes)}); choose cameras in DatasetConfig"
            )
        cal = frame.cameras[name]
        images[c] = _decode(
            frame.image_bytes[name],
            (cal.width, cal.height),
            (w, h),
            config.fast_decode,
            what=f"{frame.source}: camera {name}",
        )
        intrinsics[c] = cal.resized(w, h).intrinsic.astype(np.float32)
        extrinsics[c] = cal.extrinsic
    # Augmentation.
    aug = config.augment
    if aug is not None:
        if aug.gt_sampling is not None and gt_database is not None:
            points, boxes, labels, difficulty = gt_sample(
                gt_database, aug.gt_sampling, points, boxes, labels, difficulty, rng
            )
        t = GlobalTransform.sample(aug, rng)
        points = transform_points(t, points)
        boxes = transform_boxes(t, boxes)
        extrinsics_out = transform_extrinsics(t, extrinsics)
    else:
        extrinsics_out = extrinsics.astype(np.float32)
    # Range filter and point budget.
    r = np.asarray(config.point_range, np.float32)
    inside = np.all((points[:, :3] >= r[:3]) & (points[:, :3] < r[3:]), axis=1)
    points = points[inside]
    if len(points) > config.max_points:
        idx = np.sort(rng.choice(len(points), config.max_points, replace=False))
        points = points[idx]
    if config.filter_boxes_by_range and len(boxes):
        bin_ = np.all((boxes[:, :3] >= r[:3]) & (boxes[:, :3] < r[3:]), axis=1)
        boxes, labels, difficulty = boxes[bin_], labels[bin_], difficulty[bin_]
    num_points = count_points_in_boxes(points[:, :3], boxes)
    if tuple(config.point_features) != POINT_FEATURES:
        points = points[:, [POINT_FEATURES.index(n) for n in config.point_features]]
    return Sample(
        points=torch.from_numpy(np.ascontiguousarray(points, np.float32)),
        images=torch.from_numpy(images),
        intrinsics=torch.from_numpy(intrinsics),
        extrinsics=torch.from_numpy(np.ascontiguousarray(extrinsics_out, np.float32)),
        boxes=torch.from_numpy(np.ascontiguousarray(boxes, np.float32).reshape(-1, 7)),
        labels=torch.from_numpy(np.asarray(labels, np.int64)),
        difficulty=torch.from_numpy(np.asarray(difficulty, np.int64)),
        num_points=torch.from_numpy(np.asarray(num_points, np.int64)),
        segment=frame.segment,
        timestamp_us=int(frame.timestamp_us),
    )


#: Segments a direct (v1/v2) source keeps open per process (least recently used closed).
MAX_OPEN_SEGMENTS = 32


class FrameSource(Protocol):
    """Random access to frames in cached form (what :class:`FrameDataset` reads)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> CachedFrame: ...


def _expand_paths(
    paths: str | Path | Sequence[str | Path], suffixes: tuple[str, ...]
) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and q.name.endswith(suffixes)))
        elif p.exists():
            out.append(p)
        else:
            matches = sorted(glob.glob(str(item)))
            if not matches:
                raise FileNotFoundError(f"no such file, folder or glob match: {item}")
            out.extend(Path(m) for m in matches)
    return out


def _locate(starts: np.ndarray, index: int) -> tuple[int, int]:
    """``(segment, frame within it)`` of a frame index, from the segments' first indices."""
    f = int(np.searchsorted(starts, index, side="right") - 1)
    return f, index - int(starts[f])


class V1Source:
    """Frames of Waymo v1 ``.tfrecord`` files, decoded to points on access.

    Only paths and record counts are kept; each process opens the files it reads.

    Args:
        paths: files, folders (their ``.tfrecord`` files) or globs.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path]) -> None:
        from perceive.io.tfrecord import build_index

        self.paths = _expand_paths(paths, (".tfrecord",))
        self.counts = [len(build_index(p)[0]) for p in self.paths]
        self._starts = np.cumsum([0, *self.counts])
        self._open: dict[int, object] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _segment(self, file_index: int):
        from perceive.datasets import waymo

        if self._pid != os.getpid():  # forked into a worker: do not share descriptors
            self._open, self._pid = {}, os.getpid()
        seg = self._open.pop(file_index, None)
        if seg is None:
            seg = waymo.open(self.paths[file_index])
        self._open[file_index] = seg  # most recently used last
        while len(self._open) > MAX_OPEN_SEGMENTS:
            self._open.pop(next(iter(self._open))).close()
        return seg

    def __getitem__(self, index: int) -> CachedFrame:
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range ({len(self)} frames)")
        f, k = _locate(self._starts, index)
        return CachedFrame.from_frame(self._segment(f)[k])

    def frame_in_segment(self, index: int) -> int:
        """The number of frame ``index`` within its segment (file)."""
        return _locate(self._starts, index)[1]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = {}
        return state


class V2Source:
    """Frames of Waymo v2 parquet segments, decoded to points on access.

    Args:
        root: the dataset root (holding ``<split>/<component>/<segment>.parquet``).
        split: ``training``, ``validation`` or ``testing``.
        segments: segment names; None for every segment of the split.
    """

    def __init__(
        self, root: str | Path, split: str = "training", segments: Sequence[str] | None = None
    ) -> None:
        from perceive.datasets.waymo import v2

        self.root, self.split = Path(root), split
        self.segments = list(segments) if segments is not None else v2.list_segments(root, split)
        self.counts = [len(v2.open_v2(root, s, split=split)) for s in self.segments]
        self._starts = np.cumsum([0, *self.counts])
        self._open: dict[int, object] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> CachedFrame:
        from perceive.datasets.waymo import v2

        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range ({len(self)} frames)")
        if self._pid != os.getpid():
            self._open, self._pid = {}, os.getpid()
        f, k = _locate(self._starts, index)
        seg = self._open.pop(f, None)
        if seg is None:
            seg = v2.open_v2(self.root, self.segments[f], split=self.split)
        self._open[f] = seg  # most recently used last
        while len(self._open) > MAX_OPEN_SEGMENTS:
            self._open.pop(next(iter(self._open)))
        return CachedFrame.from_frame(seg[k])

    def frame_in_segment(self, index: int) -> int:
        """The number of frame ``index`` within its segment (file)."""
        return _locate(self._starts, index)[1]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = {}
        return state


@dataclass
class FrameDataset(Dataset):
    """A ``torch.utils.data.Dataset`` of :class:`Sample`, one per frame of a source.

    Build it with :meth:`from_cache`, :meth:`from_v1` or :meth:`from_v2`. Call
    :meth:`set_epoch` at the start of each epoch to draw new augmentations.
    """

    source: FrameSource
    """Where the frames come from."""
    config: DatasetConfig = field(default_factory=DatasetConfig)
    """What a sample holds and how it is augmented."""
    gt_database: GTDatabase | None = None
    """Objects for ground-truth sampling, or None."""
    epoch: int = 0
    """Current epoch (part of the random seed)."""

    @staticmethod
    def from_cache(
        root: str | Path, config: DatasetConfig | None = None, **kw: object
    ) -> FrameDataset:
        """Over a cache folder written by ``perceive convert --to cache``."""
        return FrameDataset(CacheReader(root), config or DatasetConfig(), **kw)  # type: ignore[arg-type]

    @staticmethod
    def from_v1(
        paths: str | Path | Sequence[str | Path], config: DatasetConfig | None = None, **kw: object
    ) -> FrameDataset:
        """Over Waymo v1 ``.tfrecord`` files (files, folders or globs)."""
        return FrameDataset(V1Source(paths), config or DatasetConfig(), **kw)  # type: ignore[arg-type]

    @staticmethod
    def from_v2(
        root: str | Path,
        config: DatasetConfig | None = None,
        *,
        split: str = "training",
        segments: Sequence[str] | None = None,
        **kw: object,
    ) -> FrameDataset:
        """Over Waymo v2 parquet segments (``root/split/<component>/<segment>.parquet``).

        ``config`` is second, as in :meth:`from_cache` and :meth:`from_v1`; the split and
        the segments (None: all of the split's) are keyword arguments.
        """
        if config is not None and not isinstance(config, DatasetConfig):
            raise ConfigError(
                f"from_v2: config must be a DatasetConfig, got {config!r} "
                "(pass split= and segments= by keyword)"
            )
        return FrameDataset(V2Source(root, split, segments), config or DatasetConfig(), **kw)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.source)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch; augmentations depend on ``(seed, epoch, index)``."""
        self.epoch = int(epoch)

    def frame(self, index: int) -> CachedFrame:
        """The source frame at ``index`` (before sample building)."""
        return self.source[index]

    def __getitem__(self, index: int) -> Sample:
        if index < 0:
            index += len(self)
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
        return make_sample(self.source[index], self.config, rng, self.gt_database)

    def build_gt_database(self, indices: Sequence[int] | None = None) -> GTDatabase:
        """Collect ground-truth objects from frames of this dataset (no augmentation).

        Args:
            indices: frames to use; None for all.
        """
        aug = self.config.augment
        min_points = (
            aug.gt_sampling.min_points if aug is not None and aug.gt_sampling is not None else 5
        )
        db = GTDatabase()
        for i in range(len(self)) if indices is None else indices:
            points, boxes, labels, difficulty = lidar_targets(self.source[i], self.config)
            db.add_frame(points, boxes, labels, difficulty, min_points)
        return db
