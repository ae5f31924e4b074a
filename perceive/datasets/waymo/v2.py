"""Waymo Open Dataset v2 (parquet components) reading and writing, with pyarrow.

A v2 dataset root holds ``<split>/<component>/<segment>.parquet``: one file per
segment per component. Rows are keyed by ``key.segment_context_name``,
``key.frame_timestamp_micros`` and, per component, ``key.camera_name``,
``key.laser_name``, ``key.laser_object_id`` or ``key.camera_object_id``; values are
columns named ``[ComponentClass].field.subfield``. Range images are stored
uncompressed as a flat ``.values`` list plus a ``.shape``.

:func:`open_v2` gives a :class:`V2Segment` with random access by frame that yields the
same :class:`~perceive.datasets.types.Frame` objects as the v1 reader. It reads column
names and types from each file's schema, reads only the columns it needs, and for the
heavy components (images, range images) only the row groups holding the frame asked
for. :func:`write_v2_segment` writes frames in this layout (one row group per frame in
the heavy components), so v1 data or the synthetic generator's output can be
converted to v2.

What v2 cannot say, and how this module reads it:

* Calibrations are per segment, not per frame: the writer refuses frames whose
  calibrations change within a segment.
* A camera with no labels has no rows: every camera with an image gets an entry in
  ``camera_boxes`` and ``projected_boxes`` (empty when it has no rows).
* Projected LiDAR boxes are keyed by the 3D box's id and the camera; their v1 id is
  ``<3D id>_<CAMERA>``, which the reader rebuilds (and the writer strips).
* The per-pixel pose exists for return 1 of a laser; return 2 borrows it, as in v1.
"""

from __future__ import annotations

import contextlib
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perceive.datasets.types import (
    CAMERA_NAMES,
    LASER_NAMES,
    Boxes2D,
    Boxes3D,
    CameraCalibration,
    Frame,
    FrameContext,
    LaserCalibration,
    RangeImage,
    camera_id,
    laser_id,
)
from perceive.errors import DataError, MissingComponentError
from perceive.utils.lazy import LazyMapping

#: The components a full frame is read from, in the order they are written.
V2_COMPONENTS: tuple[str, ...] = (
    "camera_image",
    "camera_calibration",
    "camera_box",
    "lidar",
    "lidar_calibration",
    "lidar_pose",
    "lidar_camera_projection",
    "lidar_box",
    "projected_lidar_box",
    "vehicle_pose",
    "stats",
)
#: Components with one row group per frame (read row group by row group).
HEAVY_COMPONENTS: frozenset[str] = frozenset(
    {"camera_image", "lidar", "lidar_pose", "lidar_camera_projection"}
)
#: Splits of the dataset.
SPLITS: tuple[str, ...] = ("training", "validation", "testing")

KEY_SEGMENT = "key.segment_context_name"
KEY_TIMESTAMP = "key.frame_timestamp_micros"
KEY_CAMERA = "key.camera_name"
KEY_LASER = "key.laser_name"
KEY_LASER_OBJECT = "key.laser_object_id"
KEY_CAMERA_OBJECT = "key.camera_object_id"

_CI = "[CameraImageComponent]"
_CC = "[CameraCalibrationComponent]"
_CB = "[CameraBoxComponent]"
_L = "[LiDARComponent]"
_LC = "[LiDARCalibrationComponent]"
_LP = "[LiDARPoseComponent]"
_LCP = "[LiDARCameraProjectionComponent]"
_LB = "[LiDARBoxComponent]"
_PB = "[ProjectedLiDARBoxComponent]"
_VP = "[VehiclePoseComponent]"
_ST = "[StatsComponent]"
_INTRINSIC = ("f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3")


