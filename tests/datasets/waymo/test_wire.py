"""The fast matrix codec agrees with protobuf byte for byte, both ways."""

from __future__ import annotations

import contextlib
import zlib

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from perceive.datasets.waymo.proto import waymo_pb2 as pb
from perceive.datasets.waymo.wire import (
    WireError,
    decode_matrix_float,
    decode_matrix_int32,
    decode_varints,
    encode_matrix_float,
    encode_matrix_int32,
    encode_varints,
)

from ._pools import foreign_schema

SHAPES = [(3, 5, 4), (1, 1), (7,), (0, 4), (2, 0, 6), (64, 26, 6)]


def _pb_float(a: np.ndarray) -> bytes:
    return pb.MatrixFloat(
        data=a.reshape(-1).tolist(), shape=pb.MatrixShape(dims=list(a.shape))
    ).SerializeToString()


def _pb_int(a: np.ndarray) -> bytes:
    return pb.MatrixInt32(
        data=a.reshape(-1).tolist(), shape=pb.MatrixShape(dims=list(a.shape))
    ).SerializeToString()


@pytest.mark.parametrize("shape", SHAPES)
def test_float_encoding_equals_protobuf(shape: tuple[int, ...]) -> None:
    a = np.random.default_rng(0).normal(0, 100, shape).astype(np.float32)
    assert encode_matrix_float(a) == _pb_float(a)


@pytest.mark.parametrize("shape", SHAPES)
def test_int32_encoding_equals_protobuf(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(-(2**31), 2**31, shape, dtype=np.int64).astype(np.int32)
    assert encode_matrix_int32(a) == _pb_int(a)


@pytest.mark.parametrize("shape", SHAPES)
def test_decoding_protobuf_output(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(2)
    f = rng.normal(0, 1, shape).astype(np.float32)
    i = rng.integers(-5000, 5000, shape).astype(np.int32)
    got_f = decode_matrix_float(_pb_float(f))
    got_i = decode_matrix_int32(_pb_int(i))
    assert got_f.dtype == np.float32 and got_f.shape == shape
    assert got_i.dtype == np.int32 and got_i.shape == shape
    np.testing.assert_array_equal(got_f, f)
    np.testing.assert_array_equal(got_i, i)
    got_f[...] = 0  # a writeable copy, not a view of the bytes


def test_negative_and_extreme_int32() -> None:
    a = np.array([[0, -1, 1, -(2**31)], [2**31 - 1, 127, 128, -128]], np.int32)
    enc = encode_matrix_int32(a)
    assert enc == _pb_int(a)
    np.testing.assert_array_equal(decode_matrix_int32(enc), a)
    # A negative int32 is a 10-byte varint (two's complement sign-extended to 64 bits).
    assert len(encode_varints(np.array([-1]))) == 10
    assert encode_varints(np.array([-1])) == b"\xff" * 9 + b"\x01"


def test_special_floats_are_bit_exact() -> None:
    a = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4e38], np.float32)
    enc = encode_matrix_float(a)
    assert enc == _pb_float(a)
    assert decode_matrix_float(enc).tobytes() == a.tobytes()


def test_empty_message_and_empty_matrix() -> None:
    assert decode_matrix_float(b"").shape == (0,)
    assert decode_matrix_int32(b"").shape == (0,)
    empty = np.zeros((0, 4), np.float32)
    assert encode_matrix_float(empty) == _pb_float(empty)
    assert decode_matrix_float(encode_matrix_float(empty)).shape == (0, 4)
    assert decode_matrix_int32(encode_matrix_int32(np.zeros((3, 0), np.int32))).shape == (3, 0)


def test_unpacked_wire_form_is_decoded() -> None:
    """A foreign writer may store ``data`` unpacked; the reader still gets the values."""
    foreign = foreign_schema(packed=False)
    a = np.arange(-6, 6, dtype=np.float32).reshape(3, 4) / 3
    m = foreign.MatrixFloat(data=a.reshape(-1).tolist())
    m.shape.dims.extend(a.shape)
    buf = m.SerializeToString()
    assert buf != _pb_float(a)  # really a different wire form
    np.testing.assert_array_equal(decode_matrix_float(buf), a)
    ai = np.arange(-6, 6, dtype=np.int32).reshape(2, 6)
    mi = foreign.MatrixInt32(data=ai.reshape(-1).tolist())
    mi.shape.dims.extend(ai.shape)
    np.testing.assert_array_equal(decode_matrix_int32(mi.SerializeToString()), ai)


