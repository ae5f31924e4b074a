"""Cameras by ray casting: five Waymo-like cameras, shaded images, JPEG.

One ray per pixel through the pixel centre, undistorted with the Waymo model
(so :meth:`CameraCalibration.project` of a surface point lands in the pixel that
shows it). Shading: per-triangle colours with procedural textures (road markings,
paving, windows, foliage), Lambert light from the sun with cast shadows, sky light
from above, glossy paint and glass reflecting the sky, a sky gradient, a faint
haze with distance, sensor noise. Global shutter at the frame time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perceive.datasets.image import encode_jpeg
from perceive.datasets.types import CameraCalibration
from perceive.geometry.transforms import euler_to_rotation, make_transform
from perceive.synth import materials as mtl
from perceive.synth.config import CameraConfig
from perceive.synth.raycast import RayCaster
from perceive.synth.scene import Scene

#: Full-resolution sizes of the Waymo cameras (W, H).
FULL_SIZE = {
    "FRONT": (1920, 1280),
    "FRONT_LEFT": (1920, 1280),
    "FRONT_RIGHT": (1920, 1280),
    "SIDE_LEFT": (1920, 886),
    "SIDE_RIGHT": (1920, 886),
}
#: Camera mounting: (x, y, z, pitch, yaw) in the vehicle frame, metres and radians.
CAMERA_MOUNTS: dict[str, tuple[float, float, float, float, float]] = {
    "FRONT": (1.54, -0.02, 2.12, 0.005, 0.0),
    "FRONT_LEFT": (1.50, 0.10, 2.11, 0.005, np.deg2rad(45.3)),
    "FRONT_RIGHT": (1.50, -0.12, 2.11, 0.005, np.deg2rad(-45.1)),
    "SIDE_LEFT": (1.41, 0.13, 2.10, 0.005, np.deg2rad(90.4)),
    "SIDE_RIGHT": (1.41, -0.14, 2.10, 0.005, np.deg2rad(-90.2)),
}
#: Full-resolution intrinsics ``f_u, f_v, c_u, c_v, k1, k2, p1, p2, k3`` (Waymo-like values).
FULL_INTRINSICS = {
    "FRONT": (2055.6, 2055.6, 939.7, 641.1, 0.032, -0.321, 0.0004, -0.0006, 0.0),
    "FRONT_LEFT": (2063.1, 2063.1, 951.0, 638.0, 0.041, -0.335, 0.0002, 0.0007, 0.0),
    "FRONT_RIGHT": (2061.4, 2061.4, 957.4, 632.2, 0.036, -0.318, -0.0004, 0.0001, 0.0),
    "SIDE_LEFT": (2057.0, 2057.0, 968.4, 246.0, 0.030, -0.308, 0.0008, -0.0002, 0.0),
    "SIDE_RIGHT": (2060.3, 2060.3, 950.3, 241.4, 0.028, -0.311, -0.0003, 0.0005, 0.0),
}

SKY_ZENITH = np.array([0.22, 0.42, 0.78], np.float32)
SKY_HORIZON = np.array([0.72, 0.8, 0.88], np.float32)
SUN_COLOUR = np.array([1.0, 0.96, 0.88], np.float32)


def camera_calibrations(config: CameraConfig) -> dict[str, CameraCalibration]:
    """Calibrations of the configured cameras at the configured image sizes."""
    out = {}
    for name in config.cameras:
        x, y, z, pitch, yaw = CAMERA_MOUNTS[name]
        w0, h0 = FULL_SIZE[name]
        full = CameraCalibration(
            name,
            np.array(FULL_INTRINSICS[name]),
            make_transform(euler_to_rotation(0.0, pitch, yaw), [x, y, z]),
            w0,
            h0,
            5,
        )
        w, h = config.front_size if name.startswith("FRONT") else config.side_size
        out[name] = full.resized(w, h)
    return out


def pixel_rays(cal: CameraCalibration, iterations: int = 20) -> np.ndarray:
    """(H, W, 3) float64 unit ray directions through the pixel centres, camera frame.

    Inverts the Waymo distortion by fixed-point iteration.
    """
    fu, fv, cu, cv, k1, k2, p1, p2, k3 = cal.intrinsic
    u, v = np.meshgrid(np.arange(cal.width) + 0.5, np.arange(cal.height) + 0.5)
    ud, vd = (u - cu) / fu, (v - cv) / fv
    un, vn = ud.copy(), vd.copy()
    for _ in range(iterations):
        r2 = un * un + vn * vn
        d = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        tx = 2.0 * p1 * un * vn + p2 * (r2 + 2.0 * un * un)
        ty = p1 * (r2 + 2.0 * vn * vn) + 2.0 * p2 * un * vn
        un, vn = (ud - tx) / d, (vd - ty) / d
    dirs = np.stack([np.ones_like(un), -un, -vn], axis=-1)
    return dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)


@dataclass(frozen=True, eq=False)
class Render:
    """One rendered camera image."""

    image: np.ndarray
    """(H, W, 3) uint8 RGB."""
    instance: np.ndarray
    """(H, W) int32 instance id seen in each pixel, -1 sky."""


def _sky(d: np.ndarray, sun: np.ndarray) -> np.ndarray:
    el = np.clip(d[:, 2], 0.0, 1.0)[:, None].astype(np.float32)
    col = SKY_HORIZON * (1 - el) ** 2 + SKY_ZENITH * (1 - (1 - el) ** 2)
    glow = np.clip((d @ sun).astype(np.float32), 0, 1)[:, None] ** 64
    return col + glow * 0.8


def _texture(
    scene: Scene, mat: np.ndarray, albedo: np.ndarray, p: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """Albedo after the procedural textures, for N hits at world points ``p`` with normals ``n``."""
    out = albedo.copy()
    ter = mat == mtl.TERRAIN
    if ter.any():
        out[ter], _ = scene.layout.terrain(p[ter, 0], p[ter, 1])
    sw = mat == mtl.SIDEWALK
    if sw.any():
        q = p[sw]
        joint = (np.mod(q[:, 0], 0.8) < 0.03) | (np.mod(q[:, 1], 0.8) < 0.03)
        out[sw] = np.where(joint[:, None], out[sw] * 0.6, out[sw])
    b = (mat == mtl.BUILDING) & (np.abs(n[:, 2]) < 0.5)
    if b.any():
        q = p[b]
        s = np.where(np.abs(n[b, 1]) > np.abs(n[b, 0]), q[:, 0], q[:, 1])
        z = q[:, 2]
        win = (
            (np.mod(s, 3.2) > 0.9)
            & (np.mod(s, 3.2) < 2.3)
            & (np.mod(z, 3.3) > 1.0)
            & (np.mod(z, 3.3) < 2.5)
            & (z > 0.9)
        )
        shop = (z > 0.4) & (z < 2.8) & (np.mod(s, 6.0) > 0.6) & (np.mod(s, 6.0) < 5.0)
        glass = win | shop
        out[b] = np.where(glass[:, None], np.array([0.09, 0.11, 0.14], np.float32), out[b])
    f = mat == mtl.FOLIAGE
    if f.any():
        q = p[f]
        noise = np.sin(q[:, 0] * 37.1 + q[:, 1] * 17.3 + q[:, 2] * 29.7) * 0.5 + 0.5
        out[f] = out[f] * (0.6 + 0.8 * noise[:, None]).astype(np.float32)
    return out


def render_camera(
    scene: Scene,
    caster: RayCaster,
    frame_pose: np.ndarray,
    cal: CameraCalibration,
    rays_cam: np.ndarray,
    config: CameraConfig,
    rng: np.random.Generator,
) -> Render:
    """Render one camera.

    Args:
        scene: the world (sun direction, layout for textures).
        caster: ray caster of the world at the frame time.
        frame_pose: (4, 4) vehicle -> world.
        cal: the camera's calibration.
        rays_cam: (H, W, 3) :func:`pixel_rays` of ``cal``.
        config: rendering options.
        rng: noise source.
    """
    h, w = cal.height, cal.width
    R = frame_pose[:3, :3] @ cal.extrinsic[:3, :3]
    origin = frame_pose[:3, :3] @ cal.extrinsic[:3, 3] + frame_pose[:3, 3]
    d = rays_cam.reshape(-1, 3) @ R.T
    o = np.broadcast_to(origin, d.shape)
    hits = caster.cast(o, d)
    sun = scene.sun.astype(np.float64)
    img = np.empty((h * w, 3), np.float32)
    img[~hits.hit] = _sky(d[~hits.hit], sun)
    inst = np.full(h * w, -1, np.int32)
    hit = hits.hit
    if hit.any():
        idx = np.nonzero(hit)[0]
        world = caster.world
        tri = hits.triangle[idx]
        t = hits.t[idx]
        di = d[idx]
        p = o[idx] + t[:, None] * di
        n = hits.normal[idx].astype(np.float64)
        n = np.where(((n * di).sum(1) > 0)[:, None], -n, n)
        mat = world.material[tri]
        albedo = _texture(scene, mat, world.colour[tri], p, n)
        lit = np.clip(n @ sun, 0.0, 1.0)
        if config.shadows:
            cand = lit > 0
            if cand.any():
                ci = np.nonzero(cand)[0]
                sh = caster.cast(p[ci] + n[ci] * 0.02, np.broadcast_to(sun, (ci.size, 3)))
                lit[ci[sh.hit]] = 0.0
        ambient = (0.3 + 0.12 * n[:, 2]).astype(np.float32)[:, None]
        col = albedo * (
            ambient * SKY_HORIZON + (0.85 * lit).astype(np.float32)[:, None] * SUN_COLOUR
        )
        gloss = mtl.GLOSS[mat]
        if gloss.any():
            refl = di - 2.0 * (di * n).sum(1, keepdims=True) * n
            fres = (0.3 + 0.7 * (1.0 - np.abs((di * n).sum(1))) ** 3).astype(np.float32)
            k = (gloss * fres)[:, None]
            col = col * (1 - k) + _sky(refl, sun) * k * 0.8
        em = mtl.EMISSIVE[mat]
        col[em] = albedo[em]
        haze = (1.0 - np.exp(-t / 700.0)).astype(np.float32)[:, None]
        col = col * (1 - haze) + SKY_HORIZON * haze
        img[idx] = col
        inst[idx] = world.instance[tri]
    img = np.clip(img, 0.0, 1.0) ** (1 / 2.2) * 255.0
    if config.pixel_noise > 0:
        img = img + rng.normal(0.0, config.pixel_noise, img.shape)
    image = np.clip(np.round(img), 0, 255).astype(np.uint8).reshape(h, w, 3)
    return Render(image, inst.reshape(h, w))


def encode(render: Render, config: CameraConfig) -> bytes:
    """The JPEG bytes of a rendered image."""
    return encode_jpeg(render.image, quality=config.jpeg_quality)
