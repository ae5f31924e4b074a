"""Segments -> frames -> Waymo v1 ``.tfrecord`` files (and optionally v2 parquet).

Each segment is a pure function of ``(seed, segment index, frames, config)``: the
scene draws from ``default_rng([seed, index, 0])`` and frame ``k`` its noise from
``default_rng([seed, index, k + 1])``, so output bytes are reproducible and segments
can be made in any order or in parallel. Files are written atomically; a segment
whose file already holds all its frames is skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from perceive.datasets.types import Frame, FrameContext
from perceive.errors import ConfigError
from perceive.geometry.transforms import euler_to_rotation, make_transform
from perceive.io.atomic import atomic_write_text, remove_stale_temporaries
from perceive.synth import camera as cam
from perceive.synth import labels as lab
from perceive.synth import lidar as lid
from perceive.synth.config import SynthConfig
from perceive.synth.raycast import RayCaster
from perceive.synth.scene import Scene, build_scene

#: Microseconds of the first frame of segment 0 of seed 0.
BASE_TIMESTAMP_US = 1_600_000_000_000_000
MANIFEST = "synth_manifest.json"
#: Seeds are in [0, MAX_SEED) and segment indices in [0, SEGMENTS_PER_SEED): each segment
#: has a minute of its own, starting ``seed * SEGMENTS_PER_SEED + index`` minutes after
#: :data:`BASE_TIMESTAMP_US`, so no two segments share timestamps and all fit in int64.
MAX_SEED = 1_000_000
SEGMENTS_PER_SEED = 100_000


def check_seed(seed: int, segments: int = 1) -> None:
    """Raise :class:`ConfigError` for a seed or segment count outside the timestamp plan."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
        raise ConfigError(f"seed must be an integer in [0, {MAX_SEED}), got {seed!r}")
    if segments > SEGMENTS_PER_SEED:
        raise ConfigError(f"at most {SEGMENTS_PER_SEED} segments per seed, got {segments}")


@dataclass(frozen=True, eq=False)
class SynthFrame:
    """A generated frame with the ground truth behind it."""

    frame: Frame
    """What is written to the file."""
    returns: dict[tuple[str, int], lid.LaserReturn]
    """Hit points (vehicle frame) and hit instances per ``(laser, return)``."""
    label_index: np.ndarray
    """(N,) agent index in ``scene.agents`` of each of ``frame.boxes``."""


def segment_name(seed: int, index: int) -> str:
    """The context name of segment ``index`` of ``seed``."""
    return f"synth_s{seed}_{index:05d}"


def segment_filename(seed: int, index: int) -> str:
    """Waymo-style file name of a segment."""
    return f"segment-{segment_name(seed, index)}_with_camera_labels.tfrecord"


def pose_matrix(euler6: np.ndarray) -> np.ndarray:
    """(4, 4) transform of ``roll, pitch, yaw, x, y, z``."""
    r, p, y, tx, ty, tz = (float(v) for v in euler6)
    return make_transform(euler_to_rotation(r, p, y), [tx, ty, tz])


