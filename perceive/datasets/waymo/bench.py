"""Speed of the v1 reader, stage by stage, beside the floor set by zlib and JPEG decoding.

Stages of one frame (each timed on a fresh frame object, so nothing is cached):

- ``read``: the record's bytes from the file, data CRC-32C checked;
- ``parse``: protobuf parsing and building the typed :class:`~perceive.datasets.types.Frame`
  (range images and JPEGs stay encoded);
- ``lidar``: every range image of every laser and return decoded (zlib + matrix codec:
  ``lidar_decode``) and turned into one point cloud (``lidar_points``);
- ``jpeg``: every camera image decoded to RGB.

The floor is what no reader of the format can avoid: ``zlib.decompress`` of the same
compressed range-image bytes (range, camera projection, pixel pose) plus decoding the
same JPEG bytes with libjpeg-turbo (OpenCV). The reader inflates with zlib-ng when it is
installed (:data:`~perceive.datasets.waymo.wire.INFLATE_LIBRARY`), about twice as fast as
zlib on the same bytes, so the inflation alone with that library is timed too: a lower
floor, for the reader's own inflater.

With ``workers > 1`` each frame is also read with its LiDAR and JPEG work spread over
that many threads (:func:`~perceive.datasets.lidar.frame_point_cloud` with
``decode_images=True``), beside the floor's work on as many threads.

Without a segment, :func:`synthetic_segment` writes frames of the real sensors' sizes
(TOP 64 x 2650, the others 200 x 600, both returns; five 1920 x 1280 JPEGs) with
:func:`~perceive.datasets.waymo.fixtures.make_frame` (calibrations, labels, layout).
Two of its contents are replaced by default, because random data costs what real data
does not: its random ranges become a simple scene (ground plane, building fronts,
sky; quantised like a sensor's output; sparse second returns; a per-pixel pose that
drifts with the sweep), which compresses like real range images, and its noise
images become smooth synthetic pictures, which have a photo's JPEG size (noise makes
JPEGs several times larger and slower to decode). ``scene=False`` keeps the random
ranges: the worst case for zlib, about 3x the points of a real frame.
"""

from __future__ import annotations

import os
import statistics
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from perceive.datasets.image import encode_jpeg
from perceive.datasets.lidar import frame_point_cloud
from perceive.datasets.types import CAMERA_NAMES, Frame, LaserCalibration, RangeImage
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.proto import waymo_pb2 as pb
from perceive.datasets.waymo.v1 import parse_frame
from perceive.datasets.waymo.v1_writer import write_segment
from perceive.datasets.waymo.wire import INFLATE_LIBRARY, inflate
from perceive.errors import ConfigError
from perceive.geometry.range_image import column_azimuths
from perceive.io.tfrecord import TFRecordFile

#: Range-image shapes of the real sensors (format documentation).
TOP_SHAPE: tuple[int, int] = (64, 2650)
SIDE_SHAPE: tuple[int, int] = (200, 600)
#: Size of the synthetic camera images (the real FRONT cameras' size).
IMAGE_SIZE: tuple[int, int] = (1920, 1280)


