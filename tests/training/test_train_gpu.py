"""The training loop on a GPU: mixed precision, checkpoints, resume and DDP (NCCL) on CUDA.

Skipped where PyTorch sees no GPU (CI); run on a GPU machine with ``tools/gpu_check.sh``.
"""

import os

import numpy as np
import pytest
import torch

from perceive.models.config import tiny_config
from perceive.training.checkpoint import detector_from_checkpoint, load_checkpoint
from perceive.training.train import amp_dtype, train
from tests.training.common import train_config

# tools/gpu_check.sh sets PERCEIVE_REQUIRE_GPU=1: there a missing GPU fails these tests
pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() and not os.environ.get("PERCEIVE_REQUIRE_GPU"),
    reason="no CUDA GPU for PyTorch",
)


def config(data, out, **kw):
    return train_config(data, out, device="cuda", **kw)


def test_auto_amp_on_cuda_is_a_half_precision_type():
    assert amp_dtype("auto", torch.device("cuda")) in (torch.bfloat16, torch.float16)


def test_two_iterations_on_cuda_with_amp_then_resume(data, tmp_path):
    stopped = train(config(data, tmp_path, iterations=3), stop_at=2)
    assert stopped.step == 2 and np.isfinite(stopped.final_loss)
    resumed = train(config(data, tmp_path, iterations=3))
    assert resumed.resumed_from == 2 and resumed.step == 3
    ckpt = load_checkpoint(resumed.model_path)
    model = detector_from_checkpoint(ckpt)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_ddp_with_nccl_in_one_process(data, tmp_path, one_process_group_env):
    if not torch.distributed.is_nccl_available():
        pytest.skip("this PyTorch has no NCCL")
    result = train(config(data, tmp_path, model=tiny_config("lidar")))
    assert result.step == 2
    assert not torch.distributed.is_initialized()
    assert load_checkpoint(result.model_path).provenance["world_size"] == 1
