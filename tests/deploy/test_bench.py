"""The latency benchmark: statistics, FLOP counting, the loop, the torch comparison, the sweep."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from perceive.deploy import bench
from perceive.deploy.bench import (
    BenchConfig,
    FrameSource,
    LatencyStats,
    count_flops,
    format_report,
    matmul_probe,
    plot_report,
    run_benchmark,
    synthetic_frame,
    write_json,
)
from perceive.deploy.runner import ModelInputs
from perceive.errors import ConfigError, PerceiveError
from tests.deploy import standin


def _cfg(model: Path, tmp_path: Path, **kw) -> BenchConfig:
    kw.setdefault("iters", 4)
    kw.setdefault("warmup", 1)
    kw.setdefault("threads", 1)
    kw.setdefault("num_frames", 2)
    kw.setdefault("frame_size", "small")
    kw.setdefault("probe", False)
    return BenchConfig(model=str(model), variant_dir=str(tmp_path / "variants"), **kw)


def test_latency_stats_by_definition() -> None:
    s = LatencyStats.of([i * 1e-3 for i in range(1, 101)])  # 1 .. 100 ms
    assert (s.count, s.min, s.max) == (100, 1.0, 100.0)
    assert s.mean == pytest.approx(50.5) and s.p50 == pytest.approx(50.5)
    assert s.p90 == pytest.approx(90.1) and s.p99 == pytest.approx(99.01)
    assert math.isnan(LatencyStats.of([]).mean)


def test_count_flops_of_a_known_graph(tmp_path: Path) -> None:
    n = 10
    w = helper.make_tensor("w", TensorProto.FLOAT, [5, 7], np.ones(35, np.float32))
    k = helper.make_tensor("k", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))
    nodes = [
        helper.make_node("MatMul", ["points", "w"], ["feat"]),  # (10, 7): 2*10*7*5 = 700
        helper.make_node("Relu", ["feat"], ["act"]),  # 70 elementwise
        helper.make_node("Cast", ["images"], ["imf"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["imf"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "k"], ["conv"], pads=[1, 1, 1, 1]),  # (1,4,8,8): 2*256*27
        helper.make_node("Add", ["intrinsics", "intrinsics"], ["i2"]),  # 9 elementwise
        helper.make_node("Identity", ["extrinsics"], ["e2"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("points", TensorProto.FLOAT, ["N", 5]),
            helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 8, 8, 3]),
            helper.make_tensor_value_info("intrinsics", TensorProto.FLOAT, [1, 9]),
            helper.make_tensor_value_info("extrinsics", TensorProto.FLOAT, [1, 4, 4]),
        ],
        [
            helper.make_tensor_value_info(v, TensorProto.FLOAT, None)
            for v in ("act", "conv", "i2", "e2")
        ],
        [w, k],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    inputs = ModelInputs(
        np.zeros((n, 5), np.float32),
        np.zeros((1, 8, 8, 3), np.uint8),
        np.zeros((1, 9), np.float32),
        np.zeros((1, 4, 4), np.float32),
    )
    fl = count_flops(path, inputs)
    assert fl.dense_gflops * 1e9 == pytest.approx(700 + 2 * 256 * 27)
    assert fl.other_gflops * 1e9 == pytest.approx(70 + 9)
    assert fl.by_op["Conv"] * 1e9 == pytest.approx(2 * 256 * 27) and fl.num_points == n
    assert fl.total_gflops == pytest.approx(fl.dense_gflops + fl.other_gflops)


def test_matmul_probe_keeps_the_best_size() -> None:
    p = matmul_probe("cpu", 1, sizes=(64, 128), seconds=0.05)
    assert set(p["gflops_per_s_by_size"]) == {"64", "128"} and p["runs"] >= 3
    assert p["gflops_per_s"] == max(p["gflops_per_s_by_size"].values()) > 0
    assert p["gflops_per_s_by_size"][str(p["size"])] == p["gflops_per_s"]
    assert p["device"] == "CPUExecutionProvider"


def test_config_checks() -> None:
    with pytest.raises(ConfigError, match="not both"):
        BenchConfig(model="m.onnx", iters=3, duration_s=1.0)
    with pytest.raises(ConfigError, match="device"):
        BenchConfig(model="m.onnx", device="gpu")
    with pytest.raises(ConfigError, match="precision"):
        BenchConfig(model="m.onnx", precision="int4")
    with pytest.raises(ConfigError, match="iters"):
        BenchConfig(model="m.onnx", iters=0)
    with pytest.raises(ConfigError, match="sweep"):
        BenchConfig(model="m.onnx", sweep=True, compare_torch="x.pt")
    assert BenchConfig(model="m.onnx").timed_iters == 50
    assert BenchConfig(model="m.onnx", duration_s=2.0).timed_iters is None


def test_frame_sources(fixture_segment: Path, tmp_path: Path) -> None:
    src = FrameSource(fixture_segment, num_frames=10)
    assert len(src) == 2 and src.load(3).timestamp_us == src.load(1).timestamp_us
    folder = FrameSource(fixture_segment.parent, num_frames=1)
    assert len(folder) == 1
    with pytest.raises(FileNotFoundError):
        FrameSource(tmp_path / "missing", 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match=r"no \.tfrecord"):
        FrameSource(tmp_path / "empty", 1)
    (tmp_path / "empty" / "PERCEIVE_FORMAT.json").write_text('{"format": "cache"}')
    with pytest.raises(Exception, match=r"the \.tfrecord files it was converted from"):
        FrameSource(tmp_path / "empty", 1)


def test_synthetic_waymo_frame_is_waymo_sized() -> None:
    f = synthetic_frame(3, "waymo")
    assert (f.cameras["FRONT"].width, f.cameras["FRONT"].height) == (1920, 1280)
    assert f.images["SIDE_LEFT"].shape == (886, 1920, 3)
    assert 150_000 < len(f.point_cloud()) < 250_000
    assert 50_000 < len(f.image_bytes["FRONT"]) < 1_500_000  # photo-like JPEG, not noise


@pytest.fixture(scope="module")
def report(standin_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> bench.BenchReport:
    tmp = tmp_path_factory.mktemp("bench")
    return run_benchmark(_cfg(standin_onnx, tmp, probe=True))


def test_report_is_complete(report: bench.BenchReport, tmp_path: Path) -> None:
    main = report.main
    assert main.ok and main.device == "cpu" and main.iterations == 4
    assert main.session_creation_s > 0 and 0 < main.first_inference_s < main.first_call_s
    # every stage's samples are in the report, and its statistics are theirs
    for stage, values in main.stage_samples_ms.items():
        assert LatencyStats.of([v / 1e3 for v in values]) == pytest.approx(main.stages[stage])
    assert main.throughput_fps == pytest.approx(1e3 / main.total.mean)
    for stage in ("decode", "preprocess", "inference", "postprocess", "decode.points"):
        assert main.stages[stage].count == 4 and main.stages[stage].min > 0
    st = main.total
    assert st.min <= st.p50 <= st.p90 <= st.p95 <= st.p99 <= st.max
    total_means = sum(main.stages[s].mean for s in bench.STAGES)
    assert st.mean == pytest.approx(total_means, rel=1e-6)
    assert main.throughput_fps > 0 and main.peak_rss_mb > 0 and main.cpu_cores_busy > 0
    assert report.flops is not None and report.flops.dense_gflops > 0
    assert report.peak["gflops_per_s"] > 0 and report.achieved["fraction_of_peak"] > 0
    env = report.environment
    assert env["cpu_logical_cores"] >= 1 and env["versions"]["onnxruntime"] and env["cpu_model"]
    if "CUDAExecutionProvider" not in env["onnxruntime_providers"]:
        assert "no GPU provider" in report.gpu_message
    text = format_report(report)
    for word in (
        "session creation",
        "p99",
        "end-to-end",
        "throughput",
        "GFLOP",
        "machine:",
        "versions:",
        "the whole first call",
        "1 / mean end-to-end",
        "4 samples: percentiles interpolate",
    ):
        assert word in text
    out = write_json(report, tmp_path / "r.json")
    d = json.loads(out.read_text())
    json.dumps(d, allow_nan=False)  # NaN written as null
    assert d["main"]["total"]["p95"] == pytest.approx(st.p95)
    assert len(d["main"]["samples_ms"]) == 4
    png = plot_report(report, tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_duration_mode_and_data_file(
    standin_onnx: Path, fixture_segment: Path, tmp_path: Path
) -> None:
    cfg = _cfg(
        standin_onnx, tmp_path, iters=None, duration_s=0.3, data=str(fixture_segment), flops=False
    )
    r = run_benchmark(cfg)
    assert r.main.iterations >= 1 and r.main.wall_s >= 0.3
    assert "fixture.tfrecord" in r.data["source"] and r.data["frames"] == 2


def test_sweep_grid_with_unavailable_gpu(standin_onnx: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a GPU provider is installed")
    cfg = _cfg(
        standin_onnx,
        tmp_path,
        iters=2,
        sweep=True,
        sweep_threads=(1, 2),
        sweep_precisions=("fp32", "int8"),
        sweep_devices=("cpu", "cuda"),
        flops=False,
    )
    r = run_benchmark(cfg)
    cells = [(c.device_requested, c.precision, c.threads, c.ok) for c in r.sweep]
    assert cells == [
        ("cpu", "fp32", 1, True),
        ("cpu", "fp32", 2, True),
        ("cpu", "int8", 1, True),
        ("cpu", "int8", 2, True),
        ("cuda", "fp32", 1, False),
        ("cuda", "int8", 1, False),
    ]
    assert Path(r.sweep[2].model_path).name == "standin.int8.onnx"
    table = bench.format_sweep(r.sweep)
    assert table.count("\n") == 7 and "not run" in table
    assert [c.device for c in r.sweep if not c.ok] == ["none", "none"]
    assert "the sweep's cuda rows were not run" in r.gpu_message
    assert r.sweep[2].calibration.startswith("INT8 scales from the first 2 of 2 generated")


def test_sweep_of_missing_gpus_only_is_a_clear_error(standin_onnx: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("a GPU provider is installed")
    cfg = _cfg(standin_onnx, tmp_path, sweep=True, sweep_devices=("cuda", "tensorrt"))
    with pytest.raises(PerceiveError, match=r"no setting of the sweep could run: no CUDA.*cpu"):
        run_benchmark(cfg)


def test_tensorrt_fp16_without_tensorrt_reports_what_ran(
    standin_onnx: Path, tmp_path: Path
) -> None:
    import onnxruntime as ort

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("TensorRT is installed")
    r = run_benchmark(_cfg(standin_onnx, tmp_path, device="tensorrt", precision="fp16"))
    assert (r.main.precision, r.main.precision_requested) == ("fp32", "fp16")
    assert "precision fp32 (fp16 requested)" in format_report(r)


def test_compare_torch_interleaves_the_same_inputs(
    standin_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stand-in's PyTorch module has the exported graph's weights (same seed).
    monkeypatch.setattr(bench, "_torch_model", lambda path, device="cpu": standin.StandIn(0).eval())
    monkeypatch.setattr(bench, "check_same_model", lambda *a: None)  # no DetectorConfig
    timed_torch = bench._timed_torch

    def slow_torch(model, inputs):  # 0.5 s of wall time and no CPU in every PyTorch step
        time.sleep(0.5)
        return timed_torch(model, inputs)

    monkeypatch.setattr(bench, "_timed_torch", slow_torch)
    ckpt = tmp_path / "fake.pt"
    ckpt.write_bytes(b"")
    r = run_benchmark(_cfg(standin_onnx, tmp_path, iters=4, compare_torch=str(ckpt), flops=False))
    t = r.torch
    assert t is not None and t.inference.count == 4 and len(t.samples_ms) == 4
    # CPU use is that of the onnxruntime loop alone: the PyTorch steps' 2 s of sleep would
    # bring it below 0.05 cores if they counted (the loop's own steps take milliseconds);
    # 0.15 leaves room for a machine busy with other work.
    assert r.main.cpu_cores_busy > 0.15 and r.main.cpu_percent_of_machine > 0
    assert t.speedup_p50 == pytest.approx(t.inference.p50 / r.main.stages["inference"].p50)
    assert t.max_score_diff < 1e-4  # same weights, same inputs
    assert t.gflops_by_flop_counter is not None and t.gflops_by_flop_counter > 0
    assert "speed-up" in format_report(r)


def test_compare_torch_without_model_code_is_a_clear_error(
    standin_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "perceive.training.checkpoint":
            raise ImportError("no module named perceive.training.checkpoint")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(Exception, match="--compare-torch needs the PyTorch model code"):
        bench._torch_model("x.pt")


@pytest.mark.slow
def test_compare_torch_with_a_real_checkpoint(
    tiny_real_model: tuple[Path, Path], tmp_path: Path
) -> None:
    onnx_path, ckpt = tiny_real_model
    r = run_benchmark(_cfg(onnx_path, tmp_path, iters=4, compare_torch=str(ckpt), flops=True))
    assert r.torch is not None and r.torch.max_score_diff < 1e-4
    assert r.torch.speedup_p50 > 0 and r.torch.threads == 1
    # the graph count and torch's FlopCounter see the same dense work (within what each counts)
    assert r.flops.dense_gflops > 0 and r.torch.gflops_by_flop_counter > 0


def test_compare_torch_refuses_another_model(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from perceive.models.config import tiny_config

    config = tiny_config()
    info = SimpleNamespace(
        path="m.onnx",
        variant=config.variant,
        class_names=tuple(config.class_names),
        cameras=tuple(config.camera.cameras),
        image_size=tuple(config.camera.image_size),
        point_features=tuple(config.pillars.point_features),
        max_points=config.pillars.max_points,
        point_range=tuple(config.grid.point_cloud_range),
    )
    model = SimpleNamespace(config=config)
    bench.check_same_model(model, info, "c.pt")  # the same model: fine
    other = SimpleNamespace(**{**vars(info), "cameras": ("FRONT",), "max_points": 7})
    with pytest.raises(
        ConfigError, match=r"c\.pt is not the model of m\.onnx: cameras .*max_points"
    ):
        bench.check_same_model(model, other, "c.pt")


def test_a_large_score_difference_is_flagged(report: bench.BenchReport) -> None:
    from dataclasses import replace

    t = bench.TorchComparison(
        checkpoint="c.pt",
        threads=1,
        inference=report.main.stages["inference"],
        onnx_inference=report.main.stages["inference"],
        speedup_p50=1.0,
        speedup_mean=1.0,
        end_to_end_speedup=1.0,
        max_score_diff=float("inf"),
    )
    assert "WARNING: scores differ" in format_report(replace(report, torch=t))
    t = replace(t, max_score_diff=1e-6)
    assert "WARNING" not in format_report(replace(report, torch=t))


@pytest.mark.parametrize("runs", [1, 3])
def test_profile_counts_the_timed_runs_only(standin_onnx: Path, runs: int) -> None:
    from perceive.deploy.quantize import generated_frames
    from perceive.deploy.runner import Detector

    det = Detector(standin_onnx)
    inputs = det.prepare(*det.inputs_from_frame(generated_frames(1)[0]))
    p = bench.profile_ops(standin_onnx, inputs, threads=1, runs=runs, top=1000)
    assert p["runs"] == runs  # the warm-up run is not one of them
    assert sum(r["ms"] for r in p["by_op"]) == pytest.approx(p["kernel_ms_per_run"])
