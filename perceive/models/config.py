"""Typed configuration of the detector: one frozen dataclass per part.

Every field has a docstring and :meth:`__post_init__` checks raise
:class:`~perceive.errors.ConfigError`. A :class:`DetectorConfig` round-trips through
plain dicts (:meth:`DetectorConfig.to_dict` / :meth:`DetectorConfig.from_dict`) so that
checkpoints and ONNX metadata carry it as JSON.

Frames and units: the BEV grid is in the vehicle frame (x forward, y left, z up),
metres; grid rows run along y, columns along x; image sizes are ``(width, height)``
pixels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from perceive.datasets.types import CAMERA_NAMES, POINT_FEATURES
from perceive.errors import ConfigError
from perceive.models.classes import CLASS_NAMES
from perceive.utils.config_types import check_field_types

#: The model variants: which sensors feed the BEV grid.
VARIANTS: tuple[str, ...] = ("fusion", "lidar", "camera")


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def _positive_ints(
    name: str, values: tuple[int, ...], *, allow_empty: bool = False, allow_zero: bool = False
) -> None:
    if not values and not allow_empty:
        raise ConfigError(f"{name} must not be empty")
    lo = 0 if allow_zero else 1
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            kind = "non-negative" if allow_zero else "positive"
            raise ConfigError(f"{name} must hold {kind} integers, got {values!r}")


@dataclass(frozen=True)
class GridConfig:
    """The bird's-eye-view grid shared by the LiDAR branch, the camera lift and the head."""

    point_cloud_range: tuple[float, float, float, float, float, float] = (
        -51.2,
        -51.2,
        0.15,
        51.2,
        51.2,
        4.0,
    )
    """``x_min, y_min, z_min, x_max, y_max, z_max``, vehicle frame, metres. Points outside are
    dropped; boxes whose centre lies outside are not learned nor predicted. The default
    ``z_min`` drops the ground (z ~ 0 in the vehicle frame on flat roads): two thirds of a
    frame's points and none of its objects' information."""
    voxel_size: tuple[float, float] = (0.8, 0.8)
    """Pillar size along x and y, metres; ``(x_max - x_min) / voxel_x`` must be an integer."""

    def __post_init__(self) -> None:
        r = tuple(float(v) for v in self.point_cloud_range)
        v = tuple(float(x) for x in self.voxel_size)
        object.__setattr__(self, "point_cloud_range", r)
        object.__setattr__(self, "voxel_size", v)
        if len(r) != 6 or not all(math.isfinite(x) for x in r):
            raise ConfigError(f"grid.point_cloud_range needs 6 finite numbers, got {r!r}")
        if not (r[0] < r[3] and r[1] < r[4] and r[2] < r[5]):
            raise ConfigError(f"grid.point_cloud_range must have min < max on each axis, got {r!r}")
        if len(v) != 2:
            raise ConfigError(f"grid.voxel_size needs 2 numbers (x, y), got {v!r}")
        for i, axis in enumerate("xy"):
            _positive(f"grid.voxel_size[{axis}]", v[i])
            cells = (r[3 + i] - r[i]) / v[i]
            if abs(cells - round(cells)) > 1e-6:
                raise ConfigError(
                    f"grid: range along {axis} ({r[3 + i] - r[i]} m) is not a multiple of {v[i]} m"
                )

    @property
    def shape(self) -> tuple[int, int]:
        """Grid ``(rows, columns)`` = ``(ny, nx)``."""
        r, v = self.point_cloud_range, self.voxel_size
        return round((r[4] - r[1]) / v[1]), round((r[3] - r[0]) / v[0])