@dataclass(frozen=True)
class LoaderTiming:
    """Medians over frames (and repeats) of each stage, milliseconds per frame."""

    path: str
    """The segment measured."""
    frames: int
    """Frames measured per pass."""
    repeat: int
    """Passes over the frames."""
    points: float
    """Mean LiDAR points per frame (5 lasers x 2 returns where present)."""
    images: float
    """Mean camera images per frame."""
    range_image_kb: float
    """Mean compressed range-image bytes per frame, KiB."""
    jpeg_kb: float
    """Mean JPEG bytes per frame, KiB."""
    read_ms: float
    """Record read + CRC."""
    parse_ms: float
    """Protobuf parse + typed frame."""
    lidar_decode_ms: float
    """zlib + matrix decoding of all range images."""
    lidar_points_ms: float
    """Range images to one point cloud."""
    jpeg_ms: float
    """Decoding all JPEGs."""
    floor_zlib_ms: float
    """``zlib.decompress`` of the same range-image bytes."""
    floor_jpeg_ms: float
    """OpenCV decoding of the same JPEG bytes."""
    total_cpu_ms: float
    """Median CPU time (this process, all threads) of a full frame: less disturbed than the
    wall clock by other work on the machine."""
    floor_cpu_ms: float
    """Median CPU time of the floor's work for a frame."""
    load_average: float
    """The machine's 1-minute load average when the measurement ended."""
    workers: int = 1
    """Threads of the threaded measurement (1: none was made)."""
    threaded_ms: float | None = None
    """A full frame (read, parse, then LiDAR and JPEGs decoded together by
    :func:`~perceive.datasets.lidar.frame_point_cloud` on ``workers`` threads)."""
    threaded_cpu_ms: float | None = None
    """CPU time (all threads) of ``threaded_ms``."""
    floor_threaded_ms: float | None = None
    """The floor's work for a frame spread over ``workers`` threads."""
    floor_threaded_cpu_ms: float | None = None
    """CPU time (all threads) of ``floor_threaded_ms``."""
    inflate_library: str = "zlib"
    """The library the reader inflates range images with."""
    floor_inflate_ms: float | None = None
    """That library's inflation of the same range-image bytes (None: it is zlib itself)."""

    @property
    def lidar_ms(self) -> float:
        """Range images to points, decoding included."""
        return self.lidar_decode_ms + self.lidar_points_ms

    @property
    def total_ms(self) -> float:
        """A full frame: read, parse, LiDAR, JPEG."""
        return self.read_ms + self.parse_ms + self.lidar_ms + self.jpeg_ms

    @property
    def fps(self) -> float:
        """Frames per second, one thread."""
        return 1000.0 / self.total_ms if self.total_ms > 0 else float("inf")

    @property
    def floor_ms(self) -> float:
        """zlib + JPEG floor."""
        return self.floor_zlib_ms + self.floor_jpeg_ms


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _smooth_picture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A photo-like (H, W, 3) uint8 picture: gradients, blobs, edges and a little noise."""
    small = rng.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    for _ in range(40):  # flat-coloured rectangles give sharp edges, like buildings and cars
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(20, 300)), y0 + int(rng.integers(20, 200))
        img[y0:y1, x0:x1] = rng.integers(0, 256, 3)
    img += rng.normal(0, 4, img.shape).astype(np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


#: Maximum range of the TOP laser and of the short-range lasers, metres.
TOP_MAX_RANGE, SIDE_MAX_RANGE = 75.0, 20.0
#: (x, y) of the middle of the vehicle body, vehicle frame, metres.
BODY_CENTER = (1.4, 0.0)


def _scene_range_image(
    cal: LaserCalibration,
    shape: tuple[int, int],
    walls: np.ndarray,
    rng: np.random.Generator,
    max_range: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Range images (both returns) of a simple scene seen by one laser.

    The scene, in the vehicle frame: the ground plane z = 0 and vertical building fronts
    at a horizontal distance ``walls[k]`` in each of ``len(walls)`` azimuth sectors.

    Returns:
        ``(values1, values2, projection1, projection2)``: (H, W, 4) float32 and (H, W, 6) int32.
    """
    h, w = shape
    incl = cal.inclinations(h)[:, None]
    az = column_azimuths(w, cal.extrinsic)[None, :]
    d_laser = np.stack(
        np.broadcast_arrays(np.cos(incl) * np.cos(az), np.cos(incl) * np.sin(az), np.sin(incl)), -1
    )
    rot, origin = cal.extrinsic[:3, :3], cal.extrinsic[:3, 3]
    d = d_laser @ rot.T  # (H, W, 3) ray directions, vehicle frame
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(d[..., 2] < -1e-6, -origin[2] / d[..., 2], np.inf)
        sector = ((np.arctan2(d[..., 1], d[..., 0]) + np.pi) / (2 * np.pi) * len(walls)).astype(
            int
        ) % len(walls)
        t_wall = walls[sector] / np.maximum(np.hypot(d[..., 0], d[..., 1]), 1e-6)
    t = np.minimum(t_ground, t_wall)
    hit = (t <= max_range) & (rng.random((h, w)) > 0.02)  # 2 % dropouts
    if max_range < TOP_MAX_RANGE:
        # Short-range lasers sit on the body: rays into the body or steeply down hit the car.
        inward = (
            d[..., 0] * (BODY_CENTER[0] - origin[0]) + d[..., 1] * (BODY_CENTER[1] - origin[1]) > 0
        )
        hit &= ~inward & (d[..., 2] > -np.sin(np.deg2rad(45.0)))
    on_ground = t_ground <= t_wall
    r1 = np.where(hit, np.round(t * 200) / 200, -1.0)  # 5 mm steps
    inten1 = np.where(on_ground, 0.08, 0.2 + 0.4 * (sector % 3) / 2) + rng.normal(0, 0.01, (h, w))
    values1 = np.zeros((h, w, 4), np.float32)
    values1[..., 0] = r1
    values1[..., 1] = np.where(hit, np.round(np.clip(inten1, 0, 1) * 1024) / 1024, 0)
    values1[..., 2] = np.where(hit, np.round(rng.exponential(0.05, (h, w)) * 256) / 256, 0)
    values1[..., 3] = -1.0
    second = hit & (rng.random((h, w)) < 0.12)  # sparse second returns (partial hits)
    values2 = np.zeros((h, w, 4), np.float32)
    values2[..., 0] = np.where(
        second, r1 + np.round(rng.uniform(0.5, 8.0, (h, w)) * 200) / 200, -1.0
    )
    values2[..., 1] = np.where(second, values1[..., 1] * 0.5, 0)
    values2[..., 3] = -1.0
    # Camera projection: a smooth stand-in (camera by azimuth sector, pixel from the angles).
    vaz = np.arctan2(d[..., 1], d[..., 0])
    cam = np.clip(np.round(2.5 - vaz / (np.pi / 5)), 1, len(CAMERA_NAMES)).astype(np.int32)
    proj = np.zeros((h, w, 6), np.int32)
    proj[..., 0] = cam
    proj[..., 1] = np.clip((960 - 1900 * np.tan((vaz + (cam - 2.5) * np.pi / 5) / 1.3)), 0, 1919)
    proj[..., 2] = np.clip(640 - 2000 * np.broadcast_to(np.tan(incl), (h, w)), 0, 1279)
    proj1 = np.where(hit[..., None], proj, 0).astype(np.int32)
    proj2 = np.where(second[..., None], proj, 0).astype(np.int32)
    return values1, values2, proj1, proj2


