import json

import pytest

from perceive.errors import ConfigError
from perceive.models.config import (
    BEVBackboneConfig,
    CameraConfig,
    DetectorConfig,
    FusionConfig,
    GridConfig,
    HeadConfig,
    LossConfig,
    PillarConfig,
    tiny_config,
)


def test_defaults_are_valid_and_consistent():
    cfg = DetectorConfig()
    assert cfg.grid.shape == (128, 128)
    assert cfg.head_grid_shape == (128, 128)
    assert cfg.head_cell_size == (0.8, 0.8)
    assert cfg.camera.stride == 8


def test_dict_round_trip_through_json():
    cfg = tiny_config("camera")
    back = DetectorConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg


def test_replace_variant():
    assert DetectorConfig().replace(variant="lidar").variant == "lidar"


@pytest.mark.parametrize(
    "make",
    [
        lambda: DetectorConfig(variant="radar"),
        lambda: GridConfig(point_cloud_range=(0, 0, 0, -1, 1, 1)),
        lambda: GridConfig(point_cloud_range=(0, 0, 0, 10, 10, 1), voxel_size=(0.3, 0.3)),
        lambda: GridConfig(voxel_size=(0.0, 0.8)),
        lambda: PillarConfig(point_features=("intensity", "x", "y", "z")),
        lambda: PillarConfig(point_features=("x", "y", "z", "colour")),
        lambda: PillarConfig(max_points=0),
        lambda: PillarConfig(channels=()),
        lambda: CameraConfig(cameras=("FRONT", "FRONT")),
        lambda: CameraConfig(cameras=("BACK",)),
        lambda: CameraConfig(image_size=(190, 128)),
        lambda: CameraConfig(blocks=(1, 1)),
        lambda: FusionConfig(heights=()),
        lambda: FusionConfig(min_depth=-1.0),
        lambda: BEVBackboneConfig(out_stride=3),
        lambda: BEVBackboneConfig(strides=(1, 2)),
        lambda: HeadConfig(nms_kernel=4),
        lambda: HeadConfig(score_threshold=1.5),
        lambda: HeadConfig(heading="quaternion"),
        lambda: LossConfig(code_weights=(1.0,) * 7),
        lambda: LossConfig(regression_weight=float("nan")),
        lambda: DetectorConfig(class_names=("CAR",)),
        lambda: DetectorConfig(grid=GridConfig(point_cloud_range=(0, 0, 0, 2.4, 2.4, 1))),
    ],
)
def test_bad_values_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown keys"):
        DetectorConfig.from_dict({"variant": "lidar", "colour": 1})
    with pytest.raises(ConfigError, match="in head"):
        DetectorConfig.from_dict({"head": {"channels": 8, "stride": 2}})


def test_head_heading_code_and_its_legacy_default():
    assert HeadConfig().heading == "axis_direction" and HeadConfig().code_size == 10
    assert HeadConfig(heading="sin_cos").code_size == 8
    # A mapping written before the field existed (old checkpoints) means sin_cos.
    old = tiny_config("lidar").to_dict()
    del old["head"]["heading"]
    assert DetectorConfig.from_dict(old).head.heading == "sin_cos"
    assert DetectorConfig.from_dict(tiny_config("lidar").to_dict()).head.heading == (
        "axis_direction"
    )


def test_fusion_paint_defaults_off_also_for_mappings_without_the_key():
    from perceive.errors import ConfigError
    from perceive.models.config import FusionConfig

    assert FusionConfig().paint is False
    old = tiny_config().to_dict()
    del old["fusion"]["paint"]
    # A mapping written before the field existed (round-1 to round-3 models): no painting.
    assert DetectorConfig.from_dict(old).fusion.paint is False
    assert DetectorConfig.from_dict(tiny_config().to_dict()).fusion.paint is True
    with pytest.raises(ConfigError, match="paint"):
        FusionConfig(paint="yes")