def _pa() -> tuple[Any, Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ModuleNotFoundError as e:  # pragma: no cover - pyarrow is in the v2 extra
        raise MissingComponentError(
            "reading Waymo v2 needs pyarrow: pip install 'perceive[v2]'"
        ) from e
    return pa, pc, pq


def component_path(root: str | Path, split: str, component: str, segment: str) -> Path:
    """``<root>/<split>/<component>/<segment>.parquet``."""
    return Path(root) / split / component / f"{segment}.parquet"


def list_segments(root: str | Path, split: str = "training") -> list[str]:
    """Segment names of a split (from its ``vehicle_pose`` component), sorted."""
    d = Path(root) / split / "vehicle_pose"
    if not d.is_dir():
        raise MissingComponentError(
            f"{root}: no {split}/vehicle_pose folder: not a Waymo v2 root (or no {split!r} split)"
        )
    return sorted(p.stem for p in d.glob("*.parquet"))


def is_v2_root(path: str | Path) -> bool:
    """Whether ``path`` looks like a v2 dataset root (a split folder with ``vehicle_pose``)."""
    p = Path(path)
    return p.is_dir() and any((p / s / "vehicle_pose").is_dir() for s in SPLITS)


class _Component:
    """One component file of one segment: schema, lazy row-group index, column reads."""

    def __init__(self, name: str, path: Path, segment: str) -> None:
        self.name = name
        self.path = path
        self.segment = segment
        self._segment_checked = False
        self._file: Any = None
        self._pid = -1
        self._groups: dict[int, list[int]] | None = None
        self._table: Any = None
        self._table_columns: tuple[str, ...] = ()

    def __getstate__(self) -> dict:
        return {"name": self.name, "path": self.path, "segment": self.segment}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name"], state["path"], state["segment"])  # type: ignore[misc]

    def close(self) -> None:
        """Drop the open parquet file and the cached tables (reopened on the next read)."""
        self._file, self._table, self._table_columns = None, None, ()

    @property
    def file(self) -> Any:
        if self._file is None or self._pid != os.getpid():
            _, _, pq = _pa()
            try:
                self._file = pq.ParquetFile(self.path)
            except Exception as e:  # pyarrow raises ArrowInvalid / OSError
                raise DataError(
                    f"cannot read parquet component {self.name}: {e}", path=self.path
                ) from e
            self._pid = os.getpid()
            if not self._segment_checked:
                self._check_segment()
        return self._file

    def _check_segment(self) -> None:
        """Every row's ``key.segment_context_name`` must be this file's segment: a file of
        another segment (or a mixed one) would otherwise lend its rows to our frames."""
        self._segment_checked = True
        if KEY_SEGMENT not in self._file.schema_arrow.names:
            return
        try:
            col = self._file.read(columns=[KEY_SEGMENT]).column(0)
        except Exception as e:
            raise self._read_error(e) from e
        _, pc, _ = _pa()
        other = pc.fill_null(pc.not_equal(col, self.segment), True)  # a null is not ours
        if pc.any(other).as_py():
            bad = int(pc.index(other, True).as_py())
            raise DataError(
                f"row of segment {col[bad].as_py()!r} in the file of segment {self.segment!r}",
                path=self.path,
                record=bad,
                field=KEY_SEGMENT,
            )

    @property
    def columns(self) -> list[str]:
        """Column names from the file's schema."""
        return list(self.file.schema_arrow.names)

    def has(self, column: str) -> bool:
        return column in self.file.schema_arrow.names

    def require(self, *columns: str) -> None:
        missing = [c for c in columns if not self.has(c)]
        if missing:
            raise MissingComponentError(
                f"{self.path}: component {self.name} has no column(s) {missing}; "
                f"its columns are {self.columns}"
            )

    def _read_error(self, e: Exception) -> DataError:
        return DataError(f"cannot read component {self.name}: {e}", path=self.path)

    def timestamps(self) -> np.ndarray:
        """(R,) int64 frame timestamp of every row (reads only that column)."""
        self.require(KEY_TIMESTAMP)
        try:
            table = self.file.read(columns=[KEY_TIMESTAMP])
        except Exception as e:
            raise self._read_error(e) from e
        return _np(table, KEY_TIMESTAMP, np.int64, self)

    def row_groups_of(self, timestamp: int) -> list[int]:
        """Row groups holding rows of a frame."""
        if self._groups is None:
            ts = self.timestamps()
            meta = self.file.metadata
            groups: dict[int, list[int]] = {}
            start = 0
            for g in range(meta.num_row_groups):
                n = meta.row_group(g).num_rows
                for t in np.unique(ts[start : start + n]):
                    groups.setdefault(int(t), []).append(g)
                start += n
            self._groups = groups
        return self._groups.get(int(timestamp), [])

    def read_all(self, columns: Sequence[str]) -> Any:
        """The whole file, only the given columns (cached)."""
        cols = tuple(dict.fromkeys(columns))
        if self._table is None or not set(cols) <= set(self._table_columns):
            self.require(*cols)
            try:
                self._table = self.file.read(columns=list(cols))
            except Exception as e:
                raise self._read_error(e) from e
            self._table_columns = cols
        return self._table

    def read_frame(self, timestamp: int, columns: Sequence[str]) -> Any:
        """The rows of one frame, only the given columns."""
        pa, pc, _ = _pa()
        cols = list(dict.fromkeys([KEY_TIMESTAMP, *columns]))
        self.require(*cols)
        if self.name in HEAVY_COMPONENTS:
            groups = self.row_groups_of(timestamp)
            if not groups:
                return self.file.schema_arrow.empty_table().select(cols)
            try:
                table = self.file.read_row_groups(groups, columns=cols)
            except Exception as e:
                raise self._read_error(e) from e
        else:
            table = self.read_all(cols).select(cols)
        return table.filter(
            pc.equal(
                table.column(KEY_TIMESTAMP),
                pa.scalar(int(timestamp), table.schema.field(KEY_TIMESTAMP).type),
            )
        )


def _np(
    table: Any, column: str, dtype: Any, comp: _Component, frame: int | None = None
) -> np.ndarray:
    """A numeric column as an array of ``dtype``, checked: a column of another type (a
    string, a float where an integer belongs) or a null raises :class:`DataError` naming
    the file, the row (of the file, or of ``frame``'s rows when given) and the column."""
    pa = _pa()[0]
    col = table.column(column)
    typ = col.type
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    integral = np.issubdtype(np.dtype(dtype), np.integer)
    if not (pa.types.is_integer(typ) or (not integral and pa.types.is_floating(typ))):
        raise DataError(
            f"{_in_frame(frame)}column of type {col.type}, expected "
            f"{'integers' if integral else 'numbers'}",
            path=comp.path,
            field=column,
        )
    if col.null_count:
        row = next(i for i, v in enumerate(col.is_valid().to_pylist()) if not v)
        raise DataError(
            f"{_in_frame(frame)}null value"
            + (f" in the frame's row {row}" if frame is not None else ""),
            path=comp.path,
            record=None if frame is not None else row,
            field=column,
        )
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)


def _in_frame(frame: int | None) -> str:
    return "" if frame is None else f"frame {frame} us: "


def _unique_keys(
    names: list[str | None], comp: _Component, field: str, frame: int | None = None
) -> None:
    """One row per camera or laser (in a frame, or in a calibration file when ``frame`` is
    None): a repeat would silently replace the first."""
    seen = set()
    for i, n in enumerate(names):
        if n is not None and n in seen:
            raise DataError(
                f"{_in_frame(frame)}two rows for {n}",
                path=comp.path,
                record=None if frame is not None else i,
                field=field,
            )
        seen.add(n)


def _list_row(table: Any, column: str, row: int) -> np.ndarray | None:
    v = table.column(column)[row]
    if not v.is_valid:
        return None
    return v.values.to_numpy(zero_copy_only=False)


def _extrinsic(table: Any, column: str, row: int, what: str, comp: Any) -> np.ndarray:
    """The (4, 4) float64 transform stored row-major in ``column`` at ``row``; a clear error
    naming the file, row and column when it is missing or not 16 values."""
    ext = _list_row(table, column, row)
    if ext is None or ext.size != 16:
        raise DataError(
            f"{what} extrinsic has {0 if ext is None else ext.size} values, expected 16",
            path=comp.path,
            record=row,
            field=column,
        )
    return np.asarray(ext, np.float64).reshape(4, 4)


