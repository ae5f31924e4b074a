"""A tiny generated segment shared by the synth tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceive.synth.config import preset
from perceive.synth.generate import SegmentGenerator, SynthFrame

SEED = 7
FRAMES = 2


@pytest.fixture(scope="session")
def tiny_config():
    """The tiny preset."""
    return preset("tiny")


@pytest.fixture(scope="session")
def tiny_generator(tiny_config) -> SegmentGenerator:
    """Generator of segment 0 of seed 7, 2 frames."""
    return SegmentGenerator(tiny_config, SEED, 0, FRAMES)


@pytest.fixture(scope="session")
def tiny_frames(tiny_generator) -> list[SynthFrame]:
    """The generated frames with their ground truth."""
    return list(tiny_generator)


@pytest.fixture(scope="session")
def tiny_file(tiny_frames, tmp_path_factory) -> Path:
    """The frames written as a v1 file."""
    from perceive.datasets.waymo.v1_writer import write_segment

    path = tmp_path_factory.mktemp("synth") / "segment.tfrecord"
    write_segment(path, [f.frame for f in tiny_frames])
    return path
