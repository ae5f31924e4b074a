"""Why fusion matters in the synthetic data: look-alike pairs seen by LiDAR and camera.

    .venv/bin/python tools/synth_lookalikes.py --out docs/images/synth_lookalikes.png

Builds a small scene by hand with the generator's own meshes and sensors (training
preset): a pedestrian beside an unlabelled concrete column, a sign beside a blank
panel of the same shape, a cyclist beside a parked bicycle, both at 22 m; and a black
and a white car at 55 m. For each object the figure shows its FRONT-camera crop and
its TOP-LiDAR points seen from the ego (coloured by intensity), with the point count.
"""

from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
import numpy as np

from perceive.synth import meshes as ms
from perceive.synth.camera import camera_calibrations, pixel_rays, render_camera
from perceive.synth.config import preset
from perceive.synth.generate import pose_matrix
from perceive.synth.lidar import laser_calibrations, scan_laser
from perceive.synth.meshes import Mesh
from perceive.synth.raycast import RayCaster
from perceive.synth.scene import EgoMotion, Layout, Scene, Trajectory
from perceive.viz.common import save_figure


def build(rng: np.random.Generator) -> tuple[Scene, dict[str, tuple[int, np.ndarray]]]:
    """The scene and, per object name, (instance id, world centre)."""
    person = ms.random_person(rng)
    rider = ms.random_person(rng)
    d = 22.0
    objects: dict[str, tuple[Mesh, tuple[float, float, float], float]] = {
        "pedestrian": (ms.person_mesh(person), (d, 5.0, 0.0), np.pi),
        "column (unlabelled)": (ms.column_mesh(rng), (d, 3.5, 0.0), 0.0),
        "sign": (ms.sign_mesh(3, 0.75, 2.2)[0], (d, 1.5, 0.0), np.pi),
        "blank panel (unlabelled)": (
            ms.sign_mesh(3, 0.75, 2.2, blank=(0.55, 0.56, 0.58))[0],
            (d, 0.0, 0.0),
            np.pi,
        ),
        "cyclist": (ms.cyclist_mesh(rider, (0.8, 0.05, 0.05), 0.7), (d, -2.0, 0.0), np.pi / 2),
        "parked bicycle (unlabelled)": (
            ms.bicycle_mesh((0.05, 0.3, 0.85))[0],
            (d, -4.5, 0.0),
            np.pi / 2,
        ),
        "black car at 55 m": (
            ms.vehicle_mesh("sedan", 4.7, 1.85, 1.45, (0.02, 0.02, 0.02)),
            (55.0, 3.5, 0.0),
            np.pi / 2,
        ),
        "white car at 55 m": (
            ms.vehicle_mesh("sedan", 4.7, 1.85, 1.45, (0.85, 0.85, 0.85)),
            (55.0, -3.5, 0.0),
            np.pi / 2,
        ),
    }
    big = 500.0
    ground = ms.prism(
        np.array([[-big, -big], [big, -big], [big, big], [-big, big]]),
        -0.001,
        0.0,
        (0, 1, 2),
        0,
        (0.2, 0.2, 0.2),
    )
    ground = Mesh(ground.vertices, ground.triangles[2:4], ground.material[2:4], ground.colour[2:4])
    parts, inst, info = [ground], [np.zeros(2, np.int32)], {}
    for k, (name, (mesh, xyz, yaw)) in enumerate(objects.items(), start=1):
        posed = mesh.posed(yaw, xyz)
        parts.append(posed)
        inst.append(np.full(len(posed), k, np.int32))
        lo, hi = posed.bounds()
        info[name] = (k, (lo + hi) / 2)
    layout = Layout(2, 3.5, 0.0, 0.0, 4.0, (-100.0, 100.0), None, 7.0)
    scene = Scene(
        name="lookalikes",
        layout=layout,
        ego=EgoMotion(Trajectory((0.0, 0.0), 0.0), roll_amp=0.0, pitch_amp=0.0),
        static=Mesh.concat(parts),
        static_instance=np.concatenate(inst),
        agents=(),
        sun=np.array([0.3, 0.4, 0.87]) / np.linalg.norm([0.3, 0.4, 0.87]),
    )
    return scene, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/images/synth_lookalikes.png")
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    cfg = preset("train")
    rng = np.random.default_rng(args.seed)
    scene, info = build(rng)
    world, _ = scene.snapshot(0.0)
    caster = RayCaster(world)
    pose = pose_matrix(scene.ego.euler(np.array([0.0]))[0])
    cams = camera_calibrations(cfg.camera)
    front = cams["FRONT"].resized(1920, 1280)  # full Waymo resolution for the crops
    render = render_camera(scene, caster, pose, front, pixel_rays(front), cfg.camera, rng)
    lasers = laser_calibrations(cfg.lidar)
    r1, r2 = scan_laser(
        "TOP", lasers["TOP"], cfg.lidar.top_shape, scene, caster, 0.0, pose, {}, cfg.lidar, rng
    )
    xyz = np.concatenate([r1.xyz, r2.xyz])
    inten = np.concatenate(
        [
            r1.range_image.values[..., 1][r1.range_image.values[..., 0] > 0],
            r2.range_image.values[..., 1][r2.range_image.values[..., 0] > 0],
        ]
    )
    inst = np.concatenate([r1.instance, r2.instance])

    names = list(info)
    fig, axes = plt.subplots(2, len(names), figsize=(2.0 * len(names), 4.6), dpi=100)
    for j, name in enumerate(names):
        k, c = info[name]
        vv, uu = np.nonzero(render.instance == k)
        ax = axes[0, j]
        if uu.size:
            pad = 12
            u0, u1 = max(uu.min() - pad, 0), min(uu.max() + pad, front.width)
            v0, v1 = max(vv.min() - pad, 0), min(vv.max() + pad, front.height)
            ax.imshow(render.image[v0:v1, u0:u1])
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax = axes[1, j]
        sel = inst == k
        ax.set_facecolor("0.1")
        ax.scatter(-xyz[sel, 1], xyz[sel, 2], c=inten[sel], s=6, cmap="viridis", vmin=0, vmax=0.6)
        ax.set_xlim(-c[1] - 1.6, -c[1] + 1.6)
        ax.set_ylim(-0.1, 3.1)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([] if j else [0, 1, 2, 3])
        ax.set_title(f"{int(sel.sum())} LiDAR points", fontsize=8)
    axes[1, 0].set_ylabel("height, m (TOP LiDAR)", fontsize=8)
    axes[0, 0].set_ylabel("FRONT camera", fontsize=8)
    fig.suptitle(
        "Look-alikes in sparse LiDAR, told apart by the camera (perceive synth, train preset)",
        fontsize=10,
    )
    fig.tight_layout()
    out = save_figure(fig, args.out, colors=128)
    print(f"{out}: {out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
