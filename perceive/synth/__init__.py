"""Synthetic driving data in the genuine Waymo format.

Procedural street scenes (:mod:`~perceive.synth.scene`), LiDAR and cameras by ray
casting with Open3D (:mod:`~perceive.synth.lidar`, :mod:`~perceive.synth.camera`),
exact labels (:mod:`~perceive.synth.labels`), written as Waymo v1 TFRecords (and
v2 parquet) by :mod:`~perceive.synth.generate`. Configure with
:func:`perceive.synth.config.preset`.
"""