def _names(values: np.ndarray, table_names: tuple[str, ...]) -> list[str | None]:
    return [table_names[v - 1] if 1 <= v <= len(table_names) else None for v in values.astype(int)]


class V2Segment:
    """One v2 segment: ``len(seg)``, ``seg[i]`` (frames in timestamp order), iteration.

    Args:
        root: the dataset root.
        segment: the segment (context) name.
        split: the split folder.
        components: components to read; None for all of :data:`V2_COMPONENTS`. Missing
            requested components raise :class:`MissingComponentError` naming them; data
            of components not requested is left empty in the frames. ``vehicle_pose``
            (which lists the frames) is always needed.
    """

    def __init__(
        self,
        root: str | Path,
        segment: str,
        split: str = "training",
        components: Sequence[str] | None = None,
    ) -> None:
        self.root, self.segment, self.split = Path(root), segment, split
        wanted = list(V2_COMPONENTS if components is None else components)
        unknown = [c for c in wanted if c not in V2_COMPONENTS]
        if unknown:
            raise MissingComponentError(
                f"unknown v2 component(s) {unknown}; known: {V2_COMPONENTS}"
            )
        if "vehicle_pose" not in wanted:
            wanted.append("vehicle_pose")
        self.components: dict[str, _Component] = {}
        for name in wanted:
            path = component_path(root, split, name, segment)
            if not path.is_file():
                raise MissingComponentError(
                    f"Waymo v2 segment {segment!r} ({split}) has no component {name!r}: "
                    f"expected {path}; pass components=... to read without it"
                )
            self.components[name] = _Component(name, path, segment)
        self._timestamps: np.ndarray | None = None
        self._calib: tuple[dict[str, CameraCalibration], dict[str, LaserCalibration]] | None = None
        self._columns_paired = False

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_calib"] = None
        return state

    @property
    def timestamps(self) -> np.ndarray:
        """(F,) int64 frame timestamps, ascending (from ``vehicle_pose``)."""
        if self._timestamps is None:
            comp = self.components["vehicle_pose"]
            ts = comp.timestamps()
            unique, counts = np.unique(ts, return_counts=True)
            if unique.size != ts.size:  # one pose per frame
                t = int(unique[np.argmax(counts > 1)])
                raise DataError(
                    f"frame {t} us has {int(counts.max())} vehicle poses; expected one per frame",
                    path=comp.path,
                    record=int(np.flatnonzero(ts == t)[1]),
                    field=KEY_TIMESTAMP,
                )
            self._timestamps = unique
        return self._timestamps

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def _has(self, name: str) -> bool:
        return name in self.components

    def close(self) -> None:
        """Release the open parquet files (they reopen if the segment is read again)."""
        for comp in self.components.values():
            comp.close()

    def __enter__(self) -> V2Segment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- per-segment calibrations ------------------------------------------------------------
    def calibrations(self) -> tuple[dict[str, CameraCalibration], dict[str, LaserCalibration]]:
        """Camera and laser calibrations of the segment."""
        if self._calib is not None:
            return self._calib
        cameras: dict[str, CameraCalibration] = {}
        if self._has("camera_calibration"):
            comp = self.components["camera_calibration"]
            cols = [
                KEY_CAMERA,
                *(f"{_CC}.intrinsic.{k}" for k in _INTRINSIC),
                f"{_CC}.extrinsic.transform",
                f"{_CC}.width",
                f"{_CC}.height",
            ]
            rs = f"{_CC}.rolling_shutter_direction"
            t = comp.read_all([*cols, rs] if comp.has(rs) else cols)
            intr = np.stack(
                [_np(t, f"{_CC}.intrinsic.{k}", np.float64, comp) for k in _INTRINSIC], axis=1
            )
            names = _names(_np(t, KEY_CAMERA, np.int64, comp), CAMERA_NAMES)
            width = _np(t, f"{_CC}.width", np.int64, comp)
            height = _np(t, f"{_CC}.height", np.int64, comp)
            shutter = _np(t, rs, np.int64, comp) if rs in t.column_names else None
            _unique_keys(names, comp, KEY_CAMERA)
            for i, name in enumerate(names):
                if name is None:
                    continue
                ext = _extrinsic(t, f"{_CC}.extrinsic.transform", i, f"camera {name}", comp)
                cameras[name] = CameraCalibration(
                    name=name,
                    intrinsic=intr[i],
                    extrinsic=ext,
                    width=int(width[i]),
                    height=int(height[i]),
                    rolling_shutter_direction=5 if shutter is None else int(shutter[i]),
                )
        lasers: dict[str, LaserCalibration] = {}
        if self._has("lidar_calibration"):
            comp = self.components["lidar_calibration"]
            incl = f"{_LC}.beam_inclination.values"
            cols = [
                KEY_LASER,
                f"{_LC}.extrinsic.transform",
                f"{_LC}.beam_inclination.min",
                f"{_LC}.beam_inclination.max",
            ]
            t = comp.read_all([*cols, incl] if comp.has(incl) else cols)
            names = _names(_np(t, KEY_LASER, np.int64, comp), LASER_NAMES)
            inc_min = _np(t, f"{_LC}.beam_inclination.min", np.float64, comp)
            inc_max = _np(t, f"{_LC}.beam_inclination.max", np.float64, comp)
            _unique_keys(names, comp, KEY_LASER)
            for i, name in enumerate(names):
                if name is None:
                    continue
                ext = _extrinsic(t, f"{_LC}.extrinsic.transform", i, f"laser {name}", comp)
                inc = _list_row(t, incl, i) if incl in t.column_names else None
                lasers[name] = LaserCalibration(
                    name=name,
                    extrinsic=ext,
                    beam_inclinations=np.zeros(0) if inc is None else np.asarray(inc, np.float64),
                    inclination_min=float(inc_min[i]),
                    inclination_max=float(inc_max[i]),
                )
        self._calib = (cameras, lasers)
        return self._calib

    # -- frames ----------------------------------------------------------------------------
    def index_of(self, timestamp: int) -> int:
        """Frame index of a timestamp."""
        i = int(np.searchsorted(self.timestamps, timestamp))
        if i >= len(self) or self.timestamps[i] != timestamp:
            raise MissingComponentError(f"segment {self.segment!r} has no frame at {timestamp} us")
        return i

    def __getitem__(self, index: int) -> Frame:
        n = len(self)
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(
                f"segment {self.segment!r}: frame index must be an integer, "
                f"got {type(index).__name__}"
            ) from None
        if not -n <= i < n:
            raise IndexError(f"segment {self.segment!r}: frame {index} out of range ({n} frames)")
        i = i + n if i < 0 else i
        return self._frame(int(self.timestamps[i]), i)

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield self[i]

    def _frame(self, ts: int, index: int) -> Frame:
        source = f"{self.root / self.split}:{self.segment} frame {index} ({ts} us)"
        cameras, lasers = self.calibrations()
        # Pose.
        comp = self.components["vehicle_pose"]
        t = comp.read_frame(ts, [f"{_VP}.world_from_vehicle.transform"])
        pose_vals = _list_row(t, f"{_VP}.world_from_vehicle.transform", 0) if t.num_rows else None
        if pose_vals is None or pose_vals.size != 16:
            raise DataError(
                f"frame {ts} has no 16-value vehicle pose",
                path=comp.path,
                field=f"{_VP}.world_from_vehicle.transform",
            )
        pose = np.asarray(pose_vals, np.float64).reshape(4, 4)
        # Context.
        ctx = FrameContext(segment=self.segment)
        if self._has("stats"):
            t = self.components["stats"].read_frame(
                ts, [f"{_ST}.time_of_day", f"{_ST}.location", f"{_ST}.weather"]
            )
            if t.num_rows:
                ctx = FrameContext(
                    segment=self.segment,
                    time_of_day=t.column(f"{_ST}.time_of_day")[0].as_py() or "",
                    location=t.column(f"{_ST}.location")[0].as_py() or "",
                    weather=t.column(f"{_ST}.weather")[0].as_py() or "",
                )
        # Images.
        image_bytes: dict[str, bytes] = {}
        if self._has("camera_image"):
            comp = self.components["camera_image"]
            t = comp.read_frame(ts, [KEY_CAMERA, f"{_CI}.image"])
            names = _names(_np(t, KEY_CAMERA, np.int64, comp, ts), CAMERA_NAMES)
            _unique_keys(names, comp, KEY_CAMERA, ts)
            col = t.column(f"{_CI}.image")
            found = {}
            for i, n in enumerate(names):
                if n is None:
                    continue
                data = col[i].as_py()
                if not isinstance(data, bytes) or not data:
                    got = "null" if data is None else f"{type(data).__name__} {data!r:.40}"
                    raise DataError(
                        f"frame {ts} us: camera {n} has no image bytes (got {got})",
                        path=comp.path,
                        field=f"{_CI}.image",
                    )
                found[n] = data
            image_bytes = {n: found[n] for n in CAMERA_NAMES if n in found}
        # Boxes.
        boxes = self._lidar_boxes(ts) if self._has("lidar_box") else Boxes3D.empty()
        camera_boxes = self._boxes_2d(ts, "camera_box", _CB, KEY_CAMERA_OBJECT, image_bytes)
        projected = self._boxes_2d(ts, "projected_lidar_box", _PB, KEY_LASER_OBJECT, image_bytes)
        # Range images (decoded lazily).
        loaders: dict[tuple[str, int], Callable[[], RangeImage]] = {}
        if self._has("lidar"):
            loaders = self._range_image_loaders(ts, lasers, source)
        return Frame(
            context=ctx,
            timestamp_us=ts,
            pose=pose,
            cameras=dict(cameras),
            lasers=dict(lasers),
            image_bytes=image_bytes,
            range_images=LazyMapping(loaders, what=f"{source}: range image"),
            boxes=boxes,
            camera_boxes=camera_boxes,
            projected_boxes=projected,
            source=source,
        )

    def _lidar_boxes(self, ts: int) -> Boxes3D:
        comp = self.components["lidar_box"]
        f = {
            "cx": f"{_LB}.box.center.x",
            "cy": f"{_LB}.box.center.y",
            "cz": f"{_LB}.box.center.z",
            "sx": f"{_LB}.box.size.x",
            "sy": f"{_LB}.box.size.y",
            "sz": f"{_LB}.box.size.z",
            "h": f"{_LB}.box.heading",
            "type": f"{_LB}.type",
        }
        opt = {
            "vx": f"{_LB}.speed.x",
            "vy": f"{_LB}.speed.y",
            "vz": f"{_LB}.speed.z",
            "ax": f"{_LB}.acceleration.x",
            "ay": f"{_LB}.acceleration.y",
            "az": f"{_LB}.acceleration.z",
            "n": f"{_LB}.num_lidar_points_in_box",
            "ntop": f"{_LB}.num_top_lidar_points_in_box",
            "diff": f"{_LB}.difficulty_level.detection",
        }
        present = {k: c for k, c in opt.items() if comp.has(c)}
        t = comp.read_frame(ts, [KEY_LASER_OBJECT, *f.values(), *present.values()])
        if t.num_rows == 0:
            return Boxes3D.empty()

        def col(key: str, dtype: Any) -> np.ndarray | None:
            name = f.get(key) or present.get(key)
            return None if name is None else _np(t, name, dtype, comp, ts)

        def vec(*keys: str) -> np.ndarray | None:
            cols = [col(k, np.float64) for k in keys]
            return None if any(c is None for c in cols) else np.stack(cols, axis=1)  # type: ignore[arg-type]

        return Boxes3D(
            center=vec("cx", "cy", "cz"),
            size=vec("sx", "sy", "sz"),
            heading=col("h", np.float64),
            type=col("type", np.int8),
            ids=np.array(t.column(KEY_LASER_OBJECT).to_pylist(), dtype=object),
            difficulty=col("diff", np.int8),
            num_lidar_points=col("n", np.int32),
            num_top_lidar_points=col("ntop", np.int32),
            speed=vec("vx", "vy", "vz"),
            accel=vec("ax", "ay", "az"),
        )

    def _boxes_2d(
        self, ts: int, name: str, cls: str, key_id: str, image_bytes: dict[str, bytes]
    ) -> dict[str, Boxes2D]:
        if not self._has(name):
            return {}
        comp = self.components[name]
        cols = [
            f"{cls}.box.center.x",
            f"{cls}.box.center.y",
            f"{cls}.box.size.x",
            f"{cls}.box.size.y",
        ]
        t = comp.read_frame(ts, [KEY_CAMERA, key_id, *cols, f"{cls}.type"])
        names = _names(_np(t, KEY_CAMERA, np.int64, comp, ts), CAMERA_NAMES)
        arr = (
            np.stack([_np(t, c, np.float64, comp, ts) for c in cols], axis=1)
            if t.num_rows
            else np.zeros((0, 4))
        )
        types = _np(t, f"{cls}.type", np.int8, comp, ts)
        ids = t.column(key_id).to_pylist()
        out: dict[str, Boxes2D] = {}
        for cam in [n for n in CAMERA_NAMES if n in image_bytes or n in names]:
            sel = np.array([n == cam for n in names], dtype=bool)
            cam_ids = [ids[i] for i in np.nonzero(sel)[0]]
            if name == "projected_lidar_box":
                cam_ids = [f"{i}_{cam}" for i in cam_ids]
            out[cam] = (
                Boxes2D(
                    center=arr[sel, :2],
                    size=arr[sel, 2:],
                    type=types[sel],
                    ids=np.array(cam_ids, dtype=object),
                )
                if sel.any()
                else Boxes2D.empty()
            )
        return out

    def _check_range_image_columns(self) -> None:
        """Each return's ``values`` and ``shape`` columns come together (one without the
        other is damage); a property of the files, checked once per segment."""
        for comp_name, prefix in (
            ("lidar", _L),
            ("lidar_camera_projection", _LCP),
            ("lidar_pose", _LP),
        ):
            if not self._has(comp_name):
                continue
            comp = self.components[comp_name]
            for r in (1, 2):
                values, shape = (f"{prefix}.range_image_return{r}.{k}" for k in ("values", "shape"))
                if comp.has(values) != comp.has(shape):
                    present, missing = (values, shape) if comp.has(values) else (shape, values)
                    raise DataError(
                        f"has {present} but no {missing}", path=comp.path, field=missing
                    )
        self._columns_paired = True

    def _range_image_loaders(
        self, ts: int, lasers: dict[str, LaserCalibration], source: str
    ) -> dict[tuple[str, int], Callable[[], RangeImage]]:
        lidar = self.components["lidar"]
        if not self._columns_paired:
            self._check_range_image_columns()
        shape_cols = [
            f"{_L}.range_image_return{r}.shape"
            for r in (1, 2)
            if lidar.has(f"{_L}.range_image_return{r}.shape")
        ]
        t = lidar.read_frame(ts, [KEY_LASER, *shape_cols])
        names = _names(_np(t, KEY_LASER, np.int64, lidar, ts), LASER_NAMES)
        _unique_keys(names, lidar, KEY_LASER, ts)
        memo: dict[str, Any] = {}

        def table(comp_name: str, prefix: str) -> Any:
            if comp_name not in memo:
                comp = self.components[comp_name]
                cols = [
                    c
                    for r in (1, 2)
                    for c in (
                        f"{prefix}.range_image_return{r}.values",
                        f"{prefix}.range_image_return{r}.shape",
                    )
                    if comp.has(c)
                ]
                memo[comp_name] = comp.read_frame(ts, [KEY_LASER, *cols])
            return memo[comp_name]

        def matrix(
            comp_name: str, prefix: str, laser: str, ret: int, channels: int, dtype: Any
        ) -> np.ndarray | None:
            tab = table(comp_name, prefix)
            vcol, scol = (
                f"{prefix}.range_image_return{ret}.values",
                f"{prefix}.range_image_return{ret}.shape",
            )
            if vcol not in tab.column_names:
                return None
            comp = self.components[comp_name]
            laser_names = _names(_np(tab, KEY_LASER, np.int64, comp, ts), LASER_NAMES)
            _unique_keys(laser_names, comp, KEY_LASER, ts)
            rows = [i for i, n in enumerate(laser_names) if n == laser]
            if not rows:
                return None
            vals, shape = _list_row(tab, vcol, rows[0]), _list_row(tab, scol, rows[0])
            if (vals is None) != (shape is None):
                raise DataError(
                    f"frame {ts} us: laser {laser} return {ret} has "
                    f"{'a shape but no values' if vals is None else 'values but no shape'}",
                    path=comp.path,
                    field=vcol if vals is None else scol,
                )
            if vals is None or shape is None:
                return None
            shape = tuple(int(s) for s in shape)
            path = comp.path
            if len(shape) != 3 or shape[2] != channels or int(np.prod(shape)) != vals.size:
                raise DataError(
                    f"laser {laser} return {ret}: {vals.size} values do not fit shape {shape} "
                    f"(expected (H, W, {channels}))",
                    path=path,
                    field=vcol,
                )
            return np.asarray(vals, dtype).reshape(shape)

        def load(laser: str, ret: int) -> RangeImage:
            values = matrix("lidar", _L, laser, ret, 4, np.float32)
            if values is None:  # the shape was there when the frame was listed
                raise DataError(
                    f"frame {ts} us: laser {laser} return {ret} lost its range image",
                    path=lidar.path,
                    field=f"{_L}.range_image_return{ret}.values",
                )
            cp = (
                matrix("lidar_camera_projection", _LCP, laser, ret, 6, np.int32)
                if self._has("lidar_camera_projection")
                else None
            )
            pose = (
                matrix("lidar_pose", _LP, laser, 1, 6, np.float32)
                if ret == 1 and self._has("lidar_pose")
                else None
            )
            for what, m in (("camera projection", cp), ("pixel pose", pose)):
                if m is not None and m.shape[:2] != values.shape[:2]:
                    raise DataError(
                        f"laser {laser} return {ret}: {what} has shape {m.shape}, "
                        f"range image {values.shape}",
                        path=self.components["lidar"].path,
                    )
            return RangeImage(
                laser=laser, return_index=ret, values=values, camera_projection=cp, pixel_pose=pose
            )

        loaders: dict[tuple[str, int], Callable[[], RangeImage]] = {}
        for i, name in enumerate(names):
            if name is None:
                continue
            if name not in lasers:
                raise DataError(
                    f"laser {name} has range images but no calibration",
                    path=self.components["lidar"].path,
                    field=KEY_LASER,
                )
            for ret in (1, 2):
                scol = f"{_L}.range_image_return{ret}.shape"
                if scol in t.column_names and t.column(scol)[i].is_valid:
                    loaders[(name, ret)] = lambda name=name, ret=ret: load(name, ret)
        return dict(sorted(loaders.items(), key=lambda kv: (laser_id(kv[0][0]), kv[0][1])))

    def __repr__(self) -> str:
        where = f"{str(self.root)!r}, {self.segment!r}, split={self.split!r}"
        return f"V2Segment({where}, frames={len(self)})"


