"""``perceive train`` end to end on tiny generated data."""

import json

import pytest

from perceive.cli.main import main
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.v1_writer import write_segment
from perceive.training.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_train") / "seg.tfrecord"
    write_segment(path, [make_frame(s, num_boxes=5) for s in range(2)])
    return str(path)


def test_train_with_flags_then_resume_is_a_no_op(data, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--tiny", "--variant", "lidar", "--train", data, "--out", str(out)]
    argv += ["--iterations", "2", "--batch-size", "2", "--workers", "0", "--no-progress"]
    assert main(argv) == 0
    assert "trained lidar for 2 steps" in capsys.readouterr().out
    ckpt = load_checkpoint(out / "model.pt")
    assert ckpt.config.variant == "lidar" and ckpt.step == 2
    assert main(argv) == 0  # resumes at step 2 of 2: nothing to do
    assert load_checkpoint(out / "model.pt").step == 2


def test_config_file_and_flag_precedence(data, tmp_path, capsys):
    cfg = tmp_path / "c.json"
    assert main(["train", "--tiny", "--train", data, "--iterations", "7", "--print-config"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["iterations"] == 7 and resolved["model"]["variant"] == "fusion"
    cfg.write_text(json.dumps(resolved))
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg),
                "--iterations",
                "3",
                "--variant",
                "camera",
                "--print-config",
            ]
        )
        == 0
    )
    again = json.loads(capsys.readouterr().out)
    assert again["iterations"] == 3 and again["model"]["variant"] == "camera"
    assert again["model"]["grid"] == resolved["model"]["grid"]


def test_stop_at_then_resume(data, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "--tiny",
        "--train",
        data,
        "--out",
        str(out),
        "--iterations",
        "2",
        "--batch-size",
        "1",
        "--workers",
        "0",
        "--no-progress",
    ]
    assert main([*argv, "--stop-at", "1"]) == 0
    assert "stopped at step 1/2" in capsys.readouterr().out
    assert not (out / "model.pt").exists()
    assert main(argv) == 0
    assert load_checkpoint(out / "model.pt").step == 2


def test_only_rank_zero_reports_under_torchrun(data, tmp_path, capsys, monkeypatch):
    import perceive.training.train as training

    def fake_train(config, *, stop_at=None):
        return training.TrainResult(
            out_dir=tmp_path,
            model_path=tmp_path / "model.pt",
            step=config.iterations,
            resumed_from=0,
            final_loss=0.0,
            samples_per_s=1.0,
            metrics=None,
        )

    monkeypatch.setattr(training, "train", fake_train)
    argv = ["train", "--tiny", "--train", data, "--out", str(tmp_path), "--iterations", "2"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, reports in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        assert main(argv) == 0
        assert ("trained fusion for 2 steps" in capsys.readouterr().out) is reports


def test_errors_exit_with_a_message(tmp_path, capsys):
    assert main(["train", "--tiny", "--print-config"]) == 1
    assert "no training data" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train_data": ["x"], "iterations": -1}))
    assert main(["train", "--config", str(bad)]) == 1
    assert "iterations" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.json")]) == 1
