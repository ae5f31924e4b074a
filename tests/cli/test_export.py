"""``perceive export`` from the command line: refusals before any work, and a real export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceive.cli.main import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from perceive.models.build import build_detector
    from perceive.models.config import tiny_config
    from perceive.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model=build_detector(config=tiny_config(), variant="lidar").eval())
    return path


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda c, t: ["--out", str(c)], "must be a .onnx file"),
        (lambda c, t: ["--out", str(t / "m.json")], "must be a .onnx file"),
        (lambda c, t: ["--out", str(t / "m.onnx"), "--opset", "99"], "opset must be in [18, "),
        (lambda c, t: ["--out", str(t / "m.onnx"), "--opset", "17"], "opset must be in [18, "),
        (lambda c, t: ["--out", str(t / "m.onnx"), "--parity", "-1"], "--parity must be >= 0"),
        (lambda c, t: ["--out", str(t)], "is a folder; give a file name"),
        (lambda c, t: ["--out", str(c / "m.onnx")], "is not a folder"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(
    checkpoint: Path, tmp_path: Path, make_args, message: str, capsys: pytest.CaptureFixture
) -> None:
    before = checkpoint.read_bytes()
    assert main(["export", str(checkpoint), *make_args(checkpoint, tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert checkpoint.read_bytes() == before
    assert not list(tmp_path.glob("*.onnx"))


def test_an_output_that_is_the_checkpoint_is_refused(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    alias = tmp_path / "alias.onnx"
    alias.symlink_to(checkpoint)  # another name for the checkpoint
    before = checkpoint.read_bytes()
    assert main(["export", str(checkpoint), "--out", str(alias)]) == 1
    assert "would overwrite the checkpoint" in capsys.readouterr().err
    assert checkpoint.read_bytes() == before


def test_provenance_must_be_an_object(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    prov = tmp_path / "p.json"
    prov.write_text("[1, 2]")
    rc = main(
        ["export", str(checkpoint), "--out", str(tmp_path / "m.onnx"), "--provenance", str(prov)]
    )
    assert rc == 1 and "provenance must be a JSON object, got list" in capsys.readouterr().err


@pytest.mark.slow
def test_export_with_parity(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    prov = tmp_path / "p.json"
    prov.write_text(json.dumps({"data": "none"}))
    out = tmp_path / "m.onnx"
    args = [
        "export",
        str(checkpoint),
        "--out",
        str(out),
        "--parity",
        "1",
        "--provenance",
        str(prov),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "parity: worst box diff" in text and "FAILED" not in text
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["perceive.variant"] == "lidar" and side["perceive.provenance"]["data"] == "none"