class SegmentGenerator:
    """Makes the frames of one segment.

    Args:
        config: generator configuration.
        seed: dataset seed.
        index: segment index.
        frames: number of frames.
    """

    def __init__(self, config: SynthConfig, seed: int, index: int, frames: int) -> None:
        if frames < 1:
            raise ConfigError(f"a segment needs at least 1 frame, got {frames}")
        check_seed(seed, index + 1)
        self.config = config
        self.seed = seed
        self.index = index
        self.frames = frames
        self.name = segment_name(seed, index)
        self.dt = 1.0 / config.scene.rate_hz
        t_start = time.perf_counter()
        rng = np.random.default_rng([seed, index, 0])
        self.scene: Scene = build_scene(
            config.scene, rng, self.name, duration=(frames - 1) * self.dt
        )
        self.lasers = lid.laser_calibrations(config.lidar)
        self.cameras = cam.camera_calibrations(config.camera)
        self.rays = {n: cam.pixel_rays(c) for n, c in self.cameras.items()}
        self.agent_instance0 = self.scene.num_static_instances
        self.t0_us = BASE_TIMESTAMP_US + (seed * SEGMENTS_PER_SEED + index) * 60_000_000
        #: Seconds spent per stage over all frames made so far (for benchmarks).
        self.timings: dict[str, float] = {"scene": time.perf_counter() - t_start}

    def frame(self, k: int) -> SynthFrame:
        """Frame ``k`` (0-based)."""
        cfg = self.config
        t = k * self.dt
        rng = np.random.default_rng([self.seed, self.index, k + 1])
        clock = [time.perf_counter()]

        def lap(stage: str) -> None:
            now = time.perf_counter()
            self.timings[stage] = self.timings.get(stage, 0.0) + now - clock[0]
            clock[0] = now

        world, states = self.scene.snapshot(t)
        caster = RayCaster(world, nthreads=cfg.lidar.nthreads)
        pose = pose_matrix(self.scene.ego.euler(np.array([t]))[0])
        lap("world")
        returns = lid.scan(self.scene, caster, t, pose, self.lasers, self.cameras, cfg.lidar, rng)
        lap("lidar")
        renders = {
            n: cam.render_camera(self.scene, caster, pose, c, self.rays[n], cfg.camera, rng)
            for n, c in self.cameras.items()
        }
        lap("cameras")
        all_boxes = lab.boxes_in_vehicle_frame(self.scene, states, pose)
        # visible pixels per box, all cameras
        inst_of_box = self.agent_instance0 + states.index
        visible = np.zeros(len(all_boxes), np.int64)
        for r in renders.values():
            ids, counts = np.unique(
                r.instance[r.instance >= self.agent_instance0], return_counts=True
            )
            lookup = dict(zip(ids.tolist(), counts.tolist(), strict=True))
            visible += np.array([lookup.get(int(i), 0) for i in inst_of_box], np.int64)
        xyz = (
            np.concatenate([r.xyz for r in returns.values()])
            if returns
            else np.zeros((0, 3), np.float32)
        )
        top = [r.xyz for (n, _), r in returns.items() if n == "TOP"]
        top_xyz = np.concatenate(top) if top else np.zeros((0, 3), np.float32)
        boxes, keep = lab.finish_boxes(all_boxes, xyz, top_xyz, visible, cfg.scene.label_range)
        agent_instance = {int(inst_of_box[i]): j for j, i in enumerate(keep)}
        cam_boxes = lab.camera_boxes(
            {n: r.instance for n, r in renders.items()},
            agent_instance,
            boxes,
            cfg.camera.min_box_pixels,
        )
        frame = Frame(
            context=FrameContext(
                segment=self.name,
                time_of_day=self.scene.time_of_day,
                location="location_synth",
                weather="sunny",
            ),
            timestamp_us=self.t0_us + k * round(self.dt * 1e6),
            pose=pose,
            cameras=dict(self.cameras),
            lasers=dict(self.lasers),
            image_bytes={n: cam.encode(r, cfg.camera) for n, r in renders.items()},
            range_images={key: r.range_image for key, r in returns.items()},
            boxes=boxes,
            camera_boxes=cam_boxes,
            projected_boxes=lab.projected_boxes(boxes, self.cameras),
            source=f"synth {self.name} frame {k}",
        )
        lap("labels+jpeg")
        return SynthFrame(frame, returns, states.index[keep])

    def __iter__(self) -> Iterator[SynthFrame]:
        for k in range(self.frames):
            yield self.frame(k)


def write_synth_segment(
    path: str | Path,
    config: SynthConfig,
    seed: int,
    index: int,
    frames: int,
    on_frame: Callable[[], object] | None = None,
) -> int:
    """Generate segment ``index`` of ``seed`` and write it to ``path`` atomically.

    Returns the number of frames written; ``on_frame`` is called after each frame.
    """
    from perceive.datasets.waymo.v1_writer import write_segment

    gen = SegmentGenerator(config, seed, index, frames)

    def frames_of() -> Iterator[Frame]:
        for sf in gen:
            if on_frame is not None:
                on_frame()
            yield sf.frame

    return write_segment(path, frames_of())


