import torch

from perceive.models.camera_backbone import CameraBackbone
from perceive.models.config import CameraConfig


def test_output_shape_and_stride():
    cfg = CameraConfig(image_size=(64, 32), channels=(8, 16, 16), blocks=(0, 1, 1), out_channels=12)
    net = CameraBackbone(config=cfg).eval()
    x = torch.randint(0, 256, (3, 32, 64, 3), dtype=torch.uint8)
    out = net(x)
    assert out.shape == (3, 12, 32 // cfg.stride, 64 // cfg.stride)
    assert out.dtype == torch.float32


def test_images_are_independent():
    cfg = CameraConfig(image_size=(32, 32), channels=(8, 8), blocks=(1, 0), out_channels=4)
    net = CameraBackbone(config=cfg).eval()
    x = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    both = net(x)
    torch.testing.assert_close(both[1:], net(x[1:]))
    x2 = x.clone()
    x2[0] = 255 - x2[0]
    torch.testing.assert_close(net(x2)[1:], both[1:])
    assert not torch.allclose(net(x2)[0], both[0])
