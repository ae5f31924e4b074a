"""TFRecord reading and writing: framing, CRCs, random access, corruption, fuzzing."""

from __future__ import annotations

import contextlib
import pickle
import struct
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perceive.errors import (
    CorruptRecordError,
    DataError,
    MissingFileError,
    NotAFileError,
    PerceiveError,
    TruncatedRecordError,
)
from perceive.io.tfrecord import (
    TFRecordFile,
    build_index,
    encode_record,
    iter_records,
    masked_crc32c,
    record_offsets,
    write_records,
)

RECORDS = [b"first", b"", b"x" * 1000, bytes(range(256)) * 3, b"last record"]


def _record_offsets(records: list[bytes]) -> list[int]:
    """Header offsets computed from the format: 8 + 4 + len + 4 bytes per record."""
    out, pos = [], 0
    for r in records:
        out.append(pos)
        pos += 16 + len(r)
    return out


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "records.tfrecord"
    write_records(p, RECORDS)
    return p


def test_masked_crc_matches_format_definition() -> None:
    data = b"perceive"
    crc = google_crc32c.value(data)
    expected = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert masked_crc32c(data) == expected
    assert masked_crc32c(memoryview(data)) == expected


def test_encode_record_layout() -> None:
    data = b"hello"
    rec = encode_record(data)
    length, length_crc = struct.unpack_from("<QI", rec)
    assert length == 5
    assert length_crc == masked_crc32c(rec[:8])
    assert rec[12:17] == data
    assert struct.unpack_from("<I", rec, 17)[0] == masked_crc32c(data)
    assert len(rec) == 21


def test_round_trip(path: Path) -> None:
    assert [d for _, _, d in iter_records(path)] == RECORDS
    assert [o for _, o, _ in iter_records(path)] == _record_offsets(RECORDS)
    with TFRecordFile(path) as f:
        assert len(f) == len(RECORDS)
        assert list(f) == RECORDS
        assert [s.offset for s in f.spans] == _record_offsets(RECORDS)
        assert [s.length for s in f.spans] == [len(r) for r in RECORDS]
        np.testing.assert_array_equal(record_offsets(f.spans), _record_offsets(RECORDS))


def test_write_returns_count_and_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.tfrecord"
    assert write_records(p, []) == 0
    assert p.stat().st_size == 0
    with TFRecordFile(p) as f:
        assert len(f) == 0
        assert list(f) == []
    assert list(iter_records(p)) == []


def test_random_access(path: Path) -> None:
    rng = np.random.default_rng(0)
    with TFRecordFile(path) as f:
        for i in rng.permutation(len(RECORDS)):
            assert f.read(int(i)) == RECORDS[i]
        assert f.read(-1) == RECORDS[-1]
        assert f.read(-len(RECORDS)) == RECORDS[0]
        with pytest.raises(IndexError):
            f.read(len(RECORDS))
        with pytest.raises(IndexError):
            f.read(-len(RECORDS) - 1)


def test_read_after_close_fails(path: Path) -> None:
    f = TFRecordFile(path)
    f.close()
    f.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        f.read(0)


