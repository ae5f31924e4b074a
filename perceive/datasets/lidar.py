"""Range images to point clouds with per-point attributes.

:func:`frame_point_cloud` is what :meth:`~perceive.datasets.types.Frame.point_cloud`
does: it decodes the range images it needs, counts their points, allocates the cloud
once and has every range image write its points into its own slice (no per-range-image
clouds to concatenate). With ``workers > 1`` range images (and, on request, the
frame's JPEGs) are decoded and turned into points on a small shared thread pool: zlib,
OpenCV and NumPy's array loops release the GIL, so the work spreads over the cores.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import fields
from typing import Any

import numpy as np

from perceive.datasets.types import Frame, LaserCalibration, PointCloud, RangeImage, laser_id
from perceive.errors import ConfigError, DataError, MissingComponentError
from perceive.geometry.range_image import pixels_to_vehicle
from perceive.utils.buffers import carve

#: dtype and trailing shape of each :class:`PointCloud` field.
_COLUMNS: dict[str, tuple[type, tuple[int, ...]]] = {
    "xyz": (np.float32, (3,)),
    "intensity": (np.float32, ()),
    "elongation": (np.float32, ()),
    "nlz": (np.bool_, ()),
    "laser": (np.uint8, ()),
    "return_index": (np.uint8, ()),
    "range": (np.float32, ()),
    "pixel": (np.int32, (2,)),
    "camera_projection": (np.int32, (6,)),
}
assert set(_COLUMNS) == {f.name for f in fields(PointCloud)}


def take_rows(array: np.ndarray, select: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rows of a 2D array chosen by a boolean mask or integer indices: ``array[select]``.

    Each row is moved as one fixed-size item (a ``void`` view of the row's bytes),
    which is about ten times faster than NumPy's fancy indexing of a 2D array, whose
    inner loop copies one element at a time.

    Args:
        array: (M, K) array of any dtype (copied first if its rows are not contiguous).
        select: (M,) bool mask or (N,) integer indices.
        out: optional C-contiguous (N, K) array of the same dtype to write into.

    Returns:
        (N, K) array of the same dtype, C-contiguous (``out`` when given).
    """
    a = np.ascontiguousarray(array)
    m, k = a.shape
    if k == 0 or a.itemsize == 0:
        got = a[select]
    else:
        got = a.view(np.dtype((np.void, k * a.itemsize))).reshape(m)[select]
        got = got.view(a.dtype).reshape(-1, k)
    if out is None:
        return got
    out[...] = got  # (NumPy's compress/take into ``out`` are slower than this copy)
    return out


def valid_pixels(range_image: RangeImage) -> np.ndarray:
    """(H * W,) bool: the pixels of a range image that are points (range > 0), row-major."""
    values = range_image.values
    return values.reshape(-1, values.shape[-1])[:, 0] > 0


def _write_points(
    range_image: RangeImage,
    calibration: LaserCalibration,
    frame_pose: np.ndarray | None,
    pixel_pose: np.ndarray | None,
    mask: np.ndarray,
    dst: dict[str, np.ndarray],
) -> None:
    """Write the points of the pixels ``mask`` selects into ``dst`` (one array per field)."""
    values = range_image.values
    h, w = range_image.shape
    flat = values.reshape(h * w, values.shape[-1])
    idx = np.flatnonzero(mask)
    # Pixel coordinates: rows from the points per row (no division), columns from them.
    rows = np.repeat(np.arange(h, dtype=np.intp), np.count_nonzero(mask.reshape(h, w), axis=1))
    cols = np.subtract(idx, rows * w, out=idx)
    v = take_rows(flat, mask)  # (n, 4) range, intensity, elongation, nlz
    pose = None
    if pixel_pose is not None:
        pose = take_rows(np.asarray(pixel_pose).reshape(h * w, -1), mask)
    pixels_to_vehicle(
        v[:, 0],
        rows,
        cols,
        calibration.inclinations(h),
        w,
        calibration.extrinsic,
        pixel_pose=pose,
        frame_pose=frame_pose,
        out=dst["xyz"],
    )
    dst["intensity"][...] = v[:, 1]
    dst["elongation"][...] = v[:, 2]
    np.greater(v[:, 3], 0, out=dst["nlz"])
    dst["laser"].fill(laser_id(range_image.laser))
    dst["return_index"].fill(range_image.return_index)
    dst["range"][...] = v[:, 0]
    dst["pixel"][:, 0] = rows
    dst["pixel"][:, 1] = cols
    cp = range_image.camera_projection
    if cp is None:
        dst["camera_projection"].fill(0)
    else:
        take_rows(
            cp.reshape(h * w, -1).astype(np.int32, copy=False), mask, out=dst["camera_projection"]
        )


