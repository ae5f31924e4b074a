"""Waymo detection metrics: hand-computed AP/APH cases, the official rules, and a
brute-force reference (per frame, shard, cutoff and level, as the official tool loops)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from perceive.datasets.types import Boxes3D
from perceive.errors import ConfigError, DataError
from perceive.evaluation import (
    DetectionMetricsConfig,
    FrameDetections,
    average_precision,
    breakdown_names,
    evaluate_detections,
)
from perceive.geometry.iou import box_iou_3d

VEH, PED, SIGN, CYC = 1, 2, 3, 4
CAR = (4.0, 2.0, 1.5)  # length, width, height
PERSON = (0.8, 0.8, 1.8)


def gt_frame(rows, key=("seg", 100), points=None, difficulty=None) -> FrameDetections:
    """rows: (x, y, z, (l, w, h), heading, type)."""
    n = len(rows)
    return FrameDetections(
        context_name=key[0],
        timestamp_us=key[1],
        boxes=Boxes3D(
            center=np.array([r[:3] for r in rows], float).reshape(n, 3),
            size=np.array([r[3] for r in rows], float).reshape(n, 3),
            heading=np.array([r[4] for r in rows], float),
            type=np.array([r[5] for r in rows]),
            num_lidar_points=np.full(n, 100) if points is None else points,
            difficulty=difficulty,
        ),
    )


def pred_frame(rows, scores, key=("seg", 100), nlz=None) -> FrameDetections:
    n = len(rows)
    arr = np.array([[*r[:3], *r[3], r[4]] for r in rows], float).reshape(n, 7)
    types = np.array([r[5] for r in rows], int)
    return FrameDetections.from_arrays(key[0], key[1], arr, scores, types, overlap_with_nlz=nlz)


# --- average precision ---

# 2 ground truths, predictions scored 0.9 (hit), 0.6 (miss), 0.3 (hit):
# cutoffs <= 0.3: P 2/3 R 1; (0.3, 0.6]: P 1/2 R 1/2; (0.6, 0.9]: P 1 R 1/2; above: R 0.
# Curve: R 1 -> P 2/3, points every 0.05 down to 0.55 at 2/3, then R 0.5 -> P 1 down to 0.
HAND_AP = 0.45 * (2 / 3) + 0.05 * (2 / 3 + 1) / 2 + 0.5 * 1.0


def test_average_precision_hand_computed_curve():
    p = np.array([2 / 3] * 31 + [0.5] * 30 + [1.0] * 30 + [1.0] * 10)
    r = np.array([1.0] * 31 + [0.5] * 30 + [0.5] * 30 + [0.0] * 10)
    assert average_precision(p, r) == pytest.approx(HAND_AP, abs=1e-6)


def test_average_precision_edge_cases():
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0
    assert average_precision(np.ones(5), np.zeros(5)) == 0.0  # never leaves recall 0
    assert average_precision(np.ones(3), np.array([1.0, 1.0, 0.0])) == pytest.approx(1.0, abs=1e-6)
    # One point at recall 0.2 with precision 0.5: the recall-0 point takes 0.5 too.
    assert average_precision(np.array([0.5]), np.array([0.2])) == pytest.approx(0.1, abs=1e-6)
    # A coarser recall step inserts fewer points: recall 1 at precision 0.5, step 0.5.
    assert average_precision(np.array([0.5]), np.array([1.0]), recall_delta=0.5) == pytest.approx(
        0.5, abs=1e-6
    )


def test_average_precision_keeps_best_precision_per_recall_and_running_max():
    # Recall 0.5 reached with precision 0.4 and 0.8: 0.8 counts; the lower precision at
    # recall 1 does not pull the curve down below it.
    p = np.array([0.3, 0.4, 0.8])
    r = np.array([1.0, 0.5, 0.5])
    expected = 0.45 * 0.3 + 0.05 * (0.3 + 0.8) / 2 + 0.5 * 0.8
    assert average_precision(p, r) == pytest.approx(expected, abs=1e-6)


# --- end to end on boxes ---


def test_two_ground_truths_three_predictions():
    gt = gt_frame([(10, 0, 0, CAR, 0.0, VEH), (20, 5, 0, CAR, 0.0, VEH)])
    pr = pred_frame(
        [(10, 0, 0, CAR, 0.0, VEH), (-20, 5, 0, CAR, 0.0, VEH), (20, 5, 0, CAR, 0.0, VEH)],
        [0.9, 0.6, 0.3],
    )
    m = evaluate_detections([pr], [gt])
    for name in (
        "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1",
        "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2",
        "RANGE_TYPE_VEHICLE_[0, 30)_LEVEL_2",
    ):
        b = m[name]
        assert b.ap == pytest.approx(HAND_AP, abs=1e-6)
        assert b.aph == pytest.approx(HAND_AP, abs=1e-6)
        assert b.num_ground_truth == 2
    b = m["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    np.testing.assert_array_equal(b.tp[[0, 30, 31, 60, 61, 90, 91, 100]], [2, 2, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(b.fp[[0, 30, 31, 60, 61, 90, 91, 100]], [1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(b.fn[[0, 30, 31, 91]], [0, 0, 1, 2])
    assert m["OBJECT_TYPE_TYPE_PEDESTRIAN_LEVEL_2"].ap == 0.0
    assert m.mean_ap_l2 == pytest.approx(HAND_AP / 3, abs=1e-6)


def test_heading_accuracy_weights_aph():
    # A square footprint turned by 90 degrees is the same box (IoU 1), heading accuracy 1/2.
    sq = (2.0, 2.0, 1.5)
    gt = gt_frame([(10, 0, 0, sq, 0.3, VEH)])
    pr = pred_frame([(10, 0, 0, sq, 0.3 + math.pi / 2, VEH)], [0.8])
    b = evaluate_detections([pr], [gt])["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert b.ap == pytest.approx(1.0, abs=1e-6)
    # One point (recall 1, heading-weighted precision 0.5): the curve is flat at 0.5.
    assert b.aph == pytest.approx(0.5, abs=1e-6)
    assert b.precision_ha[0] == pytest.approx(0.5)
    # Headings differing by 2 pi minus a little are nearly the same heading.
    pr2 = pred_frame([(10, 0, 0, sq, 0.3 - 2 * math.pi + 0.01 * math.pi, VEH)], [0.8])
    b2 = evaluate_detections([pr2], [gt])["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert b2.aph == pytest.approx(0.99, abs=1e-5)
    # Opposite heading: still a match (IoU 1) with heading accuracy 0.
    pr3 = pred_frame([(10, 0, 0, CAR, math.pi, VEH)], [0.8])
    b3 = evaluate_detections([pr3], [gt_frame([(10, 0, 0, CAR, 0.0, VEH)])])[
        "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"
    ]
    assert (b3.ap, b3.aph) == (pytest.approx(1.0, abs=1e-6), pytest.approx(0.0, abs=1e-6))


def test_difficulty_levels_and_dropped_ground_truth():
    gt = gt_frame(
        [
            (10, 0, 0, CAR, 0.0, VEH),  # 100 points, no difficulty -> LEVEL_1
            (20, 0, 0, CAR, 0.0, VEH),  # 3 points, no difficulty -> LEVEL_2
            (30, 0, 0, CAR, 0.0, VEH),  # many points but labelled LEVEL_2
            (40, 0, 0, CAR, 0.0, VEH),  # no points: dropped
        ],
        points=np.array([100, 3, 50, 0]),
        difficulty=np.array([0, 0, 2, 1]),
    )
    pr = pred_frame([(20, 0, 0, CAR, 0.0, VEH), (40, 0, 0, CAR, 0.0, VEH)], [0.9, 0.9])
    m = evaluate_detections([pr], [gt])
    assert m.num_ground_truth == 3 and m.num_ground_truth_dropped == 1
    l1, l2 = m["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"], m["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert (l1.num_ground_truth, l2.num_ground_truth) == (1, 3)
    # The hit on the LEVEL_2 box is a true positive at LEVEL_1 too; the prediction on the
    # dropped box is a false positive. LEVEL_1: TP 1, FP 1, FN 1 (the LEVEL_1 box).
    assert (l1.tp[0], l1.fp[0], l1.fn[0]) == (1, 1, 1)
    assert (l2.tp[0], l2.fp[0], l2.fn[0]) == (1, 1, 2)
    # Recall 1/2 at precision 1/2, recall 0 above 0.9: AP = 0.5 * 0.5; LEVEL_2: 1/3 * 1/2.
    assert l1.ap == pytest.approx(0.25, abs=1e-6)
    assert l2.ap == pytest.approx(1 / 6, abs=1e-6)


def test_unmatched_level2_ground_truth_is_no_miss_at_level1():
    gt = gt_frame([(10, 0, 0, CAR, 0.0, VEH), (20, 0, 0, CAR, 0.0, VEH)], points=np.array([100, 2]))
    pr = pred_frame([(10, 0, 0, CAR, 0.0, VEH)], [0.7])
    m = evaluate_detections([pr], [gt])
    assert m["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1"].ap == pytest.approx(1.0, abs=1e-6)
    assert m["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"].ap == pytest.approx(0.5, abs=1e-6)


def test_range_breakdown_uses_each_objects_own_centre_distance():
    # Range is the 3D distance of the box centre (the official breakdown generator):
    # (29, 0, 8) is 30.08 m away, so it belongs to [30, 50).
    gt = gt_frame([(5, 0, 0, CAR, 0.0, VEH), (29, 0, 8, CAR, 0.0, VEH), (0, 60, 0, CAR, 0.0, VEH)])
    pr = pred_frame([(5, 0, 0, CAR, 0.0, VEH), (29, 0, 8, CAR, 0.0, VEH)], [0.9, 0.9])
    m = evaluate_detections([pr], [gt])
    assert m["RANGE_TYPE_VEHICLE_[0, 30)_LEVEL_1"].num_ground_truth == 1
    assert m["RANGE_TYPE_VEHICLE_[30, 50)_LEVEL_1"].num_ground_truth == 1
    assert m["RANGE_TYPE_VEHICLE_[50, +inf)_LEVEL_1"].num_ground_truth == 1
    assert m["RANGE_TYPE_VEHICLE_[0, 30)_LEVEL_1"].ap == pytest.approx(1.0, abs=1e-6)
    assert m["RANGE_TYPE_VEHICLE_[30, 50)_LEVEL_1"].ap == pytest.approx(1.0, abs=1e-6)
    assert m["RANGE_TYPE_VEHICLE_[50, +inf)_LEVEL_1"].ap == 0.0
    # A prediction just across a range boundary from its ground truth matches in the
    # OBJECT_TYPE breakdown but is a miss plus a false positive in the RANGE breakdown.
    gt2 = gt_frame([(29.9, 0, 0, CAR, 0.0, VEH)])
    pr2 = pred_frame([(30.05, 0, 0, CAR, 0.0, VEH)], [0.9])
    m2 = evaluate_detections([pr2], [gt2])
    assert m2["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"].ap == pytest.approx(1.0, abs=1e-6)
    near, mid = m2["RANGE_TYPE_VEHICLE_[0, 30)_LEVEL_2"], m2["RANGE_TYPE_VEHICLE_[30, 50)_LEVEL_2"]
    assert (near.tp[0], near.fp[0], near.fn[0], near.ap) == (0, 0, 1, 0.0)
    assert (mid.tp[0], mid.fp[0], mid.fn[0], mid.ap) == (0, 1, 0, 0.0)


def test_empty_predictions_and_empty_ground_truth():
    gt = gt_frame([(10, 0, 0, CAR, 0.0, VEH), (5, 3, 0, PERSON, 0.0, PED)])
    m = evaluate_detections([], [gt])
    assert all(b.ap == 0.0 and b.aph == 0.0 for b in m.breakdowns)
    assert m["OBJECT_TYPE_TYPE_PEDESTRIAN_LEVEL_2"].fn[0] == 1
    assert m.num_predictions == 0 and m.num_frames == 1
    pr = pred_frame([(10, 0, 0, CAR, 0.0, VEH)], [0.9])
    m2 = evaluate_detections([pr], [])
    assert all(b.ap == 0.0 for b in m2.breakdowns)
    assert m2["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"].fp[0] == 1
    m3 = evaluate_detections([], [])
    assert m3.num_frames == 0 and m3.mean_aph_l2 == 0.0
    assert len(m3.breakdowns) == 32


def test_no_label_zone_predictions_are_not_false_positives():
    gt = gt_frame([(10, 0, 0, CAR, 0.0, VEH)])
    pr = pred_frame(
        [(10, 0, 0, CAR, 0.0, VEH), (-15, 0, 0, CAR, 0.0, VEH), (25, 9, 0, CAR, 0.0, VEH)],
        [0.5, 0.9, 0.9],
        nlz=np.array([True, True, False]),
    )
    b = evaluate_detections([pr], [gt])["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    # The flagged hit still counts; the flagged miss is ignored; the other miss is an FP.
    assert (b.tp[0], b.fp[0], b.fn[0]) == (1, 1, 0)


def test_matching_needs_same_type_and_the_types_iou_threshold():
    # Shift along the length: IoU of equal boxes is (l - d) / (l + d).
    d = 0.8  # pedestrian-sized boxes, l = 4 would be a car; use a long box for both types
    big = (4.0, 2.0, 1.5)
    iou = (4 - d) / (4 + d)
    assert 0.5 < iou < 0.7
    gt = gt_frame([(10, 0, 0, big, 0.0, VEH), (10, 10, 0, big, 0.0, CYC)])
    pr = pred_frame([(10 + d, 0, 0, big, 0.0, VEH), (10 + d, 10, 0, big, 0.0, CYC)], [0.9, 0.9])
    m = evaluate_detections([pr], [gt])
    assert m["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"].tp[0] == 0  # 0.667 < 0.7
    assert m["OBJECT_TYPE_TYPE_CYCLIST_LEVEL_2"].tp[0] == 1  # 0.667 >= 0.5
    # A perfect box of the wrong type matches nothing.
    pr2 = pred_frame([(10, 0, 0, big, 0.0, PED)], [0.9])
    m2 = evaluate_detections([pr2], [gt])
    assert m2["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"].tp[0] == 0
    assert m2["OBJECT_TYPE_TYPE_PEDESTRIAN_LEVEL_2"].fp[0] == 1


def test_hungarian_matching_maximises_total_iou():
    # Ground truth A at x=0 and B at x=1; prediction 1 (score 0.9) at x=0.45 overlaps
    # both (IoU 0.798 with A, 0.758 with B), prediction 2 (score 0.5) at x=-0.3 only A
    # (0.860). With both, the best assignment is 1-B, 2-A: two hits. With prediction 1
    # alone it takes A (the larger IoU).
    gt = gt_frame([(0, 0, 0, CAR, 0.0, VEH), (1.0, 0, 0, CAR, 0.0, VEH)])
    pr = pred_frame([(0.45, 0, 0, CAR, 0.0, VEH), (-0.3, 0, 0, CAR, 0.0, VEH)], [0.9, 0.5])
    b = evaluate_detections([pr], [gt])["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert (b.tp[50], b.fp[50], b.fn[50]) == (2, 0, 0)
    assert (b.tp[51], b.fp[51], b.fn[51]) == (1, 0, 1)
    assert (b.tp[91], b.fp[91], b.fn[91]) == (0, 0, 2)


def test_frames_are_matched_by_key():
    gt = gt_frame([(10, 0, 0, CAR, 0.0, VEH)], key=("seg", 100))
    pr = pred_frame([(10, 0, 0, CAR, 0.0, VEH)], [0.9], key=("seg", 200))
    m = evaluate_detections([pr], [gt])
    b = m["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert m.num_frames == 2 and (b.tp[0], b.fp[0], b.fn[0]) == (0, 1, 1)
    # Two prediction entries for one frame are merged.
    pa = pred_frame([(10, 0, 0, CAR, 0.0, VEH)], [0.9], key=("seg", 100))
    pb = pred_frame([(30, 0, 0, CAR, 0.0, VEH)], [0.9], key=("seg", 100))
    b2 = evaluate_detections([pa, pb], [gt])["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert (b2.tp[0], b2.fp[0]) == (1, 1)


def test_score_cutoffs_include_scores_equal_to_a_cutoff():
    gt = gt_frame([(10, 0, 0, CAR, 0.0, VEH)])
    for score, last in ((1.0, 100), (0.5, 50), (0.07, 7), (0.0, 0)):
        b = evaluate_detections([pred_frame([(10, 0, 0, CAR, 0.0, VEH)], [score])], [gt])[
            "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"
        ]
        assert b.tp[last] == 1
        assert last == 100 or b.tp[last + 1] == 0


def test_breakdown_names_are_the_official_ones():
    names = breakdown_names()
    assert len(names) == 32
    assert names[:2] == ["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_1", "OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert "OBJECT_TYPE_TYPE_SIGN_LEVEL_2" in names
    assert "RANGE_TYPE_PEDESTRIAN_[30, 50)_LEVEL_1" in names
    assert names[-1] == "RANGE_TYPE_CYCLIST_[50, +inf)_LEVEL_2"


def test_to_dict_is_json_and_table_lists_every_breakdown():
    gt = gt_frame([(10, 0, 0, CAR, 0.0, VEH)])
    m = evaluate_detections([pred_frame([(10, 0, 0, CAR, 0.0, VEH)], [0.9])], [gt])
    d = json.loads(json.dumps(m.to_dict()))
    assert d["breakdowns"]["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]["ap"] == pytest.approx(1.0, abs=1e-6)
    assert len(d["breakdowns"]["RANGE_TYPE_VEHICLE_[0, 30)_LEVEL_1"]["curve"]["recall"]) == 101
    assert d["mean_aph_l2"] == pytest.approx(1 / 3, abs=1e-6)
    assert "curve" not in m.to_dict(curves=False)["breakdowns"]["OBJECT_TYPE_TYPE_SIGN_LEVEL_1"]
    table = m.table()
    assert all(name in table for name in breakdown_names())
    with pytest.raises(KeyError, match="no breakdown"):
        m["VEHICLE"]


def test_config_checks():
    with pytest.raises(ConfigError):
        DetectionMetricsConfig(iou_thresholds=(0.7, 0.5, 0.5))  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        DetectionMetricsConfig(iou_thresholds=(0.7, 0.5, 0.0, 0.5))
    with pytest.raises(ConfigError):
        DetectionMetricsConfig(score_cutoffs=(0.5, 0.2))
    with pytest.raises(ConfigError):
        DetectionMetricsConfig(recall_delta=0.0)
    assert len(DetectionMetricsConfig().score_cutoffs) == 101


def test_non_finite_prediction_is_an_error_naming_the_frame():
    gt = gt_frame([(10, 0, 0, CAR, 0.0, VEH)])
    pr = pred_frame([(10, 0, 0, CAR, 0.0, VEH), (np.nan, 0, 0, CAR, 0.0, VEH)], [0.9, 0.9])
    with pytest.raises(DataError, match=r"prediction 1 of frame \('seg', 0, 100\)"):
        evaluate_detections([pr], [gt])


# --- brute-force reference: the official loops written out plainly ---


def _reference(preds: list[FrameDetections], gts: list[FrameDetections]) -> dict[str, tuple]:
    thr = {1: 0.7, 2: 0.5, 3: 0.5, 4: 0.5}
    cutoffs = np.array([i * 0.01 for i in range(100)] + [1.0], np.float32)
    keys = sorted({f.key for f in preds} | {f.key for f in gts})

    def shard_ids(f: FrameDetections) -> list[tuple[int, int]]:
        out = []
        for t, c in zip(f.boxes.type, f.boxes.center, strict=True):
            if not 1 <= t <= 4:
                out.append((-1, -1))
                continue
            r = math.sqrt(float(c @ c))
            out.append((int(t) - 1, 4 + 3 * (int(t) - 1) + (0 if r < 30 else 1 if r < 50 else 2)))
        return out

    counts = {s: np.zeros((2, 101, 4)) for s in range(16)}  # level, cutoff, (tp, ha, fp, fn)
    gt_num = {s: [0, 0] for s in range(16)}
    for key in keys:
        pf = [f for f in preds if f.key == key]
        gf = [f for f in gts if f.key == key]
        P = FrameDetections(
            key[0],
            key[2],
            Boxes3D.concat(f.boxes for f in pf),
            np.concatenate([f.scores for f in pf]) if pf else np.zeros(0),
            np.concatenate([f.overlap_with_nlz for f in pf]) if pf else np.zeros(0, bool),
            camera_name=key[1],
        )
        G = Boxes3D.concat(f.boxes for f in gf)
        G = G[np.nonzero(G.num_lidar_points > 0)[0]]
        gdiff = np.where(G.difficulty == 0, np.where(G.num_lidar_points <= 5, 2, 1), G.difficulty)
        Gd = FrameDetections(key[0], key[2], G, camera_name=key[1])
        psh, gsh = shard_ids(P), shard_ids(Gd)
        pa = np.c_[P.boxes.center, P.boxes.size, P.boxes.heading]
        ga = np.c_[G.center, G.size, G.heading]
        iou = box_iou_3d(pa, ga).astype(np.float32)
        for gen in (0, 1):
            for s in range(16):
                pin = [i for i in range(len(P)) if psh[i][gen] == s]
                gin = [j for j in range(len(G)) if gsh[j][gen] == s]
                for lv in (1, 2):
                    gt_num[s][lv - 1] += sum(gdiff[j] <= lv for j in gin)
                for ci, c in enumerate(cutoffs):
                    sub = [i for i in pin if P.scores[i] >= c]
                    w = np.zeros((len(sub), len(gin)))
                    ok = np.zeros((len(sub), len(gin)), bool)
                    for a, i in enumerate(sub):
                        for b, j in enumerate(gin):
                            if P.boxes.type[i] == G.type[j] and iou[i, j] >= np.float32(
                                thr[int(G.type[j])]
                            ):
                                ok[a, b] = True
                                w[a, b] = round(float(iou[i, j]) * 1e6)
                    rows, cols = (
                        linear_sum_assignment(w, maximize=True) if sub and gin else ([], [])
                    )
                    pairs = [(sub[a], gin[b]) for a, b in zip(rows, cols, strict=True) if ok[a, b]]
                    mp = {i for i, _ in pairs}
                    mg = {j for _, j in pairs}
                    ha = 0.0
                    for i, j in pairs:
                        d = abs(
                            (P.boxes.heading[i] + math.pi) % (2 * math.pi)
                            - (G.heading[j] + math.pi) % (2 * math.pi)
                        )
                        d = 2 * math.pi - d if d > math.pi else d
                        ha += min(1.0, max(0.0, 1 - d / math.pi))
                    fp = sum(1 for i in sub if i not in mp and not P.overlap_with_nlz[i])
                    for lv in (1, 2):
                        fn = sum(1 for j in gin if j not in mg and gdiff[j] <= lv)
                        counts[s][lv - 1, ci] += (len(pairs), ha, fp, fn)
    out = {}
    names = breakdown_names()
    for s in range(16):
        for lv in (1, 2):
            tp, ha, fp, fn = counts[s][lv - 1].T
            with np.errstate(invalid="ignore", divide="ignore"):
                prec = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
                prech = np.where(tp + fp > 0, ha / (tp + fp), 0.0)
                rec = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
            prec[rec == 0] = 1.0
            prech[rec == 0] = 1.0
            out[names[2 * s + lv - 1]] = (
                tp,
                fp,
                fn,
                average_precision(prec, rec),
                average_precision(prech, rec),
                gt_num[s][lv - 1],
            )
    return out


def _random_scene(
    rng: np.random.Generator, n_frames: int
) -> tuple[list[FrameDetections], list[FrameDetections]]:
    sizes = {VEH: CAR, PED: PERSON, SIGN: (0.3, 0.8, 0.8), CYC: (1.8, 0.7, 1.7)}
    preds, gts = [], []
    for f in range(n_frames):
        key = (f"seg{f % 2}", 1000 * f)
        n = int(rng.integers(0, 9))
        types = rng.choice([VEH, PED, SIGN, CYC, 0], n, p=[0.4, 0.3, 0.1, 0.15, 0.05])
        rad = rng.uniform(0, 70, n)
        ang = rng.uniform(-np.pi, np.pi, n)
        center = np.c_[rad * np.cos(ang), rad * np.sin(ang), rng.uniform(-1, 2, n)]
        size = np.array([sizes.get(int(t), CAR) for t in types]).reshape(n, 3) * rng.uniform(
            0.8, 1.2, (n, 3)
        )
        heading = rng.uniform(-np.pi, np.pi, n)
        points = rng.choice([0, 2, 5, 6, 50], n)
        diff = rng.choice([0, 0, 1, 2], n)
        g = Boxes3D(
            center=center,
            size=size,
            heading=heading,
            type=types,
            num_lidar_points=points,
            difficulty=diff,
        )
        gts.append(FrameDetections(key[0], key[1], g))
        # Predictions: noisy copies (some twice), type confusions, and clutter.
        rows, scores, ptypes = [], [], []
        for i in range(n):
            for _ in range(int(rng.choice([0, 1, 1, 2]))):
                noise = rng.normal(0, [0.15, 0.15, 0.1, 0.1, 0.05, 0.05, 0.3])
                b = np.r_[center[i], size[i], heading[i]] + noise
                b[3:6] = np.abs(b[3:6]) + 0.05
                rows.append(b)
                ptypes.append(types[i] if rng.random() > 0.1 else rng.integers(1, 5))
                scores.append(rng.choice([rng.random(), 0.5, 1.0, 0.0], p=[0.85, 0.05, 0.05, 0.05]))
        for _ in range(int(rng.integers(0, 4))):
            rows.append(np.r_[rng.uniform(-60, 60, 2), 0.5, CAR, rng.uniform(-3, 3)])
            ptypes.append(int(rng.integers(1, 5)))
            scores.append(rng.random())
        arr = np.array(rows).reshape(-1, 7)
        nlz = rng.random(arr.shape[0]) < 0.1
        preds.append(
            FrameDetections.from_arrays(
                key[0], key[1], arr, np.array(scores), np.array(ptypes, int), overlap_with_nlz=nlz
            )
        )
    return preds, gts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    preds, gts = _random_scene(rng, 6)
    m = evaluate_detections(preds, gts)
    ref = _reference(preds, gts)
    assert sum(int(b.tp[0]) for b in m.breakdowns) > 10  # the scene has matches
    for b in m.breakdowns:
        tp, fp, fn, ap, aph, n_gt = ref[b.name]
        np.testing.assert_array_equal(b.tp, tp, err_msg=b.name)
        np.testing.assert_array_equal(b.fp, fp, err_msg=b.name)
        np.testing.assert_array_equal(b.fn, fn, err_msg=b.name)
        assert b.num_ground_truth == n_gt, b.name
        assert b.ap == pytest.approx(ap, abs=1e-6), b.name
        assert b.aph == pytest.approx(aph, abs=1e-5), b.name


def test_crowded_scene_matches_reference():
    # Many predictions piled on a tight group of overlapping ground truths: matching
    # components with several ground truths and predictions.
    rng = np.random.default_rng(7)
    center = np.c_[rng.uniform(0, 1.2, 6), rng.uniform(0, 1.2, 6), np.zeros(6)]
    gt = FrameDetections(
        "s",
        1,
        Boxes3D(
            center=center,
            size=np.tile(PERSON, (6, 1)),
            heading=np.zeros(6),
            type=np.full(6, PED),
            num_lidar_points=np.full(6, 9),
        ),
    )
    rows = np.c_[
        center[rng.integers(0, 6, 30)] + rng.normal(0, 0.1, (30, 3)),
        np.tile(PERSON, (30, 1)),
        rng.normal(0, 0.2, 30),
    ]
    pr = FrameDetections.from_arrays("s", 1, rows, rng.random(30), np.full(30, PED))
    m = evaluate_detections([pr], [gt])
    ref = _reference([pr], [gt])
    for b in m.breakdowns:
        np.testing.assert_array_equal(b.tp, ref[b.name][0], err_msg=b.name)
        np.testing.assert_array_equal(b.fp, ref[b.name][1], err_msg=b.name)
        assert b.aph == pytest.approx(ref[b.name][4], abs=1e-5), b.name
    assert m["OBJECT_TYPE_TYPE_PEDESTRIAN_LEVEL_2"].tp[0] >= 3


def test_case_of_the_official_tool_one_shard():
    # The official detection_metrics_test "OneShard" case: a box of IoU 0.9 scored 0.0
    # and one of IoU 0.6 scored 0.5 against one ground truth, cutoffs 0, 0.5, 1; every
    # box is 1 x 1 x 1 metres in cross-section and 100 * IoU long, so IoUs are exact.
    cfg = DetectionMetricsConfig(iou_thresholds=(0.5, 0.5, 0.5, 0.5), score_cutoffs=(0.0, 0.5, 1.0))

    def box(iou):
        return (0.0, 0.0, 0.0, (100 * iou, 1.0, 1.0), 0.0, VEH)

    frames = [("a", 1), ("b", 2)]
    gts = [gt_frame([box(1.0)], key=k) for k in frames]
    preds = [pred_frame([box(0.9), box(0.6)], [0.0, 0.5], key=k) for k in frames]
    b = evaluate_detections(preds[:1], gts[:1], cfg)["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    assert b.tp.tolist() == [1, 1, 0] and b.fp.tolist() == [1, 0, 0] and b.fn.tolist() == [0, 0, 1]
    b2 = evaluate_detections(preds, gts, cfg)["OBJECT_TYPE_TYPE_VEHICLE_LEVEL_2"]
    # Precision 0.5 and 1.0 at recall 1: AP 1 (the official expectation).
    assert b2.ap == pytest.approx(1.0, abs=1e-6) and b2.aph == pytest.approx(1.0, abs=1e-6)
