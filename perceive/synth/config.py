"""Typed configuration of the synthetic data generator, and its presets.

Two presets: ``tiny`` (small range images and images: a segment of a few frames in
seconds, for tests) and ``train`` (full Waymo LiDAR resolution, cameras reduced to
480 pixels wide with the Waymo aspect ratios). :func:`preset` builds either, with
optional overrides of the sensor sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from perceive.errors import ConfigError


def _positive(owner: str, **values: float) -> None:
    for name, v in values.items():
        if not v > 0:
            raise ConfigError(f"{owner}.{name} must be > 0, got {v!r}")


def _unit(owner: str, **values: float) -> None:
    for name, v in values.items():
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"{owner}.{name} must be in [0, 1], got {v!r}")


@dataclass(frozen=True)
class LidarConfig:
    """The five lasers: range-image sizes, ranges and the measurement model."""

    top_shape: tuple[int, int] = (64, 2650)
    """(H, W) of the TOP range image (Waymo: 64 x 2650)."""
    side_shape: tuple[int, int] = (200, 600)
    """(H, W) of the FRONT, SIDE_LEFT, SIDE_RIGHT and REAR range images (Waymo: 200 x 600)."""
    lasers: tuple[str, ...] = ("TOP", "FRONT", "SIDE_LEFT", "SIDE_RIGHT", "REAR")
    """Lasers to simulate, Waymo names."""
    top_max_range: float = 75.0
    """Longest TOP range, metres (Waymo truncates at 75 m)."""
    side_max_range: float = 20.0
    """Longest range of the short-range lasers, metres."""
    min_range: float = 0.3
    """Shortest range of every laser, metres."""
    side_fov_deg: float = 180.0
    """Horizontal field of view of each short-range laser, degrees, centred on its axis."""
    spin_period: float = 0.1
    """Duration of one TOP revolution, seconds; columns are captured in order over it."""
    range_noise: float = 0.0
    """Standard deviation of Gaussian range noise, metres (0: exact ranges)."""
    dropout: float = 0.0
    """Probability that a return is lost at random (besides the weak-signal model)."""
    weak_signal: bool = True
    """Lose returns of dark surfaces at long range (reflectivity x cos(incidence) / range^2)."""
    detection_range: float = 40.0
    """Range, metres, at which a surface of reflectivity 0.05 (black paint, dark cloth) seen
    head-on is at the detection threshold; the signal falls with the square of the range."""
    second_returns: bool = True
    """Add second returns where a beam partly passes an object edge or a thin structure."""
    edge_jump: float = 1.0
    """Range jump to a neighbouring pixel, metres, that marks a pixel as an object edge."""
    thin_second_return_prob: float = 0.5
    """Probability of a second return behind a thin structure (poles, bikes, foliage)."""
    nthreads: int = 0
    """Ray-casting threads (0: Open3D's default)."""

    def __post_init__(self) -> None:
        for name in ("top_shape", "side_shape"):
            shape = getattr(self, name)
            if len(shape) != 2 or min(shape) < 2:
                raise ConfigError(
                    f"LidarConfig.{name} must be (H, W) with H, W >= 2, got {shape!r}"
                )
        from perceive.datasets.types import LASER_NAMES

        bad = [n for n in self.lasers if n not in LASER_NAMES]
        if bad or not self.lasers:
            raise ConfigError(
                f"LidarConfig.lasers: unknown or empty {bad or self.lasers}; known {LASER_NAMES}"
            )
        _positive(
            "LidarConfig",
            top_max_range=self.top_max_range,
            side_max_range=self.side_max_range,
            min_range=self.min_range,
            side_fov_deg=self.side_fov_deg,
            spin_period=self.spin_period,
            detection_range=self.detection_range,
            edge_jump=self.edge_jump,
        )
        if self.range_noise < 0:
            raise ConfigError(f"LidarConfig.range_noise must be >= 0, got {self.range_noise}")
        _unit(
            "LidarConfig",
            dropout=self.dropout,
            thin_second_return_prob=self.thin_second_return_prob,
        )
        if self.nthreads < 0:
            raise ConfigError(f"LidarConfig.nthreads must be >= 0, got {self.nthreads}")


@dataclass(frozen=True)
class CameraConfig:
    """The five cameras: image sizes and rendering."""

    front_size: tuple[int, int] = (480, 320)
    """(W, H) of FRONT, FRONT_LEFT, FRONT_RIGHT (Waymo: 1920 x 1280, aspect 3:2)."""
    side_size: tuple[int, int] = (480, 222)
    """(W, H) of SIDE_LEFT, SIDE_RIGHT (Waymo: 1920 x 886)."""
    cameras: tuple[str, ...] = ("FRONT", "FRONT_LEFT", "FRONT_RIGHT", "SIDE_LEFT", "SIDE_RIGHT")
    """Cameras to render, Waymo names."""
    jpeg_quality: int = 90
    """JPEG quality, 1..100."""
    shadows: bool = True
    """Cast shadow rays toward the sun."""
    pixel_noise: float = 2.0
    """Standard deviation of Gaussian pixel noise, 0..255 units."""
    min_box_pixels: int = 6
    """Fewest visible pixels of an object for a camera 2D box."""

    def __post_init__(self) -> None:
        for name in ("front_size", "side_size"):
            size = getattr(self, name)
            if len(size) != 2 or min(size) < 8:
                raise ConfigError(
                    f"CameraConfig.{name} must be (W, H) with W, H >= 8, got {size!r}"
                )
        from perceive.datasets.types import CAMERA_NAMES

        bad = [n for n in self.cameras if n not in CAMERA_NAMES]
        if bad:
            raise ConfigError(f"CameraConfig.cameras: unknown {bad}; known {CAMERA_NAMES}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(
                f"CameraConfig.jpeg_quality must be in 1..100, got {self.jpeg_quality}"
            )
        if self.pixel_noise < 0 or self.min_box_pixels < 1:
            raise ConfigError("CameraConfig.pixel_noise must be >= 0 and min_box_pixels >= 1")


@dataclass(frozen=True)
class SceneConfig:
    """The procedural world: road layout, buildings, agents and their motion."""

    lanes_per_direction: tuple[int, int] = (1, 2)
    """Inclusive range of lanes per direction of the main road."""
    lane_width: float = 3.5
    """Lane width, metres."""
    intersection_prob: float = 0.5
    """Probability of a cross street."""
    vehicles: tuple[int, int] = (10, 24)
    """Inclusive range of the number of vehicles (moving and parked)."""
    pedestrians: tuple[int, int] = (6, 18)
    """Inclusive range of the number of pedestrians."""
    cyclists: tuple[int, int] = (1, 5)
    """Inclusive range of the number of cyclists."""
    signs: tuple[int, int] = (4, 10)
    """Inclusive range of the number of traffic signs."""
    distractors: tuple[int, int] = (8, 20)
    """Inclusive range of unlabelled look-alikes (columns like pedestrians, blank panels like
    signs, parked bicycles like cyclists), besides lamp posts and trees."""
    ego_speed: tuple[float, float] = (0.0, 14.0)
    """Range of the ego vehicle's initial speed, m/s."""
    label_range: float = 75.0
    """Objects farther than this from the ego (horizontally, metres) get no 3D label."""
    margin: float = 0.05
    """Metres added to an object's mesh extent on each side (and on top) for its 3D box."""
    rate_hz: float = 10.0
    """Frame rate, Hz."""

    def __post_init__(self) -> None:
        for name in (
            "lanes_per_direction",
            "vehicles",
            "pedestrians",
            "cyclists",
            "signs",
            "distractors",
        ):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ConfigError(
                    f"SceneConfig.{name} must be (lo, hi) with 0 <= lo <= hi, got {(lo, hi)}"
                )
        if self.lanes_per_direction[0] < 1:
            raise ConfigError("SceneConfig.lanes_per_direction must allow at least one lane")
        lo, hi = self.ego_speed
        if not 0 <= lo <= hi:
            raise ConfigError(
                f"SceneConfig.ego_speed must be (lo, hi) with 0 <= lo <= hi, got {(lo, hi)}"
            )
        _positive(
            "SceneConfig",
            lane_width=self.lane_width,
            label_range=self.label_range,
            rate_hz=self.rate_hz,
        )
        _unit("SceneConfig", intersection_prob=self.intersection_prob)
        if not 0 < self.margin < 0.5:
            raise ConfigError(f"SceneConfig.margin must be in (0, 0.5) metres, got {self.margin}")


@dataclass(frozen=True)
class SynthConfig:
    """Everything the generator needs besides the seed and the segment/frame counts."""

    lidar: LidarConfig = field(default_factory=LidarConfig)
    """The lasers."""
    camera: CameraConfig = field(default_factory=CameraConfig)
    """The cameras."""
    scene: SceneConfig = field(default_factory=SceneConfig)
    """The world."""
    name: str = "train"
    """Preset name the config came from (recorded in the output's manifest)."""


#: Names accepted by :func:`preset`.
PRESETS: tuple[str, ...] = ("tiny", "train")


def preset(
    name: str,
    *,
    top_shape: tuple[int, int] | None = None,
    side_shape: tuple[int, int] | None = None,
    front_size: tuple[int, int] | None = None,
    side_size: tuple[int, int] | None = None,
) -> SynthConfig:
    """A preset configuration, optionally with other sensor sizes.

    Args:
        name: ``"tiny"`` (tests: 16 x 256 TOP, 20 x 60 short-range lasers, 96 x 64 and
            96 x 44 images, a small world) or ``"train"`` (64 x 2650 TOP, 200 x 600
            short-range lasers, 480 x 320 and 480 x 222 images, noise on).
        top_shape, side_shape: (H, W) range-image sizes replacing the preset's.
        front_size, side_size: (W, H) image sizes replacing the preset's.
    """
    if name == "tiny":
        cfg = SynthConfig(
            lidar=LidarConfig(top_shape=(16, 256), side_shape=(20, 60)),
            camera=CameraConfig(front_size=(96, 64), side_size=(96, 44), min_box_pixels=2),
            scene=SceneConfig(
                vehicles=(4, 6),
                pedestrians=(3, 5),
                cyclists=(1, 2),
                signs=(2, 3),
                distractors=(3, 5),
            ),
            name="tiny",
        )
    elif name == "train":
        cfg = SynthConfig(
            lidar=LidarConfig(range_noise=0.01, dropout=0.01),
            camera=CameraConfig(),
            scene=SceneConfig(),
            name="train",
        )
    else:
        raise ConfigError(f"unknown synth preset {name!r}; presets are {PRESETS}")
    lidar, camera = cfg.lidar, cfg.camera
    if top_shape is not None or side_shape is not None:
        lidar = replace(
            lidar, top_shape=top_shape or lidar.top_shape, side_shape=side_shape or lidar.side_shape
        )
    if front_size is not None or side_size is not None:
        camera = replace(
            camera,
            front_size=front_size or camera.front_size,
            side_size=side_size or camera.side_size,
        )
    return replace(cfg, lidar=lidar, camera=camera)
