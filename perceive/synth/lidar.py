"""LiDAR by ray casting: range images of the five Waymo lasers.

Every range-image pixel is one ray cast exactly along its own direction: the
pixel's row inclination and column azimuth as the format defines them (so the
reader's conversion of the written range gives back the hit point), from the
sensor pose at the pixel's capture time. The TOP laser spins once per
``spin_period`` while the vehicle moves: column ``c`` is captured at
``t_frame + ((c + 0.5) / W - 0.5) * spin_period`` (column 0 points backwards and the
sweep runs clockwise seen from above, so the frame time is when it points forwards),
and its vehicle pose is written as the per-pixel pose. The short-range lasers have
no per-pixel pose, as in the dataset, and are cast from the frame's pose. The world
(agents included) is frozen at the frame time during a sweep.

Measurement model: intensity from the material's reflectivity (paint and cloth
scaled by colour brightness, lane markings bright) and the incidence angle; returns
of weak signals (dark surfaces far away, grazing angles) are lost; an optional
random dropout and Gaussian range noise; elongation grows at grazing incidence and
at edges; a second return where the beam partly passes an object edge (a range
jump to a neighbouring pixel) or a thin structure (poles, bicycles, foliage),
found by continuing the same ray past the first object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perceive.datasets.types import CameraCalibration, LaserCalibration, RangeImage, camera_id
from perceive.geometry.range_image import column_azimuths
from perceive.geometry.transforms import euler_to_rotation, make_transform
from perceive.synth import materials as mtl
from perceive.synth.config import LidarConfig
from perceive.synth.raycast import Hits, RayCaster
from perceive.synth.scene import Scene

#: Laser mounting: (x, y, z, roll, pitch, yaw) in the vehicle frame, metres and radians.
LASER_MOUNTS: dict[str, tuple[float, float, float, float, float, float]] = {
    "TOP": (1.43, 0.0, 2.184, 0.0, 0.0, -0.0151),
    "FRONT": (4.07, 0.0, 0.691, 0.0, 0.0, 0.0),
    "SIDE_LEFT": (3.245, 1.025, 0.981, 0.0, 0.0, np.pi / 2),
    "SIDE_RIGHT": (3.245, -1.025, 0.981, 0.0, 0.0, -np.pi / 2),
    "REAR": (-1.154, 0.0, 0.466, 0.0, 0.0, np.pi),
}

#: TOP beam inclination limits, radians (the dataset's TOP laser: about -17.6 to +2.4 degrees).
TOP_INCLINATION = (np.deg2rad(-17.6), np.deg2rad(2.4))
#: Short-range laser inclination limits, radians (uniform rows).
SIDE_INCLINATION = (np.deg2rad(-90.0), np.deg2rad(30.0))
#: Weak-signal threshold: a surface of this reflectivity seen head-on is at the threshold at
#: ``LidarConfig.detection_range``.
SIGNAL_THRESHOLD = 0.05


def top_inclinations(height: int) -> np.ndarray:
    """(H,) float64 ascending TOP beam inclinations: spacing grows 3x from the top beam down."""
    lo, hi = TOP_INCLINATION
    spacing = 1.0 + 2.0 * np.linspace(0.0, 1.0, height - 1)  # from the top down
    steps = np.concatenate([[0.0], np.cumsum(spacing)])
    incl_desc = hi - (hi - lo) * steps / steps[-1]
    return incl_desc[::-1].copy()


def laser_calibrations(config: LidarConfig) -> dict[str, LaserCalibration]:
    """Calibrations of the configured lasers (TOP with explicit non-uniform beams)."""
    out = {}
    for name in config.lasers:
        x, y, z, roll, pitch, yaw = LASER_MOUNTS[name]
        ext = make_transform(euler_to_rotation(roll, pitch, yaw), [x, y, z])
        if name == "TOP":
            incl = top_inclinations(config.top_shape[0])
            out[name] = LaserCalibration(name, ext, incl, float(incl[0]), float(incl[-1]))
        else:
            out[name] = LaserCalibration(name, ext, np.zeros(0), *SIDE_INCLINATION)
    return out


@dataclass(frozen=True, eq=False)
class LaserReturn:
    """One return of one laser: the range image written, and the points behind it."""

    range_image: RangeImage
    """What goes into the file."""
    xyz: np.ndarray
    """(N, 3) float32 hit points, vehicle frame at the frame time, metres; the pixels with
    range > 0 in row-major order (the reader's order)."""
    instance: np.ndarray
    """(N,) int32 instance id hit by each point."""


def _unit_dirs(incl: np.ndarray, az: np.ndarray) -> np.ndarray:
    """(H, W, 3) float64 laser-frame unit directions of rows ``incl`` (H,), columns ``az`` (W,)."""
    ci, si = np.cos(incl)[:, None], np.sin(incl)[:, None]
    return np.stack(
        [ci * np.cos(az)[None], ci * np.sin(az)[None], np.broadcast_to(si, (incl.size, az.size))],
        axis=-1,
    )


def _surface(
    scene: Scene, caster: RayCaster, hits: Hits, points_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reflectivity (N,), instance (N,) and material (N,) of hit surfaces (N hits)."""
    w = caster.world
    tri = hits.triangle
    mat = w.material[tri]
    refl = mtl.surface_reflectivity(mat, w.colour[tri])
    ter = mat == mtl.TERRAIN
    if ter.any():
        _, r = scene.layout.terrain(points_world[ter, 0], points_world[ter, 1])
        refl[ter] = r
    return refl, w.instance[tri], mat


def _project_cameras(xyz: np.ndarray, cameras: dict[str, CameraCalibration]) -> np.ndarray:
    """(N, 6) int32 ``(camera, x, y, camera, x, y)``: the first two cameras each point lies in."""
    n = xyz.shape[0]
    out = np.zeros((n, 6), np.int32)
    filled = np.zeros(n, np.int64)
    for name in sorted(cameras, key=camera_id):
        cal = cameras[name]
        # only points in the camera's horizontal sector (plus a wide margin) can be in its image
        ext = cal.extrinsic
        yaw = np.arctan2(ext[1, 0], ext[0, 0])
        half = np.arctan(
            max(cal.intrinsic[2], cal.width - cal.intrinsic[2]) / cal.intrinsic[0]
        ) + np.deg2rad(12)
        az = np.arctan2(xyz[:, 1] - ext[1, 3], xyz[:, 0] - ext[0, 3]) - yaw
        near = np.nonzero(np.abs((az + np.pi) % (2 * np.pi) - np.pi) <= half)[0]
        uv = np.zeros((n, 2))
        valid = np.zeros(n, bool)
        uv[near], _, valid[near] = cal.project(xyz[near])
        for slot in (0, 1):
            sel = valid & (filled == slot)
            out[sel, 3 * slot] = camera_id(name)
            out[sel, 3 * slot + 1] = np.clip(np.floor(uv[sel, 0]), 0, cal.width - 1).astype(
                np.int32
            )
            out[sel, 3 * slot + 2] = np.clip(np.floor(uv[sel, 1]), 0, cal.height - 1).astype(
                np.int32
            )
            filled[sel] += 1
            valid = valid & ~sel
    return out


def scan_laser(
    name: str,
    calibration: LaserCalibration,
    shape: tuple[int, int],
    scene: Scene,
    caster: RayCaster,
    t_frame: float,
    frame_pose: np.ndarray,
    cameras: dict[str, CameraCalibration],
    config: LidarConfig,
    rng: np.random.Generator,
) -> tuple[LaserReturn, LaserReturn]:
    """Both returns of one laser.

    Args:
        name: laser name.
        calibration: its calibration (extrinsic, inclinations).
        shape: (H, W) of its range image.
        scene: the world (for the ego motion and the terrain's reflectivity).
        caster: ray caster of the world at the frame time.
        t_frame: frame time, seconds from the segment start.
        frame_pose: (4, 4) vehicle -> world at ``t_frame``.
        cameras: calibrations for the camera-projection channels.
        config: measurement model.
        rng: noise source of this frame.
    """
    h, w = shape
    E = calibration.extrinsic
    incl = calibration.inclinations(h)
    az = column_azimuths(w, E)
    d_laser = _unit_dirs(incl, az)  # (H, W, 3)
    d_vehicle = d_laser @ E[:3, :3].T
    is_top = name == "TOP"
    max_range = config.top_max_range if is_top else config.side_max_range
    active = np.ones((h, w), bool)
    if not is_top:
        half = np.deg2rad(config.side_fov_deg) / 2
        active &= (np.abs((az + np.pi) % (2 * np.pi) - np.pi) <= half)[None, :]
    pixel_pose = None
    if is_top:
        tc = t_frame + ((np.arange(w) + 0.5) / w - 0.5) * config.spin_period
        pose6 = scene.ego.euler(tc).astype(np.float32)  # what the file stores
        pixel_pose = np.broadcast_to(pose6[None], (h, w, 6)).astype(np.float32)
        p64 = pose6.astype(np.float64)
        Rc = euler_to_rotation(p64[:, 0], p64[:, 1], p64[:, 2])  # (W, 3, 3)
        tcw = p64[:, 3:6]
        origin_w = np.einsum("wij,j->wi", Rc, E[:3, 3]) + tcw  # (W, 3)
        dir_w = np.einsum("wij,hwj->hwi", Rc, d_vehicle)  # (H, W, 3)
        origin_w = np.broadcast_to(origin_w[None], (h, w, 3))
    else:
        origin_w = np.broadcast_to(frame_pose[:3, :3] @ E[:3, 3] + frame_pose[:3, 3], (h, w, 3))
        dir_w = d_vehicle @ frame_pose[:3, :3].T
    rows, cols = np.nonzero(active)
    o = origin_w[rows, cols]
    d = dir_w[rows, cols]
    hits = caster.cast(o, d)

    inv_pose = np.linalg.inv(frame_pose)

    def measure(
        hits: Hits, energy: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Range (noisy, float32 as stored), intensity, kept mask, instance, cos(incidence)."""
        t = hits.t
        ok = hits.hit & (t >= config.min_range) & (t <= max_range)
        pw = o + np.where(ok, t, 0.0)[:, None] * d
        refl = np.zeros(t.shape, np.float32)
        inst = np.full(t.shape, -1, np.int32)
        if ok.any():
            r_, i_, _ = _surface(
                scene, caster, Hits(t[ok], hits.triangle[ok], hits.normal[ok]), pw[ok]
            )
            refl[ok], inst[ok] = r_, i_
        cos_inc = np.abs((hits.normal * d).sum(1)).astype(np.float32)
        lambert = 0.35 + 0.65 * cos_inc
        if config.weak_signal:
            signal = energy * refl * lambert * (config.detection_range / np.maximum(t, 1e-3)) ** 2
            p = np.clip(signal / SIGNAL_THRESHOLD - 0.5, 0.0, 1.0)
            ok &= rng.random(t.shape) < p
        if config.dropout > 0:
            ok &= rng.random(t.shape) >= config.dropout
        r = t.copy()
        if config.range_noise > 0:
            r = r + rng.normal(0.0, config.range_noise, t.shape)
            ok &= (r >= config.min_range) & (r <= max_range)  # the limits hold for what is stored
        r32 = np.where(ok, r, -1.0).astype(np.float32)
        intensity = np.where(ok, energy * refl * lambert, 0.0).astype(np.float32)
        return r32, intensity, ok, inst, cos_inc

    r1, i1, ok1, inst1, cos1 = measure(hits, 1.0)

    # Second returns: edges (range jump to a neighbour) and thin structures.
    full = np.full((h, w), np.inf)
    full[rows, cols] = np.where(ok1, r1, np.inf)
    nb = np.full((h, w), np.inf)
    for axis, shift in ((1, 1), (1, -1), (0, 1), (0, -1)):
        rolled = np.roll(full, shift, axis=axis)
        if axis == 0:  # no wrap-around between the top and bottom beams
            rolled[0 if shift == 1 else -1, :] = np.inf
        nb = np.minimum(nb, np.where(rolled > full + config.edge_jump, rolled, np.inf))
    edge = np.isfinite(nb)[rows, cols] & ok1
    mat1 = caster.world.material[np.maximum(hits.triangle, 0)]
    thin = ok1 & mtl.THIN[mat1] & (rng.random(ok1.shape) < config.thin_second_return_prob)
    want2 = (edge | thin) if config.second_returns else np.zeros_like(ok1)
    second = Hits(
        np.full(ok1.shape, np.inf),
        np.full(ok1.shape, -1, np.int64),
        np.zeros((ok1.size, 3), np.float32),
    )
    if want2.any():
        idx = np.nonzero(want2)[0]
        h2 = caster.cast_past(o[idx], d[idx], hits.t[idx], inst1[idx])
        second.t[idx] = h2.t
        second.triangle[idx] = h2.triangle
        second.normal[idx] = h2.normal
    r2, i2, ok2, inst2, cos2 = measure(second, 0.5)

    cam_keys = cameras
    out = []
    for ret, (r, inten, ok, inst, cos_inc) in enumerate(
        ((r1, i1, ok1, inst1, cos1), (r2, i2, ok2, inst2, cos2)), start=1
    ):
        values = np.zeros((h, w, 4), np.float32)
        values[..., 0] = -1.0
        values[..., 3] = -1.0
        elong = 0.05 + 0.6 * (1.0 - cos_inc) ** 2 + (0.3 if ret == 2 else 0.0)
        elong = elong + np.where(edge, 0.25, 0.0)
        values[rows[ok], cols[ok], 0] = r[ok]
        values[rows[ok], cols[ok], 1] = inten[ok]
        values[rows[ok], cols[ok], 2] = elong[ok].astype(np.float32)
        # Hit points from the stored (float32) range along the pixel's ray.
        rr, cc = rows[ok], cols[ok]  # row-major, as the reader returns them
        rng_m = r[ok].astype(np.float64)
        if is_top:
            p64 = pixel_pose[rr, cc].astype(np.float64)
            R = euler_to_rotation(p64[:, 0], p64[:, 1], p64[:, 2])
            pv = rng_m[:, None] * d_vehicle[rr, cc] + E[:3, 3]
            pw = np.einsum("nij,nj->ni", R, pv) + p64[:, 3:6]
            xyz = pw @ inv_pose[:3, :3].T + inv_pose[:3, 3]
        else:
            xyz = rng_m[:, None] * d_vehicle[rr, cc] + E[:3, 3]
        xyz = xyz.astype(np.float32)
        cp = np.zeros((h, w, 6), np.int32)
        cp[rr, cc] = _project_cameras(xyz, cam_keys)
        ri = RangeImage(
            laser=name,
            return_index=ret,
            values=values,
            camera_projection=cp,
            pixel_pose=pixel_pose if (is_top and ret == 1) else None,
        )
        out.append(LaserReturn(ri, xyz, inst[ok]))
    return out[0], out[1]


def scan(
    scene: Scene,
    caster: RayCaster,
    t_frame: float,
    frame_pose: np.ndarray,
    lasers: dict[str, LaserCalibration],
    cameras: dict[str, CameraCalibration],
    config: LidarConfig,
    rng: np.random.Generator,
) -> dict[tuple[str, int], LaserReturn]:
    """Both returns of every laser, keyed ``(laser, return)``."""
    out = {}
    for name, cal in lasers.items():
        shape = config.top_shape if name == "TOP" else config.side_shape
        r1, r2 = scan_laser(
            name, cal, shape, scene, caster, t_frame, frame_pose, cameras, config, rng
        )
        out[(name, 1)] = r1
        out[(name, 2)] = r2
    return out
