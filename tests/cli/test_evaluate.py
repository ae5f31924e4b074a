"""``perceive evaluate``: Objects files in, table and JSON out; bad input; end to end."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from perceive.cli.main import main
from perceive.datasets.waymo.fixtures import make_frame
from perceive.evaluation import (
    FrameDetections,
    ground_truth_from_frames,
    read_objects,
    write_objects,
)


def _files(tmp_path):
    frames = [make_frame(0, num_boxes=6), make_frame(1, num_boxes=6)]
    gts = ground_truth_from_frames(frames)
    preds = []
    for g in gts:
        arr = g.boxes.to_array().astype(np.float64)
        arr[:, 0] += 0.05  # near-perfect boxes
        preds.append(
            FrameDetections.from_arrays(
                g.context_name, g.timestamp_us, arr, np.full(len(g), 0.8), g.boxes.type
            )
        )
    write_objects(tmp_path / "gt.bin", gts)
    write_objects(tmp_path / "pred.bin", preds)
    return gts, preds


def test_evaluate_objects_files_prints_table_and_writes_json(tmp_path, capsys):
    gts, _ = _files(tmp_path)
    out = tmp_path / "m" / "metrics.json"
    png = tmp_path / "pr.png"
    rc = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "pred.bin"),
            "--gt",
            str(tmp_path / "gt.bin"),
            "--json",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert (
        "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2" in text
        and "RANGE_TYPE_PEDESTRIAN_[30, 50)_LEVEL_1" in text
    )
    assert "mAPH L2" in text
    doc = json.loads(out.read_text())
    assert doc["sources"]["predictions"].endswith("pred.bin")
    kept = sum(int((g.boxes.num_lidar_points > 0).sum()) for g in gts)
    assert doc["num_ground_truth"] == kept
    aps = [b["ap"] for b in doc["breakdowns"].values() if b["num_ground_truth"] > 0]
    assert aps and all(ap == pytest.approx(1.0, abs=1e-6) for ap in aps)
    assert "curve" in doc["breakdowns"]["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_and_wrong_files_are_reported(tmp_path, capsys, fixture_segment):
    _files(tmp_path)
    rc = main(["evaluate", "--pred", str(tmp_path / "nope.bin"), "--gt", str(tmp_path / "gt.bin")])
    assert rc == 1
    assert "nope.bin" in capsys.readouterr().err
    rc = main(["evaluate", "--pred", str(tmp_path / "pred.bin"), "--gt", str(fixture_segment)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "fixture.tfrecord" in err and "not a serialized Waymo Objects" in err


def test_unwritable_outputs_are_refused_before_evaluating(tmp_path, capsys):
    _files(tmp_path)
    files = ["--pred", str(tmp_path / "pred.bin"), "--gt", str(tmp_path / "gt.bin")]
    rc = main(["evaluate", *files, "--json", str(tmp_path)])  # a folder
    err = capsys.readouterr()
    assert rc == 1 and "--json is a folder" in err.err and "Traceback" not in err.err
    assert "OBJECT_TYPE" not in err.out  # refused before the evaluation
    rc = main(["evaluate", *files, "--plot", str(tmp_path / "pred.bin" / "pr.png")])
    assert rc == 1 and "pred.bin is not a folder" in capsys.readouterr().err
    rc = main(["evaluate", *files, "--plot", str(tmp_path / "pr.jpg")])
    assert rc == 1 and "give a .png path" in capsys.readouterr().err


def test_an_os_error_is_one_line(tmp_path, capsys, monkeypatch):
    """Any OSError a command meets (here: writing the JSON) is one line, no traceback."""
    import perceive.io.atomic as atomic

    _files(tmp_path)

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(atomic, "atomic_write_bytes", refuse)
    files = ["--pred", str(tmp_path / "pred.bin"), "--gt", str(tmp_path / "gt.bin")]
    rc = main(["evaluate", *files, "--json", str(tmp_path / "m.json")])
    err = capsys.readouterr().err
    assert rc == 1 and "perceive evaluate: error: [Errno 13] Permission denied" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "nothing to evaluate"),
        (["--pred", "p.bin"], "--pred and --gt go together"),
        (["--checkpoint", "c.pt"], "--checkpoint and --data go together"),
        (["--pred", "p.bin", "--gt", "g.bin", "--data", "d"], "not both"),
    ],
)
def test_argument_combinations(argv, message, capsys):
    assert main(["evaluate", *argv]) == 1
    assert message in capsys.readouterr().err


def test_checkpoint_without_predict_module_fails_clearly(
    tmp_path, capsys, monkeypatch, fixture_segment
):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "perceive.training.predict", None)  # import fails
    rc = main(["evaluate", "--checkpoint", str(ckpt), "--data", str(fixture_segment)])
    assert rc == 1
    assert "predict_dataset" in capsys.readouterr().err
    rc = main(
        ["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(fixture_segment)]
    )
    assert rc == 1
    assert "none.pt" in capsys.readouterr().err


def test_checkpoint_end_to_end_with_a_stand_in_predictor(
    tmp_path, capsys, monkeypatch, fixture_segment
):
    # A stand-in for the model helper's predict_dataset: perfect predictions.
    from perceive.evaluation.dataset import load_ground_truth

    calls = []

    def predict_dataset(checkpoint, data_dir):
        calls.append((checkpoint, data_dir))
        return [
            FrameDetections.from_arrays(
                g.context_name, g.timestamp_us, g.boxes.to_array(), np.ones(len(g)), g.boxes.type
            )
            for g in load_ground_truth(data_dir)
        ]

    module = types.ModuleType("perceive.training.predict")
    module.predict_dataset = predict_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "perceive.training.predict", module)
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"x")
    rc = main(
        [
            "evaluate",
            "--checkpoint",
            str(ckpt),
            "--data",
            str(fixture_segment),
            "--save-pred",
            str(tmp_path / "p.bin"),
            "--save-gt",
            str(tmp_path / "g.bin"),
            "--json",
            str(tmp_path / "m.json"),
            "--no-curves",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert calls and calls[0][0] == ckpt
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["sources"]["checkpoint"] == str(ckpt)
    assert "curve" not in doc["breakdowns"]["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert len(read_objects(tmp_path / "g.bin")) == 2
    assert sum(len(f) for f in read_objects(tmp_path / "p.bin")) == sum(
        len(f) for f in read_objects(tmp_path / "g.bin")
    )


def test_box_errors_table(tmp_path, capsys):
    _files(tmp_path)
    argv = ["evaluate", "--pred", str(tmp_path / "pred.bin"), "--gt", str(tmp_path / "gt.bin")]
    assert main([*argv, "--box-errors"]) == 0
    text = capsys.readouterr().out
    assert "axis err" in text and "flipped" in text
    row = next(line for line in text.splitlines() if line.startswith("VEHICLE "))
    assert row.split()[2] == "0.00"  # the near-perfect boxes keep their heading
    assert main(argv) == 0
    assert "axis err" not in capsys.readouterr().out
