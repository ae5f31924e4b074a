"""OPTIONAL, run by hand: the official Waymo TensorFlow utilities on the same segment as
``tools/bench_loader.py``, stage by stage, for comparison. Not part of the tests.

It needs TensorFlow and the official ``waymo-open-dataset`` package, which pin old
NumPy, protobuf and Python versions, so it runs in a separate, throwaway virtual
environment outside the repository (perceive itself never needs TensorFlow). What we
used (Python 3.10; the package has no wheel for 3.11):

    python3.10 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install waymo-open-dataset-tf-2-12-0==1.6.7 protobuf==3.20.3
    .venv/bin/perceive bench-loader --frames 5 --keep-synthetic /tmp/bench/synth.tfrecord
    /tmp/tfvenv/bin/python tools/bench_loader_tf.py /tmp/bench/synth.tfrecord --frames 5 \
        --dump /tmp/bench/official
    .venv/bin/python tools/check_official_points.py /tmp/bench/synth.tfrecord /tmp/bench/official

The package brings TensorFlow 2.13. The protobuf pin matters: with the protobuf 4 that
pip picks otherwise, ``parse_range_image_and_camera_projection`` fails with "expected
bytes, bytearray found".

Stages, as the official tutorial does them:

- read: next record from ``tf.data.TFRecordDataset``;
- parse: ``dataset_pb2.Frame.FromString``;
- lidar: ``frame_utils.parse_range_image_and_camera_projection`` then
  ``frame_utils.convert_range_image_to_point_cloud`` for return 1 and return 2;
- jpeg: ``tf.io.decode_jpeg`` of every camera image.

TensorFlow runs with ``--threads`` intra- and inter-op threads (default 1, like
perceive's single-threaded figures). This file does not import perceive.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("segment", type=Path, help="a Waymo v1 .tfrecord")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow intra/inter-op threads")
    parser.add_argument(
        "--dump", type=Path, default=None, help="write frame 0's points here (.npy)"
    )
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from waymo_open_dataset import dataset_pb2
    from waymo_open_dataset.utils import frame_utils

    stages = {k: [] for k in ("read", "parse", "lidar", "jpeg", "cpu")}
    npoints = []
    clock, cpu = time.perf_counter, time.process_time
    for rep in range(args.repeat):
        it = iter(tf.data.TFRecordDataset(str(args.segment)))
        for i in range(args.frames):
            c0 = cpu()
            t0 = clock()
            try:
                record = next(it)
            except StopIteration:
                break
            t1 = clock()
            frame = dataset_pb2.Frame.FromString(record.numpy())
            t2 = clock()
            ris, cps, _, top_pose = frame_utils.parse_range_image_and_camera_projection(frame)
            points = []
            for ri_index in (0, 1):
                pts, _ = frame_utils.convert_range_image_to_point_cloud(
                    frame, ris, cps, top_pose, ri_index
                )
                points.append(pts)
            t3 = clock()
            for im in frame.images:
                tf.io.decode_jpeg(im.image).numpy()
            t4 = clock()
            c1 = cpu()
            for k, a, b in (
                ("read", t0, t1),
                ("parse", t1, t2),
                ("lidar", t2, t3),
                ("jpeg", t3, t4),
            ):
                stages[k].append((b - a) * 1000.0)
            stages["cpu"].append((c1 - c0) * 1000.0)
            if rep == 0:
                npoints.append(sum(len(p) for ret in points for p in ret))
                if i == 0 and args.dump is not None:
                    args.dump.mkdir(parents=True, exist_ok=True)
                    for r, ret in enumerate(points):
                        np.save(args.dump / f"points_return{r + 1}.npy", np.concatenate(ret))
                    print(f"wrote the official points of frame 0 to {args.dump}")
            print(f"pass {rep + 1} frame {i + 1}: {(t4 - t0) * 1000:.0f} ms", flush=True)
    med = {k: statistics.median(v) for k, v in stages.items()}
    total = med["read"] + med["parse"] + med["lidar"] + med["jpeg"]
    print()
    print(f"official Waymo utilities (tensorflow {tf.__version__}, {args.threads} thread(s))")
    print(f"segment   {args.segment}")
    print(
        f"frames    {len(npoints)} x {args.repeat} passes; {np.mean(npoints):,.0f} points per frame"
    )
    print(f"{'stage (median ms per frame)':<40}{'official':>10}")
    print(f"{'record read (TFRecordDataset)':<40}{med['read']:>10.2f}")
    print(f"{'protobuf parse':<40}{med['parse']:>10.2f}")
    print(f"{'LiDAR: range images -> points (2 ret.)':<40}{med['lidar']:>10.2f}")
    print(f"{'JPEG decode (tf.io.decode_jpeg)':<40}{med['jpeg']:>10.2f}")
    print(f"{'full frame':<40}{total:>10.2f}")
    print(f"official  {1000.0 / total:.2f} frames/s")
    print(f"CPU time  {med['cpu']:.1f} ms/frame (load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