def test_shape_after_data_and_no_shape() -> None:
    a = np.arange(6, dtype=np.float32)
    shape_first = b"\x12\x02\x08\x06" + b"\x0a\x18" + a.tobytes()
    np.testing.assert_array_equal(decode_matrix_float(shape_first), a)
    no_shape = pb.MatrixFloat(data=a.tolist()).SerializeToString()
    np.testing.assert_array_equal(decode_matrix_float(no_shape), a)


@pytest.mark.parametrize(
    "buf",
    [
        b"\x0a\x10\x00\x00",  # payload runs past the end
        b"\x0a\x03abc",  # 3 bytes is not a whole float
        b"\x0a\x04\x00\x00\x80?\x12\x04\x08\x02\x08\x02",  # shape 2x2 for 1 value
        b"\x0a\x04\x00\x00\x80?\x12\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # dims [-1]
        b"\x0b",  # group wire type
        b"\x0a",  # truncated length varint
        b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # varint too long
    ],
)
def test_malformed_float_matrix_raises_wire_error(buf: bytes) -> None:
    with pytest.raises(WireError):
        decode_matrix_float(buf)


def test_malformed_int_matrix_raises_wire_error() -> None:
    with pytest.raises(WireError):
        decode_matrix_int32(b"\x0a\x02\x01\x81")  # last varint unterminated
    with pytest.raises(WireError):
        decode_matrix_int32(b"\x0a\x0b" + b"\xff" * 10 + b"\x01")  # 11-byte varint


def test_varints_round_trip() -> None:
    v = np.array([0, 1, 127, 128, 300, 2**31 - 1, -1, -(2**31)], np.int64)
    dec = decode_varints(encode_varints(v))
    np.testing.assert_array_equal(dec.astype(np.int64).astype(np.int32), v.astype(np.int32))


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.int32,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
        elements=st.integers(-(2**31), 2**31 - 1),
    )
)
def test_int32_property(a: np.ndarray) -> None:
    enc = encode_matrix_int32(a)
    assert enc == _pb_int(a)
    np.testing.assert_array_equal(decode_matrix_int32(enc), a)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6)))
def test_float_property(a: np.ndarray) -> None:
    enc = encode_matrix_float(a)
    assert enc == _pb_float(a)
    assert decode_matrix_float(enc).tobytes() == a.tobytes()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_only_wire_or_decode_errors(buf: bytes) -> None:
    for decode in (decode_matrix_float, decode_matrix_int32):
        with contextlib.suppress(WireError, DecodeError):
            decode(buf)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**14 - 1) | st.integers(-(2**31), 2**31 - 1), max_size=40))
def test_int32_fast_paths_agree_with_general_decoder(values: list[int]) -> None:
    """One- and two-byte values take a fast path; mixed runs fall back; all agree."""
    from perceive.datasets.waymo.wire import decode_int32_varints

    a = np.array(values, np.int64).astype(np.int32)
    enc = encode_varints(a)
    np.testing.assert_array_equal(decode_int32_varints(enc), a)
    np.testing.assert_array_equal(decode_varints(enc).astype(np.int64).astype(np.int32), a)


