"""Draw a generated frame for the README: five cameras and a BEV of the LiDAR with boxes.

    .venv/bin/python tools/synth_figure.py --out docs/images/synth_frame.png

Generates one frame at the training preset (nothing is read from disk), writes it
through the v1 writer and reads it back, so the picture shows what the file holds.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from perceive.datasets.waymo import v1
from perceive.datasets.waymo.v1_writer import write_segment
from perceive.synth.config import preset
from perceive.synth.generate import SegmentGenerator
from perceive.viz.bev import draw_bev
from perceive.viz.camera import draw_camera
from perceive.viz.common import new_figure, save_figure
from perceive.viz.figures import BEV_POSITION, GRID_POSITIONS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/images/synth_frame.png")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--segment", type=int, default=0)
    ap.add_argument("--frame", type=int, default=0)
    ap.add_argument("--panel-width", type=int, default=480)
    ap.add_argument("--colors", type=int, default=128, help="palette size of the PNG")
    args = ap.parse_args()

    gen = SegmentGenerator(preset("train"), args.seed, args.segment, args.frame + 1)
    sf = gen.frame(args.frame)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame.tfrecord"
        write_segment(path, [sf.frame])
        with v1.Segment(path) as seg:
            frame = seg[0]
            points = frame.point_cloud()
            images = {n: frame.images[n] for n in frame.image_bytes}
    dpi = 100
    pw = args.panel_width / dpi
    fig = new_figure(3 * pw, 2 * pw * 0.7 + 0.5, dpi)
    grid = fig.add_gridspec(
        2, 3, wspace=0.02, hspace=0.08, left=0.01, right=0.99, bottom=0.02, top=0.92
    )
    for name, (r, c) in GRID_POSITIONS.items():
        ax = fig.add_subplot(grid[r, c])
        draw_camera(
            ax,
            images[name],
            frame.cameras[name],
            boxes_2d=frame.camera_boxes.get(name),
            title=f"{name} {frame.cameras[name].width}x{frame.cameras[name].height}",
            max_width=args.panel_width,
        )
    ax = fig.add_subplot(grid[BEV_POSITION])
    draw_bev(
        ax,
        points=points,
        gt=frame.boxes,
        extent=(-30.0, 50.0, -28.0, 28.0),
        title=f"BEV: {len(points)} points",
    )
    counts = {
        t: int((frame.boxes.type == i).sum())
        for i, t in ((1, "vehicles"), (2, "pedestrians"), (4, "cyclists"), (3, "signs"))
    }
    fig.suptitle(
        f"perceive synth (train preset), {frame.segment} frame {args.frame}: "
        + ", ".join(f"{v} {k}" for k, v in counts.items()),
        fontsize=10,
    )
    out = save_figure(fig, args.out, colors=args.colors)
    print(f"{out}: {out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
