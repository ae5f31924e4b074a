"""The training loop: a 2-iteration smoke test, resume, DDP in one process, configs."""

import json

import numpy as np
import pytest
import torch

from perceive.errors import ConfigError
from perceive.models.config import tiny_config
from perceive.training.checkpoint import detector_from_checkpoint, load_checkpoint
from perceive.training.train import TrainConfig, epoch_indices, train
from tests.training.common import train_config as config


def test_two_iterations_write_logs_checkpoints_and_a_loadable_model(data, tmp_path):
    result = train(config(data, tmp_path, val_data=(data,)))
    assert result.step == 2 and result.resumed_from == 0
    assert np.isfinite(result.final_loss)
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in lines if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(np.isfinite(r["loss"]) and r["samples_per_s"] > 0 for r in steps)
    evals = [r for r in lines if "eval" in r]
    assert len(evals) == 1 and "mean_aph_l2" in evals[0]["eval"]
    ckpt = load_checkpoint(result.model_path)
    assert ckpt.train_state is None and ckpt.step == 2
    assert ckpt.provenance["iterations"] == 2
    assert ckpt.provenance["train_config"]["iterations"] == 2
    assert "mean_aph_l2" in ckpt.provenance["metrics"]["val"]
    assert ckpt.provenance["git_commit"] != ""  # recorded when the run starts
    model = detector_from_checkpoint(ckpt)
    assert model.config == tiny_config("fusion")
    assert load_checkpoint(tmp_path / "last.pt").train_state is not None


def test_resume_continues_where_it_stopped_and_matches_an_uninterrupted_run(data, tmp_path):
    torch.set_num_threads(1)
    full = train(config(data, tmp_path / "full", iterations=3))
    stopped = train(config(data, tmp_path / "split", iterations=3), stop_at=2)
    assert stopped.step == 2 and not (tmp_path / "split" / "model.pt").exists()
    resumed = train(config(data, tmp_path / "split", iterations=3))
    assert resumed.resumed_from == 2 and resumed.step == 3
    a = load_checkpoint(full.model_path).state_dict
    b = load_checkpoint(resumed.model_path).state_dict
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def test_resume_refuses_another_model_config_or_schedule(data, tmp_path):
    train(config(data, tmp_path, iterations=2), stop_at=1)
    with pytest.raises(ConfigError, match="another model config"):
        train(config(data, tmp_path, iterations=2, model=tiny_config("lidar")))
    with pytest.raises(ConfigError, match="iterations"):
        train(config(data, tmp_path, iterations=5))


def test_ddp_with_gloo_in_one_process(data, tmp_path, one_process_group_env):
    result = train(config(data, tmp_path, iterations=2, model=tiny_config("lidar")))
    assert result.step == 2
    assert not torch.distributed.is_initialized()
    ckpt = load_checkpoint(result.model_path)
    assert ckpt.provenance["world_size"] == 1
    # Weights saved from inside the DDP wrapper load into a plain detector.
    detector_from_checkpoint(ckpt)


def test_epoch_indices_are_a_sharded_permutation():
    shards = [epoch_indices(10, 0, 3, r, 3) for r in range(3)]
    allidx = np.concatenate(shards)
    assert len(allidx) == 9 and len(set(allidx.tolist())) == 9
    assert not np.array_equal(epoch_indices(10, 0, 3, 0, 1), epoch_indices(10, 0, 4, 0, 1))


def test_config_round_trip_and_errors(tmp_path, data):
    cfg = config(data, tmp_path)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert TrainConfig.load(path) == cfg
    with pytest.raises(ConfigError, match="unknown keys"):
        TrainConfig.from_dict({**cfg.to_dict(), "epochs": 3})
    with pytest.raises(ConfigError):
        cfg.replace(batch_size=0)
    with pytest.raises(ConfigError):
        cfg.replace(amp="fp8")
    with pytest.raises(ConfigError):
        cfg.replace(train_data=())
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"c\.json"):
        TrainConfig.load(path)
