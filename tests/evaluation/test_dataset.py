"""Ground truth read from datasets on disk."""

from __future__ import annotations

import pytest

from perceive.datasets import waymo
from perceive.errors import DataError, MissingFileError
from perceive.evaluation.dataset import load_ground_truth


def test_ground_truth_of_a_v1_file_and_folder(fixture_segment):
    with waymo.open(fixture_segment) as seg:
        frames = list(seg)
    for source in (fixture_segment, fixture_segment.parent):
        gts = load_ground_truth(source)
        assert [g.key for g in gts] == [(f.segment, 0, f.timestamp_us) for f in frames]
        assert all(g.boxes == f.boxes for g, f in zip(gts, frames, strict=True))


def test_bad_dataset_paths(tmp_path):
    with pytest.raises(MissingFileError):
        load_ground_truth(tmp_path / "missing")
    with pytest.raises(DataError, match=r"no Waymo \.tfrecord files"):
        load_ground_truth(tmp_path)
