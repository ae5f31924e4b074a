"""``perceive info``: the printed summary, info.json and the pictures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from perceive.cli.main import main
from perceive.datasets import waymo


def test_info_on_generated_segment(fixture_segment: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "info"
    assert main(["info", str(fixture_segment), "--frame", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    frame = waymo.open(fixture_segment)[1]
    assert frame.segment in text and str(frame.timestamp_us) in text
    assert "(2 frames)" in text
    info = json.loads((out / "info.json").read_text())
    assert info["index"] == 1 and info["segment"] == frame.segment
    cams = {c["name"]: c for c in info["cameras"]}
    assert cams["FRONT"]["image_size"] == [64, 48] and cams["FRONT"]["calibrated_size"] == [64, 48]
    lasers = {la["name"]: la for la in info["lasers"]}
    for (name, ret), ri in frame.range_images.items():
        assert lasers[name]["shapes"][str(ret)] == list(ri.shape)
        assert lasers[name]["points"][str(ret)] == int((ri.values[..., 0] > 0).sum())
    assert f"{ri.shape[0]}x{ri.shape[1]}" in text
    assert f"points     {len(frame.point_cloud())} " in text
    assert sum(info["boxes_by_type"].values()) == len(frame.boxes)
    for name in ("overlay.png", "overlay_FRONT.png", "bev.png"):
        img = cv2.imread(str(out / name))
        assert img is not None and img.std() > 1, name


def test_info_without_pictures_and_negative_frame(fixture_segment: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert (
        main(["info", str(fixture_segment), "--frame", "-1", "--no-pictures", "--out", str(out)])
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["info.json"]
    assert json.loads((out / "info.json").read_text())["index"] == 1


def test_info_errors(fixture_segment: Path, tmp_path: Path, capsys) -> None:
    assert main(["info", str(tmp_path / "missing.tfrecord"), "--out", str(tmp_path)]) == 1
    assert "missing.tfrecord" in capsys.readouterr().err
    assert main(["info", str(fixture_segment), "--frame", "5", "--out", str(tmp_path)]) == 1
    assert "out of range" in capsys.readouterr().err
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(b"\x00" * 10)
    assert main(["info", str(bad), "--out", str(tmp_path)]) == 1
    assert "record 0" in capsys.readouterr().err


def test_info_on_real_frame(real_frame_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "real"
    assert main(["info", str(real_frame_path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "FRONT         1920x1280     1920x1280" in text
    assert "SIDE_LEFT     1920x886      1920x886" in text
    assert "75 (VEHICLE 37, PEDESTRIAN 12, SIGN 25, CYCLIST 1)" in text
    assert "points     0 " in text
    info = json.loads((out / "info.json").read_text())
    checks = [p for p in info["projection"] if p["compared"]]
    assert sum(p["compared"] for p in checks) >= 30
    assert all(
        p["median_center_error_px"] < 0.5 and p["median_size_error_px"] < 0.5 for p in checks
    )
    assert (out / "overlay.png").is_file() and (out / "overlay_FRONT.png").is_file()
    assert not (out / "bev.png").exists()  # no LiDAR in this frame
    assert (out / "overlay_FRONT.png").stat().st_size < 300_000


@pytest.mark.parametrize("argv", [["info", "--help"]])
def test_help(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    assert "--frame" in capsys.readouterr().out
