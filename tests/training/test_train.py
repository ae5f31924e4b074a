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


def _assert_same_weights(path_a, path_b):
    a = load_checkpoint(path_a).state_dict
    b = load_checkpoint(path_b).state_dict
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


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
    _assert_same_weights(full.model_path, resumed.model_path)


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


def test_resume_refuses_settings_that_change_the_result(data, tmp_path):
    train(config(data, tmp_path, iterations=3), stop_at=1)
    for change, name in (
        (dict(lr=0.5), "lr"),
        (dict(seed=5), "seed"),
        (dict(augment=None), "augment"),
    ):
        with pytest.raises(ConfigError, match=f"other settings \\({name}: "):
            train(config(data, tmp_path, iterations=3, **change))
    # settings that do not change the result may differ
    assert train(config(data, tmp_path, iterations=3, log_every=2)).step == 3


def test_a_finished_run_is_not_rewritten(data, tmp_path):
    first = train(config(data, tmp_path, val_data=(data,)))
    before = {p: (tmp_path / p).read_bytes() for p in ("model.pt", "provenance.json", "log.jsonl")}
    again = train(config(data, tmp_path, val_data=(data,)))
    assert again.step == 2 and again.metrics == first.metrics
    assert {p: (tmp_path / p).read_bytes() for p in before} == before
    with pytest.raises(ConfigError, match="seed"):  # another run in the same folder
        train(config(data, tmp_path, val_data=(data,), seed=1))


def test_resume_drops_log_lines_past_the_checkpoint(data, tmp_path):
    train(config(data, tmp_path, iterations=4), stop_at=2)
    with open(tmp_path / "log.jsonl", "a") as f:  # what a kill after step 3 leaves behind
        f.write(json.dumps({"step": 3, "loss": 1.0}) + "\n" + '{"step": 4, "lo')
    train(config(data, tmp_path, iterations=4))
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3, 4]
    assert all(r.get("loss") != 1.0 for r in lines)


def test_gt_sampling_of_the_config_is_used(data, tmp_path, monkeypatch):
    import perceive.training.data as data_mod
    from perceive.training.augment import AugmentConfig, GTSamplingConfig

    calls = []
    real = data_mod.gt_sample
    monkeypatch.setattr(data_mod, "gt_sample", lambda *a: calls.append(1) or real(*a))
    aug = AugmentConfig(gt_sampling=GTSamplingConfig(max_per_class=(2, 2, 2, 0), min_points=1))
    train(config(data, tmp_path, augment=aug))
    assert len(calls) == 4  # 2 steps x 2 frames


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(lr="0.1"), "lr must be a number, got '0.1'"),
        (lambda d: d.update(preload="no"), "preload must be true or false"),
        (lambda d: d.update(device=0), "device must be a string"),
        (lambda d: d.update(out_dir=None), "out_dir must be a string"),
        (lambda d: d.update(warmup_fraction=True), "warmup_fraction must be a number"),
        (lambda d: d["augment"].update(scale=[0.9, 1.0, 1.1]), "scale must be \\(low, high\\)"),
        (lambda d: d["augment"].update(gt_sampling={"foo": 1}), "augment: .*foo"),
        (lambda d: d["augment"].update(gt_sampling=[1]), "gt_sampling must be a mapping"),
        (lambda d: d["model"]["camera"].update(image_size="64x32"), "image_size must be a list"),
        (
            lambda d: d["model"]["loss"].update(code_weights="11111111"),
            "code_weights must be a list",
        ),
        (lambda d: d["model"]["head"].update(min_radius=True), "min_radius must be a number"),
        (lambda d: d["model"]["grid"].update(voxel_size=["a", "b"]), "grid: could not convert"),
    ],
)
def test_config_values_of_the_wrong_kind_are_named(data, tmp_path, edit, message):
    d = config(data, tmp_path).to_dict()
    edit(d)
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(d)


def test_augment_values_must_be_finite():
    from perceive.training.augment import AugmentConfig

    with pytest.raises(ConfigError, match="translation_std must be finite"):
        AugmentConfig(translation_std=float("nan"))


def test_a_model_of_fewer_point_features_trains(data, tmp_path):
    import dataclasses

    model = tiny_config("lidar")
    model = dataclasses.replace(
        model, pillars=dataclasses.replace(model.pillars, point_features=("x", "y", "z"))
    )
    assert train(config(data, tmp_path, model=model)).step == 2


def test_logged_lr_is_the_rate_of_the_step(data, tmp_path):
    """The log's lr of step k is the rate step k used (the schedule's value before it steps)."""
    cfg = config(data, tmp_path, iterations=4, lr=1e-3)
    train(cfg)
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=4, pct_start=cfg.warmup_fraction,
        div_factor=10.0, final_div_factor=100.0,
    )  # fmt: skip
    used = []
    for _ in range(4):
        used.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert [r["lr"] for r in lines if "loss" in r] == pytest.approx(used)


def test_ctrl_c_stops_at_a_step_boundary_and_resumes_exactly(data, tmp_path, monkeypatch):
    import os
    import signal

    import perceive.training.train as train_mod

    torch.set_num_threads(1)
    full = train(config(data, tmp_path / "full", iterations=4))
    real = train_mod._append_log

    def ctrl_c_at_step_2(path, record):
        real(path, record)
        if record.get("step") == 2 and "loss" in record:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(train_mod, "_append_log", ctrl_c_at_step_2)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="interrupted after step 2"):
        train(config(data, tmp_path / "cut", iterations=4))
    assert signal.getsignal(signal.SIGINT) is before  # the handler is given back
    assert load_checkpoint(tmp_path / "cut" / "last.pt").step == 2
    monkeypatch.setattr(train_mod, "_append_log", real)
    resumed = train(config(data, tmp_path / "cut", iterations=4))
    assert resumed.resumed_from == 2 and resumed.step == 4
    _assert_same_weights(full.model_path, resumed.model_path)