def test_int32_fast_path_by_hand() -> None:
    from perceive.datasets.waymo.wire import decode_int32_varints

    # 300 = 0xAC 0x02; 1 = 0x01; 128 = 0x80 0x01; 0 = 0x00
    np.testing.assert_array_equal(
        decode_int32_varints(b"\xac\x02\x01\x80\x01\x00"), [300, 1, 128, 0]
    )
    np.testing.assert_array_equal(decode_int32_varints(b"\x01\x02"), [1, 2])
    # Non-minimal two-byte forms (legal, never written) decode like protobuf: 0x80 0x00 = 0.
    np.testing.assert_array_equal(decode_int32_varints(b"\x80\x00\x85\x00\x07"), [0, 5, 7])
    np.testing.assert_array_equal(decode_int32_varints(b"\x00" * 5), [0] * 5)
    with pytest.raises(WireError):
        decode_int32_varints(b"\x01\x80")


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=40)),
    st.integers(1, 5),
)
def test_inflate_agrees_with_decompress_then_decode(a: np.ndarray, step_exp: int) -> None:
    from perceive.datasets.waymo import wire

    old = wire.INFLATE_STEP
    wire.INFLATE_STEP = 4**step_exp  # tiny steps: many of them
    try:
        blob = zlib.compress(encode_matrix_float(a))
        got = wire.inflate_matrix_float(blob)
        assert got.tobytes() == a.tobytes() and got.shape == a.shape
        assert got.flags.writeable and got.flags.aligned
        ints = (a.view(np.int32) % 70_000 - 3).astype(np.int32)  # 1, 2, 3 and 10 byte varints
        blob_i = zlib.compress(encode_matrix_int32(ints))
        np.testing.assert_array_equal(wire.inflate_matrix_int32(blob_i), ints)
    finally:
        wire.INFLATE_STEP = old


def test_inflate_range_image_is_the_three_matrices() -> None:
    from perceive.datasets.waymo.wire import inflate_range_image

    rng = np.random.default_rng(0)
    values = rng.random((5, 7, 4)).astype(np.float32)
    proj = rng.integers(0, 2000, (5, 7, 6)).astype(np.int32)
    pose = rng.random((5, 7, 6)).astype(np.float32)
    z = [zlib.compress(e) for e in (encode_matrix_float(values), encode_matrix_int32(proj))]
    zp = zlib.compress(encode_matrix_float(pose))
    v, p, q = inflate_range_image(z[0], z[1], zp)
    np.testing.assert_array_equal(v, values)
    np.testing.assert_array_equal(p, proj)
    np.testing.assert_array_equal(q, pose)
    assert p.dtype == np.int32 and v.flags.writeable and p.flags.writeable
    v2, p2, q2 = inflate_range_image(z[0])
    np.testing.assert_array_equal(v2, values)
    assert p2 is None and q2 is None
    # The shape written before the data (legal, never written by protobuf): decoded as a whole.
    shape_first = zlib.compress(
        pb.MatrixFloat(shape=pb.MatrixShape(dims=[5, 7, 4])).SerializeToString()
        + encode_matrix_float(values.reshape(-1))[
            : -len(pb.MatrixShape(dims=[140]).SerializeToString()) - 2
        ]
    )
    np.testing.assert_array_equal(inflate_range_image(shape_first)[0], values)


def test_inflate_matches_zlib_and_raises_zlib_error() -> None:
    from perceive.datasets.waymo import wire

    data = encode_matrix_float(np.arange(5000, dtype=np.float32).reshape(50, 25, 4))
    blob = zlib.compress(data)
    assert wire.inflate(blob) == zlib.decompress(blob) == data
    assert wire.INFLATE_LIBRARY in ("zlib", "zlib-ng")
    bad = bytearray(blob)
    bad[len(bad) // 2] ^= 0xFF
    # Whichever library inflates, corrupt data raises zlib.error (what the reader catches).
    with pytest.raises(zlib.error):
        wire.inflate(bytes(bad))
    with pytest.raises(zlib.error):
        wire.inflate_matrix_float(bytes(bad))


def test_inflate_errors() -> None:
    from perceive.datasets.waymo.wire import inflate_matrix_float, inflate_range_image

    blob = zlib.compress(encode_matrix_float(np.ones((30, 40, 4), np.float32)))
    with pytest.raises(zlib.error):
        inflate_matrix_float(blob[: len(blob) // 2])  # truncated stream
    with pytest.raises((zlib.error, WireError)):
        inflate_range_image(blob, b"\x78\x9c")
    with pytest.raises(WireError, match="cannot come from"):
        inflate_matrix_float(zlib.compress(b"\x0a\xff\xff\xff\xff\x0f"))  # claims 4 GiB
