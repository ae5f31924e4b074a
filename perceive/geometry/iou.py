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


def _near_sides(x: np.ndarray, y: np.ndarray, half: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """(K, 4 edges, 4 sides) bool: both ends of an edge lie within ``tol`` of a side's line.

    Args:
        x, y: (K, 4) corners of quadrilaterals in a rectangle's frame (counter-clockwise).
        half: (K, 2) half length and half width of the rectangle.
        tol: (K,) distance tolerance.
    """
    line = (_SIDE_SIGN * half[:, _SIDE_AXIS])[:, None, :]
    t = tol[:, None, None]
    p0 = np.stack([x, y], axis=-1)
    c0 = p0[..., _SIDE_AXIS]
    c1 = p0[:, _NEXT][..., _SIDE_AXIS]
    return (np.abs(c0 - line) <= t) & (np.abs(c1 - line) <= t)


def _slab(u0: np.ndarray, du: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameter interval of segments ``u0 + t du`` inside the slab ``|u| <= half``.

    Args:
        u0, du: (K, E) start coordinate and displacement on this axis.
        half: (K, 1) half width of the slab.

    Returns:
        ``(t_in, t_out)``, (K, E); infinite where the slab does not restrict the
        segment, ``t_in > t_out`` where the segment is parallel to it and outside.
    """
    moving = du != 0.0
    inv = 1.0 / np.where(moving, du, 1.0)
    ta = (-half - u0) * inv
    tb = (half - u0) * inv
    inside = np.abs(u0) <= half
    t_in = np.where(moving, np.minimum(ta, tb), np.where(inside, -np.inf, np.inf))
    t_out = np.where(moving, np.maximum(ta, tb), np.where(inside, np.inf, -np.inf))
    return t_in, t_out


def _inside_fraction(
    x0: np.ndarray,
    y0: np.ndarray,
    half: np.ndarray,
    on_side: np.ndarray | None,
    keep: bool,
) -> np.ndarray:
    """Length fraction of each edge of K quadrilaterals inside K axis-aligned rectangles.

    Args:
        x0, y0: (K, 4) corners in counter-clockwise order, in the rectangle's frame;
            edge i runs from corner i to corner i + 1.
        half: (K, 2) half length and half width of the rectangle.
        on_side: (K, 4 edges, 4 sides) edge i lies on the line of the rectangle's side
            j, or None where no edge does.
        keep: an edge lying on a side counts as inside when it runs the same way as the
            rectangle's counter-clockwise boundary there (both regions on the same side
            of it); otherwise, and for every such edge when ``keep`` is False, it counts
            as outside. Either way the slab of that side does not clip it.

    Returns:
        (K, 4) fraction in [0, 1] of each edge's length inside the rectangle.
    """
    dx = x0[:, _NEXT] - x0
    dy = y0[:, _NEXT] - y0
    inx, outx = _slab(x0, dx, half[:, :1])
    iny, outy = _slab(y0, dy, half[:, 1:])
    if on_side is not None:
        # Sides (see _SIDE_AXIS): 0 y = +w/2 (boundary runs -x), 1 x = -l/2 (-y),
        # 2 y = -w/2 (+x), 3 x = +l/2 (+y).
        onx = on_side[..., 3] | on_side[..., 1]
        ony = on_side[..., 0] | on_side[..., 2]
        if keep:
            alive = (
                (on_side[..., 0] & (dx < 0.0))
                | (on_side[..., 1] & (dy < 0.0))
                | (on_side[..., 2] & (dx > 0.0))
                | (on_side[..., 3] & (dy > 0.0))
            )
        else:
            alive = np.zeros_like(onx)
        inx = np.where(onx, -np.inf, inx)
        outx = np.where(onx, np.inf, outx)
        iny = np.where(ony, -np.inf, iny)
        outy = np.where(ony, np.inf, outy)
        dead = (onx | ony) & ~alive
    t0 = np.maximum(np.maximum(inx, iny), 0.0)
    t1 = np.minimum(np.minimum(outx, outy), 1.0)
    frac = np.maximum(t1 - t0, 0.0)
    if on_side is not None:
        frac = np.where(dead, 0.0, frac)
    return frac


def rotated_rect_intersection(rect_a: np.ndarray, rect_b: np.ndarray) -> np.ndarray:
    """Exact area of the intersection of rotated rectangles, pair by pair.

    The boundary of the intersection is made of the parts of A's edges inside B and
    the parts of B's edges inside A; by Green's theorem its area is half the sum of
    ``cross(start, end)`` over those parts. For a part of the edge from ``p`` to ``q``
    that is the fraction of the edge's length inside times ``cross(p, q)``. Each edge
    is clipped to the other rectangle in that rectangle's own frame, where it is
    axis-aligned. An edge of A and a side of B on one line (all four ends within a
    relative 1e-8 of the other's line) are counted once: A's part when both run the
    same way, neither when they run opposite ways (boxes that only touch).

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
    pax, pay = cx + cr * ax - sr * ay, cy + sr * ax + cr * ay
    bx, by = _SX * half_b[:, :1], _SY * half_b[:, 1:]
    ux, uy = bx - cx, by - cy
    qbx, qby = cr * ux + sr * uy, -sr * ux + cr * uy
    # Edge i of A and side j of B are on one line only if each lies on the other's. An
    # edge of length L within tol of a line at both ends makes an angle theta with it,
    # sin(theta) <= 2 tol / L, so only pairs with |sin(2 rel)| <= 4 tol / L_min can
    # have such edges; the test runs on those alone.
    shortest = np.minimum(half_a.min(axis=1), half_b.min(axis=1)) * 2.0
    maybe = np.nonzero(np.abs(np.sin(2.0 * rel)) * shortest <= 8.0 * tol)[0]
    on_ab = on_ba = None
    if maybe.size:
        on_ab = np.zeros((a.shape[0], 4, 4), bool)
        on_ab[maybe] = _near_sides(pax[maybe], pay[maybe], half_b[maybe], tol[maybe]) & _near_sides(
            qbx[maybe], qby[maybe], half_a[maybe], tol[maybe]
        ).transpose(0, 2, 1)
        on_ba = on_ab.transpose(0, 2, 1)
    # Parts of A's edges inside B, then of B's edges inside A, both in B's frame.
    frac_a = _inside_fraction(pax, pay, half_b, on_ab, keep=True)
    cross_a = pax * pay[:, _NEXT] - pay * pax[:, _NEXT]
    frac_b = _inside_fraction(qbx, qby, half_a, on_ba, keep=False)
    cross_b = 2.0 * half_b[:, :1] * half_b[:, 1:]  # every side of B about its centre
    total = (frac_a * cross_a).sum(axis=1) + (frac_b * cross_b).sum(axis=1)
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
