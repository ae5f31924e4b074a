"""An example robot loop: frames from our loader -> :class:`perceive.Detector` -> detections.

This is the shape of the code a robot runs, without ROS: open the model once, then for
every frame call the detector and use the typed result. Frames come from a Waymo v1
``.tfrecord`` file (or generated frames when no file is given); on a robot they would come
from the sensor drivers as numpy arrays, which ``det(points, images, calibration)`` takes
directly.

    python tools/robot_loop.py exports/fusion.onnx --data segment.tfrecord --draw out/
    python tools/robot_loop.py exports/fusion.onnx --generated 5 --device auto --threads 2
    python tools/robot_loop.py exports/fusion.onnx --data segment.tfrecord --numpy

``--draw DIR`` writes a bird's-eye view per frame (points, ground truth solid, detections
dashed) with :mod:`perceive.viz`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from perceive import Detector
from perceive.datasets.types import Frame
from perceive.errors import PerceiveError


def frames_from(data: Path | None, generated: int) -> Iterator[Frame]:
    """Frames of a v1 file, or ``generated`` generated frames."""
    if data is None:
        from perceive.datasets.waymo.fixtures import make_frame

        for seed in range(generated):
            yield make_frame(seed, top_shape=(32, 512), num_boxes=6)
        return
    from perceive.datasets import waymo

    with waymo.open(data) as segment:
        yield from segment


def main(argv: list[str] | None = None) -> int:
    """Run the loop; returns a process exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="exported model (.onnx)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", type=Path, help="a Waymo v1 .tfrecord file")
    src.add_argument(
        "--generated", type=int, default=3, help="number of generated frames (default 3)"
    )
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt", "auto"))
    p.add_argument("--threads", type=int, default=None, help="intra-op threads")
    p.add_argument("--score-threshold", type=float, default=None, help="default: the model's")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument(
        "--numpy",
        action="store_true",
        help="call det(points, images, calibration) like a driver would",
    )
    p.add_argument(
        "--draw", type=Path, default=None, metavar="DIR", help="write a BEV PNG per frame"
    )
    args = p.parse_args(argv)

    try:
        det = Detector(
            args.model,
            device=args.device,
            threads=args.threads,
            score_threshold=args.score_threshold,
        )
    except (PerceiveError, FileNotFoundError) as e:
        print(f"robot_loop: {e}", file=sys.stderr)
        return 1
    print(
        f"{det}: providers {', '.join(det.providers)}; "
        f"session created in {det.session_creation_s * 1e3:.0f} ms"
    )
    if args.draw is not None:
        from perceive.viz import save_bev

        args.draw.mkdir(parents=True, exist_ok=True)

    n = 0
    started = time.perf_counter()
    try:
        for frame in frames_from(args.data, args.generated):
            if args.max_frames is not None and n >= args.max_frames:
                break
            if args.numpy:
                # What a driver hands over: (N, 5) float32 points, RGB images, calibrations.
                points = frame.point_cloud().features(det.info.point_features)
                images = {
                    cam: frame.images[cam] for cam in det.info.cameras if cam in frame.image_bytes
                }
                dets = det(points, images, frame.cameras)
            else:
                dets = det(frame)
            t = dets.timing
            print(
                f"\nframe {n} t={frame.timestamp_us} us: {len(dets)} detections "
                f"in {t.total_s * 1e3:.1f} ms "
                f"(decode {t.decode_s * 1e3:.1f}, preprocess {t.preprocess_s * 1e3:.1f}, "
                f"inference {t.inference_s * 1e3:.1f}, postprocess {t.postprocess_s * 1e3:.1f})"
            )
            print(dets.summary(limit=8))
            if args.draw is not None:
                out = args.draw / f"frame_{n:04d}.png"
                save_bev(
                    out,
                    points=frame.point_cloud(),
                    gt=frame.boxes,
                    pred=dets.to_boxes3d(),
                    scores=dets.scores,
                    title=f"{frame.segment} @ {frame.timestamp_us}: {len(dets)} detections",
                )
                print(f"  drawn: {out}")
            n += 1
    except PerceiveError as e:
        print(f"robot_loop: {e}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - started
    print(
        f"\n{n} frames in {wall:.2f} s "
        f"({n / max(wall, 1e-9):.2f} frames/s including drawing and loading)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
