"""The conversion driver: resume after interruption, corrupt input, refusals, parallel jobs."""

from __future__ import annotations

import json
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


class SimulatedKillError(BaseException):
    """Stands for SIGKILL: no handler of the driver may turn it into a failed job."""


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


def _write_v1(path: Path, segment: int, frames: int = FRAMES) -> None:
    from perceive.datasets.waymo.v1_writer import write_segment

    from .conftest import segment_frames

    write_segment(path, segment_frames(segment, frames))


@pytest.mark.parametrize("interrupted", [False, True], ids=["finished", "interrupted"])
def test_a_changed_source_is_converted_again(tmp_path: Path, interrupted: bool) -> None:
    src = tmp_path / "src" / "x.tfrecord"
    src.parent.mkdir()
    _write_v1(src, 0)
    out = tmp_path / "out"
    if interrupted:
        with pytest.raises(SimulatedKillError):
            run_conversion(
                src.parent, "cache", out, progress_bar=False, on_frame=_interrupt_after(2)
            )
    else:
        run_conversion(src.parent, "cache", out, progress_bar=False)
    _write_v1(src, 5)  # the same file name, other frames
    if interrupted:  # and the redo is interrupted too: what it did not reach is still old
        with pytest.raises(SimulatedKillError):
            run_conversion(
                src.parent, "cache", out, progress_bar=False, on_frame=_interrupt_after(1)
            )
    s = run_conversion(src.parent, "cache", out, progress_bar=False)
    assert (s.converted, s.resumed) == (FRAMES, 0)
    assert {f.segment for f in CacheReader(out)} == {"seg5"}
    s = run_conversion(src.parent, "cache", out, progress_bar=False)  # unchanged now: resumed
    assert (s.converted, s.resumed) == (0, FRAMES)


def test_a_frame_error_other_than_bad_data_skips_in_one_process_too(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    root = tmp_path / "v2"
    shutil.copytree(sources["v2"], root)
    path = root / "training" / "lidar_box" / "seg0.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["[LiDARBoxComponent].box.heading"]), path)
    results = [
        run_conversion(root, "cache", tmp_path / f"o{w}", workers=w, progress_bar=False)
        for w in (1, 2)
    ]
    for s in results:
        assert s.frames == (SEGMENTS - 1) * FRAMES
        assert {(x.key, x.record) for x in s.skipped} == {("seg0", i) for i in range(FRAMES)}
        assert all("box.heading" in x.reason for x in s.skipped)


def test_open_time_errors_are_counted_once_over_frame_ranges(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    trunc, _ = _corrupt_copy(sources["v1"], tmp_path / "src")
    for workers in (1, 3):
        s = run_conversion(
            str(trunc), "cache", tmp_path / f"o{workers}", workers=workers, progress_bar=False
        )
        assert [(x.key, x.record) for x in s.skipped] == [("seg0", FRAMES - 1)]
        assert s.frames == FRAMES - 1


def test_keys_stay_unique_when_stems_and_folders_repeat(tmp_path: Path) -> None:
    for rel in ("a/x.tfrecord", "p/b_x.tfrecord", "q/b/x.tfrecord", "r/b/x.tfrecord"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_v1(tmp_path / rel, 0, frames=1)
    keys = [j.key for j in plan_jobs(str(tmp_path))]
    assert len(set(keys)) == 4, keys
    s = run_conversion(tmp_path, "cache", tmp_path.parent / "o", progress_bar=False)
    assert s.frames == 4 and not s.failed


def test_v2_segments_are_numbered_within_their_split(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    from perceive.convert.kitti import frame_id

    root = tmp_path / "v2"
    shutil.copytree(sources["v2"], root)
    for comp in (root / "training").iterdir():  # seg1 moves to the validation split
        (root / "validation" / comp.name).mkdir(parents=True)
        (comp / "seg1.parquet").rename(root / "validation" / comp.name / "seg1.parquet")
    jobs = plan_jobs(str(root))
    assert [(j.split, j.segment_index) for j in jobs] == [("training", 0), ("validation", 0)]
    run_conversion(root, "kitti", tmp_path / "k", progress_bar=False)
    val = (tmp_path / "k" / "ImageSets" / "val.txt").read_text().split()
    assert val == [f"1000{i:03d}" for i in range(FRAMES)]
    with pytest.raises(DataError, match="3-digit"):
        frame_id("testing", 1000, 0)


def test_kitti_ids_of_another_source_set_are_not_overwritten(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "k"
    run_conversion(str(sources["v1"] / "seg0.tfrecord"), "kitti", out, progress_bar=False)
    before = tree(out)
    with pytest.raises(DataError, match="holds frame 0 of segment 'seg0', not of 'seg1'"):
        run_conversion(str(sources["v1"] / "seg1.tfrecord"), "kitti", out, progress_bar=False)
    assert tree(out) == before


def test_the_index_keeps_segments_of_earlier_runs(sources: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "c"
    seg0, seg1 = (str(sources["v1"] / f"seg{i}.tfrecord") for i in range(2))
    run_conversion(seg0, "cache", out, workers=3, progress_bar=False)  # in frame ranges
    run_conversion(seg0, "cache", out, progress_bar=False)  # and again as one job
    run_conversion(seg1, "cache", out, progress_bar=False)  # another source
    reader = CacheReader(out)
    assert len(reader) == SEGMENTS * FRAMES  # each frame once
    assert sorted({f.segment for f in reader}) == ["seg0", "seg1"]
    run_conversion(seg1, "pcd", tmp_path / "p", progress_bar=False)
    run_conversion(seg0, "pcd", tmp_path / "p", progress_bar=False)
    index = json.loads((tmp_path / "p" / "index.json").read_text())
    assert sorted(s["key"] for s in index["segments"]) == ["seg0", "seg1"]
