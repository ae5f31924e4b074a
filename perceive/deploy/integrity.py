"""The graph digest of an exported model: a damaged or edited ONNX file is refused on load.

A flipped byte inside a weight tensor still parses as a valid ONNX model, and onnxruntime
runs it: the robot would get confident garbage. So every model perceive writes (the export
and its FP16/INT8 variants) records in ``perceive.graph_sha256`` the SHA-256 of the exact
bytes of its serialized graph (``ModelProto`` field 7: nodes, weights, inputs, outputs).
The :class:`~perceive.deploy.runner.Detector` checks it before creating a session.

The digest is read off the file's own bytes with a minimal protobuf wire-format walk of the
top-level message (no re-serialisation), so it does not depend on the protobuf library's
serialisation and costs one pass of SHA-256 over the graph. Metadata
(``metadata_props``, field 14) is outside it: the metadata is checked for sense instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from perceive.errors import DataError

if TYPE_CHECKING:
    import onnx

#: Metadata key holding the digest.
DIGEST_KEY = "perceive.graph_sha256"
#: ``ModelProto.graph``'s field number.
_GRAPH_FIELD = 7


def _varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def graph_digest(data: bytes) -> str:
    """SHA-256 (hex) of the graph's bytes in a serialized ``ModelProto``.

    Args:
        data: the whole ``.onnx`` file (a model with external data: its ``.onnx`` part only).

    Raises:
        ValueError: the bytes are not a well-formed protobuf message, or hold no graph.
    """
    view = memoryview(data)
    h = hashlib.sha256()
    found = False
    pos = 0
    while pos < len(view):
        key, pos = _varint(view, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(view, pos)
            continue
        if wire == 1:
            end = pos + 8
        elif wire == 5:
            end = pos + 4
        elif wire == 2:
            length, pos = _varint(view, pos)
            end = pos + length
        else:
            raise ValueError(f"unsupported wire type {wire} (field {field})")
        if end > len(view):
            raise ValueError(f"field {field} runs past the end of the data")
        if field == _GRAPH_FIELD and wire == 2:
            h.update(view[pos:end])  # a repeated occurrence merges: hash them all, in order
            found = True
        pos = end
    if not found:
        raise ValueError("the model holds no graph")
    return h.hexdigest()


def stamp_graph_digest(model: onnx.ModelProto) -> tuple[bytes, str]:
    """Record the graph's digest in ``model``'s metadata: ``(serialized model, digest)``.

    Write exactly the returned bytes: they are the ones the digest was checked against.
    """
    data = model.SerializeToString()
    digest = graph_digest(data)
    for p in model.metadata_props:
        if p.key == DIGEST_KEY:
            p.value = digest
            break
    else:
        model.metadata_props.add(key=DIGEST_KEY, value=digest)
    out = model.SerializeToString()
    if graph_digest(out) != digest:  # the graph's bytes must not move with the metadata
        raise RuntimeError("the graph serialised differently twice; cannot stamp its digest")
    return out, digest


def check_graph_digest(data: bytes, recorded: str | None, path: str) -> None:
    """Raise :class:`DataError` when the graph in ``data`` is not the one ``recorded``.

    Args:
        data: the model file's bytes.
        recorded: the ``perceive.graph_sha256`` value; None (a model exported before the
            digest existed, or by another tool) skips the check.
        path: the file, for the message.
    """
    if recorded is None:
        return
    try:
        actual = graph_digest(data)
    except ValueError as e:
        raise DataError(f"not a well-formed ONNX model: {e}", path=path) from None
    if actual != recorded.strip().lower():
        raise DataError(
            "the model's graph (weights or nodes) is not the one exported: the file is "
            f"damaged or was edited (graph SHA-256 {actual[:16]}..., recorded "
            f"{recorded[:16]}...); export or copy it again",
            path=path,
            field=DIGEST_KEY,
        )


def stamp_model_file(path: str | Path) -> str:
    """Add the graph digest to a model written before it existed (the graph is unchanged).

    Rewrites ``path`` atomically with the digest in its metadata, and adds it to the JSON
    sidecar beside it when there is one. Returns the digest.

    Raises:
        DataError: the file is not an ONNX model, or its sidecar is not a JSON object.
    """
    import json

    import onnx

    from perceive.io.atomic import atomic_write_bytes, atomic_write_text

    path = Path(path)
    try:
        model = onnx.load_from_string(path.read_bytes())
    except Exception as e:  # protobuf decode errors have several types
        raise DataError(f"not an ONNX model: {e}", path=path) from None
    data, digest = stamp_graph_digest(model)
    side = path.with_suffix(".json")
    meta = None
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"sidecar is not JSON: {e}", path=side) from None
        if not isinstance(meta, dict):
            raise DataError("sidecar is not a JSON object", path=side)
    atomic_write_bytes(path, data)
    if meta is not None:
        meta[DIGEST_KEY] = digest
        atomic_write_text(side, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return digest
