"""The conversion driver: resume after interruption, corrupt input, refusals, parallel jobs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from perceive.convert.cache import CacheReader
from perceive.convert.runner import (
    ConvertSpec,
    convert_segment,
    finalize,
    plan_jobs,
    prepare_output,
    run_conversion,
)
from perceive.errors import DataError

from .conftest import FRAMES, SEGMENTS, tree


class SimulatedKillError(Exception):
    pass


def _interrupt_after(k: int):
    seen = [0]

    def on_frame(n: int) -> None:
        seen[0] += n
        if seen[0] >= k:
            raise SimulatedKillError

    return on_frame


@pytest.fixture(scope="module")
def reference(
    sources: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, bytes]]:
    """Uninterrupted conversions, file by file."""
    out = {}
    for fmt in ("cache", "kitti"):
        d = tmp_path_factory.mktemp("ref") / fmt
        run_conversion(sources["v1"], fmt, d, progress_bar=False)
        out[fmt] = tree(d)
    return out


@pytest.mark.parametrize("fmt", ["cache", "kitti"])
@pytest.mark.parametrize("k", [1, 4])
def test_interrupted_run_resumes_to_the_same_result(
    sources: dict[str, Path], reference: dict, tmp_path: Path, fmt: str, k: int
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SimulatedKillError):
        run_conversion(sources["v1"], fmt, out, progress_bar=False, on_frame=_interrupt_after(k))
    assert not (out / ("index.json" if fmt == "cache" else "ImageSets")).exists()
    s = run_conversion(sources["v1"], fmt, out, progress_bar=False)
    assert s.resumed == k and s.converted == SEGMENTS * FRAMES - k
    assert tree(out) == reference[fmt]
    again = run_conversion(sources["v1"], fmt, out, progress_bar=False)  # all done: reads nothing
    assert again.converted == 0 and again.resumed == SEGMENTS * FRAMES
    assert tree(out) == reference[fmt]


def test_interrupted_parallel_run_resumes(
    sources: dict[str, Path], reference: dict, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(SimulatedKillError):
        run_conversion(
            sources["v1"], "cache", out, workers=2, progress_bar=False, on_frame=_interrupt_after(2)
        )
    s = run_conversion(sources["v1"], "cache", out, workers=2, progress_bar=False)
    assert s.frames == SEGMENTS * FRAMES and s.converted + s.resumed == SEGMENTS * FRAMES
    assert tree(out) == reference["cache"]


def test_killed_process_resumes(sources: dict[str, Path], reference: dict, tmp_path: Path) -> None:
    """SIGKILL the command after its first frame file appears, then run it again."""
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "perceive.cli.main",
        "convert",
        str(sources["v1"]),
        "--to",
        "cache",
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if list(out.glob("frames/*/*.pcf")):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert tree(out) == reference["cache"]


def _corrupt_copy(src: Path, dst: Path) -> tuple[Path, Path]:
    shutil.copytree(src, dst)
    trunc = dst / "seg0.tfrecord"
    data = trunc.read_bytes()
    trunc.write_bytes(data[: len(data) - 200])  # last record cut short
    bad = dst / "seg1.tfrecord"
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flips a byte inside record 1's data: its CRC fails
    bad.write_bytes(bytes(data))
    return trunc, bad


def test_corrupt_segments_are_reported_and_skipped(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    _corrupt_copy(sources["v1"], tmp_path / "src")
    (tmp_path / "src" / "junk.tfrecord").write_bytes(b"this is not a tfrecord file at all" * 10)
    s = run_conversion(tmp_path / "src", "cache", tmp_path / "out", progress_bar=False)
    assert s.frames == 2 * FRAMES - 2
    reasons = {(x.key, x.record): x.reason for x in s.skipped}
    assert ("seg0", FRAMES - 1) in reasons and "past the end" in reasons[("seg0", FRAMES - 1)]
    assert any(k == "seg1" and "CRC" in r for (k, _), r in reasons.items())
    assert ("junk", 0) in reasons and "CRC" in reasons[("junk", 0)]  # not a TFRecord file
    text = s.format_text()
    assert "skipped records 3" in text and "seg0 record 2" in text
    assert len(CacheReader(tmp_path / "out")) == s.frames
    with pytest.raises(DataError):
        run_conversion(
            tmp_path / "src", "cache", tmp_path / "strict", strict=True, progress_bar=False
        )


def test_output_folder_refusals(sources: dict[str, Path], tmp_path: Path) -> None:
    run_conversion(sources["v1"], "kitti", tmp_path / "k", progress_bar=False)
    with pytest.raises(DataError, match="kitti"):
        run_conversion(sources["v1"], "cache", tmp_path / "k", progress_bar=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        run_conversion(sources["v1"], "pcd", tmp_path / "other", progress_bar=False)
    assert (tmp_path / "other" / "precious.txt").read_text() == "keep me"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "PERCEIVE_FORMAT.json").write_text('{"format": "cache", "version": 0}')
    with pytest.raises(DataError, match="version 0"):
        prepare_output(tmp_path / "old", "cache", 1)


def test_split_jobs_give_the_same_result(
    sources: dict[str, Path], reference: dict, tmp_path: Path
) -> None:
    one = plan_jobs(str(sources["v1"] / "seg0.tfrecord"), workers=3)
    assert [(j.start, j.stop) for j in one] == [(0, 1), (1, 2), (2, None)]
    s = run_conversion(
        [str(sources["v1"] / "seg*.tfrecord")],
        "cache",
        tmp_path / "o",
        workers=4,
        progress_bar=False,
    )
    assert s.frames == SEGMENTS * FRAMES
    assert tree(tmp_path / "o") == reference["cache"]


def test_jobs_run_by_any_executor(
    sources: dict[str, Path], reference: dict, tmp_path: Path
) -> None:
    """The local path of the Ray/Dask recipe: map convert_segment over jobs, then finalize."""
    out = tmp_path / "o"
    spec = ConvertSpec("cache", str(out))
    jobs = plan_jobs(str(sources["v1"]))
    prepare_output(out, "cache", 1)
    with ThreadPoolExecutor(2) as ex:
        results = list(ex.map(lambda j: convert_segment(j, spec), jobs))
    assert sum(len(r.frames) for r in results) == SEGMENTS * FRAMES
    finalize(spec, jobs)
    assert tree(out) == reference["cache"]
