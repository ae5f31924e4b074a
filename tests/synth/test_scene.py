"""The procedural world: reproducible, plausible placement, no interpenetration."""

from __future__ import annotations

import numpy as np
import pytest

from perceive.datasets.types import Boxes3D
from perceive.geometry.boxes import points_in_boxes
from perceive.synth import scene as sc
from perceive.synth.config import SceneConfig

CFG = SceneConfig(
    vehicles=(10, 12), pedestrians=(8, 10), cyclists=(2, 3), signs=(3, 4), distractors=(6, 8)
)


@pytest.fixture(scope="module")
def scene() -> sc.Scene:
    return sc.build_scene(CFG, np.random.default_rng(3), "test_scene", duration=4.0)


def _grid_points(center, size, heading) -> np.ndarray:
    """Points filling a box (5 x 5 x 3 grid, strictly inside)."""
    g = np.stack(
        np.meshgrid(*[np.linspace(-0.45, 0.45, k) for k in (5, 5, 3)], indexing="ij"), -1
    ).reshape(-1, 3)
    local = g * size
    c, s = np.cos(heading), np.sin(heading)
    return (
        np.c_[c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], local[:, 2]]
        + center
    )


def test_same_seed_same_scene():
    a = sc.build_scene(CFG, np.random.default_rng(5), "a", duration=2.0)
    b = sc.build_scene(CFG, np.random.default_rng(5), "a", duration=2.0)
    np.testing.assert_array_equal(a.static.vertices, b.static.vertices)
    assert [g.id for g in a.agents] == [g.id for g in b.agents]
    wa, _ = a.snapshot(1.0)
    wb, _ = b.snapshot(1.0)
    np.testing.assert_array_equal(wa.vertices, wb.vertices)


def test_every_labelled_type_is_present(scene):
    types = {a.type for a in scene.agents}
    assert types == {sc.TYPE_VEHICLE, sc.TYPE_PEDESTRIAN, sc.TYPE_CYCLIST, sc.TYPE_SIGN}
    assert len({a.id for a in scene.agents}) == len(scene.agents)


@pytest.mark.parametrize("t", [0.0, 2.0, 4.0])
def test_agents_never_interpenetrate(scene, t):
    _, st = scene.snapshot(t)
    for i in range(len(st.index)):
        pts = _grid_points(st.center[i], st.size[i], st.heading[i])
        others = np.delete(np.arange(len(st.index)), i)
        inside = points_in_boxes(pts, st.center[others], st.size[others], st.heading[others])
        assert not inside.any(), (
            f"agent {st.index[i]} overlaps agent {st.index[others[inside.any(0)]]}"
        )
    # nor the ego vehicle
    ego = scene.ego.euler(np.array([t]))[0]
    c = ego[3:5] + sc.EGO_CENTER_X * np.array([np.cos(ego[2]), np.sin(ego[2])])
    ego_box = Boxes3D(
        center=[[c[0], c[1], 0.8]], size=[[*sc.EGO_SIZE, 1.6]], heading=[ego[2]], type=[1]
    )
    for i in range(len(st.index)):
        assert not ego_box.contains(_grid_points(st.center[i], st.size[i], st.heading[i])).any()


def test_static_objects_stay_out_of_agent_boxes(scene):
    _, st = scene.snapshot(0.0)
    keep = scene.static_instance > 0  # everything but the ground
    verts = scene.static.vertices[np.unique(scene.static.triangles[keep])]
    inside = points_in_boxes(verts, st.center, st.size, st.heading)
    assert not inside.any()


def test_agents_stand_on_their_surfaces(scene):
    lay = scene.layout
    for a in scene.agents:
        xy, _, _ = a.trajectory.at(np.array([0.0, 4.0]))
        if a.type == sc.TYPE_PEDESTRIAN or a.type == sc.TYPE_SIGN:
            assert a.z == pytest.approx(sc.KERB_HEIGHT)
            on_main = np.abs(xy[:, 1]) >= lay.road_half
            on_cross = lay.near_cross(xy[:, 0], 0.0) & (np.abs(xy[:, 1]) >= lay.walk_outer)
            assert (on_main | on_cross).all()
        elif a.type in (sc.TYPE_VEHICLE, sc.TYPE_CYCLIST):
            assert a.z == 0.0
            main = np.abs(xy[:, 1]) <= lay.road_half
            cross = lay.near_cross(xy[:, 0], 0.0)
            assert (main | cross).all()


def test_trajectory_speed_is_clamped():
    tr = sc.Trajectory((0.0, 0.0), 0.0, speed=2.0, accel=-1.0)
    s, v, a = tr.distance(np.array([1.0, 2.0, 5.0]))
    np.testing.assert_allclose(v, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s, [1.5, 2.0, 2.0])
    np.testing.assert_allclose(a, [-1.0, 0.0, 0.0])


def test_terrain_markings_are_bright(scene):
    lay = scene.layout
    x = np.full(
        3, 5.0 if lay.cross_x is None or abs(lay.cross_x - 5.0) > 20 else lay.cross_x + 30.0
    )
    y = np.array([0.15, 1.5, lay.road_half + lay.sidewalk + 1.0])  # centre line, asphalt, grass
    albedo, refl = lay.terrain(x, y)
    assert refl[0] > 3 * refl[1]
    assert albedo[0, 0] > albedo[1, 0] and albedo[2, 1] > albedo[2, 2]  # yellow line; green grass


def test_traffic_keeps_right():
    cfg = SceneConfig(
        vehicles=(14, 14), pedestrians=(0, 0), cyclists=(2, 2), signs=(0, 0), intersection_prob=1.0
    )
    s = sc.build_scene(cfg, np.random.default_rng(8), "right", duration=2.0)
    assert s.layout.cross_x is not None
    n_cross = 0
    for a in s.agents:
        tr = a.trajectory
        if abs(np.sin(tr.heading)) > 0.9:  # cross street: moving +y on the +x side
            assert (tr.start[0] - s.layout.cross_x) * np.sin(tr.heading) > 0
            n_cross += 1
        else:  # main road: moving +x on the -y side
            assert tr.start[1] * np.cos(tr.heading) < 0
    assert n_cross > 0
