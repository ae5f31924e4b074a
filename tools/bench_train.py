"""Training throughput on the CPU, and the model's size and cost per frame.

Prints, for each variant: parameters, checkpoint size, GFLOPs of one single-frame
forward (counted with ``torch.utils.flop_counter.FlopCounterMode``: convolutions,
matrix products, ``grid_sample`` is not counted), inference latency per frame, and
training samples per second (forward + loss + backward + AdamW step; batches built
once in memory, so data loading is excluded unless ``--data`` is given, which times
the full pipeline through a DataLoader).

    .venv/bin/python tools/bench_train.py --threads 2 --steps 5
    .venv/bin/python tools/bench_train.py --data datasets/synth/train --variants fusion
"""

from __future__ import annotations

import argparse
import io
import time

import torch
from _cli import at_least, run  # tools/_cli.py (this folder is on sys.path)
from torch.utils.flop_counter import FlopCounterMode

from perceive.models.build import build_detector, build_loss
from perceive.models.config import DetectorConfig, tiny_config


def random_batch(config: DetectorConfig, batch: int, points: int, boxes: int, seed: int = 0):
    """Frames of random points over the grid, random images and Waymo-like calibration."""
    from perceive.deploy.export import example_inputs

    pts, imgs, intr, ext, pb = [], [], [], [], []
    g = torch.Generator().manual_seed(seed)
    for b in range(batch):
        p, i, k, e = example_inputs(config, points, seed=seed + b)
        pts.append(p)
        pb.append(torch.full((points,), b, dtype=torch.int64))
        imgs.append(i)
        intr.append(k)
        ext.append(e)
    r = torch.tensor(config.grid.point_cloud_range)
    centres = r[:3] + torch.rand(batch, boxes, 3, generator=g) * (r[3:] - r[:3]) * 0.9
    size = torch.tensor([4.5, 2.0, 1.6]).expand(batch, boxes, 3)
    heading = torch.rand(batch, boxes, 1, generator=g) * 6.28 - 3.14
    box = torch.cat([centres, size, heading], dim=-1)
    labels = torch.randint(0, config.num_classes, (batch, boxes), generator=g)
    return (
        (torch.cat(pts), torch.cat(pb), torch.stack(imgs), torch.stack(intr), torch.stack(ext)),
        box,
        labels,
    )


def bench_variant(config: DetectorConfig, args: argparse.Namespace) -> dict[str, float]:
    torch.manual_seed(0)
    model = build_detector(config=config)
    n_params = sum(p.numel() for p in model.parameters())
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    single, _, _ = random_batch(config, 1, args.points, args.boxes)
    frame = (single[0], single[2][0], single[3][0], single[4][0])
    model.eval()
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            model(*frame)
        model(*frame)
        t = time.perf_counter()
        for _ in range(args.steps):
            model(*frame)
        infer_ms = (time.perf_counter() - t) / args.steps * 1e3
    loss_fn = build_loss(config=config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    if args.data:
        from torch.utils.data import DataLoader

        from perceive.training.data import FrameDataset, collate
        from perceive.training.train import dataset_config, open_source

        ds = FrameDataset(open_source(args.data), dataset_config(config, None, 0))
        loader = DataLoader(
            ds,
            batch_size=args.batch_size,
            shuffle=True,
            collate_fn=collate,
            num_workers=args.workers,
        )
        batches = iter(loader)

        def get():
            b = next(batches)
            return (
                (b.points, b.point_batch, b.images, b.intrinsics, b.extrinsics),
                b.boxes,
                b.labels,
            )

    else:
        fixed = random_batch(config, args.batch_size, args.points, args.boxes)

        def get():
            return fixed

    def step():
        inputs, boxes, labels = get()
        hm, reg = model.forward_batch(*inputs)
        out = loss_fn(hm, reg, model.coder.encode(boxes, labels))
        opt.zero_grad()
        out.total.backward()
        opt.step()

    step()  # warm-up
    t = time.perf_counter()
    for _ in range(args.steps):
        step()
    dt = time.perf_counter() - t
    return {
        "params": n_params,
        "mb": len(buf.getvalue()) / 1e6,
        "gflops": counter.get_total_flops() / 1e9,
        "infer_ms": infer_ms,
        "samples_per_s": args.steps * args.batch_size / dt,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["lidar", "camera", "fusion"])
    parser.add_argument("--tiny", action="store_true", help="the tiny test model")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--points", type=int, default=120_000, help="points per generated frame")
    parser.add_argument("--boxes", type=int, default=40, help="boxes per generated frame")
    parser.add_argument("--steps", type=at_least(1), default=5, help="timed steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", nargs="+", help="time real frames through the DataLoader instead")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as perceive.training.train does on the CPU
    base = tiny_config() if args.tiny else DetectorConfig()
    source = (
        "real frames from " + " ".join(args.data)
        if args.data
        else f"{args.points} random points/frame"
    )
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}, {source}")
    header = ("variant", "params", "ckpt MB", "GFLOP/frame", "infer ms", "train samples/s")
    print("{:<8} {:>9} {:>8} {:>12} {:>9} {:>16}".format(*header))
    for v in args.variants:
        r = bench_variant(base.replace(variant=v), args)
        print(
            f"{v:<8} {r['params']:>9,d} {r['mb']:>8.2f} {r['gflops']:>12.2f} {r['infer_ms']:>9.1f} "
            f"{r['samples_per_s']:>16.2f}"
        )


if __name__ == "__main__":
    run(main)