def open_v2(
    root: str | Path, segment: str, split: str = "training", components: Sequence[str] | None = None
) -> V2Segment:
    """Open one v2 segment for random access by frame; see :class:`V2Segment`."""
    return V2Segment(root, segment, split=split, components=components)


# -- writing ------------------------------------------------------------------------------


def _schemas() -> dict[str, Any]:
    pa, _, _ = _pa()
    s, i64, i8, i32, f64, f32 = (
        pa.string(),
        pa.int64(),
        pa.int8(),
        pa.int32(),
        pa.float64(),
        pa.float32(),
    )
    lf64, lf32, li32, li8 = pa.list_(f64), pa.list_(f32), pa.list_(i32), pa.list_(i8)
    # the official schema's fixed-size lists: 4x4 transforms and (H, W, C) shapes
    tf16, shape3 = pa.list_(f64, 16), pa.list_(i32, 3)
    seg, ts = (KEY_SEGMENT, s), (KEY_TIMESTAMP, i64)

    def ri(prefix: str, t: Any) -> list[tuple[str, Any]]:
        return [
            (f"{prefix}.range_image_return{r}.{k}", t if k == "values" else shape3)
            for r in (1, 2)
            for k in ("values", "shape")
        ]

    return {
        "camera_image": pa.schema(
            [
                seg,
                ts,
                (KEY_CAMERA, i8),
                (f"{_CI}.image", pa.binary()),
                (f"{_CI}.pose.transform", tf16),
                *((f"{_CI}.velocity.linear_velocity.{a}", f32) for a in "xyz"),
                *((f"{_CI}.velocity.angular_velocity.{a}", f64) for a in "xyz"),
                (f"{_CI}.pose_timestamp", f64),
                (f"{_CI}.rolling_shutter_params.shutter", f64),
                (f"{_CI}.rolling_shutter_params.camera_trigger_time", f64),
                (f"{_CI}.rolling_shutter_params.camera_readout_done_time", f64),
            ]
        ),
        "camera_calibration": pa.schema(
            [
                seg,
                (KEY_CAMERA, i8),
                *((f"{_CC}.intrinsic.{k}", f64) for k in _INTRINSIC),
                (f"{_CC}.extrinsic.transform", tf16),
                (f"{_CC}.width", i32),
                (f"{_CC}.height", i32),
                (f"{_CC}.rolling_shutter_direction", i8),
            ]
        ),
        "camera_box": pa.schema(
            [
                seg,
                ts,
                (KEY_CAMERA, i8),
                (KEY_CAMERA_OBJECT, s),
                *((f"{_CB}.box.{p}.{a}", f64) for p in ("center", "size") for a in "xy"),
                (f"{_CB}.type", i8),
                (f"{_CB}.difficulty_level.detection", i8),
                (f"{_CB}.difficulty_level.tracking", i8),
            ]
        ),
        "lidar": pa.schema([seg, ts, (KEY_LASER, i8), *ri(_L, lf32)]),
        "lidar_calibration": pa.schema(
            [
                seg,
                (KEY_LASER, i8),
                (f"{_LC}.extrinsic.transform", tf16),
                (f"{_LC}.beam_inclination.min", f64),
                (f"{_LC}.beam_inclination.max", f64),
                (f"{_LC}.beam_inclination.values", lf64),
            ]
        ),
        "lidar_pose": pa.schema([seg, ts, (KEY_LASER, i8), *ri(_LP, lf32)[:2]]),
        # the official schema stores the camera projections as float32
        "lidar_camera_projection": pa.schema([seg, ts, (KEY_LASER, i8), *ri(_LCP, lf32)]),
        "lidar_box": pa.schema(
            [
                seg,
                ts,
                (KEY_LASER_OBJECT, s),
                *((f"{_LB}.box.{p}.{a}", f64) for p in ("center", "size") for a in "xyz"),
                (f"{_LB}.box.heading", f64),
                (f"{_LB}.type", i8),
                (f"{_LB}.num_lidar_points_in_box", i64),
                (f"{_LB}.num_top_lidar_points_in_box", i64),
                *((f"{_LB}.speed.{a}", f64) for a in "xyz"),
                *((f"{_LB}.acceleration.{a}", f64) for a in "xyz"),
                (f"{_LB}.difficulty_level.detection", i8),
                (f"{_LB}.difficulty_level.tracking", i8),
            ]
        ),
        "projected_lidar_box": pa.schema(
            [
                seg,
                ts,
                (KEY_CAMERA, i8),
                (KEY_LASER_OBJECT, s),
                *((f"{_PB}.box.{p}.{a}", f64) for p in ("center", "size") for a in "xy"),
                (f"{_PB}.type", i8),
            ]
        ),
        "vehicle_pose": pa.schema([seg, ts, (f"{_VP}.world_from_vehicle.transform", tf16)]),
        "stats": pa.schema(
            [
                seg,
                ts,
                (f"{_ST}.time_of_day", s),
                (f"{_ST}.location", s),
                (f"{_ST}.weather", s),
                (f"{_ST}.lidar_object_counts.types", li8),
                (f"{_ST}.lidar_object_counts.counts", li32),
                (f"{_ST}.camera_object_counts.types", li8),
                (f"{_ST}.camera_object_counts.counts", li32),
            ]
        ),
    }


