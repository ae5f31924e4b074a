"""Several arrays carved out of one allocation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def carve(sizes: Sequence[int], align: int = 64) -> list[np.ndarray]:
    """(size,) uint8 views of one fresh buffer, each starting on an ``align``-byte boundary.

    One big allocation rather than several: NumPy asks the kernel for huge pages for
    buffers of 4 MiB and more, which makes first touching the memory several times
    cheaper than page by page (a page fault per 4 KiB otherwise, expensive on virtual
    machines). View each part with ``.view(dtype).reshape(...)``.

    Args:
        sizes: bytes of each part (0 allowed).
        align: alignment of each part's start, bytes.
    """
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + -(-int(size) // align) * align)
    buf = np.empty(starts[-1], np.uint8)
    return [buf[s : s + int(size)] for s, size in zip(starts[:-1], sizes, strict=True)]