@dataclass(frozen=True)
class PillarConfig:
    """LiDAR points -> pillar features on the BEV grid."""

    point_features: tuple[str, ...] = POINT_FEATURES
    """Names of the input point columns, in order (the ONNX ``points`` input)."""
    max_points: int = 60_000
    """At most this many points (the first ones after range cropping, in input order) enter
    the grid. With Waymo's laser order, TOP points come first; a synthetic frame has ~125k
    points in the default range, so the near-field lasers' points are mostly dropped, which
    halves the per-point work (the largest cost of the model on a CPU)."""
    channels: tuple[int, ...] = (16,)
    """Width of each per-point layer; layers after the first also see their pillar's max
    of the previous layer (as in VoxelNet's VFE). The last is the BEV channel count. One
    layer (PointPillars) is the default: per-point work dominates the cost of big clouds."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "point_features", tuple(self.point_features))
        object.__setattr__(self, "channels", tuple(self.channels))
        if len(set(self.point_features)) != len(self.point_features):
            raise ConfigError(
                f"pillars.point_features: each feature once, got {self.point_features!r}"
            )
        if tuple(self.point_features[:3]) != ("x", "y", "z"):
            raise ConfigError(
                f"pillars.point_features must start with x, y, z, got {self.point_features!r}"
            )
        unknown = set(self.point_features) - set(POINT_FEATURES)
        if unknown:
            raise ConfigError(
                f"pillars.point_features: unknown {sorted(unknown)}; known {POINT_FEATURES}"
            )
        _positive_ints("pillars.max_points", (self.max_points,))
        _positive_ints("pillars.channels", self.channels)


#: Conventions of :attr:`CameraConfig.feature_alignment`.
FEATURE_ALIGNMENTS: tuple[str, ...] = ("conv", "cell")


@dataclass(frozen=True)
class CameraConfig:
    """The camera images and the 2D CNN over them."""

    cameras: tuple[str, ...] = CAMERA_NAMES
    """Camera names in the order of the ``images`` input."""
    image_size: tuple[int, int] = (240, 160)
    """Every camera image is resized to ``(width, height)`` pixels before the model."""
    channels: tuple[int, ...] = (16, 24, 32)
    """Width of each stage; every stage starts with a stride-2 convolution (the first
    stage is the stem), so the feature map has stride ``2 ** len(channels)``."""
    blocks: tuple[int, ...] = (0, 1, 1)
    """Residual blocks per stage after its strided convolution."""
    out_channels: int = 16
    """Channels of the feature map handed to the fusion."""
    feature_alignment: str = "conv"
    """Where the fusion takes each camera feature to sit in the image when it samples the map
    at projected pixels (pixel centres at integer + 0.5). ``"conv"`` (the default) puts
    feature ``j`` of a stride-``s`` map at ``s * j + 0.5``, where its chain of padded
    stride-2 convolutions centres it, and clamps samples past the outer features to them;
    ``"cell"`` puts it at the middle of its ``s`` x ``s`` cell, ``s * (j + 0.5)``, which is
    ``(s - 1) / 2`` pixels (3.5 at stride 8) right of and below the convolutions' centre, and
    reads zeros past the outer features. ``"cell"`` is what the models up to round 6 were
    trained with; a config mapping without this key (a checkpoint from before it existed)
    means ``"cell"``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        object.__setattr__(self, "image_size", tuple(int(x) for x in self.image_size))
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.cameras:
            raise ConfigError("camera.cameras must name at least one camera")
        bad = [c for c in self.cameras if c not in CAMERA_NAMES]
        if bad or len(set(self.cameras)) != len(self.cameras):
            raise ConfigError(
                f"camera.cameras must be distinct names from {CAMERA_NAMES}, got {self.cameras!r}"
            )
        if len(self.image_size) != 2:
            raise ConfigError(f"camera.image_size must be (width, height), got {self.image_size!r}")
        _positive_ints("camera.image_size", self.image_size)
        _positive_ints("camera.channels", self.channels)
        _positive_ints("camera.blocks", self.blocks, allow_empty=True, allow_zero=True)
        if len(self.blocks) != len(self.channels):
            raise ConfigError("camera.blocks needs one entry per camera.channels stage")
        _positive_ints("camera.out_channels", (self.out_channels,))
        if self.feature_alignment not in FEATURE_ALIGNMENTS:
            raise ConfigError(
                f"camera.feature_alignment must be one of {FEATURE_ALIGNMENTS}, "
                f"got {self.feature_alignment!r}"
            )
        stride = self.stride
        if self.image_size[0] % stride or self.image_size[1] % stride:
            raise ConfigError(
                f"camera.image_size {self.image_size} must be divisible by the stride {stride}"
            )

    @property
    def stride(self) -> int:
        """Downsampling factor from the image to the feature map."""
        return 2 ** len(self.channels)


