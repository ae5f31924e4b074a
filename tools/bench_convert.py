"""Benchmark of the dataset conversion and of the training data loader.

Generates Waymo v1 segments with :func:`perceive.datasets.waymo.fixtures.make_frame` at
realistic sensor sizes (TOP 64 x 2650, other lasers 200 x 600, 1920 x 1280 / 1920 x 886
JPEGs of smooth synthetic pictures), or uses existing ``.tfrecord`` files (``--src``),
then prints:

* conversion to the cache with 1 and 2 workers: frames per second, speed-up, CPU seconds
  per frame, and the peak memory (PSS) of the whole process tree (sampled every 50 ms);
* DataLoader samples per second from the cache against reading the TFRecords directly
  (same dataset config, same number of loader workers).

Run: ``.venv/bin/python tools/bench_convert.py [--segments 2 --frames 6]``. Figures depend
on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from _cli import at_least, run  # tools/_cli.py (this folder is on sys.path)


def _smooth_jpeg(rng: np.random.Generator, width: int, height: int) -> bytes:
    """A JPEG of a smooth picture with some texture (compresses like a photo, unlike noise)."""
    import cv2

    from perceive.datasets.image import encode_jpeg

    small = rng.integers(0, 255, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.clip(img.astype(np.int16) + rng.integers(-12, 12, img.shape, dtype=np.int16), 0, 255)
    return encode_jpeg(img.astype(np.uint8), quality=90)


def generate(out: Path, segments: int, frames: int, scale: float) -> list[Path]:
    """Write ``segments`` v1 files of ``frames`` realistic-size frames each."""
    from perceive.datasets.waymo.fixtures import make_frame
    from perceive.datasets.waymo.v1_writer import write_segment

    top = (64, int(2650 * scale))
    side = (200, int(600 * scale))
    paths = []
    for s in range(segments):
        rng = np.random.default_rng(s)

        def frames_of(s: int = s, rng: np.random.Generator = rng):
            for i in range(frames):
                f = make_frame(
                    1000 * s + i, top_shape=top, side_shape=side, image_size=(64, 48), num_boxes=40
                )
                # Full-size smooth images replace the tiny noise ones; calibrations follow.
                cams, imgs = {}, {}
                for name, cal in f.cameras.items():
                    w, h = (
                        (1920, 1280)
                        if name in ("FRONT", "FRONT_LEFT", "FRONT_RIGHT")
                        else (1920, 886)
                    )
                    cams[name] = cal.resized(w, h)
                    imgs[name] = _smooth_jpeg(rng, w, h)
                ctx = dataclasses.replace(f.context, segment=f"bench_{s:03d}")
                yield dataclasses.replace(f, context=ctx, cameras=cams, image_bytes=imgs)

        path = out / f"bench_{s:03d}.tfrecord"
        write_segment(path, frames_of())
        paths.append(path)
    return paths


class PeakMemory:
    """Samples the memory of this process and its children in a thread.

    Counts the proportional set size (PSS: shared pages split between the processes
    sharing them), so forked workers are not counted twice.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_full_info().pss
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu_seconds() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def bench_conversion(src: Path, work: Path, workers: int) -> tuple[float, int, int, float]:
    """Convert ``src`` to a fresh cache.

    Returns:
        (frames/s, frames, peak RSS bytes, CPU seconds per frame of the process tree).
    """
    from perceive.convert.runner import run_conversion

    out = work / f"cache_w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    with PeakMemory() as mem:
        c0, t0 = _cpu_seconds(), time.perf_counter()
        s = run_conversion(src, "cache", out, workers=workers, progress_bar=False)
        dt, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    return s.converted / dt, s.converted, mem.peak, cpu / max(s.converted, 1)


def bench_loader(dataset, workers: int, batches: int, batch_size: int) -> float:
    """DataLoader samples per second over ``batches`` batches (after one warm-up batch)."""
    import torch

    from perceive.training.data import collate

    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(0),
        persistent_workers=False,
    )
    it = iter(loader)
    next(it)
    n = 0
    t0 = time.perf_counter()
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        n += len(b)
    return n / (time.perf_counter() - t0)


def cpu_per_sample(dataset, samples: int) -> float:
    """CPU seconds per sample built in this process (after one warm-up sample).

    Unlike wall-clock rates, this does not depend on what else runs on the machine.
    """
    dataset[0]
    c0 = _cpu_seconds()
    for i in range(1, samples + 1):
        dataset[i % len(dataset)]
    return (_cpu_seconds() - c0) / samples


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", help="existing v1 .tfrecord folder (default: generate)")
    ap.add_argument("--segments", type=int, default=2, help="generated segments")
    ap.add_argument("--frames", type=at_least(1), default=6, help="frames per generated segment")
    ap.add_argument(
        "--scale", type=float, default=1.0, help="range-image width scale (1: real size)"
    )
    ap.add_argument("--loader-workers", type=int, default=2, help="DataLoader workers")
    ap.add_argument("--batches", type=int, default=6, help="batches timed per loader")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--work", help="working folder (default: a temporary one, removed)")
    args = ap.parse_args()

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_convert_"))
    try:
        if args.src:
            src = Path(args.src)
        elif list((work / "v1").glob("*.tfrecord")):
            src = work / "v1"
            print(f"reusing the generated segments in {src}")
        else:
            src = work / "v1"
            t0 = time.perf_counter()
            files = generate(src, args.segments, args.frames, args.scale)
            size = sum(f.stat().st_size for f in files) / 1e6
            print(
                f"generated {args.segments} segments x {args.frames} frames "
                f"({size:.0f} MB of TFRecord) in {time.perf_counter() - t0:.1f} s"
            )
        load = os.getloadavg()[0]
        print(f"machine: {psutil.cpu_count()} CPUs, load average {load:.1f} at start")
        rates = {}
        for w in (1, 2):
            fps, n, peak, cpu = bench_conversion(src, work, w)
            rates[w] = fps
            print(
                f"convert -> cache, {w} worker(s): {fps:.2f} frames/s ({n} frames), "
                f"peak memory (PSS) {peak / 1e6:.0f} MB, {cpu:.2f} CPU s/frame"
            )
        print(f"speed-up 2 workers / 1 worker: {rates[2] / rates[1]:.2f}x")
        cache_bytes = sum(p.stat().st_size for p in (work / "cache_w1").rglob("*.pcf"))
        src_bytes = sum(p.stat().st_size for p in Path(src).rglob("*.tfrecord"))
        print(f"cache size {cache_bytes / 1e6:.0f} MB vs TFRecords {src_bytes / 1e6:.0f} MB")
        # torch only now, so that it does not weigh on the conversion's memory figures
        import torch

        from perceive.training.data import DatasetConfig, FrameDataset

        torch.set_num_threads(1)
        cfg = DatasetConfig(image_size=(480, 320))
        fast = dataclasses.replace(cfg, fast_decode=True)
        for name, ds in (
            ("cache", FrameDataset.from_cache(work / "cache_w1", cfg)),
            ("cache, fast_decode", FrameDataset.from_cache(work / "cache_w1", fast)),
            ("TFRecord", FrameDataset.from_v1(src, cfg)),
        ):
            sps = bench_loader(ds, args.loader_workers, args.batches, args.batch_size)
            cps = cpu_per_sample(ds, 6)
            print(
                f"DataLoader from {name}: {sps:.2f} samples/s "
                f"({args.loader_workers} workers, batch {args.batch_size}, 5 cameras at 480x320); "
                f"{cps:.3f} CPU s/sample"
            )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run(main)
