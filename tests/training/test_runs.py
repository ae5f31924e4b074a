"""Reading and comparing training runs' evaluation logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceive.errors import DataError, MissingFileError
from perceive.training.runs import (
    load_groups,
    load_run,
    markdown_table,
    per_run_table,
    save_comparison_figure,
)


def _eval(step: int, aph: dict[str, float]) -> dict:
    ev = {f"{c}_L2": {"ap": v + 0.1, "aph": v, "num_ground_truth": 5} for c, v in aph.items()}
    lead = [aph[c] for c in ("VEHICLE", "PEDESTRIAN", "CYCLIST")]
    return {"step": step, "eval": {"mean_aph_l2": sum(lead) / 3, **ev}}


def _run(tmp_path: Path, name: str, records: list[dict]) -> Path:
    d = tmp_path / name
    d.mkdir()
    lines = [json.dumps({"step": 20, "loss": 1.0})] + [json.dumps(r) for r in records]
    (d / "log.jsonl").write_text("\n".join(lines) + "\n")
    return d


def test_load_run_orders_history_and_keeps_last_record_of_a_step(tmp_path: Path) -> None:
    a = {"VEHICLE": 0.1, "PEDESTRIAN": 0.2, "CYCLIST": 0.3, "SIGN": 0.0}
    b = {"VEHICLE": 0.4, "PEDESTRIAN": 0.5, "CYCLIST": 0.6, "SIGN": 0.0}
    c = {"VEHICLE": 0.7, "PEDESTRIAN": 0.8, "CYCLIST": 0.9, "SIGN": 0.0}
    run = load_run(_run(tmp_path, "r", [_eval(200, b), _eval(100, a), _eval(200, c)]))
    assert [p.step for p in run.history] == [100, 200]
    assert run.final.aph["CYCLIST"] == pytest.approx(0.9)  # the resumed record wins
    assert run.final.ap["VEHICLE"] == pytest.approx(0.8)
    assert run.final.mean_aph_l2 == pytest.approx(0.8)


def test_group_table_reports_mean_and_range_over_runs(tmp_path: Path) -> None:
    lo = {"VEHICLE": 0.1, "PEDESTRIAN": 0.1, "CYCLIST": 0.1, "SIGN": 0.0}
    hi = {"VEHICLE": 0.3, "PEDESTRIAN": 0.3, "CYCLIST": 0.3, "SIGN": 0.0}
    results = load_groups(
        {
            "fusion": [
                _run(tmp_path, "f0", [_eval(10, lo)]),
                _run(tmp_path, "f1", [_eval(10, hi)]),
            ],
            "lidar": [_run(tmp_path, "l0", [_eval(10, lo)])],
        }
    )
    table = markdown_table(results).splitlines()
    assert table[0].split(" | ")[2:6] == ["VEHICLE", "PEDESTRIAN", "CYCLIST", "SIGN"]
    fusion = table[2]
    assert "0.200 (0.300)" in fusion and "[0.100, 0.300]" in fusion
    assert "[" not in table[3]  # one run: no range
    rows = per_run_table(results).splitlines()
    assert len(rows) == 2 + 3 and "f1" in rows[3]


def test_figure_is_written(tmp_path: Path) -> None:
    v = {"VEHICLE": 0.1, "PEDESTRIAN": 0.2, "CYCLIST": 0.3, "SIGN": 0.0}
    results = load_groups({"fusion": [_run(tmp_path, "f", [_eval(1, v), _eval(2, v)])]})
    out = save_comparison_figure(results, tmp_path / "cmp.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_runs_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError):
        load_run(tmp_path)
    no_eval = _run(tmp_path, "none", [])
    with pytest.raises(DataError, match="no evaluation records"):
        load_run(no_eval)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "log.jsonl").write_text('{"step": 1, "eval": {"mean_aph_l2": 0.1}}\n{oops\n')
    with pytest.raises(DataError, match="line 2") as e:
        load_run(broken)
    assert str(broken / "log.jsonl") in str(e.value)
    (broken / "log.jsonl").write_text('{"step": 1, "eval": {"VEHICLE_L2": {"ap": 0.1}}}\n')
    with pytest.raises(DataError, match="line 1"):
        load_run(broken)
    with pytest.raises(ValueError, match="no runs"):
        load_groups({"x": []})


def test_held_out_metrics_file_replaces_the_final_point(tmp_path: Path) -> None:
    v = {"VEHICLE": 0.1, "PEDESTRIAN": 0.2, "CYCLIST": 0.3, "SIGN": 0.0}
    run = _run(tmp_path, "r", [_eval(50, v)])
    doc = {
        "mean_aph_l2": 0.5,
        "breakdowns": {
            "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1": {"ap": 0.9, "aph": 0.9},
            "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2": {"ap": 0.7, "aph": 0.6},
            "RANGE_TYPE_VEHICLE_[0, 30)_LEVEL_2": {"ap": 0.2, "aph": 0.2},
        },
    }
    (run / "test.json").write_text(json.dumps(doc))
    result = load_run(run, "test.json")
    assert result.final.aph == {"VEHICLE": pytest.approx(0.6)}
    assert result.final.step == 50 and result.history[-1].aph["CYCLIST"] == pytest.approx(0.3)
    with pytest.raises(MissingFileError):
        load_run(run, "absent.json")
    (run / "bad.json").write_text(json.dumps({"mean_aph_l2": 0.1, "breakdowns": {}}))
    with pytest.raises(DataError, match="LEVEL_2"):
        load_run(run, "bad.json")