def scene_frame(frame: Frame, rng: np.random.Generator) -> Frame:
    """A frame like ``frame`` whose range images show a simple scene (see module doc)."""
    walls = np.repeat(rng.uniform(12.0, 60.0, 24), 3)  # 72 sectors of 5 degrees, 24 buildings
    yaw = np.arctan2(frame.pose[1, 0], frame.pose[0, 0])
    ranges = {}
    for name, cal in frame.lasers.items():
        shape = frame.range_images[(name, 1)].shape
        max_range = TOP_MAX_RANGE if name == "TOP" else SIDE_MAX_RANGE
        v1, v2, p1, p2 = _scene_range_image(cal, shape, walls, rng, max_range)
        pose = None
        if name == "TOP":
            # The vehicle drives at 10 m/s and turns at 0.1 rad/s during the 0.1 s sweep.
            h, w = shape
            dt = np.broadcast_to((np.arange(w) / w - 0.5) * 0.1, (h, w))
            pose = np.zeros((h, w, 6), np.float32)
            pose[..., 2] = yaw + 0.1 * dt
            pose[..., 3] = frame.pose[0, 3] + 10.0 * dt * np.cos(yaw)
            pose[..., 4] = frame.pose[1, 3] + 10.0 * dt * np.sin(yaw)
            pose[..., 5] = frame.pose[2, 3]
        ranges[(name, 1)] = RangeImage(name, 1, v1, p1, pose)
        ranges[(name, 2)] = RangeImage(name, 2, v2, p2, None)
    return replace(frame, range_images=ranges)


def synthetic_segment(
    path: str | Path,
    frames: int = 5,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    scene: bool = True,
    *,
    top_shape: tuple[int, int] = TOP_SHAPE,
    side_shape: tuple[int, int] = SIDE_SHAPE,
    image_size: tuple[int, int] = IMAGE_SIZE,
) -> Path:
    """Write a segment of full-size generated frames for benchmarking (see module doc).

    Args:
        path: output ``.tfrecord``.
        frames: number of frames.
        seed: random seed.
        progress: called with the index of each frame once written.
        scene: range images of a simple scene (True) or :func:`make_frame`'s random ones.
        top_shape, side_shape, image_size: sensor sizes (default: the real ones); smaller
            ones make quick test data.
    """
    if frames < 1:
        raise ConfigError(f"frames must be >= 1, got {frames}")

    def gen():
        rng = np.random.default_rng(seed)
        for i in range(frames):
            f = make_frame(
                seed + i, top_shape=top_shape, side_shape=side_shape, image_size=image_size
            )
            if scene:
                pose = f.pose.copy()  # level, on the ground plane of the scene
                pose[:3, :3] = _yaw_matrix(np.arctan2(f.pose[1, 0], f.pose[0, 0]))
                f = scene_frame(replace(f, pose=pose), rng)
            pictures = {n: encode_jpeg(_smooth_picture(rng, *image_size)) for n in f.image_bytes}
            yield replace(f, image_bytes=pictures)
            if progress is not None:
                progress(i)

    write_segment(path, gen())
    return Path(path)


