"""Ray-cast cameras: calibrations, ray/projection consistency, rendering."""

from __future__ import annotations

import numpy as np

from perceive.synth import camera as cam
from perceive.synth.config import CameraConfig


def test_calibrations_keep_waymo_aspect_and_fov():
    cals = cam.camera_calibrations(CameraConfig())
    assert list(cals) == ["FRONT", "FRONT_LEFT", "FRONT_RIGHT", "SIDE_LEFT", "SIDE_RIGHT"]
    f = cals["FRONT"]
    assert (f.width, f.height) == (480, 320)
    hfov = 2 * np.degrees(np.arctan(f.width / 2 / f.intrinsic[0]))
    assert 45 < hfov < 55


def test_calibrations_look_like_the_real_frames(real_frame_path):
    # Full-resolution synthetic cameras against a real Waymo frame's: same sizes, focal
    # lengths and principal points within 2 % of the image, mounts within 5 cm and 2 degrees.
    from perceive.datasets import waymo

    real = waymo.open(real_frame_path)[0].cameras
    cfg = CameraConfig(front_size=(1920, 1280), side_size=(1920, 886))
    for name, syn in cam.camera_calibrations(cfg).items():
        ref = real[name]
        assert (syn.width, syn.height) == (ref.width, ref.height), name
        np.testing.assert_allclose(syn.intrinsic[:2], ref.intrinsic[:2], rtol=0.02)
        cu, cv = syn.intrinsic[2:4] - ref.intrinsic[2:4]
        assert abs(cu) < 0.02 * ref.width and abs(cv) < 0.02 * ref.height, (name, cu, cv)
        np.testing.assert_allclose(syn.extrinsic[:3, 3], ref.extrinsic[:3, 3], atol=0.05)
        axis = syn.extrinsic[:3, 0] @ ref.extrinsic[:3, 0]  # the optical axes
        assert np.degrees(np.arccos(min(axis, 1.0))) < 2.0, name


def test_pixel_rays_project_to_pixel_centres():
    cal = cam.camera_calibrations(CameraConfig(front_size=(60, 40)))["FRONT_LEFT"]
    rays = cam.pixel_rays(cal)
    pts_cam = rays.reshape(-1, 3) * 7.0
    pts = pts_cam @ cal.extrinsic[:3, :3].T + cal.extrinsic[:3, 3]
    uv, depth, valid = cal.project(pts)
    assert valid.all() and (depth > 0).all()
    u, v = np.meshgrid(np.arange(cal.width) + 0.5, np.arange(cal.height) + 0.5)
    np.testing.assert_allclose(uv, np.c_[u.ravel(), v.ravel()], atol=1e-6)


def test_rendered_images_show_sky_above_and_ground_below(tiny_frames):
    f = tiny_frames[0].frame
    img = f.images["FRONT"]
    cal = f.cameras["FRONT"]
    assert img.shape == (cal.height, cal.width, 3)
    top, bottom = img[0].astype(float).mean(0), img[-1].astype(float).mean(0)
    assert top[2] > top[0]  # blue sky on top
    assert bottom.mean() < top.mean()  # darker road below


def test_instance_maps_match_camera_boxes(tiny_generator, tiny_frames):
    f = tiny_frames[0].frame
    # every camera box encloses pixels of its object: re-render and compare extents
    from perceive.synth.raycast import RayCaster

    world, _ = tiny_generator.scene.snapshot(0.0)
    caster = RayCaster(world)
    name = "FRONT"
    r = cam.render_camera(
        tiny_generator.scene,
        caster,
        f.pose,
        f.cameras[name],
        tiny_generator.rays[name],
        tiny_generator.config.camera,
        np.random.default_rng(0),
    )
    np.testing.assert_array_equal(r.image.shape[:2], r.instance.shape)
    ids = {a.id: i for i, a in enumerate(tiny_generator.scene.agents)}
    n0 = tiny_generator.scene.num_static_instances
    boxes = f.camera_boxes[name]
    for j in range(len(boxes)):
        u0, v0, u1, v1 = boxes.xyxy()[j].astype(int)
        inst = n0 + ids[str(boxes.ids[j])]
        vv, uu = np.nonzero(r.instance == inst)
        assert (uu.min(), vv.min(), uu.max() + 1, vv.max() + 1) == (u0, v0, u1, v1)
