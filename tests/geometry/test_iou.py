"""Exact rotated IoU: hand-computed cases, properties, and a scalar reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perceive.geometry.boxes import box_corners
from perceive.geometry.iou import (
    box_iou_3d,
    box_iou_3d_pairs,
    box_iou_bev,
    box_iou_bev_pairs,
    candidate_pairs,
    rotated_rect_intersection,
)

SQRT2 = math.sqrt(2.0)


def box(x=0.0, y=0.0, z=0.0, l=2.0, w=2.0, h=2.0, heading=0.0) -> np.ndarray:
    return np.array([[x, y, z, l, w, h, heading]], dtype=np.float64)


def iou3(a: np.ndarray, b: np.ndarray) -> float:
    return float(box_iou_3d(a, b)[0, 0])


def ioubev(a: np.ndarray, b: np.ndarray) -> float:
    return float(box_iou_bev(a, b)[0, 0])


# --- a slow scalar reference: Sutherland-Hodgman clipping of one polygon by another ---


def _rect_polygon(b: np.ndarray) -> list[tuple[float, float]]:
    c = box_corners(b[None, :3], b[None, 3:6], b[None, 6])[0, :4, :2]
    return [(float(x), float(y)) for x, y in c]


def _clip(poly: list[tuple[float, float]], a: tuple[float, float], b: tuple[float, float]):
    def side(p):
        return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])

    out = []
    for i, cur in enumerate(poly):
        prev = poly[i - 1]
        sc, sp = side(cur), side(prev)
        if (sc >= 0) != (sp >= 0):
            t = sp / (sp - sc)
            out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
        if sc >= 0:
            out.append(cur)
    return out


def _reference_area(a: np.ndarray, b: np.ndarray) -> float:
    poly = _rect_polygon(a)
    clip = _rect_polygon(b)
    for i in range(4):
        if not poly:
            return 0.0
        poly = _clip(poly, clip[i], clip[(i + 1) % 4])
    return 0.5 * abs(
        sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(poly, poly[1:] + poly[:1], strict=True))
    )


def _reference_iou3d(a: np.ndarray, b: np.ndarray) -> float:
    zo = max(0.0, min(a[2] + a[5] / 2, b[2] + b[5] / 2) - max(a[2] - a[5] / 2, b[2] - b[5] / 2))
    inter = _reference_area(a, b) * zo
    union = a[3] * a[4] * a[5] + b[3] * b[4] * b[5] - inter
    return inter / union


# --- hand-computed cases ---


def test_identical_boxes_have_iou_one():
    b = box(3.0, -2.0, 1.0, 4.5, 1.9, 1.6, 0.7)
    assert iou3(b, b) == pytest.approx(1.0, abs=1e-12)
    assert ioubev(b, b) == pytest.approx(1.0, abs=1e-12)


def test_disjoint_boxes_have_iou_zero():
    assert iou3(box(0, 0), box(5, 0)) == 0.0
    assert iou3(box(0, 0, heading=0.3), box(0, 4, heading=1.2)) == 0.0


def test_touching_boxes_have_iou_zero():
    # Sharing a face (opposite orientation of the shared edge) is no overlap.
    assert iou3(box(0, 0), box(2, 0)) == pytest.approx(0.0, abs=1e-12)
    assert iou3(box(0, 0), box(2, 0, heading=math.pi)) == pytest.approx(0.0, abs=1e-12)
    assert iou3(box(0, 0), box(0, 0, 2.0)) == 0.0  # stacked in z


def test_axis_aligned_partial_overlaps():
    # [0,2]^3 and [1,3]x[0,2]x[0,2]: intersection 4, union 12.
    assert iou3(box(1, 1, 1), box(2, 1, 1)) == pytest.approx(1 / 3, abs=1e-12)
    # Corner overlap: [0,2]^2 and [1,3]^2 in BEV: intersection 1, union 7.
    assert ioubev(box(1, 1), box(2, 2)) == pytest.approx(1 / 7, abs=1e-12)
    assert iou3(box(1, 1, 1), box(2, 2, 1)) == pytest.approx(2 / 14, abs=1e-12)
    # Different sizes: 4x2 and 2x2 sharing the left half: intersection 4 (area), union 8.
    assert ioubev(box(0, 0, l=4, w=2), box(-1, 0, l=2, w=2)) == pytest.approx(0.5, abs=1e-12)


def test_square_and_same_square_rotated_45_degrees():
    # The intersection is a regular octagon with inradius 1: area 8 (sqrt 2 - 1).
    inter = 8 * (SQRT2 - 1)
    expected = inter / (8 - inter)  # = 1 / sqrt 2
    assert expected == pytest.approx(1 / SQRT2)
    assert ioubev(box(), box(heading=math.pi / 4)) == pytest.approx(expected, abs=1e-12)
    assert iou3(box(), box(heading=math.pi / 4)) == pytest.approx(expected, abs=1e-12)


def test_diamond_inscribed_in_square():
    # Diamond with vertices (+-1, 0), (0, +-1): side sqrt 2, area 2, inside the 2x2 square.
    assert ioubev(box(), box(l=SQRT2, w=SQRT2, heading=math.pi / 4)) == pytest.approx(
        0.5, abs=1e-12
    )


def test_rotated_corner_poking_into_square():
    # Diamond of half-diagonal 1 centred at x=1.5 enters the square [-1,1]^2 by 0.5:
    # the intersection is a right triangle of area 0.5^2; union 4 + 2 - 0.25.
    b = box(1.5, 0.0, l=SQRT2, w=SQRT2, heading=math.pi / 4)
    assert ioubev(box(), b) == pytest.approx(0.25 / 5.75, abs=1e-12)
    area = rotated_rect_intersection(
        np.array([[0, 0, 2, 2, 0.0]]), np.array([[1.5, 0, SQRT2, SQRT2, math.pi / 4]])
    )
    assert area[0] == pytest.approx(0.25, abs=1e-12)


def test_box_inside_another():
    big = box(l=4, w=4, h=4, heading=0.3)
    small = box(0.2, -0.1, 0.5, 2, 2, 2, heading=1.1)  # half-diagonal sqrt 2 < 2 - 0.23
    assert iou3(big, small) == pytest.approx(8 / 64, abs=1e-12)
    assert iou3(small, big) == pytest.approx(8 / 64, abs=1e-12)


def test_height_only_overlap():
    # Same footprint, z intervals [0, 2] and [1, 3].
    assert iou3(box(z=1.0), box(z=2.0)) == pytest.approx(1 / 3, abs=1e-12)
    assert ioubev(box(z=1.0), box(z=2.0)) == pytest.approx(1.0, abs=1e-12)
    assert iou3(box(z=0.0), box(z=5.0)) == 0.0


def test_heading_plus_pi_is_the_same_box():
    rng = np.random.default_rng(3)
    for _ in range(20):
        b = np.concatenate(
            [rng.uniform(-20, 20, 3), rng.uniform(0.3, 6, 3), rng.uniform(-np.pi, np.pi, 1)]
        )[None]
        flipped = b.copy()
        flipped[0, 6] += np.pi
        assert iou3(b, flipped) == pytest.approx(1.0, abs=1e-9)
        other = b.copy()
        other[0, :2] += rng.uniform(-1, 1, 2)
        other[0, 6] += rng.uniform(-1, 1)
        other_flipped = other.copy()
        other_flipped[0, 6] += np.pi
        assert iou3(b, other) == pytest.approx(iou3(b, other_flipped), abs=1e-9)


def test_degenerate_boxes_give_zero():
    assert iou3(box(l=0.0), box(l=0.0)) == 0.0
    assert iou3(box(), box(l=0.0)) == 0.0


# --- properties on random boxes ---


def _random_boxes(rng: np.random.Generator, n: int, spread: float = 3.0) -> np.ndarray:
    return np.concatenate(
        [
            rng.uniform(-spread, spread, (n, 3)),
            rng.uniform(0.2, 5.0, (n, 3)),
            rng.uniform(-np.pi, np.pi, (n, 1)),
        ],
        axis=1,
    )


def test_pairwise_matches_scalar_reference():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 25), _random_boxes(rng, 20)
    got = box_iou_3d(a, b)
    ref = np.array([[_reference_iou3d(x, y) for y in b] for x in a])
    assert (ref > 0).sum() > 50  # the case exercises overlaps
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_shared_edges_match_scalar_reference():
    # Integer positions, sizes and right-angle headings: many coincident edges.
    rng = np.random.default_rng(1)
    n = 300
    a = np.concatenate(
        [
            rng.integers(-2, 3, (n, 3)) / 2,
            rng.integers(1, 4, (n, 3)).astype(float),
            rng.integers(0, 4, (n, 1)) * np.pi / 2,
        ],
        axis=1,
    )
    b = np.concatenate(
        [
            rng.integers(-2, 3, (n, 3)) / 2,
            rng.integers(1, 4, (n, 3)).astype(float),
            rng.integers(0, 4, (n, 1)) * np.pi / 2,
        ],
        axis=1,
    )
    got = box_iou_3d_pairs(a, b)
    ref = np.array([_reference_iou3d(x, y) for x, y in zip(a, b, strict=True)])
    assert (ref > 0).sum() > 100
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_nearly_collinear_edges_stay_accurate():
    # Tiny relative rotations and sub-nanometre offsets: edges almost on one line.
    rng = np.random.default_rng(5)
    n = 400
    a = np.zeros((n, 7))
    a[:, :2] = rng.uniform(-1, 1, (n, 2)) * rng.integers(0, 2, (n, 1))
    a[:, 3:5] = rng.integers(1, 4, (n, 2))
    a[:, 5] = 1.0
    a[:, 6] = rng.uniform(-np.pi, np.pi, n)
    b = a.copy()
    b[:, 6] += (
        10 ** rng.uniform(-14, -3, n) * rng.choice([-1, 1], n) + rng.integers(0, 4, n) * np.pi / 2
    )
    b[:, 3:5] = rng.integers(1, 4, (n, 2))
    b[:, :2] += rng.choice([0.0, 0.5, 1.0], (n, 2)) + rng.uniform(-1e-9, 1e-9, (n, 2))
    got = box_iou_3d_pairs(a, b)
    ref = np.array([_reference_iou3d(x, y) for x, y in zip(a, b, strict=True)])
    assert (ref > 0).sum() > 300
    np.testing.assert_allclose(got, ref, atol=2e-8)


def test_symmetric_and_pair_form_agrees_with_matrix_form():
    rng = np.random.default_rng(2)
    a, b = _random_boxes(rng, 30), _random_boxes(rng, 17)
    m = box_iou_3d(a, b)
    np.testing.assert_allclose(m, box_iou_3d(b, a).T, atol=1e-12)
    ia, ib = np.meshgrid(np.arange(30), np.arange(17), indexing="ij")
    np.testing.assert_allclose(
        box_iou_3d_pairs(a[ia.ravel()], b[ib.ravel()]).reshape(30, 17), m, atol=1e-12
    )
    np.testing.assert_allclose(
        box_iou_bev(a, b), box_iou_bev_pairs(a[ia.ravel()], b[ib.ravel()]).reshape(30, 17)
    )


def test_candidate_pairs_cover_every_overlap():
    rng = np.random.default_rng(4)
    a, b = _random_boxes(rng, 40, spread=15.0), _random_boxes(rng, 35, spread=15.0)
    ia, ib = candidate_pairs(a, b)
    cand = np.zeros((40, 35), bool)
    cand[ia, ib] = True
    full = np.array([[_reference_iou3d(x, y) for y in b] for x in a])
    assert not np.any((full > 0) & ~cand)
    assert cand.sum() < 40 * 35  # the filter drops far pairs


def test_empty_inputs():
    assert box_iou_3d(np.zeros((0, 7)), box()).shape == (0, 1)
    assert box_iou_3d(box(), np.zeros((0, 7))).shape == (1, 0)
    assert box_iou_3d_pairs(np.zeros((0, 7)), np.zeros((0, 7))).shape == (0,)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="7"):
        box_iou_3d(np.zeros((3, 6)), box())
    with pytest.raises(ValueError, match="same shape"):
        box_iou_3d_pairs(np.zeros((3, 7)), np.zeros((2, 7)))


_coord = st.floats(-5, 5, allow_nan=False)
_size = st.floats(0.1, 6, allow_nan=False)
_angle = st.floats(-math.pi, math.pi, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    st.tuples(_coord, _coord, _coord, _size, _size, _size, _angle),
    st.tuples(_coord, _coord, _coord, _size, _size, _size, _angle),
    st.tuples(_coord, _coord, _angle),
)
def test_properties(a_t, b_t, move):
    a, b = np.array([a_t]), np.array([b_t])
    v = iou3(a, b)
    assert 0.0 <= v <= 1.0
    assert v == pytest.approx(iou3(b, a), abs=1e-9)
    assert v == pytest.approx(_reference_iou3d(a[0], b[0]), abs=5e-8)
    # Invariant to a common rigid motion in the ground plane.
    dx, dy, rot = move
    c, s = math.cos(rot), math.sin(rot)

    def moved(x: np.ndarray) -> np.ndarray:
        y = x.copy()
        y[0, 0], y[0, 1] = c * x[0, 0] - s * x[0, 1] + dx, s * x[0, 0] + c * x[0, 1] + dy
        y[0, 6] = x[0, 6] + rot
        return y

    assert iou3(moved(a), moved(b)) == pytest.approx(v, abs=1e-9)
    # The intersection is never larger than the smaller footprint.
    area = rotated_rect_intersection(a[:, [0, 1, 3, 4, 6]], b[:, [0, 1, 3, 4, 6]])[0]
    assert area <= min(a[0, 3] * a[0, 4], b[0, 3] * b[0, 4]) + 1e-9
