"""Procedural meshes: sizes, validity, animation."""

from __future__ import annotations

import numpy as np
import pytest

from perceive.synth import meshes as ms


def _valid(m: ms.Mesh) -> None:
    assert m.triangles.min() >= 0 and m.triangles.max() < m.vertices.shape[0]
    assert m.material.shape == (len(m),) and m.colour.shape == (len(m), 3)
    assert np.isfinite(m.vertices).all()


@pytest.mark.parametrize("kind", list(ms.VEHICLE_KINDS))
def test_vehicle_kinds_fit_their_size(kind):
    (l0, _), (w0, _), (h0, _) = ms.VEHICLE_KINDS[kind]
    m = ms.vehicle_mesh(kind, l0, w0, h0, (0.5, 0.1, 0.1))
    _valid(m)
    lo, hi = m.bounds()
    size = hi - lo
    assert abs(size[0] - l0) < 0.1 and abs(size[1] - w0) < 0.1 and abs(size[2] - h0) < 0.1
    assert lo[2] == pytest.approx(0.0, abs=1e-9)  # wheels on the ground


def test_body_types_differ_in_shape():
    a = ms.vehicle_mesh("sedan", 4.6, 1.8, 1.45, (1, 1, 1))
    b = ms.vehicle_mesh("van", 4.6, 1.8, 1.45, (1, 1, 1))
    assert len(a) != len(b) or not np.allclose(a.vertices, b.vertices)


def test_person_height_and_walking_moves_limbs():
    rng = np.random.default_rng(0)
    p = ms.random_person(rng)
    still = ms.person_mesh(p)
    _valid(still)
    lo, hi = still.bounds()
    assert hi[2] == pytest.approx(p.height, abs=0.05)
    walk = ms.person_mesh(p, phase=np.pi / 2, swing=0.35)
    assert walk.bounds()[1][0] - walk.bounds()[0][0] > hi[0] - lo[0] + 0.1  # stride widens it


def test_sign_face_bounds_exclude_pole():
    mesh, lo, hi = ms.sign_mesh(0, 0.75, 2.2)
    _valid(mesh)
    assert lo[2] > 1.5 and hi[2] < 2.7 and hi[0] - lo[0] < 0.05
    assert mesh.bounds()[0][2] == pytest.approx(0.0)


def test_concat_and_pose():
    a = ms.box((1, 1, 1), (0, 0, 0.5))
    b = ms.cylinder(0.2, 0, 2, 0, (1, 0, 0))
    c = ms.Mesh.concat([a, b])
    _valid(c)
    assert len(c) == len(a) + len(b)
    moved = c.posed(np.pi / 2, (10, 0, 0))
    np.testing.assert_allclose(
        moved.vertices.mean(0)[:2], [10, 0] + c.vertices.mean(0)[[1, 0]] * [-1, 1], atol=1e-9
    )