def _manifest(config: SynthConfig, seed: int, frames: int) -> dict:
    return {"format": "perceive-synth-1", "seed": seed, "frames": frames, "config": asdict(config)}


def _complete(path: Path, frames: int) -> bool:
    from perceive.errors import DataError
    from perceive.io.tfrecord import TFRecordFile

    if not path.exists():
        return False
    try:
        with TFRecordFile(path, verify=False) as f:
            return len(f) == frames
    except DataError:
        return False


def generate_dataset(
    out: str | Path,
    *,
    config: SynthConfig,
    segments: int,
    frames: int,
    seed: int,
    v2: bool = False,
    v2_split: str = "training",
    progress: bool = True,
    workers: int = 1,
) -> list[Path]:
    """Write ``segments`` segments of ``frames`` frames under ``out``.

    Segments already complete (their file holds ``frames`` records) are skipped. A
    manifest (``synth_manifest.json``) records the seed and configuration; running
    into a directory made with a different one raises :class:`ConfigError`.

    Args:
        out: output directory.
        config: generator configuration.
        segments: number of segments.
        frames: frames per segment.
        seed: dataset seed.
        v2: also write Waymo v2 parquet under ``out/v2`` (needs
            :func:`perceive.datasets.waymo.v2.write_v2_segment`).
        v2_split: v2 split directory name.
        progress: show a tqdm progress bar.
        workers: processes making segments in parallel (the output does not depend on it;
            with more than one, progress advances a segment at a time).

    Returns:
        The v1 segment files, in segment order.
    """
    from tqdm import tqdm

    if segments < 1 or frames < 1 or workers < 1:
        raise ConfigError(
            f"need segments, frames and workers >= 1, got {segments}, {frames} and {workers}"
        )
    check_seed(seed, segments)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(config, seed, frames)
    mpath = out / MANIFEST
    if mpath.exists():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"{mpath}: unreadable synth manifest ({e}); delete it") from None
        if not isinstance(old, dict):
            raise ConfigError(f"{mpath}: not a perceive synth manifest; delete it")
        if old != json.loads(json.dumps(manifest)):
            raise ConfigError(
                f"{mpath}: this directory was generated with another seed/frames/config "
                f"(seed {old.get('seed')}, frames {old.get('frames')}, "
                f"preset {old.get('config', {}).get('name')}); "
                "use another --out or delete it"
            )
    else:
        atomic_write_text(mpath, json.dumps(manifest, indent=1, sort_keys=True))
    if v2:
        try:
            from perceive.datasets.waymo import v2 as v2mod
        except ImportError as e:
            raise ConfigError(f"--v2 needs perceive.datasets.waymo.v2 (pyarrow): {e}") from e
    paths = [out / segment_filename(seed, i) for i in range(segments)]
    todo = [i for i in range(segments) if not _complete(paths[i], frames)]
    bar = tqdm(total=len(todo) * frames, desc="synth frames", unit="frame", disable=not progress)
    if workers > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(min(workers, len(todo))) as pool:
            futures = [
                pool.submit(write_synth_segment, paths[i], config, seed, i, frames) for i in todo
            ]
            for fut in as_completed(futures):
                bar.update(fut.result())
    else:
        for i in todo:
            write_synth_segment(paths[i], config, seed, i, frames, on_frame=lambda: bar.update(1))
    bar.close()
    if v2:
        from perceive.datasets.waymo.v1 import Segment

        for i in range(segments):
            name = segment_name(seed, i)
            files = [
                v2mod.component_path(out / "v2", v2_split, c, name) for c in v2mod.V2_COMPONENTS
            ]
            if all(f.exists() for f in files):
                continue
            # v2 is converted from the v1 file just written, frame by frame (little memory)
            with Segment(paths[i]) as seg:
                v2mod.write_v2_segment(out / "v2", iter(seg), split=v2_split)
    remove_stale_temporaries(out)  # left by a killed earlier run
    return paths
