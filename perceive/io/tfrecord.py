"""TFRecord files: streaming reading, random access through an offset index, writing.

A record is ``uint64 length`` (little-endian), ``uint32 masked_crc32c(length bytes)``,
``length`` bytes of data, ``uint32 masked_crc32c(data)``. CRC-32C is computed by the
``google-crc32c`` package (hardware accelerated where the CPU has it).
"""

from __future__ import annotations

import contextlib
import operator
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import google_crc32c
import numpy as np

from perceive.errors import (
    CorruptRecordError,
    DataError,
    MissingFileError,
    NotAFileError,
    TruncatedRecordError,
)
from perceive.io.atomic import atomic_open

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
#: Records longer than this are taken as a corrupt length (a Waymo frame is a few MB).
MAX_RECORD_BYTES = 1 << 31


def masked_crc32c(data: bytes | memoryview) -> int:
    """The TFRecord checksum of ``data``: CRC-32C, rotated right by 15 bits, plus a constant."""
    crc = google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class RecordSpan:
    """Where a record's data lies in its file."""

    index: int
    """0-based record index."""
    offset: int
    """Byte offset of the record header."""
    length: int
    """Length of the record data, bytes."""

    @property
    def data_offset(self) -> int:
        """Byte offset of the data (after the 12-byte header)."""
        return self.offset + _HEADER.size


def _check_file(path: Path) -> None:
    """Raise our error for a missing path or a directory (before ``open`` does, vaguely)."""
    if not path.exists():
        raise MissingFileError("no such TFRecord file", path=path)
    if not path.is_file():
        raise NotAFileError("expected a TFRecord file, got a directory or special file", path=path)


def _read_header(f: BinaryIO, path: Path, index: int, offset: int, file_size: int) -> int | None:
    head = f.read(_HEADER.size)
    if not head:
        return None
    if len(head) < _HEADER.size:
        raise TruncatedRecordError(
            f"file ends inside a record header ({len(head)} of {_HEADER.size} bytes)",
            path=path,
            record=index,
            offset=offset,
            field="length",
        )
    length, length_crc = _HEADER.unpack(head)
    if masked_crc32c(head[:8]) != length_crc:
        raise CorruptRecordError(
            "CRC-32C of the record length does not match",
            path=path,
            record=index,
            offset=offset,
            field="length",
        )
    if length > MAX_RECORD_BYTES:
        raise CorruptRecordError(
            f"record length {length} is implausible",
            path=path,
            record=index,
            offset=offset,
            field="length",
        )
    if offset + _HEADER.size + length + _FOOTER.size > file_size:
        raise TruncatedRecordError(
            f"record of {length} bytes runs past the end of the file ({file_size} bytes)",
            path=path,
            record=index,
            offset=offset,
            field="data",
        )
    return length


def build_index(
    path: str | Path, skip_corrupt: bool = False
) -> tuple[list[RecordSpan], list[DataError]]:
    """Scan a TFRecord file's headers (not its data) and return the record spans.

    Length CRCs are checked; data CRCs are checked when a record is read.

    Args:
        path: the file.
        skip_corrupt: on a bad header stop scanning and return what was found so far
            together with the error, instead of raising. (After a corrupt length
            nothing later in the file can be located.)

    Returns:
        (spans, errors).
    """
    path = Path(path)
    _check_file(path)
    spans: list[RecordSpan] = []
    errors: list[DataError] = []
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while True:
            try:
                length = _read_header(f, path, len(spans), offset, size)
            except DataError as e:
                if not skip_corrupt:
                    raise
                errors.append(e)
                break
            if length is None:
                break
            spans.append(RecordSpan(len(spans), offset, length))
            offset += _HEADER.size + length + _FOOTER.size
            f.seek(offset)
    return spans, errors


