"""``perceive bench`` on a tiny exported model: a complete JSON report, a PNG, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perceive.cli.main import main


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.deploy.standin import export_standin

    return export_standin(tmp_path_factory.mktemp("cli_bench") / "tiny.onnx")


def test_bench_writes_complete_json_and_png(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, png = tmp_path / "report.json", tmp_path / "latency.png"
    rc = main(
        [
            "bench", str(model), "--small", "--frames", "2", "--iters", "3", "--warmup", "1",
            "--threads", "1", "--json", str(out), "--plot", str(png), "--quiet", "--profile",
        ]
    )  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "end-to-end" in text and "session creation" in text and str(out) in text
    d = json.loads(out.read_text())
    assert set(d) >= {
        "config",
        "environment",
        "model",
        "data",
        "main",
        "flops",
        "peak",
        "achieved",
        "created",
    }
    main_cell = d["main"]
    for key in (
        "session_creation_s",
        "first_inference_s",
        "throughput_fps",
        "peak_rss_mb",
        "cpu_cores_busy",
    ):
        assert isinstance(main_cell[key], float) and main_cell[key] > 0, key
    for stage in ("decode", "preprocess", "inference", "postprocess"):
        stats = main_cell["stages"][stage]
        assert set(stats) == {"count", "min", "mean", "std", "p50", "p90", "p95", "p99", "max"}
        assert stats["count"] == 3
    assert d["config"]["threads"] == 1 and d["config"]["timed_iters"] == 3
    assert d["environment"]["versions"]["onnxruntime"]
    assert d["flops"]["total_gflops"] > 0 and d["peak"]["gflops_per_s"] > 0
    ops = {row["op"] for row in d["profile"]["by_op"]}
    assert "Conv" in ops and d["profile"]["kernel_ms_per_run"] > 0
    assert sum(row["share"] for row in d["profile"]["by_op"]) <= 1.0 + 1e-9
    assert "operators (onnxruntime profiler" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--iters", "0"], "expected an integer >= 1"),
        (["--iters", "3", "--duration", "1"], "not allowed with argument"),
        (["--data", "x", "--synthetic"], "not allowed with argument"),
        (["--device", "gpu"], "invalid choice"),
        (["--precision", "int4"], "invalid choice"),
        (["--sweep-threads", "0,2"], "positive integers"),
        (["--sweep-precisions", "fp32,bf16"], "comma-separated list"),
        (["--duration", "-2"], "positive number of seconds"),
        (["--warmup", "x"], "expected an integer"),
    ],
)
def test_bad_arguments_exit_2(
    model: Path, args: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["bench", str(model), *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda m, t: [str(t / "missing.onnx")], "no such model file"),
        (lambda m, t: [str(m), "--plot", str(t / "x.jpg")], "give a .png path"),
        (lambda m, t: [str(m), "--compare-torch", str(t / "none.pt")], "no such checkpoint"),
        (lambda m, t: [str(m), "--data", str(t / "nowhere")], "no such file or folder"),
        (lambda m, t: [str(m), "--sweep", "--compare-torch", str(m)], "do not go together"),
        (lambda m, t: [str(m.with_suffix(".json"))], "must be an .onnx file"),
    ],
)
def test_bad_inputs_exit_1_with_a_message(
    model: Path, tmp_path: Path, make_args, message: str, capsys: pytest.CaptureFixture
) -> None:
    rc = main(["bench", *make_args(model, tmp_path), "--quiet"])
    assert rc == 1
    assert message in capsys.readouterr().err


def test_not_a_perceive_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00" * 10)
    rc = main(["bench", str(junk), "--small", "--frames", "1", "--iters", "1", "--quiet"])
    assert rc == 1
    assert "junk.onnx" in capsys.readouterr().err
