"""The training cache: exact round trip, memory-mapped reads, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perceive.convert.cache import (
    CachedFrame,
    CacheReader,
    encode_cache_frame,
    read_cache_frame,
    read_cache_header,
    write_cache_frame,
)
from perceive.convert.runner import run_conversion
from perceive.datasets import waymo
from perceive.errors import DataError

from .conftest import FRAMES, SEGMENTS, segment_frames


def test_frame_round_trip_is_exact(tmp_path: Path) -> None:
    frame = segment_frames(0, 1)[0]
    cf = CachedFrame.from_frame(frame)
    path = tmp_path / "f.pcf"
    write_cache_frame(path, cf)
    back = read_cache_frame(path)
    assert back == cf
    assert back.image_bytes["FRONT"] == frame.image_bytes["FRONT"]  # never re-encoded
    assert back.points.dtype == np.float32 and not back.points.flags.writeable
    assert isinstance(back.points.base, np.memmap) or isinstance(back.points, np.memmap)
    assert read_cache_frame(path, mmap=False) == cf
    np.testing.assert_array_equal(back.points, frame.point_cloud().features())
    h = read_cache_header(path)
    assert h["segment"] == "seg0" and h["entries"]["points"][3] == [len(cf.points), 5]


def test_frame_without_boxes_or_points(tmp_path: Path) -> None:
    from dataclasses import replace

    from perceive.datasets.types import Boxes3D

    frame = segment_frames(0, 1)[0]
    frame = replace(frame, range_images={}, boxes=Boxes3D.empty())
    cf = CachedFrame.from_frame(frame)
    write_cache_frame(tmp_path / "e.pcf", cf)
    back = read_cache_frame(tmp_path / "e.pcf")
    assert back == cf and len(back.points) == 0 and len(back.boxes) == 0


def test_bad_frame_files(tmp_path: Path) -> None:
    cf = CachedFrame.from_frame(segment_frames(0, 1)[0])
    data = encode_cache_frame(cf)
    (tmp_path / "t.pcf").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        read_cache_frame(tmp_path / "t.pcf")
    (tmp_path / "m.pcf").write_bytes(b"NOTCACHE" + data[8:])
    with pytest.raises(DataError, match="magic"):
        read_cache_frame(tmp_path / "m.pcf")
    (tmp_path / "v.pcf").write_bytes(data[:8] + (99).to_bytes(4, "little") + data[12:])
    with pytest.raises(DataError, match="version"):
        read_cache_frame(tmp_path / "v.pcf")


def test_cache_from_v1_and_v2_agree(sources: dict[str, Path], tmp_path: Path) -> None:
    s1 = run_conversion(sources["v1"], "cache", tmp_path / "c1", progress_bar=False)
    s2 = run_conversion(sources["v2"], "cache", tmp_path / "c2", progress_bar=False)
    assert s1.frames == s2.frames == SEGMENTS * FRAMES
    r1, r2 = CacheReader(tmp_path / "c1"), CacheReader(tmp_path / "c2")
    assert len(r1) == len(r2) == SEGMENTS * FRAMES
    assert r1.segments == r2.segments == [f"seg{s}" for s in range(SEGMENTS)]
    for i in range(len(r1)):
        assert r1[i] == r2[i]
    # Random access matches the source frame.
    seg = waymo.open(sources["v1"] / "seg1.tfrecord")
    assert r1[FRAMES + 2] == CachedFrame.from_frame(seg[2])
    index = json.loads((tmp_path / "c1" / "index.json").read_text())
    assert index["format"] == "cache" and index["segments"][0]["frames"][0][0] == 0
    assert s1.points == sum(len(r1[i].points) for i in range(len(r1)))


def test_reader_refuses_other_folders(sources: dict[str, Path], tmp_path: Path) -> None:
    run_conversion(sources["v1"], "kitti", tmp_path / "k", progress_bar=False)
    with pytest.raises(DataError, match="kitti"):
        CacheReader(tmp_path / "k")
    with pytest.raises(DataError, match="PERCEIVE_FORMAT"):
        CacheReader(tmp_path)
