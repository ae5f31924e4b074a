"""The official side of ``tools/check_official_metrics.py``: the Waymo detection metrics op.

Usage:  OFFICIAL_PYTHON tools/_official_metrics_side.py [SCENE.npz ...]

Run by ``tools/check_official_metrics.py`` with the Python of the separate TensorFlow
environment (its docstring says how to set that up). Imports TensorFlow and
``waymo_open_dataset``, never perceive; must stay valid Python 3.10.

For each scene, writes ``SCENE.official.npz`` beside it: ``names`` (breakdowns), ``ap``,
``aph``, ``pr`` and ``pr_ha`` ((breakdowns, cutoffs, 5): precision, recall, TP, FP, FN,
plain and heading weighted), as ``py_metrics_ops.detection_metrics`` returns them. The
first line printed names the versions; without a scene, only that is done.

As the official ``compute_detection_metrics_main`` tool: the config is
``WODDetectionEvaluator._get_default_config()`` (the Python copy of that tool's
``GetConfig()``), and the ground truth is preprocessed as that tool does: objects with no
LiDAR point are dropped, an unknown difficulty becomes LEVEL_2 with at most 5 points,
else LEVEL_1.

Exit status: 0 done, 3 TensorFlow or the op could not be imported, 1 anything else.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

IMPORT_FAILED = 3
LEVEL2_MAX_POINTS = 5


def main(argv: list[str]) -> int:
    if argv in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import numpy as np
        import tensorflow as tf
        from waymo_open_dataset.metrics.ops import py_metrics_ops
        from waymo_open_dataset.metrics.python import config_util_py
        from waymo_open_dataset.metrics.python.wod_detection_evaluator import (
            WODDetectionEvaluator,
        )
    except Exception as e:  # ImportError, or NotFoundError when metrics_ops.so fails to load
        print(
            f"_official_metrics_side: cannot import the official metrics op with "
            f"{sys.executable}: {type(e).__name__}: {e}",
            file=sys.stderr,
        )
        return IMPORT_FAILED

    config = WODDetectionEvaluator()._get_default_config()
    names = np.array(config_util_py.get_breakdown_names_from_config(config))
    wod = [d for d in metadata.distributions() if (d.metadata["Name"] or "").startswith("waymo")]
    version = f"{wod[0].metadata['Name']} {wod[0].version}" if wod else "waymo-open-dataset ?"
    print(f"tensorflow {tf.__version__}, {version}", flush=True)

    for path in map(Path, argv):
        s = np.load(path)
        points, diff, keep = s["gt_points"], s["gt_difficulty"], s["gt_points"] > 0
        diff = np.where(diff == 0, np.where(points <= LEVEL2_MAX_POINTS, 2, 1), diff)
        out = py_metrics_ops.detection_metrics(
            prediction_bbox=tf.constant(s["pd_box"].reshape(-1, 7), tf.float32),
            prediction_type=tf.constant(s["pd_type"], tf.uint8),
            prediction_score=tf.constant(s["pd_score"], tf.float32),
            prediction_frame_id=tf.constant(s["pd_frame"], tf.int64),
            prediction_overlap_nlz=tf.constant(s["pd_nlz"], tf.bool),
            ground_truth_bbox=tf.constant(s["gt_box"][keep].reshape(-1, 7), tf.float32),
            ground_truth_type=tf.constant(s["gt_type"][keep], tf.uint8),
            ground_truth_frame_id=tf.constant(s["gt_frame"][keep], tf.int64),
            ground_truth_difficulty=tf.constant(diff[keep], tf.uint8),
            config=config.SerializeToString(),
        )
        ap, aph, _, pr, pr_ha, _, _ = (o.numpy() for o in out)
        np.savez(path.with_suffix(".official.npz"), names=names, ap=ap, aph=aph, pr=pr, pr_ha=pr_ha)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