def _allocate(n: int) -> dict[str, np.ndarray]:
    """Empty columns of a cloud of ``n`` points, carved out of one buffer (see
    :func:`perceive.utils.buffers.carve`: huge pages make first touching it cheaper)."""
    sizes = [
        n * int(np.prod(tail, dtype=np.int64)) * np.dtype(t).itemsize
        for t, tail in _COLUMNS.values()
    ]
    parts = carve(sizes)
    return {
        k: part.view(t).reshape(n, *tail)
        for (k, (t, tail)), part in zip(_COLUMNS.items(), parts, strict=True)
    }


def range_image_to_point_cloud(
    range_image: RangeImage,
    calibration: LaserCalibration,
    frame_pose: np.ndarray | None = None,
    pixel_pose: np.ndarray | None = None,
) -> PointCloud:
    """The points of one range image (pixels with range > 0), vehicle frame.

    Args:
        range_image: one return of one laser.
        calibration: that laser's calibration.
        frame_pose: (4, 4) vehicle -> world pose of the frame; needed with ``pixel_pose``.
        pixel_pose: (H, W, 6) per-pixel pose (TOP laser), or None.

    Returns:
        The cloud, pixels in row-major order.
    """
    mask = valid_pixels(range_image)
    out = _allocate(int(np.count_nonzero(mask)))
    _write_points(range_image, calibration, frame_pose, pixel_pose, mask, out)
    return PointCloud(**out)


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
_pools_pid = os.getpid()


def _pool(workers: int) -> ThreadPoolExecutor:
    """The shared pool of ``workers`` threads (made again in a forked child process)."""
    global _pools_pid
    with _pools_lock:
        if os.getpid() != _pools_pid:  # a fork: the parent's threads do not exist here
            _pools.clear()
            _pools_pid = os.getpid()
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="perceive-lidar")
        return _pools[workers]


def _results(futures: Sequence[Future]) -> list[Any]:
    """Results of ``futures``; the first error is raised once all have ended."""
    wait(futures)
    return [f.result() for f in futures]


def _check_geometry(frame: Frame, ri: RangeImage, first: RangeImage | None) -> None:
    """The calibration and the pose a range image is converted with must fit its shape;
    otherwise a :class:`DataError` names the frame and the field (instead of a bare
    ``ValueError`` deep in the geometry, or points made with the wrong beams)."""
    h, w = ri.shape
    what = f"{frame.source}: laser {ri.laser} return {ri.return_index}"
    n = frame.lasers[ri.laser].beam_inclinations.size
    if n and n != h:
        raise DataError(
            f"{what}: the calibration has {n} beam inclinations, the range image {h} rows",
            field=f"lasers[{ri.laser}].beam_inclinations",
        )
    pose = ri.pixel_pose
    if pose is None and first is not None:
        pose = first.pixel_pose
    if pose is not None and pose.shape[:2] != (h, w):
        raise DataError(
            f"{what}: range image {h} x {w} but the per-pixel pose is "
            f"{pose.shape[0]} x {pose.shape[1]}"
            + ("" if ri.pixel_pose is not None else " (return 2 uses return 1's)"),
            field=f"range_images[{ri.laser}, 1].pixel_pose",
        )