def _compressed_blobs(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """(zlib blobs of the range images, JPEG bytes) of a serialized frame."""
    msg = pb.Frame.FromString(data)
    blobs = []
    for laser in msg.lasers:
        for ri in (laser.ri_return1, laser.ri_return2):
            for b in (
                ri.range_image_compressed,
                ri.camera_projection_compressed,
                ri.range_image_pose_compressed,
            ):
                if b:
                    blobs.append(b)
    return blobs, [im.image for im in msg.images if im.image]


def benchmark_segment(
    path: str | Path,
    frames: int | None = None,
    repeat: int = 3,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> LoaderTiming:
    """Time every stage of reading ``frames`` frames of a segment, ``repeat`` times.

    Each frame is read once by stages on one thread, then by its floor on one thread,
    and, with ``workers > 1``, read again with the LiDAR and JPEG work on ``workers``
    threads and its floor on as many threads: all interleaved, frame by frame.

    Args:
        path: a v1 segment.
        frames: the first N frames (None: all).
        repeat: passes over the frames; each stage's figure is the median over all.
        progress: called with (pass, frame) after each frame.
        workers: threads of the threaded measurement (1: no threaded measurement).
    """
    if repeat < 1:
        raise ConfigError(f"repeat must be >= 1, got {repeat}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    t: dict[str, list[float]] = {
        k: []
        for k in (
            "read", "parse", "decode", "points", "jpeg", "zlib", "floor_jpeg", "cpu", "cpu_floor",
            "threaded", "cpu_threaded", "floor_threaded", "cpu_floor_threaded", "inflate",
        )
    }  # fmt: skip
    npoints, nimages, ri_bytes, jpg_bytes = [], [], [], []
    clock, cpu = time.perf_counter, time.process_time
    pool = ThreadPoolExecutor(workers, thread_name_prefix="bench-floor") if workers > 1 else None

    def jpeg_floor(b: bytes) -> None:
        cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)

    with TFRecordFile(path) as f, pool or nullcontext():
        n = len(f) if frames is None else min(frames, len(f))
        if n == 0:
            raise ConfigError(f"{path}: no frames to measure")
        blobs = [_compressed_blobs(f.read(i)) for i in range(n)]
        for rep in range(repeat):
            for i in range(n):
                c0 = cpu()
                t0 = clock()
                data = f.read(i)
                t1 = clock()
                frame = parse_frame(data, f"{path} record {i}")
                t2 = clock()
                for key in frame.range_images:
                    frame.range_images[key]
                t3 = clock()
                cloud = frame.point_cloud()
                t4 = clock()
                for name in frame.image_bytes:
                    frame.images[name]
                t5 = clock()
                c1 = cpu()
                zblobs, jpegs = blobs[i]
                for b in zblobs:
                    zlib.decompress(b)
                t6 = clock()
                for b in jpegs:
                    jpeg_floor(b)
                t7 = clock()
                c2 = cpu()
                if INFLATE_LIBRARY != "zlib":
                    for b in zblobs:
                        inflate(b)
                    t["inflate"].append((clock() - t7) * 1000.0)
                t["cpu"].append((c1 - c0) * 1000.0)
                t["cpu_floor"].append((c2 - c1) * 1000.0)
                for k, a, b in (
                    ("read", t0, t1), ("parse", t1, t2), ("decode", t2, t3), ("points", t3, t4),
                    ("jpeg", t4, t5), ("zlib", t5, t6), ("floor_jpeg", t6, t7),
                ):  # fmt: skip
                    t[k].append((b - a) * 1000.0)
                if rep == 0:
                    npoints.append(len(cloud))
                    nimages.append(len(jpegs))
                    ri_bytes.append(sum(map(len, zblobs)))
                    jpg_bytes.append(sum(map(len, jpegs)))
                del frame, cloud
                if pool is not None:
                    c0, t0 = cpu(), clock()
                    frame = parse_frame(f.read(i), f"{path} record {i}")
                    cloud = frame_point_cloud(frame, workers=workers, decode_images=True)
                    t1, c1 = clock(), cpu()
                    done = [pool.submit(zlib.decompress, b) for b in zblobs]
                    done += [pool.submit(jpeg_floor, b) for b in jpegs]
                    for d in done:
                        d.result()
                    t2, c2 = clock(), cpu()
                    t["threaded"].append((t1 - t0) * 1000.0)
                    t["cpu_threaded"].append((c1 - c0) * 1000.0)
                    t["floor_threaded"].append((t2 - t1) * 1000.0)
                    t["cpu_floor_threaded"].append((c2 - c1) * 1000.0)
                    del frame, cloud
                if progress is not None:
                    progress(rep, i)
    med = {k: statistics.median(v) if v else None for k, v in t.items()}
    return LoaderTiming(
        path=str(path),
        frames=n,
        repeat=repeat,
        points=float(np.mean(npoints)),
        images=float(np.mean(nimages)),
        range_image_kb=float(np.mean(ri_bytes)) / 1024,
        jpeg_kb=float(np.mean(jpg_bytes)) / 1024,
        read_ms=med["read"],
        parse_ms=med["parse"],
        lidar_decode_ms=med["decode"],
        lidar_points_ms=med["points"],
        jpeg_ms=med["jpeg"],
        floor_zlib_ms=med["zlib"],
        floor_jpeg_ms=med["floor_jpeg"],
        total_cpu_ms=med["cpu"],
        floor_cpu_ms=med["cpu_floor"],
        load_average=os.getloadavg()[0],
        workers=workers,
        threaded_ms=med["threaded"],
        threaded_cpu_ms=med["cpu_threaded"],
        floor_threaded_ms=med["floor_threaded"],
        floor_threaded_cpu_ms=med["cpu_floor_threaded"],
        inflate_library=INFLATE_LIBRARY,
        floor_inflate_ms=med["inflate"],
    )


def format_timing(r: LoaderTiming) -> str:
    """The table the benchmark prints."""
    rows = [
        ("record read + CRC-32C", r.read_ms, None),
        ("protobuf parse -> Frame", r.parse_ms, None),
        ("LiDAR: range images (zlib + decode)", r.lidar_decode_ms, r.floor_zlib_ms),
        ("LiDAR: range images -> points", r.lidar_points_ms, None),
        (f"JPEG decode ({r.images:.0f} images)", r.jpeg_ms, r.floor_jpeg_ms),
    ]
    lines = [
        f"segment   {r.path}",
        f"frames    {r.frames} x {r.repeat} passes; per frame: {r.points:,.0f} points, "
        f"{r.range_image_kb:,.0f} KiB of compressed range images, {r.images:.0f} JPEGs "
        f"({r.jpeg_kb:,.0f} KiB)",
        "",
        f"{'stage (median ms per frame)':<40}{'perceive':>10}{'floor':>10}",
    ]
    for name, ms, floor in rows:
        lines.append(f"{name:<40}{ms:>10.2f}{'' if floor is None else f'{floor:>10.2f}'}")
    lines += [
        f"{'full frame (5 lasers x 2 returns + JPEGs)':<40}{r.total_ms:>10.2f}{r.floor_ms:>10.2f}",
        "",
        f"perceive  {r.fps:.1f} frames/s (one thread)",
        f"floor     {1000.0 / r.floor_ms:.1f} frames/s: zlib inflation + JPEG decoding of the same"
        f" bytes; perceive takes {r.total_ms / r.floor_ms:.2f}x the floor's time",
        f"CPU time  perceive {r.total_cpu_ms:.1f} ms/frame, floor {r.floor_cpu_ms:.1f} ms/frame",
    ]
    if r.floor_inflate_ms is not None:
        fast = r.floor_inflate_ms + r.floor_jpeg_ms
        lines.append(
            f"inflater  the reader uses {r.inflate_library}: {r.floor_inflate_ms:.2f} ms for the"
            f" range images (zlib {r.floor_zlib_ms:.2f}); the floor with it {fast:.2f} ms,"
            f" perceive {r.total_ms / fast:.2f}x that"
        )
    if r.threaded_ms is not None and r.floor_threaded_ms is not None:
        lines += [
            "",
            f"with {r.workers} threads (LiDAR and JPEGs decoded together by frame_point_cloud)",
            f"{'full frame':<40}{r.threaded_ms:>10.2f}{r.floor_threaded_ms:>10.2f}",
            f"perceive  {1000.0 / r.threaded_ms:.1f} frames/s,"
            f" {r.threaded_ms / r.floor_threaded_ms:.2f}x the floor's time on {r.workers} threads",
            f"CPU time  perceive {r.threaded_cpu_ms:.1f} ms/frame, floor"
            f" {r.floor_threaded_cpu_ms:.1f} ms/frame",
        ]
    lines.append(f"load average {r.load_average:.1f} (1 minute, at the end)")
    return "\n".join(lines)
