"""Small generated Waymo segments, written as v1 files and as a v2 root."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from perceive.datasets.types import Frame
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.v1_writer import write_segment
from perceive.datasets.waymo.v2 import write_v2_segment

SEGMENTS = 2
FRAMES = 3


def segment_frames(s: int, n: int = FRAMES) -> list[Frame]:
    """The frames of generated segment ``s``."""
    out = []
    for i in range(n):
        f = make_frame(100 * s + i, top_shape=(8, 64), side_shape=(4, 16), num_boxes=5)
        out.append(
            dataclasses.replace(f, context=dataclasses.replace(f.context, segment=f"seg{s}"))
        )
    return out


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"v1": folder of .tfrecord files, "v2": v2 root}`` holding the same segments."""
    d = tmp_path_factory.mktemp("sources")
    for s in range(SEGMENTS):
        frames = segment_frames(s)
        write_segment(d / "v1" / f"seg{s}.tfrecord", frames)
        write_v2_segment(d / "v2", frames)
    return {"v1": d / "v1", "v2": d / "v2"}


def tree(root: Path, skip: tuple[str, ...] = ("_summary.json",)) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), except run-specific ones."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip and "_manifests" not in p.parts
    }
