"""Triangle meshes of the world's objects, built procedurally with NumPy.

Every object is made in its own frame: x forward (an agent's heading), y left, z up,
origin on the ground under the object's centre. A :class:`Mesh` carries one material
id and one colour per triangle. Vehicles are extruded side profiles (hood, cabin,
trunk) with wheels and lamps, in several body types; people have legs, arms, torso
and head and swing their limbs while walking; bicycles are thin tubes and rings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from perceive.synth import materials as mtl

#: A colour (linear RGB in [0, 1]) or a point/vector (x, y, z): any 3-sequence or array.
Vec3 = Sequence[float] | np.ndarray


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh with a material and a colour per triangle."""

    vertices: np.ndarray
    """(V, 3) float64 vertex positions, metres."""
    triangles: np.ndarray
    """(T, 3) int64 vertex indices."""
    material: np.ndarray
    """(T,) int16 material id (see :mod:`perceive.synth.materials`)."""
    colour: np.ndarray
    """(T, 3) float32 linear RGB albedo in [0, 1]."""

    def __len__(self) -> int:
        return int(self.triangles.shape[0])

    @staticmethod
    def empty() -> Mesh:
        """A mesh with no triangles."""
        return Mesh(
            np.zeros((0, 3)),
            np.zeros((0, 3), np.int64),
            np.zeros(0, np.int16),
            np.zeros((0, 3), np.float32),
        )

    @staticmethod
    def concat(meshes: Sequence[Mesh]) -> Mesh:
        """All meshes in one (vertex indices shifted)."""
        meshes = [m for m in meshes if len(m)]
        if not meshes:
            return Mesh.empty()
        offsets = np.cumsum([0] + [m.vertices.shape[0] for m in meshes[:-1]])
        return Mesh(
            np.concatenate([m.vertices for m in meshes]),
            np.concatenate([m.triangles + o for m, o in zip(meshes, offsets, strict=True)]),
            np.concatenate([m.material for m in meshes]),
            np.concatenate([m.colour for m in meshes]),
        )

    def transformed(
        self, rotation: np.ndarray, translation: Sequence[float] = (0.0, 0.0, 0.0)
    ) -> Mesh:
        """The mesh with ``vertices @ rotation.T + translation``."""
        v = self.vertices @ np.asarray(rotation, np.float64).T + np.asarray(translation, np.float64)
        return Mesh(v, self.triangles, self.material, self.colour)

    def posed(self, yaw: float, xyz: Sequence[float]) -> Mesh:
        """The mesh rotated by ``yaw`` about z, then moved to ``xyz``."""
        return self.transformed(rot_z(yaw), xyz)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` (3,) float64 axis-aligned bounds of the vertices."""
        return self.vertices.min(axis=0), self.vertices.max(axis=0)


def rot_z(yaw: float) -> np.ndarray:
    """(3, 3) rotation about z by ``yaw`` radians."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(pitch: float) -> np.ndarray:
    """(3, 3) rotation about y by ``pitch`` radians (positive tips +x down)."""
    c, s = np.cos(pitch), np.sin(pitch)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _mesh(
    vertices: np.ndarray, triangles: np.ndarray, material: int | np.ndarray, colour: Sequence[float]
) -> Mesh:
    t = np.asarray(triangles, np.int64).reshape(-1, 3)
    mat = np.broadcast_to(np.asarray(material, np.int16), (t.shape[0],)).copy()
    col = np.broadcast_to(np.asarray(colour, np.float32).reshape(-1, 3), (t.shape[0], 3)).copy()
    return Mesh(np.asarray(vertices, np.float64).reshape(-1, 3), t, mat, col)


def prism(
    polygon: np.ndarray,
    c0: float,
    c1: float,
    axes: tuple[int, int, int],
    material: int,
    colour: Sequence[float],
    *,
    side_materials: Sequence[int] | None = None,
    side_colours: Sequence[Sequence[float]] | None = None,
    cap_material: tuple[int, int] | None = None,
    cap_colour: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Mesh:
    """A convex polygon extruded along an axis.

    Args:
        polygon: (P, 2) convex polygon, counter-clockwise, in the plane of ``axes[0], axes[1]``.
        c0, c1: extent along ``axes[2]``.
        axes: which 3D axes (0 x, 1 y, 2 z) the polygon's two coordinates and the extrusion map to.
        material, colour: of every face unless overridden.
        side_materials, side_colours: per polygon edge (P each), the face from vertex i to i+1.
        cap_material, cap_colour: of the cap at ``c0`` and the cap at ``c1``.
    """
    poly = np.asarray(polygon, np.float64)
    p = poly.shape[0]
    v = np.zeros((2 * p, 3))
    for k, c in enumerate((c0, c1)):
        v[k * p : (k + 1) * p, axes[0]] = poly[:, 0]
        v[k * p : (k + 1) * p, axes[1]] = poly[:, 1]
        v[k * p : (k + 1) * p, axes[2]] = c
    fan = np.array([[0, i, i + 1] for i in range(1, p - 1)])
    i = np.arange(p)
    j = (i + 1) % p
    sides = np.concatenate([np.stack([i, j, j + p], 1), np.stack([i, j + p, i + p], 1)])
    caps = [fan[:, ::-1], fan + p]
    mats = [material] * 2
    cols = [colour] * 2
    if cap_material is not None:
        mats = list(cap_material)
    if cap_colour is not None:
        cols = list(cap_colour)
    parts = [_mesh(v, caps[k], mats[k], cols[k]) for k in range(2)]
    sm = [material] * p if side_materials is None else list(side_materials)
    sc = [colour] * p if side_colours is None else list(side_colours)
    side_tri = sides.reshape(2, p, 3).transpose(
        1, 0, 2
    )  # (P, 2, 3): the two triangles of each edge
    for e in range(p):
        parts.append(_mesh(v, side_tri[e], sm[e], sc[e]))
    return _merge_shared(parts)


def _merge_shared(parts: list[Mesh]) -> Mesh:
    """Concatenate meshes that share one vertex array (keeps a single copy)."""
    v = parts[0].vertices
    return Mesh(
        v,
        np.concatenate([m.triangles for m in parts]),
        np.concatenate([m.material for m in parts]),
        np.concatenate([m.colour for m in parts]),
    )


def box(
    size: Sequence[float],
    center: Sequence[float] = (0.0, 0.0, 0.0),
    material: int = mtl.CONCRETE,
    colour: Vec3 = (0.5, 0.5, 0.5),
) -> Mesh:
    """An axis-aligned box of ``size`` (x, y, z extents) centred at ``center``."""
    sx, sy, sz = (float(s) / 2 for s in size)
    poly = np.array([[-sx, -sy], [sx, -sy], [sx, sy], [-sx, sy]])
    m = prism(poly, -sz, sz, (0, 1, 2), material, colour)
    return m.transformed(np.eye(3), center)


def cylinder(
    radius: float,
    z0: float,
    z1: float,
    material: int,
    colour: Vec3,
    *,
    segments: int = 10,
    center: Sequence[float] = (0.0, 0.0),
) -> Mesh:
    """A vertical cylinder (a ``segments``-gon prism) from ``z0`` to ``z1``."""
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    poly = np.stack([np.cos(a), np.sin(a)], 1) * radius
    return prism(poly, z0, z1, (0, 1, 2), material, colour).transformed(
        np.eye(3), (center[0], center[1], 0.0)
    )


def cylinder_between(
    p0: Vec3, p1: Vec3, radius: float, material: int, colour: Vec3, *, segments: int = 6
) -> Mesh:
    """A cylinder (prism) of ``radius`` with axis from point ``p0`` to point ``p1``."""
    p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    m = cylinder(radius, 0.0, length, material, colour, segments=segments)
    z = axis / max(length, 1e-9)
    ref = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(ref, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return m.transformed(np.stack([x, y, z], 1), p0)


def sphere(
    radius: float,
    center: Vec3,
    material: int,
    colour: Vec3,
    *,
    rings: int = 5,
    segments: int = 8,
    jitter: np.random.Generator | None = None,
) -> Mesh:
    """A UV sphere; ``jitter`` (an RNG) roughens the radius by up to 25 % (tree crowns)."""
    phi = np.linspace(0, np.pi, rings + 1)
    th = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    pp, tt = np.meshgrid(phi[1:-1], th, indexing="ij")
    v = np.stack([np.sin(pp) * np.cos(tt), np.sin(pp) * np.sin(tt), np.cos(pp)], -1).reshape(-1, 3)
    v = np.concatenate([[[0, 0, 1.0]], v, [[0, 0, -1.0]]])
    r = np.full(v.shape[0], radius)
    if jitter is not None:
        r = r * jitter.uniform(0.8, 1.2, v.shape[0])
    v = v * r[:, None] + np.asarray(center, np.float64)
    tri = []
    s = segments
    for k in range(s):
        tri.append([0, 1 + k, 1 + (k + 1) % s])
    for ring in range(rings - 2):
        a, b = 1 + ring * s, 1 + (ring + 1) * s
        for k in range(s):
            k1 = (k + 1) % s
            tri += [[a + k, b + k, b + k1], [a + k, b + k1, a + k1]]
    last = v.shape[0] - 1
    base = 1 + (rings - 2) * s
    for k in range(s):
        tri.append([last, base + (k + 1) % s, base + k])
    return _mesh(v, tri, material, colour)


def ring(
    radius: float, tube: float, center: Vec3, material: int, colour: Vec3, *, segments: int = 12
) -> Mesh:
    """A wheel rim: a ring of thin tubes in the x-z plane around ``center``."""
    a = np.linspace(0, 2 * np.pi, segments + 1)
    c = np.asarray(center, np.float64)
    pts = c + radius * np.stack([np.cos(a), np.zeros_like(a), np.sin(a)], 1)
    return Mesh.concat(
        [
            cylinder_between(pts[i], pts[i + 1], tube, material, colour, segments=4)
            for i in range(segments)
        ]
    )


# --------------------------------------------------------------------------- vehicles

#: Vehicle body types and (length, width, height) ranges, metres.
VEHICLE_KINDS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "sedan": ((4.3, 5.0), (1.75, 1.9), (1.38, 1.52)),
    "hatchback": ((3.7, 4.3), (1.68, 1.8), (1.42, 1.56)),
    "suv": ((4.4, 5.1), (1.85, 2.0), (1.65, 1.85)),
    "van": ((4.8, 5.6), (1.9, 2.05), (1.9, 2.3)),
    "pickup": ((5.2, 5.9), (1.9, 2.05), (1.75, 1.95)),
    "truck": ((6.5, 9.0), (2.3, 2.5), (2.9, 3.5)),
    "bus": ((10.5, 12.5), (2.5, 2.55), (3.0, 3.3)),
}

#: Relative frequency of each body type.
VEHICLE_WEIGHTS: dict[str, float] = {
    "sedan": 0.34,
    "hatchback": 0.18,
    "suv": 0.24,
    "van": 0.09,
    "pickup": 0.07,
    "truck": 0.05,
    "bus": 0.03,
}

#: Car paint colours (linear RGB), dark ones included on purpose: they reflect little.
PAINTS = np.array(
    [
        [0.02, 0.02, 0.02],
        [0.03, 0.03, 0.035],
        [0.85, 0.85, 0.85],
        [0.7, 0.7, 0.72],
        [0.35, 0.36, 0.38],
        [0.55, 0.05, 0.04],
        [0.05, 0.12, 0.45],
        [0.05, 0.25, 0.1],
        [0.8, 0.55, 0.1],
        [0.3, 0.18, 0.1],
        [0.9, 0.9, 0.8],
        [0.15, 0.2, 0.3],
    ],
    np.float32,
)

_GLASS = (0.08, 0.1, 0.13)
_TYRE = (0.03, 0.03, 0.03)


def _wheels(xs: Sequence[float], half_track: float, radius: float, width: float) -> Mesh:
    parts = []
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    poly = np.stack([np.cos(a), np.sin(a)], 1) * radius
    for x in xs:
        for side in (-1, 1):
            y = side * half_track
            w = prism(poly, y - width / 2, y + width / 2, (0, 2, 1), mtl.TYRE, _TYRE)
            parts.append(w.transformed(np.eye(3), (x, 0.0, radius)))
    return Mesh.concat(parts)


def vehicle_mesh(
    kind: str, length: float, width: float, height: float, paint: Sequence[float]
) -> Mesh:
    """A vehicle of a body type, origin on the ground at the centre of its footprint.

    Args:
        kind: one of :data:`VEHICLE_KINDS`.
        length, width, height: overall extents, metres.
        paint: body colour (linear RGB).
    """
    L, W, H = length, width, height
    hl = L / 2
    parts: list[Mesh] = []
    wheel_r = float(np.clip(0.19 * H + 0.04, 0.3, 0.55))
    clearance = wheel_r * 0.55
    body_w = W * 0.96
    if kind in ("sedan", "hatchback", "suv", "van", "pickup"):
        belt = {"sedan": 0.6, "hatchback": 0.6, "suv": 0.58, "van": 0.5, "pickup": 0.55}[kind] * H
        nose = {"sedan": 0.18, "hatchback": 0.18, "suv": 0.12, "van": 0.12, "pickup": 0.12}[
            kind
        ] * L
        lower = np.array(
            [
                [-hl, clearance],
                [hl, clearance],
                [hl, belt * 0.7],
                [hl - nose, belt],
                [-hl + 0.06 * L, belt],
                [-hl, belt * 0.85],
            ]
        )
        parts.append(prism(lower, -body_w / 2, body_w / 2, (0, 2, 1), mtl.PAINT, paint))
        # cabin: windshield, roof, rear window; side caps are the side windows
        if kind == "sedan":
            xr0, xr1, xf1, xf0 = -hl + 0.2 * L, -hl + 0.33 * L, hl - 0.42 * L, hl - 0.26 * L
        elif kind == "hatchback":
            xr0, xr1, xf1, xf0 = -hl + 0.02 * L, -hl + 0.1 * L, hl - 0.45 * L, hl - 0.28 * L
        elif kind == "suv":
            xr0, xr1, xf1, xf0 = -hl + 0.03 * L, -hl + 0.06 * L, hl - 0.42 * L, hl - 0.27 * L
        elif kind == "van":
            xr0, xr1, xf1, xf0 = -hl + 0.01 * L, -hl + 0.02 * L, hl - 0.22 * L, hl - 0.12 * L
        else:  # pickup: short cabin, open bed behind
            xr0, xr1, xf1, xf0 = -hl + 0.42 * L, -hl + 0.43 * L, hl - 0.35 * L, hl - 0.22 * L
        cabin = np.array([[xr0, belt], [xf0, belt], [xf1, H], [xr1, H]])
        cw = body_w * 0.9
        parts.append(
            prism(
                cabin,
                -cw / 2,
                cw / 2,
                (0, 2, 1),
                mtl.GLASS,
                _GLASS,
                side_materials=[mtl.PAINT, mtl.GLASS, mtl.PAINT, mtl.GLASS],
                side_colours=[paint, _GLASS, paint, _GLASS],
            )
        )
        if kind == "pickup":  # bed walls
            for side in (-1, 1):
                parts.append(
                    box(
                        (0.4 * L, 0.06, 0.35),
                        (-hl + 0.2 * L, side * (body_w / 2 - 0.03), belt + 0.17),
                        mtl.PAINT,
                        paint,
                    )
                )
            parts.append(
                box((0.06, body_w, 0.35), (-hl + 0.03, 0.0, belt + 0.17), mtl.PAINT, paint)
            )
        axle = (-hl + 0.2 * L, hl - 0.2 * L)
    elif kind == "truck":
        cab_len = 2.2
        parts.append(
            box(
                (cab_len, body_w, H * 0.35),
                (hl - cab_len / 2, 0, clearance + H * 0.175),
                mtl.PAINT,
                paint,
            )
        )
        glass_h = H * 0.25
        parts.append(
            box(
                (cab_len * 0.8, body_w * 0.95, glass_h),
                (hl - cab_len * 0.45, 0, clearance + H * 0.35 + glass_h / 2),
                mtl.GLASS,
                _GLASS,
            )
        )
        parts.append(
            box(
                (cab_len, body_w, H * 0.08),
                (hl - cab_len / 2, 0, clearance + H * 0.6 + H * 0.04),
                mtl.PAINT,
                paint,
            )
        )
        cargo = np.array([0.9, 0.9, 0.88]) if paint[0] < 0.5 else np.asarray(paint) * 0.9
        cl = L - cab_len - 0.15
        parts.append(
            box(
                (cl, W, H - clearance - 0.1),
                (-hl + cl / 2, 0, clearance + 0.1 + (H - clearance - 0.1) / 2),
                mtl.PAINT,
                cargo,
            )
        )
        axle = (-hl + 0.18 * L, -hl + 0.3 * L, hl - cab_len * 0.45)
    elif kind == "bus":
        z0 = clearance
        parts.append(box((L, body_w, 1.0 - z0), (0, 0, (1.0 + z0) / 2), mtl.PAINT, paint))
        parts.append(
            box(
                (L * 0.98, body_w * 0.98, H - 1.35), (0, 0, 1.0 + (H - 1.35) / 2), mtl.GLASS, _GLASS
            )
        )
        parts.append(box((L, body_w, 0.35), (0, 0, H - 0.175), mtl.PAINT, paint))
        axle = (-hl + 0.25 * L, hl - 0.2 * L)
    else:
        raise ValueError(f"unknown vehicle kind {kind!r}; kinds are {list(VEHICLE_KINDS)}")
    parts.append(_wheels(axle, W / 2 - 0.14, wheel_r, 0.24))
    lamp_z = clearance + 0.25 if kind not in ("truck", "bus") else clearance + 0.3
    for side in (-1, 1):
        parts.append(
            box(
                (0.04, 0.3, 0.1),
                (hl + 0.0, side * (body_w / 2 - 0.25), lamp_z),
                mtl.LAMP_FRONT,
                (1.0, 0.95, 0.8),
            )
        )
        parts.append(
            box(
                (0.04, 0.25, 0.12),
                (-hl - 0.0, side * (body_w / 2 - 0.2), lamp_z + 0.1),
                mtl.LAMP_REAR,
                (0.9, 0.05, 0.03),
            )
        )
    return Mesh.concat(parts)


# --------------------------------------------------------------------------- people

SKINS = np.array(
    [
        [0.85, 0.64, 0.5],
        [0.7, 0.48, 0.34],
        [0.45, 0.28, 0.18],
        [0.28, 0.16, 0.1],
        [0.95, 0.75, 0.62],
    ],
    np.float32,
)
CLOTHES = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.1, 0.3, 0.8],
        [0.95, 0.8, 0.1],
        [0.1, 0.6, 0.25],
        [0.9, 0.45, 0.1],
        [0.6, 0.2, 0.7],
        [0.95, 0.95, 0.95],
        [0.05, 0.05, 0.06],
        [0.2, 0.2, 0.25],
        [0.1, 0.7, 0.8],
        [0.9, 0.4, 0.6],
    ],
    np.float32,
)


@dataclass(frozen=True)
class Person:
    """How one person looks."""

    height: float
    """Standing height, metres."""
    shirt: tuple[float, float, float]
    """Shirt colour."""
    trousers: tuple[float, float, float]
    """Trouser colour."""
    skin: tuple[float, float, float]
    """Skin colour."""
    hair: tuple[float, float, float]
    """Hair colour."""
    backpack: bool = False
    """Carries a backpack."""


def random_person(rng: np.random.Generator, child: bool = False) -> Person:
    """A person with random height and clothes."""
    h = rng.uniform(1.05, 1.35) if child else rng.uniform(1.55, 1.95)
    return Person(
        height=float(h),
        shirt=tuple(CLOTHES[rng.integers(len(CLOTHES))].tolist()),
        trousers=tuple(CLOTHES[rng.integers(len(CLOTHES))].tolist()),
        skin=tuple(SKINS[rng.integers(len(SKINS))].tolist()),
        hair=tuple(
            (np.array([0.05, 0.04, 0.03]) + rng.uniform(0, 0.4) * np.array([1, 0.7, 0.3])).tolist()
        ),
        backpack=bool(rng.random() < 0.25),
    )


def _limb(p0: Vec3, p1: Vec3, thickness: float, material: int, colour: Vec3) -> Mesh:
    return cylinder_between(p0, p1, thickness / 2, material, colour, segments=5)


@lru_cache(maxsize=256)
def person_mesh(p: Person, phase: float = 0.0, swing: float = 0.0) -> Mesh:
    """A standing or walking person facing +x (cached: the returned mesh is shared, do not modify).

    Args:
        p: appearance.
        phase: walking cycle phase, radians.
        swing: stride amplitude, radians (0 standing).
    """
    h = p.height
    hip = 0.52 * h
    shoulder = 0.81 * h
    sw = 0.2 * h / 1.75  # half shoulder width
    leg_t = 0.13 * h / 1.75
    parts = []
    for side, sgn in ((-1, 1.0), (1, -1.0)):
        a = sgn * swing * np.sin(phase)
        foot = (np.sin(a) * hip, side * 0.09 * h / 1.75, hip - np.cos(a) * hip + 0.02)
        parts.append(_limb((0, side * 0.09 * h / 1.75, hip), foot, leg_t, mtl.CLOTH, p.trousers))
        b = -a * 0.8
        hand = (np.sin(b) * 0.36 * h, side * (sw + 0.02), shoulder - np.cos(b) * 0.36 * h)
        parts.append(
            _limb((0, side * sw, shoulder - 0.02), hand, 0.08 * h / 1.75, mtl.CLOTH, p.shirt)
        )
    parts.append(
        box(
            (0.2 * h / 1.75, 2 * sw, shoulder - hip + 0.04),
            (0, 0, (hip + shoulder) / 2),
            mtl.CLOTH,
            p.shirt,
        )
    )
    head_r = 0.065 * h
    head_z = h - head_r
    parts.append(
        _limb((0, 0, shoulder), (0, 0, head_z - head_r * 0.6), 0.07 * h / 1.75, mtl.SKIN, p.skin)
    )
    parts.append(sphere(head_r, (0, 0, head_z), mtl.SKIN, p.skin, rings=4, segments=7))
    parts.append(
        sphere(head_r * 0.95, (-0.015, 0, head_z + 0.02), mtl.HAIR, p.hair, rings=3, segments=7)
    )
    if p.backpack:
        parts.append(
            box(
                (0.16, 0.3, 0.38),
                (-0.18 * h / 1.75, 0, shoulder - 0.22),
                mtl.CLOTH,
                (0.15, 0.15, 0.3),
            )
        )
    return Mesh.concat(parts)


# --------------------------------------------------------------------------- bicycles

FRAME_COLOURS = np.array(
    [[0.8, 0.05, 0.05], [0.05, 0.3, 0.85], [0.05, 0.05, 0.05], [0.9, 0.9, 0.9], [0.1, 0.6, 0.2]],
    np.float32,
)


@lru_cache(maxsize=64)
def bicycle_mesh(frame_colour: tuple[float, float, float]) -> tuple[Mesh, dict[str, np.ndarray]]:
    """A bicycle facing +x (thin tubes, spoke-less rims) and its key points (seat, bar, crank).

    Cached: the returned mesh and points are shared, do not modify them.
    """
    r = 0.34
    wb = 1.05
    rear, front = np.array([-wb / 2, 0, r]), np.array([wb / 2, 0, r])
    crank = np.array([-0.05, 0, 0.3])
    seat = np.array([-0.22, 0, 0.92])
    head = np.array([0.38, 0, 0.88])
    bar = np.array([0.34, 0, 1.0])
    parts = [
        ring(r, 0.025, rear, mtl.TYRE, _TYRE),
        ring(r, 0.025, front, mtl.TYRE, _TYRE),
    ]
    for a, b in (
        (rear, crank),
        (rear, seat),
        (crank, seat),
        (crank, head),
        (seat - [0, 0, 0.1], head),
        (head, front),
    ):
        parts.append(cylinder_between(a, b, 0.02, mtl.METAL, frame_colour, segments=4))
    parts.append(cylinder_between(head, bar, 0.02, mtl.METAL, frame_colour, segments=4))
    parts.append(
        cylinder_between(
            bar + np.array([0, -0.28, 0]),
            bar + np.array([0, 0.28, 0]),
            0.018,
            mtl.METAL,
            (0.1, 0.1, 0.1),
            segments=4,
        )
    )
    parts.append(
        box((0.24, 0.1, 0.05), seat + np.array([0, 0, 0.03]), mtl.PLASTIC, (0.05, 0.05, 0.05))
    )
    return Mesh.concat(parts), {"seat": seat + np.array([0, 0, 0.05]), "bar": bar, "crank": crank}


def cyclist_mesh(p: Person, frame_colour: tuple[float, float, float], phase: float = 0.0) -> Mesh:
    """A rider on a bicycle facing +x, pedalling at ``phase`` radians."""
    bike, k = bicycle_mesh(frame_colour)
    h = p.height
    scale = h / 1.75
    hip = k["seat"] + [0.0, 0.0, 0.05]
    shoulder = hip + np.array([0.35, 0, 0.5]) * scale
    parts = [bike]
    for side, ph in ((-1, phase), (1, phase + np.pi)):
        pedal = k["crank"] + np.array([0.17 * np.cos(ph), side * 0.12, 0.17 * np.sin(ph)])
        hp = hip + np.array([0, side * 0.1, 0])
        d = np.linalg.norm(pedal - hp)
        leg = 0.9 * scale
        mid = (hp + pedal) / 2
        knee = mid + np.array([1.0, 0, 0.3]) / np.hypot(1, 0.3) * np.sqrt(
            max(leg**2 / 4 - d**2 / 4, 0.0)
        )
        parts.append(_limb(hp, knee, 0.13 * scale, mtl.CLOTH, p.trousers))
        parts.append(_limb(knee, pedal, 0.11 * scale, mtl.CLOTH, p.trousers))
        grip = k["bar"] + [0, side * 0.22, 0]
        parts.append(
            _limb(
                shoulder + np.array([0, side * 0.18 * scale, 0]),
                grip,
                0.08 * scale,
                mtl.CLOTH,
                p.shirt,
            )
        )
    torso = _limb(hip, shoulder, 0.3 * scale, mtl.CLOTH, p.shirt)
    parts.append(torso)
    head_r = 0.065 * h
    head = shoulder + np.array([0.08, 0, 0.1 + head_r]) * np.array([1, 1, 1])
    parts.append(sphere(head_r, head, mtl.SKIN, p.skin, rings=4, segments=7))
    parts.append(
        sphere(
            head_r * 1.05,
            head + np.array([-0.01, 0, 0.025]),
            mtl.PLASTIC,
            p.hair,
            rings=3,
            segments=7,
        )
    )  # helmet
    if p.backpack:
        parts.append(
            box(
                (0.14, 0.28, 0.34),
                (hip + shoulder) / 2 + [-0.16, 0, 0.05],
                mtl.CLOTH,
                (0.15, 0.15, 0.3),
            )
        )
    return Mesh.concat(parts)


# --------------------------------------------------------------------------- street furniture

#: Sign faces: (shape, outer colour, inner colour).
SIGN_FACES: tuple[tuple[str, tuple[float, float, float], tuple[float, float, float]], ...] = (
    ("octagon", (0.95, 0.95, 0.95), (0.75, 0.02, 0.02)),  # stop
    ("triangle", (0.8, 0.02, 0.02), (0.95, 0.95, 0.95)),  # yield / warning
    ("diamond", (0.05, 0.05, 0.05), (0.95, 0.75, 0.02)),  # warning
    ("rectangle", (0.05, 0.05, 0.05), (0.95, 0.95, 0.95)),  # speed limit
    ("rectangle", (0.95, 0.95, 0.95), (0.02, 0.3, 0.75)),  # information
    ("circle", (0.8, 0.02, 0.02), (0.95, 0.95, 0.95)),  # prohibition
    ("circle", (0.95, 0.95, 0.95), (0.02, 0.3, 0.8)),  # mandatory
)


def _shape_polygon(shape: str, size: float) -> np.ndarray:
    """(P, 2) polygon (y, z) of a sign face centred at 0, ``size`` wide."""
    r = size / 2
    if shape == "octagon":
        a = np.pi / 8 + np.arange(8) * np.pi / 4
    elif shape == "circle":
        a = np.arange(12) * np.pi / 6
    elif shape == "triangle":
        a = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        a = a + np.pi  # point down (yield)
    elif shape == "diamond":
        a = np.arange(4) * np.pi / 2
    elif shape == "rectangle":
        return np.array([[-r, -r * 1.25], [r, -r * 1.25], [r, r * 1.25], [-r, r * 1.25]])
    else:
        raise ValueError(f"unknown sign shape {shape!r}")
    return np.stack([np.cos(a), np.sin(a)], 1) * r


def sign_mesh(
    face: int, size: float, height: float, blank: tuple[float, float, float] | None = None
) -> tuple[Mesh, np.ndarray, np.ndarray]:
    """A sign on a pole, its face towards +x; or, with ``blank``, a blank panel of that colour.

    Returns:
        ``(mesh, lo, hi)``: the mesh and the bounds (3,) of the face (a sign's label box
        covers the face only, as in the Waymo dataset).
    """
    shape, outer, inner = SIGN_FACES[face]
    poly = _shape_polygon(shape, size)
    zc = height
    thick = 0.03
    front_outer = mtl.SIGN_FACE if blank is None else mtl.SIGN_BACK
    oc, ic = (outer, inner) if blank is None else (blank, blank)
    back = (0.55, 0.56, 0.58) if blank is None else blank
    plate = prism(
        poly,
        -thick,
        0.0,
        (1, 2, 0),
        mtl.SIGN_BACK,
        back,
        cap_material=(mtl.SIGN_BACK, front_outer),
        cap_colour=(back, oc),
    ).transformed(np.eye(3), (0.0, 0.0, zc))
    parts = [plate]
    if blank is None:
        inner_poly = _shape_polygon(shape, size * 0.78)
        parts.append(
            prism(inner_poly, 0.0, 0.006, (1, 2, 0), mtl.SIGN_FACE, ic).transformed(
                np.eye(3), (0.0, 0.0, zc)
            )
        )
    lo, hi = Mesh.concat(parts).bounds()
    pole_top = zc + (poly[:, 1].max() * 0.5)
    parts.append(
        cylinder(
            0.035,
            0.0,
            pole_top,
            mtl.METAL,
            (0.5, 0.5, 0.52),
            segments=6,
            center=(-thick - 0.04, 0.0),
        )
    )
    return Mesh.concat(parts), lo, hi


def lamp_post_mesh(height: float) -> Mesh:
    """A street lamp: pole, arm over the road (+x... arm along +y) and head."""
    grey = (0.35, 0.36, 0.38)
    parts = [
        cylinder(0.08, 0.0, height, mtl.METAL, grey, segments=8),
        cylinder_between((0, 0, height - 0.1), (0, 1.6, height), 0.04, mtl.METAL, grey, segments=5),
        box((0.3, 0.6, 0.12), (0, 1.7, height - 0.05), mtl.METAL, grey),
    ]
    return Mesh.concat(parts)


def tree_mesh(rng: np.random.Generator) -> Mesh:
    """A tree: trunk and a rough foliage crown."""
    h = rng.uniform(3.0, 7.0)
    crown = rng.uniform(1.2, 2.4)
    green = np.array([0.12, 0.35, 0.08]) * rng.uniform(0.7, 1.3)
    return Mesh.concat(
        [
            cylinder(
                rng.uniform(0.1, 0.18), 0.0, h - crown * 0.8, mtl.BARK, (0.3, 0.2, 0.12), segments=7
            ),
            sphere(
                crown, (0, 0, h), mtl.FOLIAGE, np.clip(green, 0, 1), rings=5, segments=9, jitter=rng
            ),
        ]
    )


def column_mesh(rng: np.random.Generator) -> Mesh:
    """A pedestrian-sized column (bollard with a round top): looks like a person in sparse LiDAR."""
    h = rng.uniform(1.5, 1.9)
    r = rng.uniform(0.18, 0.26)
    colour = [(0.45, 0.45, 0.43), (0.12, 0.25, 0.15), (0.35, 0.28, 0.2), (0.6, 0.6, 0.58)][
        rng.integers(4)
    ]
    return Mesh.concat(
        [
            cylinder(r, 0.0, h - 0.2, mtl.CONCRETE, colour, segments=8),
            sphere(0.13, (0, 0, h - 0.12), mtl.CONCRETE, colour, rings=4, segments=7),
        ]
    )


def bin_mesh(rng: np.random.Generator) -> Mesh:
    """A litter bin."""
    colour = [(0.1, 0.3, 0.12), (0.2, 0.2, 0.22), (0.5, 0.35, 0.1)][rng.integers(3)]
    return cylinder(
        rng.uniform(0.25, 0.35), 0.0, rng.uniform(0.8, 1.1), mtl.PLASTIC, colour, segments=8
    )


def building_mesh(size: Sequence[float], colour: Vec3) -> Mesh:
    """A building block of ``size`` (x, y, z), origin at its footprint centre."""
    return box(size, (0.0, 0.0, size[2] / 2), mtl.BUILDING, colour)