def frame_point_cloud(
    frame: Frame,
    lasers: Sequence[str] | None = None,
    returns: Sequence[int] = (1, 2),
    drop_nlz: bool = False,
    *,
    workers: int = 1,
    decode_images: bool = False,
) -> PointCloud:
    """Points of the chosen lasers and returns of a frame, vehicle frame.

    The same cloud as :meth:`Frame.point_cloud <perceive.datasets.types.Frame.point_cloud>`
    (which calls this with one worker), optionally built on several threads.

    Args:
        frame: the frame; its lazily decoded range images are decoded (and cached) here.
        lasers: laser names; None for every laser present in the frame. Naming a laser
            the frame lacks raises :class:`~perceive.errors.MissingComponentError`.
        returns: which returns, any of 1 and 2.
        drop_nlz: drop points inside no-label zones.
        workers: threads decoding range images and building points (1: this thread
            only). Use the free cores; with one process per core (data loaders), keep 1.
        decode_images: also decode the frame's camera images into ``frame.images``
            (its cache) on the same threads, overlapping the LiDAR work.

    Returns:
        The cloud, lasers in enum order, return 1 before return 2 for each laser,
        pixels in row-major order.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    names = frame.laser_names if lasers is None else list(lasers)
    keys: list[tuple[str, int]] = []
    for name in names:
        if name not in frame.lasers:
            raise MissingComponentError(
                f"{frame.source}: frame has no calibration for laser {name!r}"
            )
        for ret in returns:
            if ret not in (1, 2):
                raise ValueError(f"returns must be 1 or 2, got {ret}")
            if (name, ret) not in frame.range_images:
                if lasers is None:
                    continue
                raise MissingComponentError(
                    f"{frame.source}: frame has no range image for laser {name!r} return {ret}; "
                    f"present: {sorted(frame.range_images)}"
                )
            keys.append((name, ret))
    # Return 2 borrows the per-pixel pose stored with return 1.
    needed = list(dict.fromkeys(keys + [(n, 1) for n, r in keys if r == 2]))
    needed = [k for k in needed if k in frame.range_images]
    # The biggest first (the TOP laser), so that the threads end together.
    needed.sort(key=lambda k: (k[0] != "TOP", k[1]))
    pool = _pool(workers) if workers > 1 else None

    def decode(key: tuple[str, int]) -> tuple[RangeImage, np.ndarray | None]:
        ri = frame.range_images[key]
        return ri, (valid_pixels(ri) if key in keys else None)

    decode_calls = [lambda k=k: decode(k) for k in needed]
    image_calls = [lambda n=n: frame.images[n] for n in frame.image_bytes] if decode_images else []
    if pool is None:
        decoded = dict(zip(needed, [c() for c in decode_calls], strict=True))
        image_futures: list[Future] = []
    else:
        # Images queue behind the range images: they fill the threads until points are due.
        decode_futures = [pool.submit(c) for c in decode_calls]
        image_futures = [pool.submit(c) for c in image_calls]
        decoded = dict(zip(needed, _results(decode_futures), strict=True))
    for name, ret in keys:
        _check_geometry(frame, decoded[(name, ret)][0], decoded.get((name, 1), (None,))[0])
    counts = [int(np.count_nonzero(decoded[k][1])) for k in keys]
    out = _allocate(sum(counts))
    starts = [0, *itertools.accumulate(counts)]

    def fill(i: int) -> None:
        name = keys[i][0]
        ri, mask = decoded[keys[i]]
        pose_src = decoded.get((name, 1), (None,))[0] if ri.pixel_pose is None else ri
        dst = {k: a[starts[i] : starts[i + 1]] for k, a in out.items()}
        _write_points(
            ri,
            frame.lasers[name],
            frame.pose,
            None if pose_src is None else pose_src.pixel_pose,
            mask,
            dst,
        )

    fill_calls = [lambda i=i: fill(i) for i in range(len(keys))]
    if pool is None:
        for c in fill_calls + image_calls:
            c()
    else:
        _results([pool.submit(c) for c in fill_calls] + image_futures)
    cloud = PointCloud(**out)
    if drop_nlz and len(cloud):
        cloud = cloud.select(~cloud.nlz)
    return cloud