def _flat(m: np.ndarray | None, dtype: Any) -> list | None:
    return None if m is None else np.asarray(m, dtype).reshape(-1)


def _shape(m: np.ndarray | None) -> list[int] | None:
    return None if m is None else [int(s) for s in m.shape]


def _same_calibration(a: Frame, b: Frame) -> bool:
    return (
        set(a.cameras) == set(b.cameras)
        and set(a.lasers) == set(b.lasers)
        and all(a.cameras[k] == b.cameras[k] for k in a.cameras)
        and all(a.lasers[k] == b.lasers[k] for k in a.lasers)
    )


def _frame_rows(frame: Frame, segment: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of every per-frame component for one frame."""
    ts = int(frame.timestamp_us)
    base = {KEY_SEGMENT: segment, KEY_TIMESTAMP: ts}
    rows: dict[str, list[dict[str, Any]]] = {c: [] for c in V2_COMPONENTS}
    pose = np.asarray(frame.pose, np.float64).reshape(16)
    rows["vehicle_pose"].append({**base, f"{_VP}.world_from_vehicle.transform": pose})
    laser_counts, cam_counts = frame.object_counts()
    rows["stats"].append(
        {
            **base,
            f"{_ST}.time_of_day": frame.context.time_of_day,
            f"{_ST}.location": frame.context.location,
            f"{_ST}.weather": frame.context.weather,
            f"{_ST}.lidar_object_counts.types": laser_counts[0],
            f"{_ST}.lidar_object_counts.counts": laser_counts[1],
            f"{_ST}.camera_object_counts.types": cam_counts[0],
            f"{_ST}.camera_object_counts.counts": cam_counts[1],
        }
    )
    for name in CAMERA_NAMES:
        if name not in frame.image_bytes:
            continue
        rows["camera_image"].append(
            {
                **base,
                KEY_CAMERA: camera_id(name),
                f"{_CI}.image": bytes(frame.image_bytes[name]),
                f"{_CI}.pose.transform": pose,
                **{f"{_CI}.velocity.linear_velocity.{a}": 0.0 for a in "xyz"},
                **{f"{_CI}.velocity.angular_velocity.{a}": 0.0 for a in "xyz"},
                f"{_CI}.pose_timestamp": ts * 1e-6,
                f"{_CI}.rolling_shutter_params.shutter": 0.0,
                f"{_CI}.rolling_shutter_params.camera_trigger_time": 0.0,
                f"{_CI}.rolling_shutter_params.camera_readout_done_time": 0.0,
            }
        )
    for comp, cls, key_id, table in (
        ("camera_box", _CB, KEY_CAMERA_OBJECT, frame.camera_boxes),
        ("projected_lidar_box", _PB, KEY_LASER_OBJECT, frame.projected_boxes),
    ):
        for cam in CAMERA_NAMES:
            if cam not in table:
                continue
            b = table[cam]
            suffix = f"_{cam}"
            for i in range(len(b)):
                oid = str(b.ids[i])
                if comp == "projected_lidar_box" and oid.endswith(suffix):
                    oid = oid[: -len(suffix)]
                row = {
                    **base,
                    KEY_CAMERA: camera_id(cam),
                    key_id: oid,
                    f"{cls}.box.center.x": float(b.center[i, 0]),
                    f"{cls}.box.center.y": float(b.center[i, 1]),
                    f"{cls}.box.size.x": float(b.size[i, 0]),
                    f"{cls}.box.size.y": float(b.size[i, 1]),
                    f"{cls}.type": int(b.type[i]),
                }
                if comp == "camera_box":
                    row[f"{_CB}.difficulty_level.detection"] = 0
                    row[f"{_CB}.difficulty_level.tracking"] = 0
                rows[comp].append(row)
    bx = frame.boxes
    for i in range(len(bx)):
        rows["lidar_box"].append(
            {
                **base,
                KEY_LASER_OBJECT: str(bx.ids[i]),
                **{f"{_LB}.box.center.{a}": float(bx.center[i, k]) for k, a in enumerate("xyz")},
                **{f"{_LB}.box.size.{a}": float(bx.size[i, k]) for k, a in enumerate("xyz")},
                f"{_LB}.box.heading": float(bx.heading[i]),
                f"{_LB}.type": int(bx.type[i]),
                f"{_LB}.num_lidar_points_in_box": int(bx.num_lidar_points[i]),
                f"{_LB}.num_top_lidar_points_in_box": int(bx.num_top_lidar_points[i]),
                **{f"{_LB}.speed.{a}": float(bx.speed[i, k]) for k, a in enumerate("xyz")},
                **{f"{_LB}.acceleration.{a}": float(bx.accel[i, k]) for k, a in enumerate("xyz")},
                f"{_LB}.difficulty_level.detection": int(bx.difficulty[i]),
                f"{_LB}.difficulty_level.tracking": 0,
            }
        )
    for name in frame.laser_names:
        ris = {r: frame.range_images[(name, r)] for r in (1, 2) if (name, r) in frame.range_images}
        lid = {**base, KEY_LASER: laser_id(name)}
        rows["lidar"].append(
            {
                **lid,
                **{
                    f"{_L}.range_image_return{r}.{k}": (
                        (
                            _flat(ris[r].values, np.float32)
                            if k == "values"
                            else _shape(ris[r].values)
                        )
                        if r in ris
                        else None
                    )
                    for r in (1, 2)
                    for k in ("values", "shape")
                },
            }
        )
        cps = {r: ri.camera_projection for r, ri in ris.items() if ri.camera_projection is not None}
        if cps:
            rows["lidar_camera_projection"].append(
                {
                    **lid,
                    **{
                        f"{_LCP}.range_image_return{r}.{k}": (
                            (_flat(cps[r], np.float32) if k == "values" else _shape(cps[r]))
                            if r in cps
                            else None
                        )
                        for r in (1, 2)
                        for k in ("values", "shape")
                    },
                }
            )
        pp = ris[1].pixel_pose if 1 in ris else None
        if pp is not None:
            rows["lidar_pose"].append(
                {
                    **lid,
                    f"{_LP}.range_image_return1.values": _flat(pp, np.float32),
                    f"{_LP}.range_image_return1.shape": _shape(pp),
                }
            )
    return rows


def _calibration_rows(frame: Frame, segment: str) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {"camera_calibration": [], "lidar_calibration": []}
    for name in CAMERA_NAMES:
        if name not in frame.cameras:
            continue
        c = frame.cameras[name]
        rows["camera_calibration"].append(
            {
                KEY_SEGMENT: segment,
                KEY_CAMERA: camera_id(name),
                **{f"{_CC}.intrinsic.{k}": float(c.intrinsic[j]) for j, k in enumerate(_INTRINSIC)},
                f"{_CC}.extrinsic.transform": c.extrinsic.reshape(16),
                f"{_CC}.width": int(c.width),
                f"{_CC}.height": int(c.height),
                f"{_CC}.rolling_shutter_direction": int(c.rolling_shutter_direction),
            }
        )
    for name in LASER_NAMES:
        if name not in frame.lasers:
            continue
        lc = frame.lasers[name]
        rows["lidar_calibration"].append(
            {
                KEY_SEGMENT: segment,
                KEY_LASER: laser_id(name),
                f"{_LC}.extrinsic.transform": lc.extrinsic.reshape(16),
                f"{_LC}.beam_inclination.min": float(lc.inclination_min),
                f"{_LC}.beam_inclination.max": float(lc.inclination_max),
                f"{_LC}.beam_inclination.values": lc.beam_inclinations
                if lc.beam_inclinations.size
                else None,
            }
        )
    return rows


def _to_table(rows: list[dict[str, Any]], schema: Any) -> Any:
    pa, _, _ = _pa()
    cols = {}
    for f in schema:
        vals = [r.get(f.name) for r in rows]
        if pa.types.is_fixed_size_list(f.type):
            if vals and all(v is not None for v in vals):
                flat = np.concatenate([np.asarray(v).reshape(-1) for v in vals])
                values = pa.array(flat, type=f.type.value_type)
                cols[f.name] = pa.FixedSizeListArray.from_arrays(values, type=f.type)
                continue
            vals = [None if v is None else np.asarray(v).reshape(-1).tolist() for v in vals]
        elif pa.types.is_list(f.type):
            vals = [
                None if v is None else (v.tolist() if isinstance(v, np.ndarray) else list(v))
                for v in vals
            ]
            if (
                vals
                and all(v is not None for v in vals)
                and pa.types.is_primitive(f.type.value_type)
            ):
                flat = [np.asarray(v) for v in vals]
                offsets = np.cumsum([0, *[len(v) for v in flat]]).astype(np.int32)
                values = pa.array(np.concatenate(flat) if flat else [], type=f.type.value_type)
                cols[f.name] = pa.ListArray.from_arrays(pa.array(offsets), values, type=f.type)
                continue
        cols[f.name] = pa.array(vals, type=f.type)
    return pa.table(cols, schema=schema)


def write_v2_segment(
    root: str | Path, frames: Iterable[Frame], split: str = "training", segment: str | None = None
) -> int:
    """Write frames of one segment as Waymo v2 parquet components under ``root/split``.

    Streams: the heavy components (images, range images) get one row group per frame
    and are written as frames arrive; the small ones are written at the end. Every
    file is written to a temporary name and renamed when complete.

    Args:
        root: the dataset root.
        frames: the segment's frames (all with the same segment name and calibrations).
        split: the split folder.
        segment: the segment name; None for the frames' ``context.segment``.

    Returns:
        The number of frames written.

    Raises:
        ValueError: no frames, frames of different segments, or calibrations that
            change within the segment (v2 stores one per segment).
    """
    _, _, pq = _pa()
    schemas = _schemas()
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("write_v2_segment needs at least one frame")
    name = segment or first.context.segment
    if not name:
        raise ValueError("frames have no segment name; pass segment=")
    small: dict[str, list[dict[str, Any]]] = {
        c: [] for c in V2_COMPONENTS if c not in HEAVY_COMPONENTS
    }
    for comp, r in _calibration_rows(first, name).items():
        small[comp].extend(r)
    n = 0
    with contextlib.ExitStack() as stack:
        from perceive.io.atomic import atomic_open

        files = {
            c: stack.enter_context(atomic_open(component_path(root, split, c, name)))
            for c in V2_COMPONENTS
        }
        writers = {
            c: stack.enter_context(pq.ParquetWriter(files[c], schemas[c], compression="snappy"))
            for c in HEAVY_COMPONENTS
        }
        seen: set[int] = set()
        for frame in _chain(first, it):
            if segment is None and frame.context.segment != name:
                raise ValueError(
                    f"frame {frame.source}: segment {frame.context.segment!r}, expected {name!r}"
                )
            if frame is not first and not _same_calibration(first, frame):
                raise ValueError(
                    f"frame {frame.source}: calibrations differ from the segment's first frame "
                    "(v2 stores one calibration per segment)"
                )
            ts = int(frame.timestamp_us)
            if ts in seen:
                raise ValueError(
                    f"frame {frame.source}: timestamp {ts} repeats within segment {name!r}"
                )
            seen.add(ts)
            rows = _frame_rows(frame, name)
            for comp in HEAVY_COMPONENTS:
                if rows[comp]:
                    writers[comp].write_table(_to_table(rows[comp], schemas[comp]))
            for comp in small:
                small[comp].extend(rows.get(comp, []))
            n += 1
        for comp, r in small.items():
            pq.write_table(_to_table(r, schemas[comp]), files[comp], compression="snappy")
    return n


def _chain(first: Frame, rest: Iterator[Frame]) -> Iterator[Frame]:
    yield first
    yield from rest
