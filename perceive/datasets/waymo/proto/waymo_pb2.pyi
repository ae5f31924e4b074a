from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MatrixShape(_message.Message):
    __slots__ = ("dims",)
    DIMS_FIELD_NUMBER: _ClassVar[int]
    dims: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, dims: _Optional[_Iterable[int]] = ...) -> None: ...

class MatrixFloat(_message.Message):
    __slots__ = ("data", "shape")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedScalarFieldContainer[float]
    shape: MatrixShape
    def __init__(self, data: _Optional[_Iterable[float]] = ..., shape: _Optional[_Union[MatrixShape, _Mapping]] = ...) -> None: ...

class MatrixInt32(_message.Message):
    __slots__ = ("data", "shape")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedScalarFieldContainer[int]
    shape: MatrixShape
    def __init__(self, data: _Optional[_Iterable[int]] = ..., shape: _Optional[_Union[MatrixShape, _Mapping]] = ...) -> None: ...

class Transform(_message.Message):
    __slots__ = ("transform",)
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    transform: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, transform: _Optional[_Iterable[float]] = ...) -> None: ...

class Velocity(_message.Message):
    __slots__ = ("v_x", "v_y", "v_z", "w_x", "w_y", "w_z")
    V_X_FIELD_NUMBER: _ClassVar[int]
    V_Y_FIELD_NUMBER: _ClassVar[int]
    V_Z_FIELD_NUMBER: _ClassVar[int]
    W_X_FIELD_NUMBER: _ClassVar[int]
    W_Y_FIELD_NUMBER: _ClassVar[int]
    W_Z_FIELD_NUMBER: _ClassVar[int]
    v_x: float
    v_y: float
    v_z: float
    w_x: float
    w_y: float
    w_z: float
    def __init__(self, v_x: _Optional[float] = ..., v_y: _Optional[float] = ..., v_z: _Optional[float] = ..., w_x: _Optional[float] = ..., w_y: _Optional[float] = ..., w_z: _Optional[float] = ...) -> None: ...

