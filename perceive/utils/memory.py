"""Process memory settings for data-loading processes.

Decoding a Waymo frame makes tens of megabytes of fresh arrays (five 1920 x 1280 images
are 37 MB) that live until the frame is dropped. glibc's allocator returns such memory
to the kernel when it is freed at the top of the heap (or unmaps it), so the next frame
touches fresh pages again: a page fault per 4 KiB page, or per 2 MiB when transparent
huge pages are at hand. On a virtual machine this costs from nothing to as much as the
JPEG decoding itself, and varies from minute to minute with the host's memory state.

:func:`keep_freed_memory` asks glibc to keep freed memory for reuse instead. It changes
the whole process's allocator, so perceive never calls it on its own: call it at the
start of a process that reads frames in a loop (a DataLoader worker, a conversion job,
a robot's perception process). The cost is resident memory: up to ``trim_threshold_mb``
of freed memory stays mapped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold_mb: int = 64, trim_threshold_mb: int = 512) -> bool:
    """Keep freed memory in the process for reuse (glibc ``mallopt``).

    Args:
        mmap_threshold_mb: allocations smaller than this come from the heap, whose freed
            memory can be reused (glibc's default moves between 128 KiB and 32 MiB).
        trim_threshold_mb: the heap is given back to the kernel only when this much is
            free at its top.

    Returns:
        True if the settings took effect; False where the C library is not glibc (macOS,
        musl): nothing is changed there.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold_mb) << 20) == 1
    return ok and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold_mb) << 20) == 1
