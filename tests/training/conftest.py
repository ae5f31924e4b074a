"""Fixtures of the training tests: a tiny generated segment."""

import socket

import pytest

from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.v1_writer import write_segment


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A v1 segment of 4 generated frames with 6 boxes each (path as a string)."""
    root = tmp_path_factory.mktemp("frames")
    write_segment(root / "seg0.tfrecord", [make_frame(s, num_boxes=6) for s in range(4)])
    return str(root / "seg0.tfrecord")


@pytest.fixture
def one_process_group_env(monkeypatch):
    """torchrun's environment for a world of one process on a free local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for k, v in {
        "WORLD_SIZE": "1",
        "RANK": "0",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }.items():
        monkeypatch.setenv(k, v)
