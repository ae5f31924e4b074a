"""Fixtures of the deploy tests: a tiny stand-in model exported with the contract's interface."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def standin_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in detector (tests/deploy/standin.py) exported to ONNX with its metadata."""
    from tests.deploy.standin import export_standin

    return export_standin(tmp_path_factory.mktemp("standin") / "standin.onnx")


@pytest.fixture(scope="session")
def lidar_standin_onnx(standin_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in labelled as a LiDAR-only variant (cameras may be left out)."""
    from tests.deploy.standin import relabel

    return relabel(
        standin_onnx, tmp_path_factory.mktemp("standin_lidar") / "lidar.onnx", variant="lidar"
    )


@pytest.fixture(scope="session")
def tiny_real_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny real detector (``tiny_config``, random weights): ``(exported .onnx, checkpoint)``,
    exported by the model helper's :func:`perceive.deploy.export.export_onnx`."""
    torch = pytest.importorskip("torch")
    from perceive.deploy.export import export_onnx
    from perceive.models.build import build_detector
    from perceive.models.config import tiny_config
    from perceive.training.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("tiny_real")
    torch.manual_seed(0)
    model = build_detector(config=tiny_config()).eval()
    ckpt = folder / "tiny.pt"
    save_checkpoint(ckpt, model=model)
    onnx_path = folder / "tiny.onnx"
    export_onnx(ckpt, onnx_path)
    return onnx_path, ckpt
