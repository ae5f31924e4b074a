"""``perceive convert`` from the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from perceive.cli.main import main
from perceive.convert.cache import CacheReader
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.v1_writer import write_segment


@pytest.fixture
def v1_file(tmp_path: Path) -> Path:
    frames = [make_frame(i, top_shape=(4, 32), side_shape=(2, 8)) for i in range(2)]
    frames = [
        dataclasses.replace(f, context=dataclasses.replace(f.context, segment="s")) for f in frames
    ]
    path = tmp_path / "s.tfrecord"
    write_segment(path, frames)
    return path


def test_convert_command(v1_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cache"
    assert main(["convert", str(v1_file), "--to", "cache", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "frames 2 (converted 2" in text and "skipped records 0" in text
    assert len(CacheReader(out)) == 2
    assert main(["convert", str(v1_file), "--to", "cache", "--out", str(out), "--quiet"]) == 0
    assert "already done 2" in capsys.readouterr().out


def test_convert_command_errors(
    v1_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "convert",
                str(tmp_path / "nothing*.tfrecord"),
                "--to",
                "kitti",
                "--out",
                str(tmp_path / "k"),
            ]
        )
        == 1
    )
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    assert (
        main(["convert", str(v1_file), "--to", "ply", "--out", str(tmp_path / "busy"), "--quiet"])
        == 1
    )
    assert "refusing" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["convert", str(v1_file), "--to", "png", "--out", str(tmp_path / "p")])


def test_convert_command_fails_when_a_segment_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from perceive.datasets.waymo.v2 import write_v2_segment

    for s in ("a", "b"):
        frames = [make_frame(i, top_shape=(4, 32), side_shape=(2, 8)) for i in range(2)]
        write_v2_segment(tmp_path / "v2", frames, segment=s)
    (tmp_path / "v2" / "training" / "lidar" / "a.parquet").unlink()  # segment a cannot open
    out = tmp_path / "cache"
    assert (
        main(["convert", str(tmp_path / "v2"), "--to", "cache", "--out", str(out), "--quiet"]) == 1
    )
    text = capsys.readouterr().out
    assert "failed segments 1" in text and "FAILED a" in text
    assert len(CacheReader(out)) == 2  # segment b was converted
