"""The loader benchmark's data generator and timing (not the speed: that is for tools/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perceive.datasets import waymo
from perceive.datasets.waymo.bench import (
    SIDE_MAX_RANGE,
    TOP_MAX_RANGE,
    benchmark_segment,
    format_timing,
    synthetic_segment,
)
from perceive.errors import ConfigError

SMALL = {"top_shape": (16, 200), "side_shape": (20, 60), "image_size": (160, 96)}


@pytest.fixture(scope="module")
def scene_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_segment(tmp_path_factory.mktemp("bench") / "scene.tfrecord", 2, **SMALL)


def test_scene_segment_is_plausible(scene_path: Path) -> None:
    with waymo.open(scene_path) as seg:
        assert len(seg) == 2
        frame = seg[0]
    assert frame.range_images[("TOP", 1)].shape == (16, 200)
    assert frame.range_images[("FRONT", 2)].shape == (20, 60)
    assert frame.images["FRONT"].shape == (96, 160, 3)
    pc = frame.point_cloud()
    top = pc.laser == 1
    assert top.sum() > 0.5 * 16 * 200  # most TOP pixels see the ground or a building
    assert (pc.range[top] <= TOP_MAX_RANGE).all() and (
        pc.range[~top & (pc.return_index == 1)] <= SIDE_MAX_RANGE
    ).all()
    # Many points lie on the ground plane z = 0 (the per-pixel pose only moves them in x, y).
    first = pc.select(top & (pc.return_index == 1))
    assert (np.abs(first.xyz[:, 2]) < 0.02).mean() > 0.3
    # Second returns are sparse.
    assert (pc.return_index == 2).sum() < 0.3 * (pc.return_index == 1).sum()


def test_random_ranges_option(tmp_path: Path) -> None:
    p = synthetic_segment(tmp_path / "r.tfrecord", 1, scene=False, **SMALL)
    frame = waymo.open(p)[0]
    assert frame.range_images[("TOP", 1)].pixel_pose is not None
    assert len(frame.point_cloud()) > 0


def test_benchmark_counts_and_table(scene_path: Path) -> None:
    seen = []
    t = benchmark_segment(scene_path, frames=5, repeat=2, progress=lambda r, i: seen.append((r, i)))
    assert t.frames == 2 and t.repeat == 2 and seen == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with waymo.open(scene_path) as seg:
        expected = np.mean([len(seg[i].point_cloud()) for i in range(2)])
    assert t.points == pytest.approx(expected)
    assert t.images == 5
    for v in (t.read_ms, t.parse_ms, t.lidar_decode_ms, t.lidar_points_ms, t.jpeg_ms, t.floor_ms):
        assert v > 0
    assert t.total_ms == pytest.approx(t.read_ms + t.parse_ms + t.lidar_ms + t.jpeg_ms)
    text = format_timing(t)
    assert "frames/s" in text and "floor" in text and str(scene_path) in text
    from perceive.datasets.waymo.wire import INFLATE_LIBRARY

    assert t.inflate_library == INFLATE_LIBRARY
    if INFLATE_LIBRARY == "zlib":
        assert t.floor_inflate_ms is None and "inflater" not in text
    else:
        assert t.floor_inflate_ms > 0 and f"the reader uses {INFLATE_LIBRARY}" in text
    assert t.threaded_ms is None and "threads" not in text


def test_benchmark_with_threads(scene_path: Path) -> None:
    t = benchmark_segment(scene_path, frames=1, repeat=1, workers=2)
    assert t.workers == 2
    for v in (t.threaded_ms, t.threaded_cpu_ms, t.floor_threaded_ms, t.floor_threaded_cpu_ms):
        assert v is not None and v > 0
    assert "with 2 threads" in format_timing(t)


def test_bad_arguments(tmp_path: Path, scene_path: Path) -> None:
    with pytest.raises(ConfigError):
        synthetic_segment(tmp_path / "x.tfrecord", 0)
    with pytest.raises(ConfigError):
        benchmark_segment(scene_path, repeat=0)
    with pytest.raises(ConfigError, match="workers"):
        benchmark_segment(scene_path, workers=0)
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match="no frames"):
        benchmark_segment(empty)
