"""PCD and PLY output through Open3D."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perceive.convert.pointcloud import read_point_cloud, write_point_cloud
from perceive.convert.runner import run_conversion

from .conftest import segment_frames


@pytest.mark.parametrize("fmt", ["pcd", "ply"])
def test_point_cloud_round_trip(tmp_path: Path, fmt: str) -> None:
    pts = np.random.default_rng(0).normal(0, 10, (500, 5)).astype(np.float32)
    path = tmp_path / f"a.{fmt}"
    write_point_cloud(path, pts)
    np.testing.assert_array_equal(read_point_cloud(path), pts)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left


@pytest.mark.parametrize("fmt", ["pcd", "ply"])
def test_convert_to_point_clouds(sources: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    s = run_conversion(sources["v2"], fmt, tmp_path / fmt, progress_bar=False)
    index = json.loads((tmp_path / fmt / "index.json").read_text())
    assert [seg["segment"] for seg in index["segments"]] == ["seg0", "seg1"]
    f = index["segments"][1]["frames"][0]
    got = read_point_cloud(tmp_path / fmt / f["file"])
    np.testing.assert_array_equal(got, segment_frames(1)[0].point_cloud().features())
    assert s.points == sum(fr["num_points"] for seg in index["segments"] for fr in seg["frames"])


def test_point_cloud_files_get_the_usual_mode(tmp_path: Path) -> None:
    from perceive.io.atomic import default_file_mode

    pts = np.random.default_rng(0).normal(size=(10, 5)).astype(np.float32)
    for fmt in ("pcd", "ply"):
        write_point_cloud(tmp_path / f"c.{fmt}", pts)
        assert (tmp_path / f"c.{fmt}").stat().st_mode & 0o777 == default_file_mode()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name descriptors")
def test_point_cloud_files_are_flushed_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.io.test_atomic import record_fsyncs

    seen = record_fsyncs(monkeypatch)
    write_point_cloud(tmp_path / "c.pcd", np.ones((10, 5), np.float32))
    assert [Path(p).name.startswith(".c.pcd.") for p, _ in seen] == [True, False]
    assert seen[1] == (str(tmp_path), True)
    assert len(read_point_cloud(tmp_path / "c.pcd")) == 10
