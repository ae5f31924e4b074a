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
