"""``perceive bench-loader`` and ``tools/bench_loader.py``: runs, prints, writes JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from perceive.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_bench_loader_on_a_segment(fixture_segment: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "b.json"
    rc = main(
        ["bench-loader", str(fixture_segment), "--frames", "2", "--repeat", "1", "--json", str(out)]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "frames/s" in text and "JPEG decode (5 images)" in text and "floor" in text
    figures = json.loads(out.read_text())
    assert figures["frames"] == 2 and figures["fps"] > 0
    assert figures["total_ms"] >= figures["lidar_ms"] > 0


def test_bench_loader_errors(tmp_path: Path, capsys) -> None:
    assert main(["bench-loader", str(tmp_path / "none.tfrecord"), "--frames", "1"]) == 1
    assert "none.tfrecord" in capsys.readouterr().err
    assert main(["bench-loader", "--frames", "0"]) == 1


def test_tool_script_help() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench_loader.py"), "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0 and "--frames" in out.stdout


def test_keep_freed_memory_flag_in_its_own_process(fixture_segment: Path, tmp_path: Path) -> None:
    """The allocator setting is process-wide: run it in a child, and see the report say so."""
    out = tmp_path / "b.json"
    args = ["bench-loader", str(fixture_segment), "--frames", "1", "--repeat", "1"]
    code = (
        "import sys; from perceive.cli.main import main; "
        f"sys.exit(main({[*args, '--json', str(out), '--keep-freed-memory']!r}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    glibc = sys.platform.startswith("linux")
    assert ("freed memory kept for reuse" in proc.stdout) == glibc
    assert json.loads(out.read_text())["kept_freed_memory"] == glibc


def test_outputs_are_checked_before_measuring(
    fixture_segment: Path, tmp_path: Path, capsys
) -> None:
    rc = main(["bench-loader", str(fixture_segment), "--frames", "1", "--json", str(tmp_path)])
    assert rc == 1 and "--json is a folder" in capsys.readouterr().err
