"""Checkpoint files: what a damaged or foreign file gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from perceive.errors import DataError
from perceive.training.checkpoint import load_checkpoint


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a checkpoint", "weights_only: Unsupported operand"),
        (b"PK\x03\x04junk", "not a ZIP archive"),
    ],
)
def test_unreadable_checkpoint_is_one_short_line(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(DataError, match="cannot read checkpoint") as e:
        load_checkpoint(path)
    text = str(e.value)
    assert str(path) in text and reason in text
    assert "\n" not in text and "trusted source" not in text


def test_missing_and_foreign_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a perceive detector checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
