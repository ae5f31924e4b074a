"""``perceive visualize``: predictions and ground truth on the BEV and the camera images.

Examples::

    perceive visualize exports/fusion.pt --data datasets/synth/val --frames 0 7 --out outputs/viz
    perceive visualize runs/lidar/model.pt runs/camera/model.pt exports/fusion.pt \\
        --data datasets/synth/val --frames 3 --out outputs/compare

One checkpoint: a PNG per frame with the five cameras (projected 3D wireframes) and the
BEV, ground truth solid and predictions dashed. Several checkpoints: also one PNG per
frame with a BEV panel per checkpoint side by side (titled by variant and its mAPH L2
when the checkpoint's provenance has it).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``perceive visualize``."""
    parser.add_argument("checkpoints", nargs="+", type=Path, help="detector checkpoint(s) (.pt)")
    parser.add_argument(
        "--data", nargs="+", required=True, help="v1 .tfrecord files/folders or a cache folder"
    )
    parser.add_argument(
        "--frames", nargs="+", type=int, default=[0], help="frame indices (default 0)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("outputs/viz"), help="output folder of PNGs"
    )
    parser.add_argument(
        "--score", type=float, default=None, help="draw predictions scoring at least this"
    )
    parser.add_argument("--no-points", action="store_true", help="do not draw LiDAR points")


def _title(ckpt_path: Path, model, provenance: dict) -> str:
    val = (provenance.get("metrics") or {}).get("val") or {}
    extra = f", val mAPH L2 {val['mean_aph_l2']:.3f}" if "mean_aph_l2" in val else ""
    return f"{model.config.variant} ({ckpt_path.name}{extra})"


def _where(source: object, index: int, segment: str) -> str:
    """``<segment> frame <k>`` with k the frame's number within its segment (and the index
    into ``--data`` when they differ, as they do past the first segment)."""
    locate = getattr(source, "frame_in_segment", None)  # caches, v1 and v2 sources
    k = None if locate is None else int(locate(index))
    if k is None or k == index:
        return f"{segment} frame {index}"
    return f"{segment} frame {k} (data index {index})"


def run(args: argparse.Namespace) -> int:
    """Draw every requested frame."""
    import numpy as np

    from perceive.datasets.image import decode_jpeg
    from perceive.errors import ConfigError
    from perceive.training.checkpoint import detector_from_checkpoint, load_checkpoint
    from perceive.training.predict import predict_frames
    from perceive.training.train import open_source
    from perceive.viz import draw_bev, new_figure, save_figure, save_grid

    source = open_source([str(d) for d in args.data])
    bad = [i for i in args.frames if not 0 <= i < len(source)]
    if bad:
        raise ConfigError(f"frames {bad} out of range: the data has {len(source)} frames")
    models = []
    for path in args.checkpoints:
        ckpt = load_checkpoint(path)
        models.append((path, detector_from_checkpoint(ckpt), ckpt.provenance))
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for index in args.frames:
        frame = source[index]
        points = None if args.no_points else frame.points
        gt = frame.boxes
        dets = []
        for _, model, _ in models:
            (d,) = predict_frames(model, source, indices=[index], batch_size=1)
            thr = model.config.head.score_threshold if args.score is None else args.score
            keep = d.scores >= thr
            dets.append((d.boxes[np.flatnonzero(keep)], d.scores[keep]))
        stem = f"{frame.segment}_{frame.timestamp_us}"
        where = _where(source, index, frame.segment)
        first_path, first_model, first_prov = models[0]
        images = {
            n: decode_jpeg(frame.image_bytes[n]) for n in frame.image_bytes if n in frame.cameras
        }
        out = save_grid(
            args.out / f"{stem}_{first_model.config.variant}.png",
            images,
            frame.cameras,
            points=points,
            gt=gt,
            pred=dets[0][0],
            scores=dets[0][1],
            title=f"{_title(first_path, first_model, first_prov)}: {where}\n"
            "ground truth solid, predictions dashed",
        )
        written.append(out)
        if len(models) > 1:
            size = 6.0
            fig = new_figure(size * len(models), size + 0.4)
            for k, ((path, model, prov), (boxes, scores)) in enumerate(
                zip(models, dets, strict=True)
            ):
                ax = fig.add_subplot(1, len(models), k + 1)
                r = model.config.grid.point_cloud_range
                draw_bev(
                    ax,
                    points=points,
                    gt=gt,
                    pred=boxes,
                    scores=scores,
                    extent=(r[0], r[3], r[1], r[4]),
                    title=_title(path, model, prov),
                    legend=k == 0,
                )
            fig.suptitle(
                f"{where}: ground truth solid, predictions dashed",
                fontsize=10,
            )
            fig.tight_layout()
            written.append(save_figure(fig, args.out / f"{stem}_compare.png"))
    for p in written:
        print(f"wrote {p}")
    return 0
