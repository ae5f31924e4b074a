"""Surface materials: how a triangle looks to the LiDAR and to the cameras.

A mesh stores one material id per triangle (an index into :data:`MATERIALS`) and its
own colour; the material adds what the colour does not say: LiDAR reflectivity, a
procedural texture evaluated at the hit point, gloss, and whether the surface is a
thin structure that lets part of a beam through (second returns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Material:
    """One surface material."""

    name: str
    """Short name."""
    reflectivity: float
    """LiDAR reflectivity of a white surface of this material, 0..1 (scaled by the colour's
    brightness for paints and cloth, see ``colour_scales_reflectivity``)."""
    colour_scales_reflectivity: bool = False
    """Dark colours reflect less (paint, cloth): reflectivity x (0.1 + 0.9 x luminance)."""
    thin: bool = False
    """Thin or porous structure (poles, bicycle frames, foliage): beams partly pass it."""
    gloss: float = 0.0
    """Strength of a sky reflection in the camera, 0..1."""
    emissive: bool = False
    """Lamps: the camera sees the colour unshaded."""


#: Texture ids (evaluated in :mod:`perceive.synth.camera` and :mod:`perceive.synth.lidar`).
TEX_NONE, TEX_TERRAIN, TEX_TILES, TEX_WINDOWS, TEX_NOISE = 0, 1, 2, 3, 4

#: Material ids.
TERRAIN, SIDEWALK, BUILDING, PAINT, GLASS, TYRE, LAMP_FRONT, LAMP_REAR = 0, 1, 2, 3, 4, 5, 6, 7
CLOTH, SKIN, HAIR, METAL, SIGN_FACE, SIGN_BACK, BARK, FOLIAGE, CONCRETE, PLASTIC = range(8, 18)

#: The material table, indexed by material id.
MATERIALS: tuple[Material, ...] = (
    Material("terrain", 0.12),  # road asphalt, markings and grass: see the terrain texture
    Material("sidewalk", 0.30),
    Material("building", 0.35),
    Material("paint", 0.55, colour_scales_reflectivity=True, gloss=0.25),
    Material("glass", 0.06, gloss=0.5),
    Material("tyre", 0.05),
    Material("lamp_front", 0.8, emissive=True),
    Material("lamp_rear", 0.8, emissive=True),
    Material("cloth", 0.45, colour_scales_reflectivity=True),
    Material("skin", 0.35),
    Material("hair", 0.15),
    Material("metal", 0.40, thin=True),
    Material("sign_face", 0.50),
    Material("sign_back", 0.50),
    Material("bark", 0.20),
    Material("foliage", 0.25, thin=True),
    Material("concrete", 0.45, colour_scales_reflectivity=True),
    Material("plastic", 0.35, colour_scales_reflectivity=True),
)

#: Per-material arrays for vectorised lookups, indexed by material id.
REFLECTIVITY = np.array([m.reflectivity for m in MATERIALS], np.float32)
SCALES_WITH_COLOUR = np.array([m.colour_scales_reflectivity for m in MATERIALS], bool)
THIN = np.array([m.thin for m in MATERIALS], bool)
GLOSS = np.array([m.gloss for m in MATERIALS], np.float32)
EMISSIVE = np.array([m.emissive for m in MATERIALS], bool)
TEXTURE = np.zeros(len(MATERIALS), np.int8)
TEXTURE[[TERRAIN, SIDEWALK, BUILDING, FOLIAGE]] = [TEX_TERRAIN, TEX_TILES, TEX_WINDOWS, TEX_NOISE]


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(...) float32 relative luminance of (..., 3) linear RGB in [0, 1]."""
    rgb = np.asarray(rgb, np.float32)
    return rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722


def surface_reflectivity(material: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(N,) float32 LiDAR reflectivity of N surfaces from their material ids and (N, 3) colours."""
    material = np.asarray(material)
    refl = REFLECTIVITY[material]
    scale = np.where(SCALES_WITH_COLOUR[material], 0.1 + 0.9 * luminance(colour), 1.0)
    return (refl * scale).astype(np.float32)
