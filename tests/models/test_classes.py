import numpy as np

from perceive.datasets.types import OBJECT_TYPES
from perceive.models.classes import (
    CLASS_NAMES,
    WAYMO_TYPE_OF_CLASS,
    class_of_waymo_type,
    waymo_type_of_class,
)


def test_table_names_agree_with_waymo_type_names():
    for cls, name in enumerate(CLASS_NAMES):
        assert OBJECT_TYPES[WAYMO_TYPE_OF_CLASS[cls]] == name


def test_class_of_waymo_type_maps_known_and_unknown():
    types = np.array([0, 1, 2, 3, 4, 5, -1, 300], np.int32)
    assert class_of_waymo_type(types).tolist() == [-1, 0, 1, 3, 2, -1, -1, -1]
    assert class_of_waymo_type(types).dtype == np.int64


def test_round_trip():
    classes = np.arange(len(CLASS_NAMES))
    assert (class_of_waymo_type(waymo_type_of_class(classes)) == classes).all()
    assert waymo_type_of_class(np.array([7, -1])).tolist() == [0, 0]
