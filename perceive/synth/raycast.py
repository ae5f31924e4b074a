"""Ray casting against a world snapshot with Open3D's ``RaycastingScene``.

Open3D works in float32; callers pass float64 rays (converted here) and get the
distance along each unit direction, the hit triangle and its geometric normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perceive.synth.scene import WorldMesh


@dataclass(frozen=True, eq=False)
class Hits:
    """Results of casting N rays."""

    t: np.ndarray
    """(N,) float64 distance along the (unit) ray to the hit, metres; inf for a miss."""
    triangle: np.ndarray
    """(N,) int64 hit triangle index in the world mesh, -1 for a miss."""
    normal: np.ndarray
    """(N, 3) float32 unit normal of the hit triangle (either side), zeros for a miss."""

    @property
    def hit(self) -> np.ndarray:
        """(N,) bool: the ray hit something."""
        return self.triangle >= 0


class RayCaster:
    """Casts rays against one :class:`~perceive.synth.scene.WorldMesh`.

    Args:
        world: the triangles.
        nthreads: Open3D threads (0: its default).
    """

    def __init__(self, world: WorldMesh, nthreads: int = 0) -> None:
        import open3d as o3d

        self._o3d = o3d
        self.world = world
        self.nthreads = nthreads
        self._scene = o3d.t.geometry.RaycastingScene(nthreads=nthreads)
        self._scene.add_triangles(
            o3d.core.Tensor(np.ascontiguousarray(world.vertices, np.float32)),
            o3d.core.Tensor(np.ascontiguousarray(world.triangles, np.uint32)),
        )

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> Hits:
        """Cast rays.

        Args:
            origins: (N, 3) world frame, metres.
            directions: (N, 3) unit vectors, world frame.
        """
        n = origins.shape[0]
        if n == 0:
            return Hits(np.zeros(0), np.zeros(0, np.int64), np.zeros((0, 3), np.float32))
        rays = np.empty((n, 6), np.float32)
        rays[:, :3] = origins
        rays[:, 3:] = directions
        out = self._scene.cast_rays(self._o3d.core.Tensor(rays), nthreads=self.nthreads)
        t = out["t_hit"].numpy().astype(np.float64)
        prim = out["primitive_ids"].numpy().astype(np.int64)
        miss = ~np.isfinite(t) | (prim >= self._o3d.t.geometry.RaycastingScene.INVALID_ID)
        t[miss] = np.inf
        prim[miss] = -1
        normal = out["primitive_normals"].numpy()
        normal[miss] = 0.0
        return Hits(t, prim, normal)

    def cast_past(
        self,
        origins: np.ndarray,
        directions: np.ndarray,
        t_start: np.ndarray,
        skip: np.ndarray,
        tries: int = 4,
    ) -> Hits:
        """The first hit beyond ``t_start`` along each ray on an instance other than ``skip``.

        Continues each ray from just past its previous hit (a closed object is
        entered and left) until it meets another instance, up to ``tries`` times.

        Args:
            origins, directions: (N, 3) as in :meth:`cast`.
            t_start: (N,) distance of the hit to pass, metres.
            skip: (N,) instance id to pass through.
        """
        n = origins.shape[0]
        t_tot = np.asarray(t_start, np.float64).copy()
        tri = np.full(n, -1, np.int64)
        normal = np.zeros((n, 3), np.float32)
        todo = np.arange(n)
        eps = 1e-3
        for _ in range(tries):
            if todo.size == 0:
                break
            o = origins[todo] + (t_tot[todo] + eps)[:, None] * directions[todo]
            h = self.cast(o, directions[todo])
            t_tot[todo] = t_tot[todo] + eps + h.t
            same = h.hit & (self.world.instance[np.maximum(h.triangle, 0)] == skip[todo])
            done = ~same
            tri[todo[done]] = h.triangle[done]
            normal[todo[done]] = h.normal[done]
            todo = todo[same]
        t_tot[tri < 0] = np.inf
        return Hits(t_tot, tri, normal)
