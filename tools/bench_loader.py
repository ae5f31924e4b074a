"""Benchmark of the Waymo v1 reader: frames per second and milliseconds per stage.

Usage:  python tools/bench_loader.py [SEGMENT] [--frames N] [--repeat R] [--workers W] [--json OUT]

The same as ``perceive bench-loader``. Without SEGMENT, a synthetic segment with
full-size LiDAR and cameras is generated first. For the comparison with the official
TensorFlow utilities see ``tools/bench_loader_tf.py``.
"""

from __future__ import annotations

import sys

from perceive.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench-loader", *sys.argv[1:]]))
