"""Exact intersection over union of upright (7-DoF) boxes, vectorised.

A box is the row ``x, y, z, length, width, height, heading`` (the layout of
:meth:`perceive.datasets.types.Boxes3D.to_array`): centre in metres, length along
the box's own x axis (the heading direction), width along its y, height along z,
heading the yaw in radians. Boxes are upright: only the yaw rotates them.

The bird's-eye-view overlap of two boxes is the intersection of two rotated
rectangles, computed exactly (no sampling) with Green's theorem: the boundary of
the intersection is made of the parts of A's edges inside B and of B's edges
inside A, and its area is half the sum of ``cross(start, end)`` over those parts.
Each edge is clipped to the other rectangle in that rectangle's own frame, where
the rectangle is the axis-aligned ``[-l/2, l/2] x [-w/2, w/2]`` and clipping is two
slab tests (Liang-Barsky). Edges lying on a side of the other rectangle (shared
boundaries, identical boxes) are counted once. Everything is a few dozen NumPy
operations on (K, 4) arrays, whatever the number K of pairs; there is no sorting,
no per-pair loop and no padding. The 3D intersection is that area times the
overlap of the two height intervals.

Accuracy: the result is exact up to floating-point rounding (about 1e-15 relative)
for boxes in general position. Where an edge of one box and a side of the other are
collinear to within 1e-8 of the boxes' size, they are treated as lying on one line;
the IoU error there stays below about 1e-8.

Pairwise functions (N x M) first drop the pairs whose bounding circles or height
intervals do not meet, and clip only the rest.
"""

from __future__ import annotations

import numpy as np

#: Union volumes (m^3) or areas (m^2) at or below this give an IoU of 0.
UNION_EPS = 1e-9


def _as_boxes(boxes: np.ndarray, name: str) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim == 1 and b.shape[0] == 7:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 7:
        raise ValueError(
            f"{name} must be (N, 7) x, y, z, length, width, height, heading; got {b.shape}"
        )
    return b


#: Corner signs of a rectangle, counter-clockwise from (+x, +y) (the bottom face of
#: :func:`perceive.geometry.boxes.box_corners`). Edge k runs from corner k to k + 1:
#: the sides y = +w/2, x = -l/2, y = -w/2, x = +l/2 in this order.
_SX = np.array([1.0, -1.0, -1.0, 1.0])
_SY = np.array([1.0, 1.0, -1.0, -1.0])
#: Axis (0 x, 1 y) and sign of the line of each side: ``coord[axis] = sign * half[axis]``.
_SIDE_AXIS = np.array([1, 0, 1, 0])
_SIDE_SIGN = np.array([1.0, -1.0, -1.0, 1.0])
#: Index of the next corner (edge k ends at corner ``_NEXT[k]``).
_NEXT = np.array([1, 2, 3, 0])
#: Relative tolerance (of the rectangles' size) under which two edges lie on one line.
_COINCIDENT_RTOL = 1e-8