def test_close_during_a_read_in_another_thread(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The descriptor outlives close() until the read in progress ends, so that read
    cannot hit another file that reused the descriptor number; later reads fail."""
    import os
    import threading

    import perceive.io.tfrecord as tfr

    f = TFRecordFile(path)
    fd = f._fd
    entered, go = threading.Event(), threading.Event()
    real_pread = os.pread

    def slow_pread(*args):
        entered.set()
        go.wait(5)
        return real_pread(*args)

    monkeypatch.setattr(tfr.os, "pread", slow_pread)
    got = []
    reader = threading.Thread(target=lambda: got.append(f.read(2)))
    reader.start()
    assert entered.wait(5)
    f.close()
    os.fstat(fd)  # still open: the reader holds it
    with pytest.raises(ValueError, match="closed"):
        f.read(0)
    go.set()
    reader.join(5)
    assert got == [RECORDS[2]]
    assert f._fd is None and f._readers == 0  # released by the last reader


def _flip(path: Path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["length", "length_crc"])
def test_length_crc_mismatch(path: Path, where: str) -> None:
    offsets = _record_offsets(RECORDS)
    rec = 2
    _flip(path, offsets[rec] + (1 if where == "length" else 9))
    with pytest.raises(CorruptRecordError) as e:
        TFRecordFile(path)
    err = e.value
    assert (err.path, err.record, err.offset, err.field) == (str(path), rec, offsets[rec], "length")
    assert (
        str(path) in str(err)
        and f"record {rec}" in str(err)
        and f"byte offset {offsets[rec]}" in str(err)
    )
    with pytest.raises(CorruptRecordError):
        list(iter_records(path))
    # The records before the bad header are still read by a streaming pass.
    got = []
    with pytest.raises(CorruptRecordError):
        for _, _, d in iter_records(path):
            got.append(d)
    assert got == RECORDS[:rec]


@pytest.mark.parametrize("where", ["data", "data_crc"])
def test_data_crc_mismatch(path: Path, where: str) -> None:
    offsets = _record_offsets(RECORDS)
    rec = 3
    pos = offsets[rec] + 12 + (5 if where == "data" else len(RECORDS[rec]) + 2)
    _flip(path, pos, 0x80)
    with TFRecordFile(path) as f:  # the index scan reads headers only
        assert len(f) == len(RECORDS)
        assert f.read(2) == RECORDS[2]
        with pytest.raises(CorruptRecordError) as e:
            f.read(rec)
        assert (e.value.record, e.value.offset, e.value.field) == (rec, offsets[rec], "data")
    with TFRecordFile(path, verify=False) as f:
        data = f.read(rec)
        assert (data == RECORDS[rec]) == (where == "data_crc")
    with pytest.raises(CorruptRecordError):
        list(iter_records(path))
    assert len(list(iter_records(path, verify=False))) == len(RECORDS)


def test_truncated_at_every_cut_point(path: Path, tmp_path: Path) -> None:
    full = path.read_bytes()
    ends = {
        o + 16 + len(r): i + 1
        for i, (o, r) in enumerate(zip(_record_offsets(RECORDS), RECORDS, strict=True))
    }
    cut_path = tmp_path / "cut.tfrecord"
    for cut in range(len(full)):
        cut_path.write_bytes(full[:cut])
        if cut == 0 or cut in ends:
            n = ends.get(cut, 0)
            with TFRecordFile(cut_path) as f:
                assert list(f) == RECORDS[:n]
            assert [d for _, _, d in iter_records(cut_path)] == RECORDS[:n]
            continue
        # The record that the cut falls into.
        rec = max(i for i, o in enumerate(_record_offsets(RECORDS)) if o < cut)
        with pytest.raises(TruncatedRecordError) as e:
            TFRecordFile(cut_path)
        assert e.value.record == rec and e.value.offset == _record_offsets(RECORDS)[rec]
        with pytest.raises(TruncatedRecordError):
            list(iter_records(cut_path))
        with TFRecordFile(cut_path, skip_corrupt=True) as f:
            assert list(f) == RECORDS[:rec]
            assert len(f.errors) == 1 and isinstance(f.errors[0], TruncatedRecordError)


def test_skip_corrupt_keeps_records_before_bad_header(path: Path) -> None:
    offsets = _record_offsets(RECORDS)
    _flip(path, offsets[3] + 2)
    spans, errors = build_index(path, skip_corrupt=True)
    assert len(spans) == 3 and len(errors) == 1
    assert isinstance(errors[0], CorruptRecordError) and errors[0].record == 3
    with TFRecordFile(path, skip_corrupt=True) as f:
        assert list(f) == RECORDS[:3]
        assert [e.record for e in f.errors] == [3]


def test_implausible_length_is_corrupt(tmp_path: Path) -> None:
    head = struct.pack("<Q", 1 << 40)
    p = tmp_path / "huge.tfrecord"
    p.write_bytes(head + struct.pack("<I", masked_crc32c(head)) + b"abc")
    with pytest.raises(CorruptRecordError, match="implausible"):
        TFRecordFile(p)


def test_pickle_reopens(path: Path) -> None:
    f = TFRecordFile(path)
    g = pickle.loads(pickle.dumps(f))
    f.close()
    assert g.read(2) == RECORDS[2]
    assert list(g) == RECORDS
    assert g.path == f.path and g.spans == f.spans
    g.close()


def test_wrong_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tfrecord"
    for make in (TFRecordFile, build_index, lambda p: list(iter_records(p))):
        with pytest.raises(MissingFileError) as e:
            make(missing)
        assert str(missing) in str(e.value)
        assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, PerceiveError)
        with pytest.raises(NotAFileError) as e:
            make(tmp_path)
        assert str(tmp_path) in str(e.value)


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    p = tmp_path / "out.tfrecord"
    write_records(p, [b"old"])

    def gen():
        yield b"a"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_records(p, gen())
    assert [d for _, _, d in iter_records(p)] == [b"old"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.tfrecord"]


# --- fuzzing -------------------------------------------------------------------------


def _read_everything(p: Path) -> None:
    for skip in (False, True):
        try:
            with TFRecordFile(p, skip_corrupt=skip) as f:
                for i in range(len(f)):
                    with contextlib.suppress(DataError):
                        f.read(i)
        except DataError:
            pass
    try:
        for _ in iter_records(p):
            pass
    except DataError:
        pass


@settings(
    max_examples=150,
    deadline=2000,  # a hang or a quadratic blow-up fails the test
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    records=st.lists(st.binary(max_size=64), min_size=0, max_size=4),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_fuzz_truncations_and_bit_flips(tmp_path: Path, records, flips, cut) -> None:
    blob = bytearray(b"".join(encode_record(r) for r in records))
    for pos, bit in flips:
        if blob:
            blob[pos % len(blob)] ^= 1 << bit
    if cut is not None and blob:
        blob = blob[: cut % (len(blob) + 1)]
    p = tmp_path / "fuzz.tfrecord"
    p.write_bytes(bytes(blob))
    _read_everything(p)  # only our exceptions may escape, and it must finish


@settings(
    max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(blob=st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(tmp_path: Path, blob: bytes) -> None:
    p = tmp_path / "junk.tfrecord"
    p.write_bytes(blob)
    _read_everything(p)
