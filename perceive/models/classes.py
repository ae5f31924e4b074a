"""The detector's classes and their Waymo ``Label.Type`` values: the one table of them.

Class index -> name: 0 VEHICLE, 1 PEDESTRIAN, 2 CYCLIST, 3 SIGN. Every part of
perceive (training targets, the model's outputs, the metrics, the exporter's
metadata, the runner) maps classes through this module.
"""

from __future__ import annotations

import numpy as np

#: Class names, indexed by the detector's class index.
CLASS_NAMES: tuple[str, ...] = ("VEHICLE", "PEDESTRIAN", "CYCLIST", "SIGN")

#: Waymo ``Label.Type`` of each class index (VEHICLE 1, PEDESTRIAN 2, CYCLIST 4, SIGN 3).
WAYMO_TYPE_OF_CLASS: tuple[int, ...] = (1, 2, 4, 3)

_CLASS_OF_TYPE = np.full(256, -1, dtype=np.int64)
for _cls, _type in enumerate(WAYMO_TYPE_OF_CLASS):
    _CLASS_OF_TYPE[_type] = _cls


def class_of_waymo_type(type_array: np.ndarray) -> np.ndarray:
    """Class index of each Waymo ``Label.Type`` value.

    Args:
        type_array: (...) integer Waymo types (0 UNKNOWN, 1 VEHICLE, 2 PEDESTRIAN, 3 SIGN,
            4 CYCLIST).

    Returns:
        (...) int64 class index, -1 for types the detector does not predict (UNKNOWN or
        out of range).
    """
    t = np.asarray(type_array).astype(np.int64, copy=False)
    inside = (t >= 0) & (t < _CLASS_OF_TYPE.shape[0])
    return np.where(inside, _CLASS_OF_TYPE[np.where(inside, t, 0)], -1)


def waymo_type_of_class(class_array: np.ndarray) -> np.ndarray:
    """Waymo ``Label.Type`` of each class index (the inverse of :func:`class_of_waymo_type`).

    Args:
        class_array: (...) integer class indices in ``[0, len(CLASS_NAMES))``.

    Returns:
        (...) int64 Waymo types; 0 (UNKNOWN) for indices outside the table.
    """
    c = np.asarray(class_array).astype(np.int64, copy=False)
    table = np.asarray(WAYMO_TYPE_OF_CLASS, dtype=np.int64)
    inside = (c >= 0) & (c < table.shape[0])
    return np.where(inside, table[np.where(inside, c, 0)], 0)