@dataclass(frozen=True)
class FusionConfig:
    """Lift of camera features to the BEV grid (Simple-BEV style) and the fusion with LiDAR."""

    heights: tuple[float, ...] = (0.4, 1.0, 1.6, 2.4)
    """z of the sample points above every BEV cell, vehicle frame, metres."""
    bev_stride: int = 2
    """The lift samples cells of ``bev_stride`` x ``bev_stride`` pillars (camera features are
    coarser than pillars); the result is upsampled bilinearly to the pillar grid."""
    bev_channels: int = 16
    """Channels of the lifted camera BEV map (after the height collapse)."""
    min_depth: float = 0.5
    """Samples closer than this to a camera along its optical axis are ignored, metres."""
    paint: bool = False
    """Also paint the LiDAR points (fusion variant): every point gets the camera features
    bilinearly sampled where it projects (averaged over the cameras that see it) and a
    seen-by-a-camera flag, as extra inputs of the pillar encoder. Off by default: on the
    synthetic benchmark (round 4, three seeds) it did not beat the lift alone."""
    gate: bool = False
    """Fusion variant: multiply the lifted camera map by a learned per-channel gate that
    starts at zero, so that training starts from a LiDAR-only model and lets the camera in
    as it helps (ControlNet-style zero initialisation). Ignored by the camera-only variant.
    Off by default: on the synthetic benchmark (round 5, two seeds) the gates stayed below
    0.06 in 3600 steps and the model scored like LiDAR only."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "heights", tuple(float(h) for h in self.heights))
        if not self.heights or not all(math.isfinite(h) for h in self.heights):
            raise ConfigError(f"fusion.heights must be finite numbers, got {self.heights!r}")
        _positive_ints("fusion.bev_channels", (self.bev_channels,))
        _positive_ints("fusion.bev_stride", (self.bev_stride,))
        _positive("fusion.min_depth", self.min_depth)
        for name in ("paint", "gate"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"fusion.{name} must be true or false, got {getattr(self, name)!r}"
                )


@dataclass(frozen=True)
class BEVBackboneConfig:
    """2D CNN over the BEV grid with an upsampling neck (SECOND / PointPillars style)."""

    channels: tuple[int, ...] = (24, 48, 64)
    """Width of each stage."""
    strides: tuple[int, ...] = (2, 2, 2)
    """Stride of each stage's first convolution (relative to the previous stage)."""
    blocks: tuple[int, ...] = (1, 1, 1)
    """3x3 convolutions per stage after the first."""
    neck_channels: int = 24
    """Channels of each stage after upsampling to the output stride; they are concatenated."""
    out_stride: int = 1
    """Stride of the output map (and the heatmap) relative to the pillar grid; each stage's
    stride and it must divide one another."""

    def __post_init__(self) -> None:
        for name in ("channels", "strides", "blocks"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        _positive_ints("bev.channels", self.channels)
        _positive_ints("bev.strides", self.strides)
        _positive_ints("bev.blocks", self.blocks, allow_empty=True, allow_zero=True)
        if not (len(self.channels) == len(self.strides) == len(self.blocks)):
            raise ConfigError("bev.channels, bev.strides and bev.blocks need the same length")
        _positive_ints("bev.neck_channels", (self.neck_channels,))
        _positive_ints("bev.out_stride", (self.out_stride,))
        for s in self.cumulative_strides:
            if s % self.out_stride and self.out_stride % s:
                raise ConfigError(
                    f"bev.out_stride {self.out_stride} and the stage strides "
                    f"{self.cumulative_strides} must divide one another"
                )

    @property
    def cumulative_strides(self) -> tuple[int, ...]:
        """Stride of each stage's output relative to the input grid."""
        out, s = [], 1
        for x in self.strides:
            s *= x
            out.append(s)
        return tuple(out)


#: Heading codings of :attr:`HeadConfig.heading`.
HEADING_CODES: tuple[str, ...] = ("axis_direction", "sin_cos")


@dataclass(frozen=True)
class HeadConfig:
    """CenterPoint-style head: a class heatmap and box regression per BEV cell, and decoding."""

    channels: int = 24
    """Channels of the shared 3x3 convolution before the heatmap and regression outputs."""
    max_detections: int = 100
    """Boxes returned per frame (the ``K`` of the outputs; lower scores padded by top-k)."""
    score_threshold: float = 0.1
    """Suggested score threshold for consumers (the runner); the graph returns all K."""
    nms_kernel: int = 3
    """Side of the max-pooling window that keeps local heatmap peaks (odd)."""
    min_radius: int = 1
    """Smallest Gaussian radius of a training target, in heatmap cells."""
    gaussian_overlap: float = 0.1
    """Minimum IoU of a box shifted by the radius (CenterNet's rule for the radius)."""
    init_bias: float = -2.19
    """Initial heatmap logit bias (prior probability 0.1)."""
    heading: str = "axis_direction"
    """How the regression codes the heading ``t``: ``"axis_direction"`` (the default) codes
    ``sin t, cos t, sin 2t, cos 2t``: the box axis comes from the doubled angle, which is
    the same for ``t`` and ``t + pi``, so an object whose front and back look alike still
    gets its axis right, and ``sin t, cos t`` only pick which end is the front;
    ``"sin_cos"`` codes ``sin t, cos t`` alone (the first models; a regression torn between
    ``t`` and ``t + pi`` then averages to a vector near zero and the axis is lost). A
    config mapping without this key (a checkpoint from before it existed) means
    ``"sin_cos"``."""

    def __post_init__(self) -> None:
        if self.heading not in HEADING_CODES:
            raise ConfigError(f"head.heading must be one of {HEADING_CODES}, got {self.heading!r}")
        _positive_ints("head.channels", (self.channels,))
        _positive_ints("head.max_detections", (self.max_detections,))
        if not (0.0 <= self.score_threshold < 1.0):
            raise ConfigError(
                f"head.score_threshold must be in [0, 1), got {self.score_threshold!r}"
            )
        _positive_ints("head.nms_kernel", (self.nms_kernel,))
        if self.nms_kernel % 2 == 0:
            raise ConfigError(f"head.nms_kernel must be odd, got {self.nms_kernel}")
        if not isinstance(self.min_radius, int) or self.min_radius < 0:
            raise ConfigError(
                f"head.min_radius must be a non-negative integer, got {self.min_radius!r}"
            )
        if not (0.0 < self.gaussian_overlap < 1.0):
            raise ConfigError(
                f"head.gaussian_overlap must be in (0, 1), got {self.gaussian_overlap!r}"
            )

    @property
    def code_size(self) -> int:
        """Regression channels: ``dx, dy, z, log l, log w, log h, sin t, cos t`` and, with
        ``heading="axis_direction"``, ``sin 2t, cos 2t``."""
        return 10 if self.heading == "axis_direction" else 8


@dataclass(frozen=True)
class LossConfig:
    """Weights of the training loss."""

    heatmap_weight: float = 1.0
    """Weight of the focal heatmap loss."""
    regression_weight: float = 0.25
    """Weight of the L1 box regression loss (summed over the code, averaged over boxes)."""
    code_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    """Per-component weights of the regression code ``dx, dy, z, log l, log w, log h, sin, cos``
    (with ``head.heading="axis_direction"`` the ``sin 2t, cos 2t`` components take the
    weights of ``sin, cos``)."""
    focal_alpha: float = 2.0
    """Exponent of the (1 - p) / p factor of the focal loss."""
    focal_beta: float = 4.0
    """Exponent of the (1 - target) penalty reduction around peaks."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "code_weights", tuple(float(w) for w in self.code_weights))
        if len(self.code_weights) != 8 or any(
            w < 0 or not math.isfinite(w) for w in self.code_weights
        ):
            raise ConfigError(
                f"loss.code_weights needs 8 non-negative numbers, got {self.code_weights!r}"
            )
        for name in ("heatmap_weight", "regression_weight", "focal_alpha", "focal_beta"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"loss.{name} must be a non-negative number, got {v!r}")


_SECTIONS: dict[str, type] = {
    "grid": GridConfig,
    "pillars": PillarConfig,
    "camera": CameraConfig,
    "fusion": FusionConfig,
    "bev": BEVBackboneConfig,
    "head": HeadConfig,
    "loss": LossConfig,
}


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that defines a detector (its weights aside)."""

    variant: str = "fusion"
    """Which sensors feed the BEV grid: ``"fusion"`` (LiDAR + cameras), ``"lidar"``, ``"camera"``.
    Every variant keeps the same inputs."""
    class_names: tuple[str, ...] = CLASS_NAMES
    """Names of the classes, in heatmap channel order (see :mod:`perceive.models.classes`)."""
    grid: GridConfig = field(default_factory=GridConfig)
    """The BEV grid."""
    pillars: PillarConfig = field(default_factory=PillarConfig)
    """The LiDAR branch."""
    camera: CameraConfig = field(default_factory=CameraConfig)
    """The camera images and their CNN."""
    fusion: FusionConfig = field(default_factory=FusionConfig)
    """The camera-to-BEV lift."""
    bev: BEVBackboneConfig = field(default_factory=BEVBackboneConfig)
    """The BEV backbone."""
    head: HeadConfig = field(default_factory=HeadConfig)
    """The detection head and decoding."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Training loss weights."""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if tuple(self.class_names) != CLASS_NAMES:
            raise ConfigError(
                f"class_names must be {CLASS_NAMES} (perceive.models.classes), "
                f"got {self.class_names!r}"
            )
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(
                    f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}"
                )
        ny, nx = self.grid.shape
        total = self.bev.cumulative_strides[-1]
        if ny % total or nx % total:
            raise ConfigError(
                f"grid shape {self.grid.shape} must be divisible by the BEV backbone stride {total}"
            )
        s = self.fusion.bev_stride
        if ny % s or nx % s:
            raise ConfigError(
                f"grid shape {self.grid.shape} must be divisible by fusion.bev_stride {s}"
            )

    @property
    def num_classes(self) -> int:
        """Number of heatmap channels."""
        return len(self.class_names)

    @property
    def head_grid_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the heatmap."""
        ny, nx = self.grid.shape
        return ny // self.bev.out_stride, nx // self.bev.out_stride

    @property
    def head_cell_size(self) -> tuple[float, float]:
        """Heatmap cell size along x and y, metres."""
        vx, vy = self.grid.voxel_size
        return vx * self.bev.out_stride, vy * self.bev.out_stride

    def replace(self, **changes: Any) -> DetectorConfig:
        """A copy with some top-level fields changed (e.g. ``variant="lidar"``)."""
        return DetectorConfig(
            **{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes}
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (lists for tuples)."""

        def plain(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: plain(v) for k, v in x.items()}
            if isinstance(x, list | tuple):
                return [plain(v) for v in x]
            return x

        return plain(asdict(self))

    @staticmethod
    def from_dict(data: dict[str, Any]) -> DetectorConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"a detector config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(DetectorConfig)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"detector config: unknown keys {sorted(unknown)}; known {sorted(known)}"
            )
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in _SECTIONS:
                cls = _SECTIONS[key]
                if isinstance(value, cls):
                    kwargs[key] = value
                    continue
                if not isinstance(value, dict):
                    raise ConfigError(
                        f"detector config: {key} must be a mapping, got {type(value).__name__}"
                    )
                allowed = {f.name for f in fields(cls)}
                bad = set(value) - allowed
                if bad:
                    raise ConfigError(
                        f"detector config: unknown keys {sorted(bad)} in {key}; "
                        f"known {sorted(allowed)}"
                    )
                check_field_types(cls, value, f"detector config: {key}")
                conv = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
                # Written before these fields existed: the behaviour of that time.
                if key == "head" and "heading" not in conv:
                    conv["heading"] = "sin_cos"
                if key == "camera" and "feature_alignment" not in conv:
                    conv["feature_alignment"] = "cell"
                try:
                    kwargs[key] = cls(**conv)
                except ConfigError:
                    raise
                except (TypeError, ValueError) as e:  # e.g. int("64x32") in a conversion
                    raise ConfigError(f"detector config: {key}: {e}") from None
            else:
                kwargs[key] = tuple(value) if isinstance(value, list) else value
        return DetectorConfig(**kwargs)


def tiny_config(variant: str = "fusion") -> DetectorConfig:
    """A very small detector (32 x 32 grid, two 64 x 32 cameras, 8-16 channels) for tests,
    smoke runs and examples; it trains a step in well under a second on a CPU."""
    return DetectorConfig(
        variant=variant,
        grid=GridConfig(
            point_cloud_range=(-12.8, -12.8, -2.0, 12.8, 12.8, 4.0), voxel_size=(0.8, 0.8)
        ),
        pillars=PillarConfig(max_points=500, channels=(8, 8)),
        camera=CameraConfig(
            cameras=("FRONT", "SIDE_LEFT"),
            image_size=(64, 32),
            channels=(8, 16),
            blocks=(0, 1),
            out_channels=8,
        ),
        fusion=FusionConfig(bev_channels=8, paint=True),  # tests cover painting too
        bev=BEVBackboneConfig(
            channels=(8, 16), strides=(1, 2), blocks=(0, 1), neck_channels=8, out_stride=1
        ),
        head=HeadConfig(channels=8, max_detections=20),
    )
