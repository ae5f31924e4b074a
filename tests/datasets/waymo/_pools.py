"""A second, independent protobuf schema of the Waymo messages, built at run time.

It stands in for the official ``waymo_open_dataset`` package: the same field numbers,
but a different package name (``waymo.open_dataset``, as the official one), its own
descriptor pool and its own message classes. ``packed=False`` also rewrites the matrix
``data`` fields unpacked, a wire form a foreign writer could legally produce.
"""

from __future__ import annotations

from types import SimpleNamespace

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from perceive.datasets.waymo.proto import waymo_pb2

OURS = "." + waymo_pb2.DESCRIPTOR.package + "."
THEIRS = ".waymo.open_dataset."


def _rename(msg: descriptor_pb2.DescriptorProto, packed: bool) -> None:
    for f in msg.field:
        if f.type_name.startswith(OURS):
            f.type_name = THEIRS + f.type_name[len(OURS) :]
        if not packed and f.options.HasField("packed"):
            f.options.ClearField("packed")
    for nested in msg.nested_type:
        _rename(nested, packed)


def foreign_schema(packed: bool = True) -> SimpleNamespace:
    """Message classes of the foreign schema, by name (``.Frame``, ``.MatrixFloat``...)."""
    fdp = descriptor_pb2.FileDescriptorProto()
    waymo_pb2.DESCRIPTOR.CopyToProto(fdp)
    fdp.name = "waymo_open_dataset/dataset_standin.proto"
    fdp.package = "waymo.open_dataset"
    for msg in fdp.message_type:
        _rename(msg, packed)
    pool = descriptor_pool.DescriptorPool()
    fd = pool.Add(fdp)
    fd = pool.FindFileByName(fdp.name) if fd is None else fd
    return SimpleNamespace(
        **{
            name: message_factory.GetMessageClass(d) for name, d in fd.message_types_by_name.items()
        },
        pool=pool,
    )
