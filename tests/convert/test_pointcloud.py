"""PCD and PLY output: the files' layout, exact values, empty clouds, and Open3D reading them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perceive.convert.pointcloud import FIELDS, read_point_cloud, write_point_cloud
from perceive.convert.runner import run_conversion
from perceive.errors import DataError

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


@pytest.mark.parametrize("fmt", ["pcd", "ply"])
def test_headers_list_the_fields_in_file_order(tmp_path: Path, fmt: str) -> None:
    pts = np.arange(15, dtype=np.float32).reshape(3, 5)
    path = tmp_path / f"h.{fmt}"
    write_point_cloud(path, pts)
    data = path.read_bytes()
    if fmt == "pcd":
        head, _, body = data.partition(b"DATA binary\n")
        lines = head.decode().splitlines()
        assert "FIELDS x y z intensity elongation" in lines and "POINTS 3" in lines
        assert "WIDTH 3" in lines and "HEIGHT 1" in lines
    else:
        head, _, body = data.partition(b"end_header\n")
        props = [ln.split()[-1] for ln in head.decode().splitlines() if ln.startswith("property")]
        assert props == list(FIELDS) and "element vertex 3" in head.decode()
    # the body is the rows in that order, little-endian float32, nothing after them
    np.testing.assert_array_equal(np.frombuffer(body, "<f4").reshape(3, 5), pts)


@pytest.mark.parametrize("fmt", ["pcd", "ply"])
def test_open3d_reads_every_field(tmp_path: Path, fmt: str) -> None:
    o3d = pytest.importorskip("open3d")
    pts = np.random.default_rng(1).normal(0, 10, (200, 5)).astype(np.float32)
    path = tmp_path / f"o.{fmt}"
    write_point_cloud(path, pts)
    pc = o3d.t.io.read_point_cloud(str(path))
    np.testing.assert_array_equal(pc.point.positions.numpy(), pts[:, :3])
    np.testing.assert_array_equal(pc.point.intensity.numpy().ravel(), pts[:, 3])
    np.testing.assert_array_equal(pc.point.elongation.numpy().ravel(), pts[:, 4])
    legacy = o3d.io.read_point_cloud(str(path))  # keeps x, y, z only
    np.testing.assert_array_equal(np.asarray(legacy.points), pts[:, :3].astype(np.float64))


@pytest.mark.parametrize("fmt", ["pcd", "ply"])
def test_an_empty_cloud_is_a_valid_file(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"e.{fmt}"
    write_point_cloud(path, np.zeros((0, 5), np.float32))
    assert read_point_cloud(path).shape == (0, 5)
    assert (b"POINTS 0" if fmt == "pcd" else b"element vertex 0") in path.read_bytes()


def test_bad_clouds_are_named(tmp_path: Path) -> None:
    path = tmp_path / "t.pcd"
    write_point_cloud(path, np.ones((10, 5), np.float32))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"t\.pcd.*10 points need 200 bytes"):
        read_point_cloud(path)
    (tmp_path / "x.ply").write_bytes(
        b"ply\nformat binary_little_endian 1.0\nelement vertex 0\nproperty float x\nend_header\n"
    )
    with pytest.raises(DataError, match="no 'y' field"):
        read_point_cloud(tmp_path / "x.ply")
    (tmp_path / "j.pcd").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a PCD or PLY"):
        read_point_cloud(tmp_path / "j.pcd")


def test_a_frame_without_lidar_converts_to_an_empty_cloud(
    real_frame_path: Path, tmp_path: Path
) -> None:
    s = run_conversion(real_frame_path, "pcd", tmp_path / "pcd", progress_bar=False)
    index = json.loads((tmp_path / "pcd" / "index.json").read_text())
    (frame,) = index["segments"][0]["frames"]
    assert s.frames == 1 and frame["num_points"] == 0
    assert read_point_cloud(tmp_path / "pcd" / frame["file"]).shape == (0, 5)
