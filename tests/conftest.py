"""Fixtures shared by the test suite.

The real Waymo frame lives in ``shared/`` beside the repository (``../shared`` from the
repository root); tests that need it are skipped where it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # before any test imports pyplot

#: The repository root.
REPO_ROOT = Path(__file__).resolve().parents[1]
#: ``shared/`` beside the repository (override with ``PERCEIVE_SHARED``).
SHARED_DIR = Path(os.environ.get("PERCEIVE_SHARED", REPO_ROOT.parent / "shared"))
#: The one real Waymo v1 frame (5 cameras, 75 labels, no LiDAR).
REAL_FRAME = SHARED_DIR / "data" / "waymo" / "v1" / "pvps_data_one_frame.tfrecord"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` relative to the repository root; skips the test when absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def real_frame_path() -> Path:
    """Path of the real one-frame v1 segment; skips the test when absent."""
    if not REAL_FRAME.is_file():
        pytest.skip(f"real Waymo frame not found at {REAL_FRAME}")
    return REAL_FRAME


@pytest.fixture(scope="session")
def fixture_segment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-frame v1 segment written from :func:`perceive.datasets.waymo.fixtures.make_frame`."""
    from perceive.datasets.waymo.fixtures import make_frame
    from perceive.datasets.waymo.v1_writer import write_segment

    path = tmp_path_factory.mktemp("segment") / "fixture.tfrecord"
    write_segment(path, [make_frame(0), make_frame(1)])
    return path
