"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and a job killed mid-write leaves the
old file (or no file) behind, never a truncated one. The data is flushed to disk before
the rename and the folder after it, so a file that a finished write named survives a
power loss too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The process umask, read once at import (reading it means setting it; not thread-safe).
_UMASK = _read_umask()


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file (0o666 less the umask); ``mkstemp`` gives 0o600."""
    return 0o666 & ~_UMASK


def fsync_path(path: str | Path) -> None:
    """Flush a file's data, or a folder's entries (a rename into it), to disk.

    Folders are flushed on POSIX systems only (Windows cannot open one to flush it).
    """
    path = Path(path)
    if path.is_dir() and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: str | Path, path: str | Path) -> None:
    """Rename a complete, flushed ``tmp`` onto ``path`` and flush the folder's entry."""
    os.replace(tmp, path)
    fsync_path(Path(path).parent)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it onto ``path``.

    Args:
        path: the final file path. Its parent directory is created if missing.
        mode: ``"wb"`` or ``"w"``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, default_file_mode())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        replace_durably(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def check_output_file(path: str | Path, what: str = "output", suffix: str | None = None) -> Path:
    """Check, before long work, that a file can be written at ``path`` later.

    The path must have ``suffix`` (when given, e.g. ``".png"``), must not be a folder, and
    its nearest existing ancestor must be a writable folder (missing folders are created by
    the atomic writers).

    Raises:
        ConfigError: another suffix.
        NotAFileError: ``path`` is a folder.
        InputPathError: an ancestor is a file, or the folder is not writable.
    """
    from perceive.errors import ConfigError, InputPathError, NotAFileError

    path = Path(path)
    if suffix is not None and path.suffix.lower() != suffix:
        kind = suffix.lstrip(".").upper()
        raise ConfigError(f"{what} writes a {kind}: give a {suffix} path, got {path}")
    if path.is_dir():
        raise NotAFileError(f"{what} is a folder; give a file name", path=path)
    parent = path.parent.absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputPathError(f"{what} cannot be written: {parent} is not a folder", path=path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputPathError(f"{what} cannot be written: {parent} is not writable", path=path)
    # os.access says yes to root everywhere (and knows nothing of read-only mounts or
    # pseudo file systems): make and remove a file there to be sure
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".perceive-check-"):
            pass
    except OSError as e:
        raise InputPathError(
            f"{what} cannot be written: no file can be created in {parent} ({e.strerror})",
            path=path,
        ) from None
    return path


def remove_stale_temporaries(out: str | Path) -> int:
    """Delete temporary files that killed writers left behind; returns how many.

    Atomic writes go to hidden ``.<name>.<random>.tmp[.<suffix>]`` files that are renamed
    when complete; a process killed mid-write (SIGKILL, power loss) leaves one behind.
    Call this only when nothing else is writing to ``out`` (``perceive convert`` and
    ``perceive synth`` call it when they finish).
    """
    n = 0
    for p in Path(out).rglob(".*"):
        if p.is_file() and ".tmp" in p.name:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                n += 1
    return n
