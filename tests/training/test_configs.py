"""The training configs shipped in tools/configs load, validate and build their model."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceive.models.build import build_detector
from perceive.training.train import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "tools" / "configs").glob("*.json"))


def test_configs_exist():
    names = {p.stem for p in CONFIGS}
    assert {"round1_fusion", "round1_lidar", "round1_camera"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_loads_and_builds(path):
    cfg = TrainConfig.load(path)
    variant = path.stem.split("_")[-1]
    assert cfg.model.variant == variant
    model = build_detector(config=cfg.model, variant=cfg.model.variant)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