class TFRecordFile:
    """Random access to the records of one TFRecord file.

    The offset index is built on opening (a header scan, no data read). Reading a
    record checks its data CRC. Thread-safe: each read uses ``os.pread``, and
    :meth:`close` during reads in other threads lets them finish (the descriptor is
    released by the last one); reads that start after it raise ``ValueError``.

    Args:
        path: the file.
        skip_corrupt: tolerate a corrupt or truncated tail: the records before it
            stay readable and :attr:`errors` says what was skipped.
        verify: check the data CRC-32C of every record read.
    """

    def __init__(self, path: str | Path, skip_corrupt: bool = False, verify: bool = True) -> None:
        self.path = Path(path)
        _check_file(self.path)
        self.verify = verify
        self.spans, self.errors = build_index(self.path, skip_corrupt=skip_corrupt)
        self._fd: int | None = os.open(self.path, os.O_RDONLY)
        self._lock = threading.Lock()
        self._readers = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self.spans)

    def record_index(self, index: int) -> int:
        """``index`` as a record number in ``[0, len)``; negative ones count from the end."""
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(
                f"{self.path}: record index must be an integer, got {type(index).__name__}"
            ) from None
        n = len(self.spans)
        if not -n <= i < n:
            raise IndexError(f"{self.path}: record {index} out of range (file has {n})")
        return i + n if i < 0 else i

    def read(self, index: int) -> bytes:
        """The data of record ``index`` (negative indices count from the end)."""
        index = self.record_index(index)
        span = self.spans[index]
        with self._lock:
            if self._closed or self._fd is None:
                raise ValueError(f"{self.path}: file is closed")
            fd = self._fd
            self._readers += 1
        try:
            blob = os.pread(fd, span.length + _FOOTER.size, span.data_offset)
        finally:
            with self._lock:
                self._readers -= 1
                if self._closed and self._readers == 0:
                    self._release()
        if len(blob) != span.length + _FOOTER.size:
            raise TruncatedRecordError(
                "file shrank while reading",
                path=self.path,
                record=index,
                offset=span.offset,
                field="data",
            )
        data = blob[: span.length]
        if self.verify:
            (crc,) = _FOOTER.unpack_from(blob, span.length)
            if masked_crc32c(data) != crc:
                raise CorruptRecordError(
                    "CRC-32C of the record data does not match",
                    path=self.path,
                    record=index,
                    offset=span.offset,
                    field="data",
                )
        return data

    def __iter__(self) -> Iterator[bytes]:
        for i in range(len(self)):
            yield self.read(i)

    def _release(self) -> None:
        """Close the descriptor (the caller holds the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Release the file descriptor (once reads in progress in other threads end)."""
        with self._lock:
            self._closed = True
            if self._readers == 0:
                self._release()

    def __enter__(self) -> TFRecordFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __getstate__(self) -> dict:
        # Picklable for DataLoader workers: reopen the descriptor on the other side.
        state = self.__dict__.copy()
        state["_fd"] = None
        state["_readers"] = 0
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._fd = None if self._closed else os.open(self.path, os.O_RDONLY)


def iter_records(path: str | Path, verify: bool = True) -> Iterator[tuple[int, int, bytes]]:
    """Stream ``(index, offset, data)`` through a file front to back in bounded memory."""
    path = Path(path)
    _check_file(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        index, offset = 0, 0
        while True:
            length = _read_header(f, path, index, offset, size)
            if length is None:
                return
            blob = f.read(length + _FOOTER.size)
            data = blob[:length]
            if verify:
                (crc,) = _FOOTER.unpack_from(blob, length)
                if masked_crc32c(data) != crc:
                    raise CorruptRecordError(
                        "CRC-32C of the record data does not match",
                        path=path,
                        record=index,
                        offset=offset,
                        field="data",
                    )
            yield index, offset, data
            index += 1
            offset += _HEADER.size + length + _FOOTER.size


def encode_record(data: bytes) -> bytes:
    """One framed record."""
    head = struct.pack("<Q", len(data))
    return (
        head
        + struct.pack("<I", masked_crc32c(head))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def write_records(path: str | Path, records: Iterable[bytes]) -> int:
    """Write records to ``path`` atomically (temp file, then rename). Returns the count."""
    n = 0
    with atomic_open(path, "wb") as f:
        for r in records:
            f.write(encode_record(r))
            n += 1
    return n


def record_offsets(spans: list[RecordSpan]) -> np.ndarray:
    """(R,) int64 header offsets of the spans (for saving an index)."""
    return np.array([s.offset for s in spans], dtype=np.int64)