class CameraName(_message.Message):
    __slots__ = ()
    class Name(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[CameraName.Name]
        FRONT: _ClassVar[CameraName.Name]
        FRONT_LEFT: _ClassVar[CameraName.Name]
        FRONT_RIGHT: _ClassVar[CameraName.Name]
        SIDE_LEFT: _ClassVar[CameraName.Name]
        SIDE_RIGHT: _ClassVar[CameraName.Name]
        REAR_LEFT: _ClassVar[CameraName.Name]
        REAR: _ClassVar[CameraName.Name]
        REAR_RIGHT: _ClassVar[CameraName.Name]
    UNKNOWN: CameraName.Name
    FRONT: CameraName.Name
    FRONT_LEFT: CameraName.Name
    FRONT_RIGHT: CameraName.Name
    SIDE_LEFT: CameraName.Name
    SIDE_RIGHT: CameraName.Name
    REAR_LEFT: CameraName.Name
    REAR: CameraName.Name
    REAR_RIGHT: CameraName.Name
    def __init__(self) -> None: ...

class LaserName(_message.Message):
    __slots__ = ()
    class Name(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[LaserName.Name]
        TOP: _ClassVar[LaserName.Name]
        FRONT: _ClassVar[LaserName.Name]
        SIDE_LEFT: _ClassVar[LaserName.Name]
        SIDE_RIGHT: _ClassVar[LaserName.Name]
        REAR: _ClassVar[LaserName.Name]
    UNKNOWN: LaserName.Name
    TOP: LaserName.Name
    FRONT: LaserName.Name
    SIDE_LEFT: LaserName.Name
    SIDE_RIGHT: LaserName.Name
    REAR: LaserName.Name
    def __init__(self) -> None: ...

class CameraCalibration(_message.Message):
    __slots__ = ("name", "intrinsic", "extrinsic", "width", "height", "rolling_shutter_direction")
    class RollingShutterReadOutDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[CameraCalibration.RollingShutterReadOutDirection]
        TOP_TO_BOTTOM: _ClassVar[CameraCalibration.RollingShutterReadOutDirection]
        LEFT_TO_RIGHT: _ClassVar[CameraCalibration.RollingShutterReadOutDirection]
        BOTTOM_TO_TOP: _ClassVar[CameraCalibration.RollingShutterReadOutDirection]
        RIGHT_TO_LEFT: _ClassVar[CameraCalibration.RollingShutterReadOutDirection]
        GLOBAL_SHUTTER: _ClassVar[CameraCalibration.RollingShutterReadOutDirection]
    UNKNOWN: CameraCalibration.RollingShutterReadOutDirection
    TOP_TO_BOTTOM: CameraCalibration.RollingShutterReadOutDirection
    LEFT_TO_RIGHT: CameraCalibration.RollingShutterReadOutDirection
    BOTTOM_TO_TOP: CameraCalibration.RollingShutterReadOutDirection
    RIGHT_TO_LEFT: CameraCalibration.RollingShutterReadOutDirection
    GLOBAL_SHUTTER: CameraCalibration.RollingShutterReadOutDirection
    NAME_FIELD_NUMBER: _ClassVar[int]
    INTRINSIC_FIELD_NUMBER: _ClassVar[int]
    EXTRINSIC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROLLING_SHUTTER_DIRECTION_FIELD_NUMBER: _ClassVar[int]
    name: CameraName.Name
    intrinsic: _containers.RepeatedScalarFieldContainer[float]
    extrinsic: Transform
    width: int
    height: int
    rolling_shutter_direction: CameraCalibration.RollingShutterReadOutDirection
    def __init__(self, name: _Optional[_Union[CameraName.Name, str]] = ..., intrinsic: _Optional[_Iterable[float]] = ..., extrinsic: _Optional[_Union[Transform, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., rolling_shutter_direction: _Optional[_Union[CameraCalibration.RollingShutterReadOutDirection, str]] = ...) -> None: ...

class LaserCalibration(_message.Message):
    __slots__ = ("name", "beam_inclinations", "beam_inclination_min", "beam_inclination_max", "extrinsic")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BEAM_INCLINATIONS_FIELD_NUMBER: _ClassVar[int]
    BEAM_INCLINATION_MIN_FIELD_NUMBER: _ClassVar[int]
    BEAM_INCLINATION_MAX_FIELD_NUMBER: _ClassVar[int]
    EXTRINSIC_FIELD_NUMBER: _ClassVar[int]
    name: LaserName.Name
    beam_inclinations: _containers.RepeatedScalarFieldContainer[float]
    beam_inclination_min: float
    beam_inclination_max: float
    extrinsic: Transform
    def __init__(self, name: _Optional[_Union[LaserName.Name, str]] = ..., beam_inclinations: _Optional[_Iterable[float]] = ..., beam_inclination_min: _Optional[float] = ..., beam_inclination_max: _Optional[float] = ..., extrinsic: _Optional[_Union[Transform, _Mapping]] = ...) -> None: ...

class Context(_message.Message):
    __slots__ = ("name", "camera_calibrations", "laser_calibrations", "stats")
    class Stats(_message.Message):
        __slots__ = ("laser_object_counts", "time_of_day", "location", "weather", "camera_object_counts")
        class ObjectCount(_message.Message):
            __slots__ = ("type", "count")
            TYPE_FIELD_NUMBER: _ClassVar[int]
            COUNT_FIELD_NUMBER: _ClassVar[int]
            type: Label.Type
            count: int
            def __init__(self, type: _Optional[_Union[Label.Type, str]] = ..., count: _Optional[int] = ...) -> None: ...
        LASER_OBJECT_COUNTS_FIELD_NUMBER: _ClassVar[int]
        TIME_OF_DAY_FIELD_NUMBER: _ClassVar[int]
        LOCATION_FIELD_NUMBER: _ClassVar[int]
        WEATHER_FIELD_NUMBER: _ClassVar[int]
        CAMERA_OBJECT_COUNTS_FIELD_NUMBER: _ClassVar[int]
        laser_object_counts: _containers.RepeatedCompositeFieldContainer[Context.Stats.ObjectCount]
        time_of_day: str
        location: str
        weather: str
        camera_object_counts: _containers.RepeatedCompositeFieldContainer[Context.Stats.ObjectCount]
        def __init__(self, laser_object_counts: _Optional[_Iterable[_Union[Context.Stats.ObjectCount, _Mapping]]] = ..., time_of_day: _Optional[str] = ..., location: _Optional[str] = ..., weather: _Optional[str] = ..., camera_object_counts: _Optional[_Iterable[_Union[Context.Stats.ObjectCount, _Mapping]]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_CALIBRATIONS_FIELD_NUMBER: _ClassVar[int]
    LASER_CALIBRATIONS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    name: str
    camera_calibrations: _containers.RepeatedCompositeFieldContainer[CameraCalibration]
    laser_calibrations: _containers.RepeatedCompositeFieldContainer[LaserCalibration]
    stats: Context.Stats
    def __init__(self, name: _Optional[str] = ..., camera_calibrations: _Optional[_Iterable[_Union[CameraCalibration, _Mapping]]] = ..., laser_calibrations: _Optional[_Iterable[_Union[LaserCalibration, _Mapping]]] = ..., stats: _Optional[_Union[Context.Stats, _Mapping]] = ...) -> None: ...

class RangeImage(_message.Message):
    __slots__ = ("range_image_compressed", "camera_projection_compressed", "range_image_pose_compressed", "range_image_flow_compressed", "segmentation_label_compressed")
    RANGE_IMAGE_COMPRESSED_FIELD_NUMBER: _ClassVar[int]
    CAMERA_PROJECTION_COMPRESSED_FIELD_NUMBER: _ClassVar[int]
    RANGE_IMAGE_POSE_COMPRESSED_FIELD_NUMBER: _ClassVar[int]
    RANGE_IMAGE_FLOW_COMPRESSED_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_LABEL_COMPRESSED_FIELD_NUMBER: _ClassVar[int]
    range_image_compressed: bytes
    camera_projection_compressed: bytes
    range_image_pose_compressed: bytes
    range_image_flow_compressed: bytes
    segmentation_label_compressed: bytes
    def __init__(self, range_image_compressed: _Optional[bytes] = ..., camera_projection_compressed: _Optional[bytes] = ..., range_image_pose_compressed: _Optional[bytes] = ..., range_image_flow_compressed: _Optional[bytes] = ..., segmentation_label_compressed: _Optional[bytes] = ...) -> None: ...

class CameraImage(_message.Message):
    __slots__ = ("name", "image", "pose", "velocity", "pose_timestamp", "shutter", "camera_trigger_time", "camera_readout_done_time", "camera_segmentation_label")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    POSE_FIELD_NUMBER: _ClassVar[int]
    VELOCITY_FIELD_NUMBER: _ClassVar[int]
    POSE_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SHUTTER_FIELD_NUMBER: _ClassVar[int]
    CAMERA_TRIGGER_TIME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_READOUT_DONE_TIME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_SEGMENTATION_LABEL_FIELD_NUMBER: _ClassVar[int]
    name: CameraName.Name
    image: bytes
    pose: Transform
    velocity: Velocity
    pose_timestamp: float
    shutter: float
    camera_trigger_time: float
    camera_readout_done_time: float
    camera_segmentation_label: bytes
    def __init__(self, name: _Optional[_Union[CameraName.Name, str]] = ..., image: _Optional[bytes] = ..., pose: _Optional[_Union[Transform, _Mapping]] = ..., velocity: _Optional[_Union[Velocity, _Mapping]] = ..., pose_timestamp: _Optional[float] = ..., shutter: _Optional[float] = ..., camera_trigger_time: _Optional[float] = ..., camera_readout_done_time: _Optional[float] = ..., camera_segmentation_label: _Optional[bytes] = ...) -> None: ...

class CameraLabels(_message.Message):
    __slots__ = ("name", "labels")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: CameraName.Name
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    def __init__(self, name: _Optional[_Union[CameraName.Name, str]] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ...) -> None: ...

class Laser(_message.Message):
    __slots__ = ("name", "ri_return1", "ri_return2")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RI_RETURN1_FIELD_NUMBER: _ClassVar[int]
    RI_RETURN2_FIELD_NUMBER: _ClassVar[int]
    name: LaserName.Name
    ri_return1: RangeImage
    ri_return2: RangeImage
    def __init__(self, name: _Optional[_Union[LaserName.Name, str]] = ..., ri_return1: _Optional[_Union[RangeImage, _Mapping]] = ..., ri_return2: _Optional[_Union[RangeImage, _Mapping]] = ...) -> None: ...

class Polygon2dProto(_message.Message):
    __slots__ = ("x", "y", "id")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    x: _containers.RepeatedScalarFieldContainer[float]
    y: _containers.RepeatedScalarFieldContainer[float]
    id: str
    def __init__(self, x: _Optional[_Iterable[float]] = ..., y: _Optional[_Iterable[float]] = ..., id: _Optional[str] = ...) -> None: ...

class Label(_message.Message):
    __slots__ = ("box", "metadata", "type", "id", "detection_difficulty_level", "tracking_difficulty_level", "num_lidar_points_in_box", "most_visible_camera_name", "camera_synced_box", "num_top_lidar_points_in_box")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNKNOWN: _ClassVar[Label.Type]
        TYPE_VEHICLE: _ClassVar[Label.Type]
        TYPE_PEDESTRIAN: _ClassVar[Label.Type]
        TYPE_SIGN: _ClassVar[Label.Type]
        TYPE_CYCLIST: _ClassVar[Label.Type]
    TYPE_UNKNOWN: Label.Type
    TYPE_VEHICLE: Label.Type
    TYPE_PEDESTRIAN: Label.Type
    TYPE_SIGN: Label.Type
    TYPE_CYCLIST: Label.Type
    class DifficultyLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[Label.DifficultyLevel]
        LEVEL_1: _ClassVar[Label.DifficultyLevel]
        LEVEL_2: _ClassVar[Label.DifficultyLevel]
    UNKNOWN: Label.DifficultyLevel
    LEVEL_1: Label.DifficultyLevel
    LEVEL_2: Label.DifficultyLevel
    class Box(_message.Message):
        __slots__ = ("center_x", "center_y", "center_z", "width", "length", "height", "heading")
        CENTER_X_FIELD_NUMBER: _ClassVar[int]
        CENTER_Y_FIELD_NUMBER: _ClassVar[int]
        CENTER_Z_FIELD_NUMBER: _ClassVar[int]
        WIDTH_FIELD_NUMBER: _ClassVar[int]
        LENGTH_FIELD_NUMBER: _ClassVar[int]
        HEIGHT_FIELD_NUMBER: _ClassVar[int]
        HEADING_FIELD_NUMBER: _ClassVar[int]
        center_x: float
        center_y: float
        center_z: float
        width: float
        length: float
        height: float
        heading: float
        def __init__(self, center_x: _Optional[float] = ..., center_y: _Optional[float] = ..., center_z: _Optional[float] = ..., width: _Optional[float] = ..., length: _Optional[float] = ..., height: _Optional[float] = ..., heading: _Optional[float] = ...) -> None: ...
    class Metadata(_message.Message):
        __slots__ = ("speed_x", "speed_y", "accel_x", "accel_y", "speed_z", "accel_z")
        SPEED_X_FIELD_NUMBER: _ClassVar[int]
        SPEED_Y_FIELD_NUMBER: _ClassVar[int]
        ACCEL_X_FIELD_NUMBER: _ClassVar[int]
        ACCEL_Y_FIELD_NUMBER: _ClassVar[int]
        SPEED_Z_FIELD_NUMBER: _ClassVar[int]
        ACCEL_Z_FIELD_NUMBER: _ClassVar[int]
        speed_x: float
        speed_y: float
        accel_x: float
        accel_y: float
        speed_z: float
        accel_z: float
        def __init__(self, speed_x: _Optional[float] = ..., speed_y: _Optional[float] = ..., accel_x: _Optional[float] = ..., accel_y: _Optional[float] = ..., speed_z: _Optional[float] = ..., accel_z: _Optional[float] = ...) -> None: ...
    BOX_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DETECTION_DIFFICULTY_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TRACKING_DIFFICULTY_LEVEL_FIELD_NUMBER: _ClassVar[int]
    NUM_LIDAR_POINTS_IN_BOX_FIELD_NUMBER: _ClassVar[int]
    MOST_VISIBLE_CAMERA_NAME_FIELD_NUMBER: _ClassVar[int]
    CAMERA_SYNCED_BOX_FIELD_NUMBER: _ClassVar[int]
    NUM_TOP_LIDAR_POINTS_IN_BOX_FIELD_NUMBER: _ClassVar[int]
    box: Label.Box
    metadata: Label.Metadata
    type: Label.Type
    id: str
    detection_difficulty_level: Label.DifficultyLevel
    tracking_difficulty_level: Label.DifficultyLevel
    num_lidar_points_in_box: int
    most_visible_camera_name: str
    camera_synced_box: Label.Box
    num_top_lidar_points_in_box: int
    def __init__(self, box: _Optional[_Union[Label.Box, _Mapping]] = ..., metadata: _Optional[_Union[Label.Metadata, _Mapping]] = ..., type: _Optional[_Union[Label.Type, str]] = ..., id: _Optional[str] = ..., detection_difficulty_level: _Optional[_Union[Label.DifficultyLevel, str]] = ..., tracking_difficulty_level: _Optional[_Union[Label.DifficultyLevel, str]] = ..., num_lidar_points_in_box: _Optional[int] = ..., most_visible_camera_name: _Optional[str] = ..., camera_synced_box: _Optional[_Union[Label.Box, _Mapping]] = ..., num_top_lidar_points_in_box: _Optional[int] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("context", "timestamp_micros", "pose", "images", "lasers", "laser_labels", "no_label_zones", "camera_labels", "projected_lidar_labels")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MICROS_FIELD_NUMBER: _ClassVar[int]
    POSE_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    LASERS_FIELD_NUMBER: _ClassVar[int]
    LASER_LABELS_FIELD_NUMBER: _ClassVar[int]
    NO_LABEL_ZONES_FIELD_NUMBER: _ClassVar[int]
    CAMERA_LABELS_FIELD_NUMBER: _ClassVar[int]
    PROJECTED_LIDAR_LABELS_FIELD_NUMBER: _ClassVar[int]
    context: Context
    timestamp_micros: int
    pose: Transform
    images: _containers.RepeatedCompositeFieldContainer[CameraImage]
    lasers: _containers.RepeatedCompositeFieldContainer[Laser]
    laser_labels: _containers.RepeatedCompositeFieldContainer[Label]
    no_label_zones: _containers.RepeatedCompositeFieldContainer[Polygon2dProto]
    camera_labels: _containers.RepeatedCompositeFieldContainer[CameraLabels]
    projected_lidar_labels: _containers.RepeatedCompositeFieldContainer[CameraLabels]
    def __init__(self, context: _Optional[_Union[Context, _Mapping]] = ..., timestamp_micros: _Optional[int] = ..., pose: _Optional[_Union[Transform, _Mapping]] = ..., images: _Optional[_Iterable[_Union[CameraImage, _Mapping]]] = ..., lasers: _Optional[_Iterable[_Union[Laser, _Mapping]]] = ..., laser_labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., no_label_zones: _Optional[_Iterable[_Union[Polygon2dProto, _Mapping]]] = ..., camera_labels: _Optional[_Iterable[_Union[CameraLabels, _Mapping]]] = ..., projected_lidar_labels: _Optional[_Iterable[_Union[CameraLabels, _Mapping]]] = ...) -> None: ...

class Object(_message.Message):
    __slots__ = ("object", "score", "overlap_with_nlz", "context_name", "frame_timestamp_micros", "camera_name")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_WITH_NLZ_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_NAME_FIELD_NUMBER: _ClassVar[int]
    FRAME_TIMESTAMP_MICROS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_NAME_FIELD_NUMBER: _ClassVar[int]
    object: Label
    score: float
    overlap_with_nlz: bool
    context_name: str
    frame_timestamp_micros: int
    camera_name: CameraName.Name
    def __init__(self, object: _Optional[_Union[Label, _Mapping]] = ..., score: _Optional[float] = ..., overlap_with_nlz: _Optional[bool] = ..., context_name: _Optional[str] = ..., frame_timestamp_micros: _Optional[int] = ..., camera_name: _Optional[_Union[CameraName.Name, str]] = ...) -> None: ...

class Objects(_message.Message):
    __slots__ = ("objects",)
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[Object]
    def __init__(self, objects: _Optional[_Iterable[_Union[Object, _Mapping]]] = ...) -> None: ...
