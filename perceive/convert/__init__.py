"""Converting Waymo data (v1 TFRecord or v2 parquet) to a training cache, KITTI, PCD or PLY.

Each format is one module (:mod:`~perceive.convert.cache`, :mod:`~perceive.convert.kitti`,
:mod:`~perceive.convert.pointcloud`); :mod:`~perceive.convert.runner` holds the pure
per-segment function and the parallel, resumable driver around it.
"""
