"""Fast decoding and encoding of the Waymo matrix messages.

``MatrixFloat`` / ``MatrixInt32`` hold range images with hundreds of thousands of
values. Going through protobuf's repeated-field containers costs a Python object per
value; here the packed payload is viewed directly with NumPy (floats) or decoded with
a vectorised varint decoder (int32). Both agree with protobuf byte for byte (tested).

Wire form: field 1 ``data`` packed (tag 0x0A, varint length, payload), field 2
``shape`` (tag 0x12, a ``MatrixShape`` with repeated int32 ``dims``, field 1).
"""

from __future__ import annotations

import threading
import zlib

import numpy as np

from perceive.datasets.waymo.proto import waymo_pb2 as pb
from perceive.utils.buffers import carve

try:  # zlib-ng: the same format as zlib, inflated about twice as fast
    from zlib_ng import zlib_ng as _inflate_lib
except ImportError:  # pragma: no cover - the dependency is declared; stdlib zlib still works
    _inflate_lib = zlib  # type: ignore[assignment]

#: The library that inflates range images: ``"zlib-ng"`` or ``"zlib"`` (its fallback).
INFLATE_LIBRARY = "zlib" if _inflate_lib is zlib else "zlib-ng"


class WireError(ValueError):
    """The bytes are not a well-formed matrix message."""


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def decode_varints(payload: bytes | memoryview | np.ndarray) -> np.ndarray:
    """Decode a run of concatenated varints to (N,) uint64, vectorised.

    One pass per byte position (not per byte): values of a range image's camera
    projection take one or two bytes, so that is two cheap passes.
    """
    b = np.frombuffer(payload, dtype=np.uint8) if not isinstance(payload, np.ndarray) else payload
    if b.size == 0:
        return np.zeros(0, np.uint64)
    if b[-1] & 0x80:
        raise WireError("truncated varint at end of packed field")
    ends = np.flatnonzero(b < 0x80)
    if ends.size == b.size:  # every value fits in one byte
        return b.astype(np.uint64)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > 10:
        raise WireError("varint longer than 10 bytes")
    vals = (b[starts] & 0x7F).astype(np.uint64)
    for k in range(1, longest):
        has = np.flatnonzero(lengths > k)  # varints with a byte at position k
        vals[has] |= (b[starts[has] + k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
    return vals


def decode_int32_varints(
    payload: bytes | memoryview | np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Decode concatenated varints of int32 values to (N,) int32 (negatives wrap as protobuf's).

    Fast path for the common case of range-image camera projections, every value in at
    most two bytes. The last byte of every value is below 0x80, so removing the
    continuation bytes (a boolean compaction, which NumPy does run by run: cheap when
    two-byte values are sparse) leaves one byte per value; then each two-byte value,
    whose first byte is the k-th continuation byte at position ``c``, is value ``c - k``
    and gets its high bits from its second byte. Anything else goes through
    :func:`decode_varints`.

    Args:
        payload: the packed bytes.
        out: optional (N,) int32 array to write the values into; used only when it has
            exactly as many elements as there are values (else a new array is returned).
    """
    b = np.frombuffer(payload, dtype=np.uint8) if not isinstance(payload, np.ndarray) else payload
    if b.size == 0:
        return np.zeros(0, np.int32)
    cont = b >= 0x80
    if cont[-1]:
        raise WireError("truncated varint at end of packed field")
    first = np.flatnonzero(cont)  # first bytes of the two-byte values
    n = b.size - first.size  # values, if none has three bytes or more
    if out is None or out.shape != (n,) or out.dtype != np.int32:
        out = np.empty(n, np.int32)
    if first.size == 0:
        np.copyto(out, b, casting="safe")
        return out
    if np.logical_and(cont[:-1], cont[1:]).any():  # some value has three bytes or more
        return decode_varints(b).astype(np.int64).astype(np.int32)
    np.logical_not(cont, out=cont)
    np.copyto(out, b[cont], casting="safe")
    low = b[first]
    low &= 0x7F
    at = np.subtract(first, np.arange(first.size), out=first)
    high = out[at]
    high <<= 7
    high |= low
    out[at] = high
    return out


def _split_matrix(buf: bytes) -> tuple[int, memoryview | None, list[int], bool]:
    """Find the data payload and shape of a matrix message.

    Returns (wire type of field 1, packed payload or None, dims, has unpacked data).
    """
    mv = memoryview(buf)
    pos = 0
    payload: memoryview | None = None
    dims: list[int] = []
    unpacked = False
    while pos < len(mv):
        key, pos = _read_varint(mv, pos)
        fnum, wtype = key >> 3, key & 7
        if wtype == 2:
            n, pos = _read_varint(mv, pos)
            if pos + n > len(mv):
                raise WireError("length-delimited field runs past the end")
            chunk = mv[pos : pos + n]
            pos += n
            if fnum == 1:
                if payload is not None:
                    raise WireError(
                        "several packed data chunks"
                    )  # legal but never written; let protobuf handle
                payload = chunk
            elif fnum == 2:
                shape = pb.MatrixShape.FromString(bytes(chunk))
                dims = list(shape.dims)
        elif wtype == 0:
            _, pos = _read_varint(mv, pos)
            unpacked = unpacked or fnum == 1
        elif wtype == 5:
            pos += 4
            unpacked = unpacked or fnum == 1
        elif wtype == 1:
            pos += 8
        else:
            raise WireError(f"unexpected wire type {wtype} for field {fnum}")
    if pos != len(mv):
        raise WireError("message runs past the end")
    return 0, payload, dims, unpacked


def _reshape(flat: np.ndarray, dims: list[int]) -> np.ndarray:
    if not dims:
        return flat
    if any(d < 0 for d in dims):
        raise WireError(f"shape {dims} has a negative dimension")
    if int(np.prod(dims)) != flat.size:
        raise WireError(f"shape {dims} does not match {flat.size} values")
    return flat.reshape(dims)


def decode_matrix_float(buf: bytes) -> np.ndarray:
    """A serialized ``MatrixFloat`` as a float32 array of its shape (a copy, writeable)."""
    try:
        _, payload, dims, unpacked = _split_matrix(buf)
    except WireError:
        raise
    except Exception as e:  # protobuf errors inside the shape
        raise WireError(str(e)) from e
    if unpacked or (payload is None and not dims):
        msg = pb.MatrixFloat.FromString(buf)
        return _reshape(np.asarray(msg.data, dtype=np.float32), list(msg.shape.dims))
    if payload is None:
        payload = memoryview(b"")
    if len(payload) % 4:
        raise WireError("packed float payload is not a multiple of 4 bytes")
    flat = np.frombuffer(payload, dtype="<f4").astype(np.float32)
    return _reshape(flat, dims)


def decode_matrix_int32(buf: bytes) -> np.ndarray:
    """A serialized ``MatrixInt32`` as an int32 array of its shape."""
    try:
        _, payload, dims, unpacked = _split_matrix(buf)
    except WireError:
        raise
    except Exception as e:
        raise WireError(str(e)) from e
    if unpacked:
        msg = pb.MatrixInt32.FromString(buf)
        return _reshape(np.asarray(msg.data, dtype=np.int32), list(msg.shape.dims))
    flat = decode_int32_varints(payload if payload is not None else b"")
    return _reshape(flat, dims)


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_varints(values: np.ndarray) -> bytes:
    """Encode (N,) int32 values as concatenated varints (negatives as 10-byte two's complement)."""
    v = np.asarray(values).astype(np.int64).astype(np.uint64).reshape(-1)
    if v.size == 0:
        return b""
    nbytes = np.ones(v.size, np.int64)
    for k in range(1, 10):
        nbytes += (v >= (np.uint64(1) << np.uint64(7 * k))).astype(np.int64)
    total = int(nbytes.sum())
    starts = np.concatenate([[0], np.cumsum(nbytes)[:-1]])
    owner = np.repeat(np.arange(v.size), nbytes)
    pos = np.arange(total) - starts[owner]
    byte = ((v[owner] >> (7 * pos).astype(np.uint64)) & np.uint64(0x7F)).astype(np.uint8)
    last = pos == nbytes[owner] - 1
    byte[~last] |= 0x80
    return byte.tobytes()


def _encode_matrix(payload: bytes, shape: tuple[int, ...]) -> bytes:
    shape_msg = pb.MatrixShape(dims=list(shape)).SerializeToString()
    out = b""
    if payload:
        out += b"\x0a" + _varint_bytes(len(payload)) + payload
    return out + b"\x12" + _varint_bytes(len(shape_msg)) + shape_msg


def encode_matrix_float(array: np.ndarray) -> bytes:
    """Serialize an array as a ``MatrixFloat`` (float32, its shape as ``dims``)."""
    a = np.ascontiguousarray(array, dtype="<f4")
    return _encode_matrix(a.tobytes(), a.shape)


def encode_matrix_int32(array: np.ndarray) -> bytes:
    """Serialize an int32 array as a ``MatrixInt32``."""
    a = np.asarray(array)
    return _encode_matrix(encode_varints(a.astype(np.int32)), a.shape)


#: Bytes inflated per step by :func:`inflate_matrix_float` / :func:`inflate_matrix_int32`:
#: small enough that each step's output is reused heap memory.
INFLATE_STEP = 1 << 16
#: zlib never inflates one byte into more than about 1,032.
_MAX_RATIO = 1100
_scratch = threading.local()


def _scratch_bytes(n: int) -> np.ndarray:
    """A (n,) uint8 buffer private to this thread, reused between calls (contents undefined)."""
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.size < n:
        buf = np.empty(max(n, 1 << 20), np.uint8)
        _scratch.buf = buf
    return buf[:n]


def inflate(compressed: bytes) -> bytes:
    """``zlib.decompress`` with the faster library when it is installed (same result).

    Raises:
        zlib.error: the stream is corrupt or truncated (whichever library inflates).
    """
    try:
        return _inflate_lib.decompress(compressed)
    except _inflate_lib.error as e:
        raise zlib.error(str(e)) from None


class _Inflater:
    """zlib inflation in bounded steps, fed the compressed bytes piece by piece (so that
    the input left over after a step, which zlib copies, stays small)."""

    def __init__(self, compressed: bytes, piece: int = 1 << 14) -> None:
        self._src = memoryview(compressed)
        self._pos = 0
        self._piece = piece
        self._pending: bytes = b""
        self._d = _inflate_lib.decompressobj()

    @property
    def eof(self) -> bool:
        """The end of the zlib stream was reached."""
        return self._d.eof

    def step(self, max_length: int) -> bytes:
        """Up to ``max_length`` more inflated bytes (empty once the input is used up)."""
        while not self._d.eof:
            if self._pending:
                data = self._pending
            elif self._pos < len(self._src):
                data = self._src[self._pos : self._pos + self._piece]
                self._pos += len(data)
            else:
                return b""
            try:
                out = self._d.decompress(data, max_length)
            except _inflate_lib.error as e:  # one exception type whichever library inflates
                raise zlib.error(str(e)) from None
            self._pending = self._d.unconsumed_tail
            if out:
                return out
        return b""

    def rest(self) -> bytes:
        """Everything still to inflate; raises ``zlib.error`` on a truncated stream."""
        parts = []
        while chunk := self.step(INFLATE_STEP):
            parts.append(chunk)
        if not self._d.eof:
            raise zlib.error("incomplete or truncated stream")
        return b"".join(parts)


def _open_payload(compressed: bytes) -> tuple[_Inflater, bytes, int, int] | None:
    """Start inflating a matrix message: ``(inflater, head, payload size, payload start)``,
    or None when it does not start with a packed ``data`` field."""
    z = _Inflater(compressed)
    head = b""
    while len(head) < 11 and (chunk := z.step(11 - len(head))):
        head += chunk
    if len(head) < 2 or head[0] != 0x0A:
        return None
    try:
        n, start = _read_varint(memoryview(head), 1)
    except WireError:
        return None
    if n > _MAX_RATIO * len(compressed) + 64:
        raise WireError(f"packed data of {n} bytes cannot come from {len(compressed)} bytes")
    return z, head, n, start


def _finish_payload(
    opened: tuple[_Inflater, bytes, int, int], payload: np.ndarray
) -> tuple[list[int], bytes | None]:
    """Inflate the rest of the packed data into ``payload`` (its exact size), then the
    shape: ``(dims, None)``, or ``([], message)`` for a message to decode as a whole."""
    z, head, n, start = opened
    dst = memoryview(payload).cast("B")  # plain byte copies, cheaper than NumPy slicing
    got = head[start : start + n]
    dst[: len(got)] = got
    filled = len(got)
    tail = head[start + n :]
    while filled < n:
        chunk = z.step(min(INFLATE_STEP, n - filled))
        if not chunk:
            if z.eof:
                raise WireError("length-delimited field runs past the end")
            raise zlib.error("incomplete or truncated stream")
        dst[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    tail += z.rest()
    _, more, dims, unpacked = _split_matrix(tail)
    if more is not None or unpacked:  # several data chunks: legal, never written
        return [], head[:start] + payload.tobytes() + tail
    return dims, None


def _inflate_payload(
    compressed: bytes, scratch: bool
) -> tuple[np.ndarray | None, list[int], bytes | None]:
    """Inflate a zlib-compressed matrix message straight into a NumPy buffer.

    The packed ``data`` field (written first, as protobuf writes fields in number
    order) is inflated step by step into a buffer of its exact size: a fresh one the
    caller keeps (``scratch=False``) or this thread's reused one. No bytes object of
    the whole message is made, so no fresh memory is touched twice.

    Returns:
        ``(payload, dims, None)``; or ``(None, [], message)`` with the whole inflated
        message when it does not start with a packed ``data`` field (then decode it as
        a whole).

    Raises:
        zlib.error: the stream is corrupt or truncated.
        WireError: the message is malformed.
    """
    try:
        opened = _open_payload(compressed)
        if opened is None:
            return None, [], inflate(compressed)
        n = opened[2]
        payload = _scratch_bytes(n) if scratch else np.empty(n, np.uint8)
        dims, message = _finish_payload(opened, payload)
    except (WireError, zlib.error):
        raise
    except Exception as e:  # protobuf errors inside the shape
        raise WireError(str(e)) from e
    return (None, [], message) if message is not None else (payload, dims, None)


def inflate_range_image(
    values: bytes, projection: bytes | None = None, pose: bytes | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The three zlib-compressed matrices of a range image, decoded into one buffer.

    The same arrays as :func:`inflate_matrix_float` (values, pose) and
    :func:`inflate_matrix_int32` (camera projection), carved out of one allocation:
    NumPy asks the kernel for huge pages for buffers of 4 MiB and more, which makes
    first touching the memory several times cheaper than page by page.

    Args:
        values: compressed ``MatrixFloat`` of the (H, W, 4) range image.
        projection: compressed ``MatrixInt32`` of the (H, W, 6) camera projection, or None.
        pose: compressed ``MatrixFloat`` of the (H, W, 6) per-pixel pose, or None.

    Returns:
        ``(values, projection, pose)``; None for a matrix not given.

    Raises:
        zlib.error, WireError: as the single-matrix functions (call those to learn which
            matrix is bad).
    """
    try:
        opened = [_open_payload(c) if c else None for c in (values, projection, pose)]
    except WireError:
        raise
    except Exception as e:
        raise WireError(str(e)) from e
    if opened[0] is None or any(
        o is None for o, c in zip(opened, (values, projection, pose), strict=True) if c
    ):
        return (
            inflate_matrix_float(values),
            inflate_matrix_int32(projection) if projection else None,
            inflate_matrix_float(pose) if pose else None,
        )
    n_values = opened[0][2]
    sizes = [
        n_values,
        n_values // 16 * 24 if projection else 0,  # (H, W, 6) int32 beside (H, W, 4) float32
        opened[2][2] if opened[2] is not None else 0,
    ]
    parts = carve(sizes)
    out: list[np.ndarray | None] = [None, None, None]
    try:
        for i in (0, 2):
            if opened[i] is None:
                continue
            dims, message = _finish_payload(opened[i], parts[i])
            if message is not None:
                out[i] = decode_matrix_float(message)
                continue
            out[i] = _float_matrix(parts[i], dims)
        if opened[1] is not None:
            scratch = _scratch_bytes(opened[1][2])
            dims, message = _finish_payload(opened[1], scratch)
            if message is not None:
                out[1] = decode_matrix_int32(message)
            else:
                into = parts[1].view(np.int32) if sizes[1] % 4 == 0 else None
                out[1] = _reshape(decode_int32_varints(scratch, out=into), dims)
    except (WireError, zlib.error):
        raise
    except Exception as e:
        raise WireError(str(e)) from e
    return out[0], out[1], out[2]  # type: ignore[return-value]


def inflate_matrix_float(compressed: bytes) -> np.ndarray:
    """``decode_matrix_float(zlib.decompress(compressed))``, without the copies.

    The values are inflated into the returned array's own (aligned, writeable) memory.
    """
    payload, dims, message = _inflate_payload(compressed, scratch=False)
    if payload is None:
        assert message is not None
        return decode_matrix_float(message)
    return _float_matrix(payload, dims)


def _float_matrix(payload: np.ndarray, dims: list[int]) -> np.ndarray:
    """The packed little-endian floats in ``payload`` (uint8) as a float32 array of ``dims``,
    in place where the machine is little-endian."""
    if payload.size % 4:
        raise WireError("packed float payload is not a multiple of 4 bytes")
    flat = payload.view("<f4")
    if flat.dtype != np.float32:  # a big-endian machine
        flat = flat.astype(np.float32)
    return _reshape(flat, dims)


def inflate_matrix_int32(compressed: bytes) -> np.ndarray:
    """``decode_matrix_int32(zlib.decompress(compressed))``, the varints inflated into a
    reused buffer."""
    payload, dims, message = _inflate_payload(compressed, scratch=True)
    if payload is None:
        assert message is not None
        return decode_matrix_int32(message)
    return _reshape(decode_int32_varints(payload), dims)
