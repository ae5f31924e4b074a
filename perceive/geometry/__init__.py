"""Geometry as pure NumPy functions: transforms, camera projection, range images, boxes.

Conventions (the Waymo ones): vehicle frame x forward, y left, z up, metres;
camera frame x forward (optical axis), y left, z up; angles in radians.
"""