def _near_sides(p0: np.ndarray, half: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """(K, 4 edges, 4 sides) bool: both ends of an edge lie within ``tol`` of a side's line.

    Args:
        p0: (K, 4, 2) corners of quadrilaterals in a rectangle's frame (counter-clockwise).
        half: (K, 2) half length and half width of the rectangle.
        tol: (K,) distance tolerance.
    """
    line = (_SIDE_SIGN * half[:, _SIDE_AXIS])[:, None, :]
    t = tol[:, None, None]
    c0 = p0[..., _SIDE_AXIS]
    c1 = p0[:, _NEXT][..., _SIDE_AXIS]
    return (np.abs(c0 - line) <= t) & (np.abs(c1 - line) <= t)


def _clip_slab(
    u0: np.ndarray,
    u1: np.ndarray,
    half: np.ndarray,
    on_pos: np.ndarray,
    on_neg: np.ndarray,
    keep_pos: np.ndarray | None,
    keep_neg: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clip segments to the slab ``-half <= u <= half`` of one axis (Liang-Barsky).

    Args:
        u0, u1: (K, E) the coordinate, on this axis, of each segment's start and end.
        half: (K, 1) half width of the slab.
        on_pos, on_neg: (K, E) the segment lies on the line ``u = +half`` (``-half``).
        keep_pos, keep_neg: (K, E) such a segment is kept (unrestricted by this slab)
            rather than dropped; None drops every segment lying on a line.

    Returns:
        ``(t_in, t_out, dead)``, each (K, E): the parameter interval of the segment
        inside the slab (infinite where unrestricted), and whether none of it counts.
    """
    on = on_pos | on_neg
    if keep_pos is None or keep_neg is None:
        dead = on
    else:
        dead = on & ~((on_pos & keep_pos) | (on_neg & keep_neg))
    du = u1 - u0
    moving = (du != 0.0) & ~on
    inv = 1.0 / np.where(moving, du, 1.0)
    ta = (-half - u0) * inv
    tb = (half - u0) * inv
    t_in = np.where(moving, np.minimum(ta, tb), -np.inf)
    t_out = np.where(moving, np.maximum(ta, tb), np.inf)
    dead |= ~moving & ~on & (np.abs(u0) > half)
    return t_in, t_out, dead


def _clip_edges(
    p0: np.ndarray, half: np.ndarray, on_side: np.ndarray, keep: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Clip the 4 edges of K quadrilaterals to K axis-aligned rectangles.

    Args:
        p0: (K, 4, 2) corners in counter-clockwise order, in the rectangle's frame;
            edge i runs from corner i to corner i + 1.
        half: (K, 2) half length and half width of the rectangle.
        on_side: (K, 4 edges, 4 sides) edge i lies on the line of the rectangle's side j.
        keep: keep an edge lying on a side when it runs the same way as the
            rectangle's counter-clockwise boundary there (the two regions are on the
            same side of it); otherwise drop every edge lying on a side.

    Returns:
        ``(t0, t1)``: (K, 4) parameters along each edge of the part inside the
        rectangle; empty where ``t1 <= t0``.
    """
    p1 = p0[:, _NEXT]
    x0, y0, x1, y1 = p0[..., 0], p0[..., 1], p1[..., 0], p1[..., 1]
    dx, dy = x1 - x0, y1 - y0
    # The boundary runs +y on x = +l/2, -y on x = -l/2, -x on y = +w/2, +x on y = -w/2.
    kx = (dy > 0.0, dy < 0.0) if keep else (None, None)
    ky = (dx < 0.0, dx > 0.0) if keep else (None, None)
    inx, outx, deadx = _clip_slab(x0, x1, half[:, :1], on_side[..., 3], on_side[..., 1], *kx)
    iny, outy, deady = _clip_slab(y0, y1, half[:, 1:], on_side[..., 0], on_side[..., 2], *ky)
    t0 = np.maximum(np.maximum(inx, iny), 0.0)
    t1 = np.minimum(np.minimum(outx, outy), 1.0)
    return t0, np.where(deadx | deady, t0, t1)


def rotated_rect_intersection(rect_a: np.ndarray, rect_b: np.ndarray) -> np.ndarray:
    """Exact area of the intersection of rotated rectangles, pair by pair.

    The boundary of the intersection is made of the parts of A's edges inside B and
    the parts of B's edges inside A; by Green's theorem its area is half the sum of
    ``cross(start, end)`` over those parts. Each edge is clipped to the other
    rectangle in that rectangle's own frame, where it is axis-aligned. An edge of A
    and a side of B on one line (all four ends within a relative 1e-8 of the other's
    line) are counted once: A's part when both run the same way, neither when they
    run opposite ways (boxes that only touch).

    Args:
        rect_a: (K, 5) ``x, y, length, width, heading`` (metres, radians).
        rect_b: (K, 5) the same for the second rectangle of each pair.

    Returns:
        (K,) float64 intersection areas, square metres.
    """
    a = np.asarray(rect_a, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(rect_b, dtype=np.float64).reshape(-1, 5)
    if a.shape != b.shape:
        raise ValueError(f"rect_a {a.shape} and rect_b {b.shape} must have the same shape")
    if a.shape[0] == 0:
        return np.zeros(0)
    half_a = 0.5 * a[:, 2:4]
    half_b = 0.5 * b[:, 2:4]
    tol = _COINCIDENT_RTOL * (half_a.sum(axis=1) + half_b.sum(axis=1))
    # Centre of A in B's frame, and the rotation from A's frame to B's.
    cb, sb = np.cos(b[:, 4]), np.sin(b[:, 4])
    dx, dy = a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]
    cx = (cb * dx + sb * dy)[:, None]
    cy = (-sb * dx + cb * dy)[:, None]
    rel = a[:, 4] - b[:, 4]
    cr, sr = np.cos(rel)[:, None], np.sin(rel)[:, None]
    # Corners of A in B's frame; corners of B in its own frame and in A's.
    ax, ay = _SX * half_a[:, :1], _SY * half_a[:, 1:]
    pa = np.stack([cx + cr * ax - sr * ay, cy + sr * ax + cr * ay], axis=-1)
    bx, by = _SX * half_b[:, :1], _SY * half_b[:, 1:]
    pb = np.stack([bx, by], axis=-1)
    ux, uy = bx - cx, by - cy
    pb_in_a = np.stack([cr * ux + sr * uy, -sr * ux + cr * uy], axis=-1)
    # Edge i of A and side j of B are on one line only if each lies on the other's. An
    # edge of length L within tol of a line at both ends makes an angle theta with it,
    # sin(theta) <= 2 tol / L, so only pairs with |sin(2 rel)| <= 4 tol / L_min can
    # have such edges; the test runs on those alone.
    on_ab = np.zeros((a.shape[0], 4, 4), bool)
    shortest = np.minimum(half_a.min(axis=1), half_b.min(axis=1)) * 2.0
    maybe = np.nonzero(np.abs(np.sin(2.0 * rel)) * shortest <= 8.0 * tol)[0]
    if maybe.size:
        on_ab[maybe] = _near_sides(pa[maybe], half_b[maybe], tol[maybe]) & _near_sides(
            pb_in_a[maybe], half_a[maybe], tol[maybe]
        ).transpose(0, 2, 1)

    total = np.zeros(a.shape[0])
    for corners, clip_frame_corners, half, on_side, keep in (
        (pa, pa, half_b, on_ab, True),
        (pb, pb_in_a, half_a, on_ab.transpose(0, 2, 1), False),
    ):
        t0, t1 = _clip_edges(clip_frame_corners, half, on_side, keep)
        d = corners[:, _NEXT] - corners
        q0 = corners + t0[..., None] * d
        q1 = corners + t1[..., None] * d
        cross = q0[..., 0] * q1[..., 1] - q0[..., 1] * q1[..., 0]
        total += np.where(t1 > t0, cross, 0.0).sum(axis=1)
    return np.maximum(0.5 * total, 0.0)


def _bev_rects(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, [0, 1, 3, 4, 6]]


def box_iou_3d_pairs(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Exact 3D IoU of upright boxes, pair by pair (row k of A with row k of B).

    Args:
        boxes_a: (K, 7) ``x, y, z, length, width, height, heading``, metres and radians,
            any common frame.
        boxes_b: (K, 7) the same layout.

    Returns:
        (K,) float64 IoU in [0, 1]; 0 where the union volume is (near) zero.
    """
    a = _as_boxes(boxes_a, "boxes_a")
    b = _as_boxes(boxes_b, "boxes_b")
    if a.shape != b.shape:
        raise ValueError(f"boxes_a {a.shape} and boxes_b {b.shape} must have the same shape")
    zmin = np.maximum(a[:, 2] - 0.5 * a[:, 5], b[:, 2] - 0.5 * b[:, 5])
    zmax = np.minimum(a[:, 2] + 0.5 * a[:, 5], b[:, 2] + 0.5 * b[:, 5])
    z_overlap = np.maximum(zmax - zmin, 0.0)
    inter = np.zeros(a.shape[0])
    todo = np.nonzero(z_overlap > 0.0)[0]
    if todo.size:
        inter[todo] = (
            rotated_rect_intersection(_bev_rects(a[todo]), _bev_rects(b[todo])) * z_overlap[todo]
        )
    union = np.prod(a[:, 3:6], axis=1) + np.prod(b[:, 3:6], axis=1) - inter
    ok = union > UNION_EPS
    iou = np.where(ok, inter / np.where(ok, union, 1.0), 0.0)
    return np.clip(iou, 0.0, 1.0)


def box_iou_bev_pairs(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Exact bird's-eye-view (rotated 2D) IoU, pair by pair; heights are ignored.

    Args:
        boxes_a, boxes_b: (K, 7) boxes as in :func:`box_iou_3d_pairs`.

    Returns:
        (K,) float64 IoU in [0, 1].
    """
    a = _as_boxes(boxes_a, "boxes_a")
    b = _as_boxes(boxes_b, "boxes_b")
    if a.shape != b.shape:
        raise ValueError(f"boxes_a {a.shape} and boxes_b {b.shape} must have the same shape")
    inter = rotated_rect_intersection(_bev_rects(a), _bev_rects(b))
    union = a[:, 3] * a[:, 4] + b[:, 3] * b[:, 4] - inter
    ok = union > UNION_EPS
    return np.clip(np.where(ok, inter / np.where(ok, union, 1.0), 0.0), 0.0, 1.0)


def candidate_pairs(
    boxes_a: np.ndarray, boxes_b: np.ndarray, use_height: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of boxes that may overlap: bounding circles meet (and height intervals, if asked).

    Args:
        boxes_a: (N, 7) boxes as in :func:`box_iou_3d_pairs`.
        boxes_b: (M, 7) boxes.
        use_height: also require the height intervals to overlap by more than zero.

    Returns:
        ``(ia, ib)``: (P,) int64 row indices into A and B of every candidate pair; all
        pairs not listed have an IoU of 0.
    """
    a = _as_boxes(boxes_a, "boxes_a")
    b = _as_boxes(boxes_b, "boxes_b")
    ra = 0.5 * np.hypot(a[:, 3], a[:, 4])
    rb = 0.5 * np.hypot(b[:, 3], b[:, 4])
    d2 = (a[:, None, 0] - b[None, :, 0]) ** 2 + (a[:, None, 1] - b[None, :, 1]) ** 2
    ok = d2 <= (ra[:, None] + rb[None, :]) ** 2
    if use_height:
        dz = np.abs(a[:, None, 2] - b[None, :, 2])
        ok &= dz < 0.5 * (a[:, None, 5] + b[None, :, 5])
    ia, ib = np.nonzero(ok)
    return ia.astype(np.int64), ib.astype(np.int64)


def box_iou_3d(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Exact 3D IoU of every box of A with every box of B.

    Args:
        boxes_a: (N, 7) ``x, y, z, length, width, height, heading``, metres and radians.
        boxes_b: (M, 7) the same layout, same frame.

    Returns:
        (N, M) float64 IoU in [0, 1].
    """
    a = _as_boxes(boxes_a, "boxes_a")
    b = _as_boxes(boxes_b, "boxes_b")
    out = np.zeros((a.shape[0], b.shape[0]))
    ia, ib = candidate_pairs(a, b, use_height=True)
    if ia.size:
        out[ia, ib] = box_iou_3d_pairs(a[ia], b[ib])
    return out


def box_iou_bev(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Exact bird's-eye-view IoU of every box of A with every box of B (heights ignored).

    Args:
        boxes_a: (N, 7) boxes as in :func:`box_iou_3d`.
        boxes_b: (M, 7) boxes.

    Returns:
        (N, M) float64 IoU in [0, 1].
    """
    a = _as_boxes(boxes_a, "boxes_a")
    b = _as_boxes(boxes_b, "boxes_b")
    out = np.zeros((a.shape[0], b.shape[0]))
    ia, ib = candidate_pairs(a, b, use_height=False)
    if ia.size:
        out[ia, ib] = box_iou_bev_pairs(a[ia], b[ib])
    return out
