"""Presets and config validation."""

from __future__ import annotations

import pytest

from perceive.errors import ConfigError
from perceive.synth.config import CameraConfig, LidarConfig, SceneConfig, preset


def test_presets_have_waymo_lidar_and_aspect_ratios():
    train = preset("train")
    assert train.lidar.top_shape == (64, 2650) and train.lidar.side_shape == (200, 600)
    w, h = train.camera.front_size
    assert abs(w / h - 1920 / 1280) < 0.01
    w, h = train.camera.side_size
    assert abs(w / h - 1920 / 886) < 0.01
    tiny = preset("tiny")
    assert (
        tiny.lidar.top_shape[0] * tiny.lidar.top_shape[1]
        < train.lidar.top_shape[0] * train.lidar.top_shape[1]
    )


def test_preset_overrides_sizes():
    cfg = preset("tiny", top_shape=(8, 64), front_size=(120, 80))
    assert cfg.lidar.top_shape == (8, 64) and cfg.camera.front_size == (120, 80)
    assert cfg.camera.side_size == preset("tiny").camera.side_size


@pytest.mark.parametrize(
    "make",
    [
        lambda: preset("huge"),
        lambda: LidarConfig(top_shape=(1, 10)),
        lambda: LidarConfig(lasers=("TOP", "MIDDLE")),
        lambda: LidarConfig(dropout=1.5),
        lambda: LidarConfig(range_noise=-1.0),
        lambda: CameraConfig(jpeg_quality=0),
        lambda: CameraConfig(cameras=("BACK",)),
        lambda: SceneConfig(vehicles=(5, 2)),
        lambda: SceneConfig(lanes_per_direction=(0, 1)),
        lambda: SceneConfig(margin=0.0),
    ],
)
def test_bad_values_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()
