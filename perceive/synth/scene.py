"""The procedural world of one segment: road layout, buildings, street furniture, agents, ego.

World frame: x along the main road, y to its left, z up, metres; the ego drives in a
right-hand lane in +x, and its path is centred on x = 0 so world coordinates stay
small (Open3D casts rays in float32). A straight main road with 1-2 lanes per
direction, optional bike and parking lanes and an optional cross street; raised
sidewalks with kerbs; buildings behind them. Agents move along straight lines with
constant acceleration (speed clamped at 0): vehicles in lanes, parked vehicles,
pedestrians walking or standing on sidewalks, cyclists in bike lanes. Signs and the
unlabelled look-alikes (columns, blank panels, parked bicycles), lamp posts, trees and
bins stand on the sidewalks. Placement is checked over the whole segment: no two
footprints ever overlap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from perceive.synth import materials as mtl
from perceive.synth import meshes as ms
from perceive.synth.config import SceneConfig
from perceive.synth.meshes import Mesh

#: Waymo ``Label.Type`` values used here.
TYPE_VEHICLE, TYPE_PEDESTRIAN, TYPE_SIGN, TYPE_CYCLIST = 1, 2, 3, 4

#: Ego vehicle footprint (length, width), metres, and the position of its centre
#: ahead of the vehicle-frame origin (the rear axle).
EGO_SIZE = (4.9, 2.0)
EGO_CENTER_X = 1.4

KERB_HEIGHT = 0.15
FACADES = np.array(
    [
        [0.75, 0.68, 0.55],
        [0.55, 0.25, 0.18],
        [0.6, 0.6, 0.62],
        [0.85, 0.84, 0.8],
        [0.4, 0.3, 0.22],
        [0.7, 0.55, 0.4],
        [0.3, 0.35, 0.4],
    ],
    np.float32,
)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Road layout of a segment."""

    lanes: int
    """Lanes per direction of the main road."""
    lane_width: float
    """Lane width, metres."""
    bike_lane: float
    """Bike-lane width each side, metres (0: none)."""
    parking: float
    """Parking-lane width each side, metres (0: none)."""
    sidewalk: float
    """Sidewalk width, metres."""
    x_range: tuple[float, float]
    """World x extent of the built area, metres."""
    cross_x: float | None
    """x of the cross street's centre line, or None."""
    cross_half: float
    """Half width of the cross street's carriageway, metres."""

    @property
    def road_half(self) -> float:
        """Half width of the main carriageway (kerb to kerb), metres."""
        return self.lanes * self.lane_width + self.bike_lane + self.parking

    @property
    def walk_outer(self) -> float:
        """|y| of the sidewalks' outer edge, metres."""
        return self.road_half + self.sidewalk

    def near_cross(self, x: np.ndarray, pad: float) -> np.ndarray:
        """(N,) bool: x within the cross street (carriageway + sidewalks) widened by ``pad``."""
        if self.cross_x is None:
            return np.zeros(np.shape(x), bool)
        return np.abs(np.asarray(x) - self.cross_x) <= self.cross_half + self.sidewalk + pad

    def terrain(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Albedo (N, 3) float32 and LiDAR reflectivity (N,) float32 of the ground at world (x, y).

        Asphalt with lane markings on the carriageways, grass elsewhere.
        """
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        ay = np.abs(y)
        main = ay <= self.road_half
        cross = np.zeros_like(main)
        inter = np.zeros_like(main)
        if self.cross_x is not None:
            dx = np.abs(x - self.cross_x)
            cross = dx <= self.cross_half
            inter = cross & main
        road = main | cross
        paint = np.zeros_like(main)
        yellow = np.zeros_like(main)
        lw = self.lane_width
        # main road markings (outside the intersection box)
        m = main & ~inter
        yellow |= m & (ay >= 0.1) & (ay <= 0.22)
        for k in range(1, self.lanes):
            dashed = (np.mod(x, 9.0) < 3.0) & (np.abs(ay - k * lw) < 0.075)
            paint |= m & dashed
        paint |= m & (np.abs(ay - self.lanes * lw) < 0.08)
        if self.cross_x is not None:
            dx = np.abs(x - self.cross_x)
            zebra = (
                main
                & (dx > self.cross_half + 0.5)
                & (dx < self.cross_half + 3.5)
                & (np.mod(y, 1.0) < 0.5)
            )
            stop = (
                main
                & (np.abs(dx - self.cross_half - 4.0) < 0.2)
                & (np.sign(y) == -np.sign(x - self.cross_x))
            )
            paint |= zebra | stop
            c = cross & ~main
            yellow |= c & (dx >= 0.1) & (dx <= 0.22)
        # a cheap deterministic noise from position
        n = np.sin(x * 12.9898 + y * 78.233) * 43758.5453
        n = (n - np.floor(n)).astype(np.float32)
        albedo = np.empty((x.size, 3), np.float32)
        grass = np.array([0.16, 0.3, 0.08], np.float32) * (0.8 + 0.4 * n[:, None])
        asphalt = np.array([0.11, 0.11, 0.12], np.float32) * (0.85 + 0.3 * n[:, None])
        albedo[:] = np.where(road[:, None], asphalt, grass)
        albedo[paint] = (0.9, 0.9, 0.88)
        albedo[yellow] = (0.9, 0.7, 0.1)
        refl = np.where(road, 0.12, 0.22).astype(np.float32)
        refl[paint | yellow] = 0.65
        return albedo, refl


# --------------------------------------------------------------------------- motion


@dataclass(frozen=True)
class Trajectory:
    """Straight-line motion with constant acceleration; speed clamped to [0, ``max_speed``]."""

    start: tuple[float, float]
    """World (x, y) at t = 0, metres."""
    heading: float
    """Yaw of the motion and of the object, radians."""
    speed: float = 0.0
    """Speed at t = 0, m/s."""
    accel: float = 0.0
    """Acceleration along the heading, m/s^2."""
    max_speed: float = 20.0
    """Speed limit, m/s."""

    def distance(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distance travelled (m), speed (m/s) and acceleration (m/s^2) at times ``t`` (s)."""
        t = np.asarray(t, np.float64)
        v0, a = self.speed, self.accel
        if a == 0.0:
            return v0 * t, np.full_like(t, v0), np.zeros_like(t)
        bound = self.max_speed if a > 0 else 0.0
        tb = max((bound - v0) / a, 0.0)
        tc = np.minimum(t, tb)
        s = v0 * tc + 0.5 * a * tc**2 + bound * np.maximum(t - tb, 0.0)
        return s, v0 + a * tc, np.where(t < tb, a, 0.0)

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World (N, 2) position, (N, 2) velocity and (N, 2) acceleration at times (N,) ``t``."""
        s, v, a = self.distance(np.atleast_1d(t))
        d = np.array([np.cos(self.heading), np.sin(self.heading)])
        return np.asarray(self.start) + s[:, None] * d, v[:, None] * d, a[:, None] * d


@dataclass(frozen=True, eq=False)
class Agent:
    """A labelled object (or, with ``type`` 0, an unlabelled moving one)."""

    id: str
    """Tracking id, stable over the segment."""
    type: int
    """Waymo ``Label.Type``."""
    kind: str
    """Body kind: a vehicle kind, ``"pedestrian"``, ``"cyclist"`` or ``"sign"``."""
    trajectory: Trajectory
    """Motion."""
    z: float
    """Height of the ground it stands on, metres."""
    mesh: Mesh | None = None
    """Rigid mesh in the object frame (None for people, rebuilt each frame)."""
    person: ms.Person | None = None
    """Appearance of a pedestrian or cyclist."""
    frame_colour: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Bicycle colour of a cyclist."""
    face: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    """Bounds (lo, hi) of a sign's face in the object frame (its label box covers the face)."""
    footprint: tuple[float, float] = (1.0, 1.0)
    """Half length and half width used for placement, metres."""

    def mesh_at(self, t: float) -> Mesh:
        """The object-frame mesh at time ``t`` (limbs move with the distance travelled)."""
        if self.mesh is not None:
            return self.mesh
        s, _, _ = self.trajectory.distance(np.array([t]))
        assert self.person is not None
        if self.kind == "cyclist":
            return ms.cyclist_mesh(self.person, self.frame_colour, phase=float(s[0]) / 0.9)
        stride = 0.75 * self.person.height
        moving = self.trajectory.speed > 0 or self.trajectory.accel > 0
        return ms.person_mesh(
            self.person, phase=float(s[0]) / stride * np.pi, swing=0.35 if moving else 0.0
        )


@dataclass(frozen=True)
class EgoMotion:
    """The ego vehicle's motion: a trajectory plus small body roll and pitch oscillations."""

    trajectory: Trajectory
    """Motion of the vehicle-frame origin (the rear axle centre) on the ground."""
    roll_amp: float = 0.002
    """Roll amplitude, radians."""
    pitch_amp: float = 0.003
    """Pitch amplitude, radians."""
    phase: float = 0.0
    """Phase of the oscillations, radians."""

    def euler(self, t: np.ndarray) -> np.ndarray:
        """(N, 6) float64 ``roll, pitch, yaw, x, y, z`` vehicle -> world at times (N,) ``t``."""
        t = np.atleast_1d(np.asarray(t, np.float64))
        xy, _, _ = self.trajectory.at(t)
        out = np.empty((t.size, 6))
        out[:, 0] = self.roll_amp * np.sin(2.1 * t + self.phase)
        out[:, 1] = self.pitch_amp * np.sin(1.3 * t + 2 * self.phase)
        out[:, 2] = self.trajectory.heading
        out[:, 3:5] = xy
        out[:, 5] = 0.0
        return out

    def velocity(self, t: float) -> np.ndarray:
        """(3,) world velocity at ``t``, m/s."""
        _, v, _ = self.trajectory.at(np.array([t]))
        return np.array([v[0, 0], v[0, 1], 0.0])


# --------------------------------------------------------------------------- world snapshot


@dataclass(frozen=True, eq=False)
class WorldMesh:
    """Every triangle of the world at one instant, ready for ray casting."""

    vertices: np.ndarray
    """(V, 3) float32 world frame, metres."""
    triangles: np.ndarray
    """(T, 3) uint32."""
    material: np.ndarray
    """(T,) int16 material id."""
    colour: np.ndarray
    """(T, 3) float32 albedo."""
    instance: np.ndarray
    """(T,) int32 instance id: 0 the ground, then static objects, then agents."""


@dataclass(frozen=True, eq=False)
class AgentStates:
    """Labelled agents at one instant, world frame."""

    index: np.ndarray
    """(N,) int64 agent index in :attr:`Scene.agents`."""
    center: np.ndarray
    """(N, 3) float64 label-box centres, metres."""
    size: np.ndarray
    """(N, 3) float64 length, width, height, metres."""
    heading: np.ndarray
    """(N,) float64 yaw, radians."""
    velocity: np.ndarray
    """(N, 3) float64 m/s."""
    accel: np.ndarray
    """(N, 3) float64 m/s^2."""


@dataclass(frozen=True, eq=False)
class Scene:
    """The world of one segment."""

    name: str
    """Segment name."""
    layout: Layout
    """Road layout."""
    ego: EgoMotion
    """Ego motion."""
    static: Mesh
    """Ground, sidewalks, buildings and street furniture, world frame."""
    static_instance: np.ndarray
    """(T,) int32 instance id of each static triangle (0: terrain)."""
    agents: tuple[Agent, ...]
    """Agents (labelled objects, moving or not)."""
    margin: float = 0.05
    """Metres added around an object's mesh for its label box."""
    sun: np.ndarray = field(default_factory=lambda: np.array([0.4, 0.3, 0.87]))
    """(3,) unit vector towards the sun, world frame."""
    time_of_day: str = "Day"
    """Waymo time-of-day string."""

    @property
    def num_static_instances(self) -> int:
        """Instance ids 0 .. n-1 belong to static objects; agent i has id n + i."""
        return int(self.static_instance.max()) + 1 if self.static_instance.size else 1

    def instance_agent(self) -> np.ndarray:
        """(I,) int64 agent index of each instance id, -1 for static objects."""
        n = self.num_static_instances
        return np.concatenate([np.full(n, -1), np.arange(len(self.agents))]).astype(np.int64)

    def snapshot(self, t: float) -> tuple[WorldMesh, AgentStates]:
        """The world mesh and the labelled agents' boxes at time ``t`` seconds."""
        n0 = self.num_static_instances
        meshes = [self.static]
        inst = [self.static_instance]
        idx, centers, sizes, headings, vels, accs = [], [], [], [], [], []
        for i, ag in enumerate(self.agents):
            local = ag.mesh_at(t)
            xy, v, a = ag.trajectory.at(np.array([t]))
            yaw = ag.trajectory.heading
            pos = np.array([xy[0, 0], xy[0, 1], ag.z])
            meshes.append(local.posed(yaw, pos))
            inst.append(np.full(len(local), n0 + i, np.int32))
            if ag.type == 0:
                continue
            if ag.face is not None:
                lo, hi = np.asarray(ag.face[0]) - self.margin, np.asarray(ag.face[1]) + self.margin
            else:
                lo, hi = local.bounds()
                lo = lo - self.margin
                hi = hi + self.margin
                lo[2] = 0.03  # above the ground the object stands on: ground points stay outside
            c_local = (lo + hi) / 2
            c, s = np.cos(yaw), np.sin(yaw)
            centers.append(
                pos
                + np.array(
                    [c * c_local[0] - s * c_local[1], s * c_local[0] + c * c_local[1], c_local[2]]
                )
            )
            sizes.append(hi - lo)
            headings.append(yaw)
            vels.append([v[0, 0], v[0, 1], 0.0])
            accs.append([a[0, 0], a[0, 1], 0.0])
            idx.append(i)
        mesh = Mesh.concat(meshes)
        world = WorldMesh(
            vertices=mesh.vertices.astype(np.float32),
            triangles=mesh.triangles.astype(np.uint32),
            material=mesh.material,
            colour=mesh.colour,
            instance=np.concatenate(inst).astype(np.int32),
        )
        n = len(idx)
        states = AgentStates(
            index=np.asarray(idx, np.int64),
            center=np.asarray(centers, np.float64).reshape(n, 3),
            size=np.asarray(sizes, np.float64).reshape(n, 3),
            heading=np.asarray(headings, np.float64).reshape(n),
            velocity=np.asarray(vels, np.float64).reshape(n, 3),
            accel=np.asarray(accs, np.float64).reshape(n, 3),
        )
        return world, states


# --------------------------------------------------------------------------- placement


class _Occupancy:
    """Footprints (oriented rectangles) over the segment's sample times; overlap tests."""

    def __init__(self, times: np.ndarray) -> None:
        self.times = times
        self.centers: list[np.ndarray] = []  # (n_t, 2)
        self.yaws: list[np.ndarray] = []  # (n_t,)
        self.halves: list[np.ndarray] = []  # (2,)

    def _track(self, traj: Trajectory) -> tuple[np.ndarray, np.ndarray]:
        xy, _, _ = traj.at(self.times)
        return xy, np.full(self.times.size, traj.heading)

    def free(
        self, traj: Trajectory, half: tuple[float, float], clearance: float, offset: float = 0.0
    ) -> bool:
        """Whether a footprint moving along ``traj`` never overlaps a placed one.

        ``offset`` shifts the footprint's centre along the heading (the ego's centre is
        ahead of its origin).
        """
        if not self.centers:
            return True
        c, y = self._track(traj)
        c = c + offset * np.array([np.cos(traj.heading), np.sin(traj.heading)])
        C = np.stack(self.centers)  # (K, n_t, 2)
        Y = np.stack(self.yaws)  # (K, n_t)
        H = np.stack(self.halves) + clearance  # (K, 2)
        h = np.asarray(half) + clearance
        ua = np.stack([np.cos(y), np.sin(y)], -1)  # (n_t, 2)
        va = np.stack([-np.sin(y), np.cos(y)], -1)
        ub = np.stack([np.cos(Y), np.sin(Y)], -1)  # (K, n_t, 2)
        vb = np.stack([-np.sin(Y), np.cos(Y)], -1)
        d = C - c[None]
        sep = np.zeros(C.shape[:2], bool)
        for axis in (np.broadcast_to(ua, C.shape), np.broadcast_to(va, C.shape), ub, vb):
            ra = h[0] * np.abs((ua[None] * axis).sum(-1)) + h[1] * np.abs((va[None] * axis).sum(-1))
            rb = H[:, None, 0] * np.abs((ub * axis).sum(-1)) + H[:, None, 1] * np.abs(
                (vb * axis).sum(-1)
            )
            sep |= np.abs((d * axis).sum(-1)) > ra + rb
        return bool(sep.all())

    def add(self, traj: Trajectory, half: tuple[float, float], offset: float = 0.0) -> None:
        c, y = self._track(traj)
        c = c + offset * np.array([np.cos(traj.heading), np.sin(traj.heading)])
        self.centers.append(c)
        self.yaws.append(y)
        self.halves.append(np.asarray(half, np.float64))


def _object_id(segment: str, index: int) -> str:
    return hashlib.sha1(f"{segment}/{index}".encode()).hexdigest()[:22]


def _paint(rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(
        np.clip(ms.PAINTS[rng.integers(len(ms.PAINTS))] * rng.uniform(0.9, 1.1), 0, 1).tolist()
    )


def build_scene(config: SceneConfig, rng: np.random.Generator, name: str, duration: float) -> Scene:
    """Build a random world for a segment of ``duration`` seconds.

    Args:
        config: what to put in the world.
        rng: the segment's random generator (the scene is a pure function of its state).
        name: segment name (used for object ids).
        duration: seconds from the first to the last frame.
    """
    lw = config.lane_width
    lanes = int(rng.integers(config.lanes_per_direction[0], config.lanes_per_direction[1] + 1))
    bike = float(rng.choice([0.0, 1.6], p=[0.5, 0.5]))
    parking = float(rng.choice([0.0, 2.4], p=[0.4, 0.6]))
    sidewalk = float(rng.uniform(3.0, 5.0))
    ego_lane = int(rng.integers(0, lanes))
    v0 = float(rng.uniform(*config.ego_speed))
    if rng.random() < 0.15:
        v0 = 0.0
    a0 = float(rng.uniform(-0.8, 0.8))
    ego_traj = Trajectory(
        (0.0, -(ego_lane + 0.5) * lw + rng.normal(0, 0.1)), float(rng.normal(0, 0.01)), v0, a0, 16.0
    )
    s_end = float(ego_traj.distance(np.array([duration]))[0][0])
    ego_traj = Trajectory((-s_end / 2, ego_traj.start[1]), ego_traj.heading, v0, a0, 16.0)
    x0, x1 = -s_end / 2 - 110.0, s_end / 2 + 110.0
    cross_x = None
    cross_half = lanes * lw
    if rng.random() < config.intersection_prob:
        cross_x = float(rng.uniform(-s_end / 2 + 15.0, s_end / 2 + 60.0))
        cross_half = float(rng.integers(1, 3)) * lw
    layout = Layout(lanes, lw, bike, parking, sidewalk, (x0, x1), cross_x, cross_half)
    ego = EgoMotion(ego_traj, phase=float(rng.uniform(0, 2 * np.pi)))

    times = np.linspace(0.0, duration, max(2, int(np.ceil(duration / 0.25)) + 1))
    occ = _Occupancy(times)
    occ.add(ego_traj, (EGO_SIZE[0] / 2, EGO_SIZE[1] / 2), offset=EGO_CENTER_X)

    static_parts: list[Mesh] = []
    static_ids: list[int] = []

    def add_static(mesh: Mesh) -> None:
        static_parts.append(mesh)
        static_ids.append(len(static_ids) + 1)

    rh, wo = layout.road_half, layout.walk_outer
    big = 3000.0
    ground = ms.prism(
        np.array([[-big, -big], [big, -big], [big, big], [-big, big]]),
        -0.001,
        0.0,
        (0, 1, 2),
        mtl.TERRAIN,
        (0.2, 0.2, 0.2),
    )
    # keep only the top face: the two cap triangles at z = 0
    top = ground.triangles[2:4]
    ground = Mesh(ground.vertices, top, ground.material[2:4], ground.colour[2:4])
    static_parts.append(ground)
    static_ids.append(0)

    # sidewalks (split by the cross street)
    pave = (0.55, 0.55, 0.53)
    spans = [(x0 - 200.0, x1 + 200.0)]
    if cross_x is not None:
        spans = [(x0 - 200.0, cross_x - cross_half), (cross_x + cross_half, x1 + 200.0)]
    for a, b in spans:
        for side in (-1, 1):
            add_static(
                ms.box(
                    (b - a, sidewalk, KERB_HEIGHT),
                    ((a + b) / 2, side * (rh + sidewalk / 2), KERB_HEIGHT / 2),
                    mtl.SIDEWALK,
                    pave,
                )
            )
    if cross_x is not None:
        for side in (-1, 1):
            for sy in (-1, 1):
                length = 200.0
                add_static(
                    ms.box(
                        (sidewalk, length, KERB_HEIGHT),
                        (
                            cross_x + side * (cross_half + sidewalk / 2),
                            sy * (wo + length / 2),
                            KERB_HEIGHT / 2,
                        ),
                        mtl.SIDEWALK,
                        pave,
                    )
                )

    # buildings
    for side in (-1, 1):
        x = x0 - 60.0
        setback = float(rng.uniform(0.0, 4.0))
        while x < x1 + 60.0:
            width = float(rng.uniform(8.0, 30.0))
            if (
                cross_x is not None
                and x + width > cross_x - cross_half - sidewalk - 2
                and x < cross_x + cross_half + sidewalk + 2
            ):
                x = cross_x + cross_half + sidewalk + 2.0
                continue
            depth = float(rng.uniform(8.0, 20.0))
            height = float(rng.uniform(4.0, 25.0))
            colour = np.clip(FACADES[rng.integers(len(FACADES))] * rng.uniform(0.85, 1.15), 0, 1)
            y = side * (wo + setback + rng.uniform(0.0, 1.5) + depth / 2)
            add_static(
                ms.building_mesh((width, depth, height), colour).transformed(
                    np.eye(3), (x + width / 2, y, 0.0)
                )
            )
            x += width + (float(rng.uniform(1.0, 6.0)) if rng.random() < 0.4 else 0.0)

    def sidewalk_point(
        side: int, lo: float, hi: float, xr: tuple[float, float]
    ) -> tuple[float, float]:
        """A point on the main sidewalk: |y| - road_half in [lo, hi]."""
        for _ in range(20):
            x = float(rng.uniform(*xr))
            if not layout.near_cross(np.array([x]), 0.5)[0]:
                return x, side * (rh + float(rng.uniform(lo, hi)))
        return float(rng.uniform(*xr)), side * (rh + float(rng.uniform(lo, hi)))

    def place_static(
        mesh: Mesh,
        half: tuple[float, float],
        side: int,
        band: tuple[float, float],
        yaw: float | None = None,
    ) -> bool:
        for _ in range(15):
            x, y = sidewalk_point(side, *band, (x0, x1))
            trj = Trajectory((x, y), float(rng.uniform(-np.pi, np.pi)) if yaw is None else yaw)
            if occ.free(trj, half, 0.3):
                occ.add(trj, half)
                add_static(mesh.posed(trj.heading, (x, y, KERB_HEIGHT)))
                return True
        return False

    agents: list[Agent] = []

    def add_agent(
        kind: str,
        typ: int,
        trj: Trajectory,
        z: float,
        half: tuple[float, float],
        clearance: float,
        **kw,
    ) -> bool:
        if not occ.free(trj, half, clearance):
            return False
        occ.add(trj, half)
        agents.append(Agent(_object_id(name, len(agents)), typ, kind, trj, z, footprint=half, **kw))
        return True

    # vehicles
    lane_speed = {(d, k): float(rng.uniform(5.0, 14.0)) for d in (-1, 1) for k in range(lanes)}
    xr = (x0 + 20.0, x1 - 20.0)
    n_veh = int(rng.integers(config.vehicles[0], config.vehicles[1] + 1))
    kinds = list(ms.VEHICLE_KINDS)
    weights = np.array([ms.VEHICLE_WEIGHTS[k] for k in kinds])
    for _ in range(n_veh):
        for _attempt in range(20):
            kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
            (l0, l1), (w0, w1), (h0, h1) = ms.VEHICLE_KINDS[kind]
            L, W, H = rng.uniform(l0, l1), rng.uniform(w0, w1), rng.uniform(h0, h1)
            half = (L / 2 + 0.05, W / 2 + 0.05)
            u = rng.random()
            d = int(rng.choice([-1, 1]))
            if u < 0.6 or (parking == 0.0 and (cross_x is None or u < 0.85)):
                k = int(rng.integers(0, lanes))
                y = -d * (k + 0.5) * lw + rng.normal(0, 0.15)
                speed = (
                    max(lane_speed[(d, k)] + rng.normal(0, 0.5), 0.0) if rng.random() > 0.1 else 0.0
                )
                trj = Trajectory(
                    (float(rng.uniform(*xr)), y),
                    0.0 if d > 0 else np.pi,
                    speed,
                    float(rng.uniform(-0.4, 0.4)),
                    16.0,
                )
            elif u < 0.85 and parking > 0.0:
                if kind in ("bus", "truck"):
                    continue
                y = -d * (lanes * lw + bike + parking / 2)
                x = float(rng.uniform(*xr))
                if layout.near_cross(np.array([x]), L):
                    continue
                trj = Trajectory((x, y), (0.0 if d > 0 else np.pi) + rng.normal(0, 0.03))
            elif cross_x is not None:
                k = int(rng.integers(0, round(cross_half / lw)))
                x = cross_x + d * (k + 0.5) * lw
                sy = int(rng.choice([-1, 1]))
                y = sy * float(rng.uniform(rh + L / 2 + 6.0, 80.0))
                heading = (
                    np.pi / 2 if d > 0 else -np.pi / 2
                )  # right-hand traffic: +y on the +x side
                speed = 0.0 if rng.random() < 0.4 else float(rng.uniform(3.0, 10.0))
                trj = Trajectory((x, y), heading, speed, 0.0, 16.0)
                ys, _, _ = trj.at(times)
                if np.any(np.abs(ys[:, 1]) < rh + L / 2 + 4.0):  # never enters the intersection
                    continue
            else:
                continue
            mesh = ms.vehicle_mesh(kind, L, W, H, _paint(rng))
            if add_agent(kind, TYPE_VEHICLE, trj, 0.0, half, 1.0, mesh=mesh):
                break

    # pedestrians
    n_ped = int(rng.integers(config.pedestrians[0], config.pedestrians[1] + 1))
    for _ in range(n_ped):
        for _attempt in range(20):
            person = ms.random_person(rng, child=rng.random() < 0.12)
            side = int(rng.choice([-1, 1]))
            on_cross = cross_x is not None and rng.random() < 0.25
            walking = rng.random() < 0.7
            speed = float(rng.uniform(0.8, 1.7)) if walking else 0.0
            if on_cross:
                sx = int(rng.choice([-1, 1]))
                x = cross_x + sx * (cross_half + rng.uniform(0.6, sidewalk - 0.4))
                y = side * float(rng.uniform(wo + 1.0, 60.0))
                heading = (
                    float(rng.choice([np.pi / 2, -np.pi / 2]))
                    if walking
                    else float(rng.uniform(-np.pi, np.pi))
                )
            else:
                x, y = sidewalk_point(side, 0.5, sidewalk - 0.4, (x0 + 30.0, x1 - 30.0))
                heading = (
                    float(rng.choice([0.0, np.pi])) + rng.normal(0, 0.05)
                    if walking
                    else float(rng.uniform(-np.pi, np.pi))
                )
            trj = Trajectory((float(x), float(y)), heading, speed)
            if walking:
                xy, _, _ = trj.at(times)
                ay = np.abs(xy[:, 1])
                if on_cross:
                    if np.any(ay < wo + 0.5):
                        continue
                elif np.any(layout.near_cross(xy[:, 0], 0.3)):
                    continue
            if add_agent(
                "pedestrian", TYPE_PEDESTRIAN, trj, KERB_HEIGHT, (0.35, 0.35), 0.15, person=person
            ):
                break

    # cyclists
    n_cyc = int(rng.integers(config.cyclists[0], config.cyclists[1] + 1))
    for _ in range(n_cyc):
        for _attempt in range(20):
            d = int(rng.choice([-1, 1]))
            y = -d * (lanes * lw + bike / 2) if bike > 0 else -d * (lanes * lw - 0.7)
            trj = Trajectory(
                (float(rng.uniform(*xr)), float(y + rng.normal(0, 0.1))),
                0.0 if d > 0 else np.pi,
                float(rng.uniform(3.0, 7.0)),
                0.0,
            )
            person = ms.random_person(rng)
            colour = tuple(ms.FRAME_COLOURS[rng.integers(len(ms.FRAME_COLOURS))].tolist())
            if add_agent(
                "cyclist",
                TYPE_CYCLIST,
                trj,
                0.0,
                (0.95, 0.35),
                0.8,
                person=person,
                frame_colour=colour,
            ):
                break

    # signs (labelled) and look-alikes (unlabelled)
    n_sign = int(rng.integers(config.signs[0], config.signs[1] + 1))
    for _ in range(n_sign):
        for _attempt in range(15):
            side = int(rng.choice([-1, 1]))
            x, y = sidewalk_point(side, 0.3, 0.9, (x0 + 20.0, x1 - 20.0))
            yaw = (np.pi if side < 0 else 0.0) + rng.normal(0, 0.15)
            if rng.random() < 0.15:
                yaw += np.pi
            if rng.random() < 0.15:
                yaw += side * np.pi / 2
            face = int(rng.integers(len(ms.SIGN_FACES)))
            mesh, lo, hi = ms.sign_mesh(
                face, float(rng.uniform(0.6, 0.9)), float(rng.uniform(1.9, 2.6))
            )
            trj = Trajectory((x, y), float(yaw))
            if add_agent(
                "sign",
                TYPE_SIGN,
                trj,
                KERB_HEIGHT,
                (0.3, 0.45),
                0.2,
                mesh=mesh,
                face=(tuple(lo), tuple(hi)),
            ):
                break

    n_dis = int(rng.integers(config.distractors[0], config.distractors[1] + 1))
    for _ in range(n_dis):
        side = int(rng.choice([-1, 1]))
        u = rng.random()
        if u < 0.4:
            place_static(ms.column_mesh(rng), (0.3, 0.3), side, (0.3, sidewalk - 0.3))
        elif u < 0.7:
            blank = [(0.55, 0.56, 0.58), (0.4, 0.3, 0.2), (0.25, 0.3, 0.25)][rng.integers(3)]
            mesh, _, _ = ms.sign_mesh(
                int(rng.integers(len(ms.SIGN_FACES))),
                float(rng.uniform(0.6, 0.9)),
                float(rng.uniform(1.9, 2.6)),
                blank=blank,
            )
            place_static(
                mesh,
                (0.3, 0.45),
                side,
                (0.3, 0.9),
                yaw=(np.pi if side < 0 else 0.0) + rng.normal(0, 0.3),
            )
        elif u < 0.85:
            bike_mesh, _ = ms.bicycle_mesh(
                tuple(ms.FRAME_COLOURS[rng.integers(len(ms.FRAME_COLOURS))].tolist())
            )
            place_static(
                bike_mesh,
                (0.6, 0.3),
                side,
                (0.4, sidewalk - 0.5),
                yaw=float(rng.choice([0.0, np.pi, np.pi / 2])),
            )
        else:
            place_static(ms.bin_mesh(rng), (0.35, 0.35), side, (0.3, sidewalk - 0.3))
    # lamp posts and trees along the kerb
    for side in (-1, 1):
        x = x0 + float(rng.uniform(0, 30))
        while x < x1:
            if not layout.near_cross(np.array([x]), 1.0)[0]:
                trj = Trajectory((x, side * (rh + 0.45)), np.pi / 2 if side < 0 else -np.pi / 2)
                if occ.free(trj, (0.2, 0.2), 0.2):
                    occ.add(trj, (0.2, 0.2))
                    add_static(
                        ms.lamp_post_mesh(float(rng.uniform(6.0, 8.0))).posed(
                            trj.heading, (x, trj.start[1], KERB_HEIGHT)
                        )
                    )
            x += float(rng.uniform(25.0, 40.0))
        x = x0 + float(rng.uniform(0, 10))
        while x < x1:
            if rng.random() < 0.5 and not layout.near_cross(np.array([x]), 3.0)[0]:
                trj = Trajectory((x, side * (rh + sidewalk - 0.8)), 0.0)
                if occ.free(trj, (0.3, 0.3), 0.3):
                    occ.add(trj, (0.3, 0.3))
                    add_static(ms.tree_mesh(rng).posed(0.0, (x, trj.start[1], KERB_HEIGHT)))
            x += float(rng.uniform(8.0, 16.0))

    static = Mesh.concat(static_parts)
    static_instance = np.concatenate(
        [np.full(len(m), i, np.int32) for m, i in zip(static_parts, static_ids, strict=True)]
    )
    sun_az = float(rng.uniform(-np.pi, np.pi))
    sun_el = float(rng.uniform(0.35, 1.2))
    sun = np.array(
        [np.cos(sun_el) * np.cos(sun_az), np.cos(sun_el) * np.sin(sun_az), np.sin(sun_el)]
    )
    return Scene(
        name=name,
        layout=layout,
        ego=ego,
        static=static,
        static_instance=static_instance,
        agents=tuple(agents),
        margin=config.margin,
        sun=sun,
        time_of_day="Day" if sun_el > 0.5 else "Dawn/Dusk",
    )
