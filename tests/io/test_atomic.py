"""Atomic writes: all or nothing, no temporary files left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceive.io.atomic import atomic_open, atomic_write_bytes, atomic_write_text


def test_write_bytes_and_text_create_parents(tmp_path: Path) -> None:
    p = tmp_path / "a" / "b" / "file.bin"
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    t = tmp_path / "c" / "note.txt"
    atomic_write_text(t, "héllo\n")
    assert t.read_bytes() == "héllo\n".encode()


def test_overwrite_replaces_content(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    atomic_write_text(p, "first version, longer")
    atomic_write_text(p, "second")
    assert p.read_text() == "second"


def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "f.txt"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_open(p, "w") as f:
        f.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]


def test_failure_without_old_file_leaves_nothing(tmp_path: Path) -> None:
    p = tmp_path / "new.bin"
    with pytest.raises(KeyboardInterrupt), atomic_open(p) as f:
        f.write(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_temp_file_is_beside_target_until_rename(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    with atomic_open(p) as f:
        f.write(b"data")
        assert not p.exists()
        temps = [x.name for x in tmp_path.iterdir()]
        assert len(temps) == 1 and temps[0].startswith(".f.bin.") and temps[0].endswith(".tmp")
    assert p.read_bytes() == b"data"
    assert [x.name for x in tmp_path.iterdir()] == ["f.bin"]


@pytest.mark.parametrize("mode", ["a", "r", "rb", "w+"])
def test_rejects_other_modes(tmp_path: Path, mode: str) -> None:
    with pytest.raises(ValueError), atomic_open(tmp_path / "x", mode):
        pass


def test_file_mode_follows_umask(tmp_path: Path) -> None:
    import os

    p = tmp_path / "f.txt"
    atomic_write_text(p, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def test_check_output_file(tmp_path: Path) -> None:
    from perceive.errors import InputPathError, NotAFileError
    from perceive.io.atomic import check_output_file

    assert check_output_file(tmp_path / "new" / "deeper" / "x.json") == (
        tmp_path / "new" / "deeper" / "x.json"
    )
    with pytest.raises(NotAFileError, match="is a folder"):
        check_output_file(tmp_path, "--json")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputPathError, match="is not a folder"):
        check_output_file(tmp_path / "f" / "x.json")


def record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Patch os.fsync to record (path, exists-as-named-then) of every flushed descriptor."""
    import os

    seen: list[tuple[str, bool]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        seen.append((target, Path(target).is_dir()))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name descriptors")
def test_data_is_flushed_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_fsyncs(monkeypatch)
    atomic_write_bytes(tmp_path / "sub" / "a.bin", b"abc")
    assert len(seen) == 2
    (tmp_file, file_is_dir), (folder, folder_is_dir) = seen
    # the temporary (not yet renamed), then the folder that holds the new name
    assert Path(tmp_file).name.startswith(".a.bin.") and not file_is_dir
    assert folder == str(tmp_path / "sub") and folder_is_dir


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_output_check_creates_a_file_where_permissions_say_nothing() -> None:
    # /proc takes no new files, whatever os.access says (it says yes to root)
    from perceive.errors import InputPathError
    from perceive.io.atomic import check_output_file

    with pytest.raises(InputPathError, match=r"no file can be created in /proc"):
        check_output_file("/proc/perceive-check.png", "plot", ".png")
