"""Arrays carved out of one allocation."""

from __future__ import annotations

import numpy as np

from perceive.utils.buffers import carve


def test_parts_are_aligned_disjoint_views_of_one_buffer():
    parts = carve([10, 0, 130, 64], align=64)
    assert [p.size for p in parts] == [10, 0, 130, 64]
    base = parts[0].base
    assert all(p.base is base for p in parts)
    origin = base.__array_interface__["data"][0]
    starts = [p.__array_interface__["data"][0] - origin for p in parts if p.size]
    assert starts == [0, 64, 256]  # the empty part takes no room
    for i, p in enumerate(parts):
        p[:] = i
    assert parts[2].tolist() == [2] * 130 and parts[0].tolist() == [0] * 10
    assert parts[3].view(np.float32).shape == (16,)
