"""``perceive synth`` end to end at the tiny preset."""

from __future__ import annotations

import pytest

from perceive.cli.main import main
from perceive.datasets.waymo import v1


def test_synth_writes_readable_segments(tmp_path, capsys):
    out = tmp_path / "synth"
    rc = main(
        [
            "synth",
            "--out",
            str(out),
            "--segments",
            "1",
            "--frames",
            "1",
            "--seed",
            "2",
            "--preset",
            "tiny",
            "--no-progress",
        ]
    )
    assert rc == 0
    (path,) = sorted(out.glob("segment-*.tfrecord"))
    with v1.Segment(path) as seg:
        assert len(seg) == 1
        fr = seg[0]
        assert len(fr.image_bytes) == 5 and len(fr.laser_names) == 5 and len(fr.boxes) > 0
    assert "1 segments x 1 frames" in capsys.readouterr().out


def test_synth_rejects_bad_arguments(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--segments", "0", "--preset", "tiny"]) == 1
    assert "--segments" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(tmp_path), "--front-size", "big"])
