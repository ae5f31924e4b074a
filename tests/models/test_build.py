import pytest
import torch

from perceive.models.build import build_detector
from perceive.models.config import tiny_config
from perceive.models.detector import Detector


@pytest.fixture(params=("fusion", "lidar", "camera"))
def model(request):
    torch.manual_seed(0)
    return build_detector(config=tiny_config(), variant=request.param).eval()


def test_build_assembles_the_parts_of_each_variant(model):
    v = model.config.variant
    assert isinstance(model, Detector)
    assert (model.pillars is not None) == (v in ("fusion", "lidar"))
    assert (model.camera is not None) == (v in ("fusion", "camera"))


def test_build_rejects_unknown_variant():
    from perceive.errors import ConfigError

    with pytest.raises(ConfigError):
        build_detector(config=tiny_config(), variant="radar")
