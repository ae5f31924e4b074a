"""The conversion driver: plan jobs, run the pure per-segment function in parallel, resume, sum up.

The unit of work is :func:`convert_segment`: a pure function of one :class:`SegmentJob`
(a source segment, optionally a frame range) and a :class:`ConvertSpec` (format, output
folder, strictness). It streams the segment one frame at a time, skips frames whose
outputs already exist, writes every file atomically, and finishes by writing the job's
manifest. Nothing else is shared between jobs, so jobs can run in any order, in any
process or on any machine that sees the output folder (see the README for Ray and
Dask); :func:`finalize` then writes the set's index from the manifests.

:func:`run_conversion` is the local driver: a process pool over jobs, one tqdm bar over
frames, and a :class:`ConversionSummary` at the end.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import json
import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from perceive.convert.cache import safe_name
from perceive.datasets.types import Frame
from perceive.errors import ConfigError, DataError, PerceiveError
from perceive.io.atomic import atomic_write_text, remove_stale_temporaries

#: Marker file naming the format and version of an output folder.
MARKER_NAME = "PERCEIVE_FORMAT.json"
#: Folder of the per-job manifests inside an output folder.
MANIFEST_DIR = "_manifests"
#: The output formats.
FORMATS: tuple[str, ...] = ("cache", "kitti", "pcd", "ply")


# -- output folder marker -------------------------------------------------------------------


def check_format_marker(root: str | Path, fmt: str, version: int, must_exist: bool = False) -> bool:
    """Check an output folder's format marker.

    Args:
        root: the folder.
        fmt: the format expected there.
        version: the format version expected.
        must_exist: raise if there is no marker (for readers).

    Returns:
        True if the marker exists and matches, False if the folder has no marker.

    Raises:
        DataError: the marker names another format or version, or is unreadable (or is
            missing with ``must_exist``).
    """
    root = Path(root)
    marker = root / MARKER_NAME
    if not marker.exists():
        if must_exist:
            raise DataError(f"not a perceive {fmt!r} folder: no {MARKER_NAME}", path=root)
        return False
    try:
        info = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"unreadable format marker: {e}", path=marker) from e
    if info.get("format") != fmt or info.get("version") != version:
        raise DataError(
            f"folder holds format {info.get('format')!r} version {info.get('version')}, "
            f"not {fmt!r} version {version}; refusing to mix them (use another --out)",
            path=root,
        )
    return True


def prepare_output(root: str | Path, fmt: str, version: int) -> bool:
    """Create or reuse an output folder; returns True when resuming an existing one.

    Raises:
        DataError: the folder holds another format or version, or files that perceive
            did not write (it is never overwritten).
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DataError("output path exists and is not a folder", path=root)
    if check_format_marker(root, fmt, version):
        return True
    if root.exists() and any(root.iterdir()):
        raise DataError(
            f"output folder is not empty and has no {MARKER_NAME}: it was not written by "
            "perceive convert; refusing to overwrite it",
            path=root,
        )
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / MARKER_NAME, json.dumps({"format": fmt, "version": version}) + "\n")
    return False


# -- jobs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentJob:
    """One source segment (or a frame range of it) to convert."""

    kind: str
    """``"v1"`` (a ``.tfrecord`` file) or ``"v2"`` (a segment of a parquet root)."""
    path: str
    """The v1 file, or the v2 dataset root."""
    key: str
    """Name of the segment's outputs (file stem or v2 segment name, made file-safe)."""
    segment_index: int = 0
    """Index of the segment in the set (KITTI file names use it)."""
    split: str = "training"
    """Dataset split."""
    segment: str = ""
    """v2 segment name (empty for v1)."""
    start: int = 0
    """First frame to convert."""
    stop: int | None = None
    """One past the last frame; None for the end of the segment."""

    @property
    def manifest_name(self) -> str:
        """File name of this job's manifest."""
        stop = "end" if self.stop is None else f"{self.stop:06d}"
        return f"{self.key}.{self.start:06d}-{stop}.json"

    def source_signature(self) -> dict[str, int]:
        """Size and modification time of the source: the v1 file, or every component file of
        the v2 segment (total size, latest time). A changed source is converted again."""
        if self.kind == "v1":
            paths = [Path(self.path)]
        else:
            paths = sorted(Path(self.path, self.split).glob(f"*/{self.segment}.parquet"))
        stats = []
        for p in paths:
            with contextlib.suppress(OSError):
                stats.append(p.stat())
        if not stats:
            return {}
        return {
            "size": sum(st.st_size for st in stats),
            "mtime_ns": max(st.st_mtime_ns for st in stats),
        }

    def holds(self, record: int | None) -> bool:
        """Whether a record index falls in this job's frame range (None: the job that
        starts the segment takes errors without a record)."""
        if record is None:
            return self.start == 0
        return self.start <= record and (self.stop is None or record < self.stop)


@dataclass(frozen=True)
class SkippedRecord:
    """A record (frame) that could not be converted, and why."""

    key: str
    """Job key (segment)."""
    record: int | None
    """Record / frame index, None when the whole segment is affected."""
    reason: str
    """The error message."""


@dataclass(frozen=True)
class FrameStats:
    """What one converted frame held."""

    timestamp_us: int
    """Frame timestamp."""
    points: int
    """Points written."""
    boxes: int
    """3D boxes written."""
    segment: str
    """Segment name from the data."""


@dataclass(frozen=True)
class SegmentResult:
    """Outcome of :func:`convert_segment`."""

    job: SegmentJob
    """The job."""
    frames: tuple[tuple[int, int, int, int], ...]
    """``(index, timestamp_us, points, boxes)`` of every frame of the job now present."""
    converted: int
    """Frames converted by this call."""
    resumed: int
    """Frames found already converted (skipped)."""
    skipped: tuple[SkippedRecord, ...]
    """Records that could not be read."""
    seconds: float
    """Wall time of this call."""
    segment: str = ""
    """Segment name from the data."""
    from_manifest: bool = False
    """The job was complete already; nothing was read."""
    failed: str | None = None
    """Why the whole job failed (non-strict mode), else None."""


class FormatWriter(Protocol):
    """What each output format provides (see :func:`make_writer`)."""

    format_name: str
    version: int

    def frame_done(self, job: SegmentJob, index: int) -> FrameStats | None:
        """Stats of a frame whose outputs are complete, else None."""
        ...

    def write_frame(self, job: SegmentJob, index: int, frame: Frame) -> FrameStats:
        """Convert one frame (every file written atomically; the last one marks it done)."""
        ...

    def finalize(self, manifests: Sequence[dict]) -> None:
        """Write the set's index from the job manifests."""
        ...


def make_writer(fmt: str, out: str | Path) -> FormatWriter:
    """The writer of an output format (an explicit factory)."""
    out = Path(out)
    if fmt == "cache":
        from perceive.convert.cache import CacheWriter

        return CacheWriter(out)
    if fmt == "kitti":
        from perceive.convert.kitti import KittiWriter

        return KittiWriter(out)
    if fmt in ("pcd", "ply"):
        from perceive.convert.pointcloud import PointCloudWriter

        return PointCloudWriter(out, fmt)
    raise ConfigError(f"unknown output format {fmt!r}; formats are {FORMATS}")


@dataclass(frozen=True)
class ConvertSpec:
    """Everything a job needs besides its source (picklable, shared by all jobs)."""

    fmt: str
    """Output format, one of :data:`FORMATS`."""
    out: str
    """Output folder."""
    strict: bool = False
    """Stop at the first unreadable record instead of skipping it."""

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ConfigError(f"unknown output format {self.fmt!r}; formats are {FORMATS}")


class _Reader:
    """Frames of a job's source, one at a time."""

    def __init__(self, job: SegmentJob, strict: bool) -> None:
        self.job = job
        self.skipped: list[SkippedRecord] = []
        if job.kind == "v1":
            from perceive.datasets import waymo

            self.seg = waymo.open(job.path, skip_corrupt=not strict)
            # errors found on opening belong to the frame range holding their record (a
            # segment split over workers must count each once)
            self.skipped += [
                SkippedRecord(job.key, e.record, str(e))
                for e in self.seg.skipped
                if job.holds(e.record)
            ]
        elif job.kind == "v2":
            from perceive.datasets.waymo.v2 import open_v2

            self.seg = open_v2(job.path, job.segment, split=job.split)
        else:
            raise ConfigError(f"unknown job kind {job.kind!r}")

    def __len__(self) -> int:
        return len(self.seg)

    def __getitem__(self, i: int) -> Frame:
        return self.seg[i]

    def close(self) -> None:
        close = getattr(self.seg, "close", None)
        if close is not None:
            close()


def manifest_order(manifest: dict) -> tuple[int, int, int]:
    """Sort key of job manifests: split (training, validation, testing), segment, frame."""
    job = manifest["job"]
    splits = ("training", "validation", "testing")
    split = splits.index(job["split"]) if job["split"] in splits else len(splits)
    return split, job["segment_index"], job["start"]


def manifest_path(out: str | Path, job: SegmentJob) -> Path:
    """Where a job's manifest lives."""
    return Path(out) / MANIFEST_DIR / job.manifest_name


def _started_path(out: str | Path, job: SegmentJob) -> Path:
    """The note a job writes when it starts: the signature of the source it converts."""
    return Path(out) / MANIFEST_DIR / f"{job.manifest_name}.started"


def _start_note(path: Path) -> dict:
    """A job's start note (empty when missing or unreadable)."""
    try:
        note = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return note if isinstance(note, dict) else {}


def _source_changed(out: str | Path, job: SegmentJob) -> bool:
    """Whether frames already in ``out`` for this job came from another version of its
    source (its manifest or its start note records another signature)."""
    now = job.source_signature()
    for p in (manifest_path(out, job), _started_path(out, job)):
        try:
            recorded = json.loads(p.read_text()).get("source")
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if recorded is not None and recorded != now:
            return True
    return False


def load_manifest(out: str | Path, job: SegmentJob) -> dict | None:
    """The job's manifest if it is complete and matches the job and its source, else None."""
    p = manifest_path(out, job)
    if not p.exists():
        return None
    try:
        m = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if m.get("job") != asdict(job) or m.get("source") != job.source_signature():
        if m.get("job", {}).get("segment_index") not in (None, job.segment_index):
            raise DataError(
                f"segment {job.key} was converted as segment number {m['job']['segment_index']}, "
                f"now it is number {job.segment_index}: the set of sources changed; "
                "use a new --out",
                path=p,
            )
        return None
    return m


def convert_segment(
    job: SegmentJob,
    spec: ConvertSpec,
    progress: Callable[[int], None] | None = None,
) -> SegmentResult:
    """Convert one segment (or frame range): the pure, resumable unit of work.

    Reads frames one at a time (memory is bounded by one frame), skips frames whose
    outputs exist, writes each output atomically, and writes the job's manifest when
    done. Running it again after an interruption finishes the job; running it on a
    finished job reads nothing.

    Args:
        job: what to convert.
        spec: format, output folder and strictness.
        progress: called with 1 after each frame (converted or found done).

    Returns:
        What happened. In non-strict mode, unreadable records are listed in
        ``skipped`` and a segment that cannot be opened at all in ``failed``.

    Raises:
        DataError: in strict mode, at the first unreadable record.
    """
    t0 = time.perf_counter()
    done = load_manifest(spec.out, job)
    if done is not None:
        frames = tuple(tuple(f) for f in done["frames"])
        if progress is not None:
            progress(len(frames) + len(done["skipped"]))
        return SegmentResult(
            job=job,
            frames=frames,  # type: ignore[arg-type]
            converted=0,
            resumed=len(frames),
            skipped=tuple(SkippedRecord(**s) for s in done["skipped"]),
            seconds=time.perf_counter() - t0,
            segment=done.get("segment", ""),
            from_manifest=True,
        )
    writer = make_writer(spec.fmt, spec.out)
    # Frames on disk from another version of the source are converted again, not kept; the
    # start note remembers it until the job finishes, so an interrupted redo stays a redo.
    started = _started_path(spec.out, job)
    redo = _source_changed(spec.out, job) or _start_note(started).get("redo") is True
    started.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(started, json.dumps({"source": job.source_signature(), "redo": redo}) + "\n")
    try:
        reader = _Reader(job, spec.strict)
    except (PerceiveError, OSError) as e:
        if spec.strict:
            raise
        return SegmentResult(
            job, (), 0, 0, (), time.perf_counter() - t0, failed=f"{type(e).__name__}: {e}"
        )
    frames: list[tuple[int, int, int, int]] = []
    skipped = list(reader.skipped)
    converted = resumed = 0
    segment = ""
    try:
        stop = len(reader) if job.stop is None else min(job.stop, len(reader))
        for i in range(job.start, stop):
            stats = None if redo else writer.frame_done(job, i)
            if stats is not None:
                resumed += 1
            else:
                try:
                    frame = reader[i]
                    stats = writer.write_frame(job, i, frame)
                except PerceiveError as e:  # bad data, or a component the frame needs
                    if spec.strict:
                        raise
                    skipped.append(SkippedRecord(job.key, i, str(e)))
                    if progress is not None:
                        progress(1)
                    continue
                converted += 1
            segment = segment or stats.segment
            frames.append((i, stats.timestamp_us, stats.points, stats.boxes))
            if progress is not None:
                progress(1)
    finally:
        reader.close()
    manifest = {
        "job": asdict(job),
        "source": job.source_signature(),
        "segment": segment,
        "format": spec.fmt,
        "frames": frames,
        "skipped": [asdict(s) for s in skipped],
    }
    atomic_write_text(manifest_path(spec.out, job), json.dumps(manifest) + "\n")
    return SegmentResult(
        job, tuple(frames), converted, resumed, tuple(skipped), time.perf_counter() - t0, segment
    )


# -- planning -------------------------------------------------------------------------------


def _v1_files(src: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for item in src:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.tfrecord") if q.is_file())
        elif p.is_file():
            out.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            if not matches:
                raise FileNotFoundError(f"no such file, folder or glob match: {item}")
            out += [m for m in matches if m.is_file()]
    return sorted(dict.fromkeys(p.resolve() for p in out))


def plan_jobs(
    src: str | Sequence[str], split: str = "training", workers: int = 1
) -> list[SegmentJob]:
    """The jobs for a source: v1 files (a file, folder or glob) or a v2 dataset root.

    With fewer segments than workers, segments are split into frame ranges so that
    every worker has work.

    Args:
        src: the source(s).
        split: the split of v1 files (a v2 root's splits come from its folders).
        workers: number of parallel workers.
    """
    from perceive.datasets.waymo import v2

    items = [src] if isinstance(src, str | Path) else list(src)
    jobs: list[SegmentJob] = []
    if len(items) == 1 and v2.is_v2_root(items[0]):
        root = str(Path(items[0]).resolve())
        for s in v2.SPLITS:  # segments are numbered within their split (as KITTI ids are)
            if (Path(root) / s / "vehicle_pose").is_dir():
                for n, seg in enumerate(v2.list_segments(root, s)):
                    jobs.append(SegmentJob("v2", root, safe_name(seg), n, s, seg))
    else:
        files = _v1_files([str(i) for i in items])
        keys: set[str] = set()
        for n, f in enumerate(files):
            key = safe_name(f.stem)
            if key in keys:  # same stem in two folders
                key = safe_name(f"{f.parent.name}_{f.stem}")
            k = 2
            while key in keys:  # and again: number it
                key = safe_name(f"{f.parent.name}_{f.stem}_{k}")
                k += 1
            keys.add(key)
            jobs.append(SegmentJob("v1", str(f), key, n, split))
    if not jobs:
        raise FileNotFoundError(f"no Waymo segments found in {items}")
    if workers > len(jobs):
        jobs = _split_jobs(jobs, workers)
    return jobs


def _count_frames(job: SegmentJob) -> int:
    try:
        if job.kind == "v1":
            from perceive.io.tfrecord import build_index

            return len(build_index(job.path, skip_corrupt=True)[0])
        from perceive.datasets.waymo.v2 import open_v2

        return len(open_v2(job.path, job.segment, split=job.split, components=("vehicle_pose",)))
    except (PerceiveError, OSError):
        return 0


def _split_jobs(jobs: list[SegmentJob], workers: int) -> list[SegmentJob]:
    per = -(-workers // len(jobs))
    out = []
    for job in jobs:
        n = _count_frames(job)
        parts = min(per, n)
        if parts <= 1:
            out.append(job)
            continue
        bounds = [round(k * n / parts) for k in range(parts + 1)]
        for a, b in itertools.pairwise(bounds):
            out.append(SegmentJob(**{**asdict(job), "start": a, "stop": None if b == n else b}))
    return out


# -- running --------------------------------------------------------------------------------


@dataclass
class ConversionSummary:
    """Totals of a conversion run."""

    format: str
    """Output format."""
    out: str
    """Output folder."""
    segments: int = 0
    """Segments (jobs) in the plan."""
    frames: int = 0
    """Frames present in the output."""
    converted: int = 0
    """Frames converted in this run."""
    resumed: int = 0
    """Frames that were already converted."""
    points: int = 0
    """Points in the output."""
    boxes: int = 0
    """3D boxes in the output."""
    seconds: float = 0.0
    """Wall time."""
    workers: int = 1
    """Worker processes."""
    skipped: list[SkippedRecord] = field(default_factory=list)
    """Records that could not be converted."""
    failed: list[SkippedRecord] = field(default_factory=list)
    """Segments that could not be opened."""

    def add(self, r: SegmentResult) -> None:
        """Count one job's result."""
        self.frames += len(r.frames)
        self.converted += r.converted
        self.resumed += r.resumed
        self.points += sum(f[2] for f in r.frames)
        self.boxes += sum(f[3] for f in r.frames)
        self.skipped += list(r.skipped)
        if r.failed:
            self.failed.append(SkippedRecord(r.job.key, None, r.failed))

    def format_text(self) -> str:
        """A human-readable summary."""
        rate = self.converted / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"perceive convert -> {self.format} in {self.out}",
            f"  segments {self.segments}, frames {self.frames} "
            f"(converted {self.converted}, already done {self.resumed})",
            f"  points {self.points:,}, boxes {self.boxes:,}",
            f"  time {self.seconds:.1f} s with {self.workers} worker(s), "
            f"{rate:.2f} frames/s converted",
            f"  skipped records {len(self.skipped)}, failed segments {len(self.failed)}",
        ]
        for s in self.failed:
            lines.append(f"    FAILED {s.key}: {s.reason}")
        for s in self.skipped[:50]:
            lines.append(f"    skipped {s.key} record {s.record}: {s.reason}")
        if len(self.skipped) > 50:
            lines.append(f"    ... and {len(self.skipped) - 50} more (see _summary.json)")
        return "\n".join(lines)


def finalize(spec: ConvertSpec, jobs: Sequence[SegmentJob]) -> None:
    """Write the set's index from the manifests of ``jobs`` (those that finished) and of
    segments that earlier runs with other sources converted into the same folder.

    Run it once every job is done (it also removes temporaries of killed writers).
    """
    writer = make_writer(spec.fmt, spec.out)
    manifests = [m for job in jobs if (m := load_manifest(spec.out, job)) is not None]
    manifests += earlier_manifests(spec.out, spec.fmt, {job.key for job in jobs})
    remove_stale_temporaries(spec.out)
    writer.finalize(manifests)


def earlier_manifests(out: str | Path, fmt: str, exclude: set[str]) -> list[dict]:
    """Manifests of segments that earlier runs with other sources converted into ``out``,
    one per segment (a segment converted in frame ranges is merged, each frame once), so
    that the index keeps listing them. Segments in ``exclude`` (this run's) are left out."""
    by_key: dict[str, list[dict]] = {}
    for p in sorted((Path(out) / MANIFEST_DIR).glob("*.json")):
        try:
            m = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        job = m.get("job") if isinstance(m, dict) else None
        if not isinstance(job, dict) or m.get("format") != fmt or job.get("key") in exclude:
            continue
        by_key.setdefault(str(job.get("key")), []).append(m)
    merged = []
    for ms in by_key.values():
        ms.sort(key=lambda m: m["job"].get("start", 0))
        frames = {int(f[0]): f for m in ms for f in m.get("frames", [])}
        skipped = {(s.get("record"), s.get("reason")): s for m in ms for s in m.get("skipped", [])}
        merged.append(
            {
                **ms[0],
                "job": {**ms[0]["job"], "start": 0, "stop": None},
                "segment": next((m["segment"] for m in ms if m.get("segment")), ""),
                "frames": [frames[i] for i in sorted(frames)],
                "skipped": list(skipped.values()),
            }
        )
    return merged


_QUEUE: mp.Queue | None = None


def _init_worker(q: mp.Queue) -> None:
    global _QUEUE
    _QUEUE = q


def _run_job(
    job: SegmentJob, spec: ConvertSpec, progress: Callable[[int], None] | None = None
) -> SegmentResult:
    """:func:`convert_segment` as the driver runs it, in a worker or in this process: in
    non-strict mode an unexpected error fails the job, not the run."""
    q = _QUEUE
    if progress is None and q is not None:
        progress = q.put
    try:
        return convert_segment(job, spec, progress=progress)
    except DataError:
        raise
    except Exception as e:
        if spec.strict:
            raise
        tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return SegmentResult(job, (), 0, 0, (), 0.0, failed=f"{type(e).__name__}: {e} ({tb})")


def run_conversion(
    src: str | Sequence[str],
    fmt: str,
    out: str | Path,
    workers: int = 1,
    strict: bool = False,
    split: str = "training",
    progress_bar: bool = True,
    on_frame: Callable[[int], None] | None = None,
) -> ConversionSummary:
    """Convert a source to a format: plan, run jobs (in parallel), write the index.

    Args:
        src: v1 file(s), folder(s) or glob(s), or a v2 dataset root.
        fmt: ``cache``, ``kitti``, ``pcd`` or ``ply``.
        out: the output folder (created; an existing one of the same format is resumed).
        workers: processes; 1 runs in this process.
        strict: stop at the first unreadable record.
        split: split of v1 sources.
        progress_bar: show a tqdm bar over frames.
        on_frame: called with the number of frames after each progress step (in this
            process; for tests and embedding).

    Raises:
        DataError: the output folder holds something else, or (strict) a bad record.
        ConfigError: bad format or workers.
    """
    from tqdm import tqdm

    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    spec = ConvertSpec(fmt, str(out), strict)
    writer = make_writer(fmt, out)
    t0 = time.perf_counter()
    jobs = plan_jobs(src, split=split, workers=workers)
    prepare_output(out, writer.format_name, writer.version)
    total = sum(_count_frames(j) if j.stop is None else j.stop - j.start for j in jobs)
    summary = ConversionSummary(
        format=fmt, out=str(out), segments=len({j.key for j in jobs}), workers=workers
    )
    bar = tqdm(
        total=total, unit="frame", desc=f"convert -> {fmt}", disable=not progress_bar, smoothing=0.1
    )

    def step(n: int) -> None:
        bar.update(n)
        if on_frame is not None:
            on_frame(n)

    try:
        if workers == 1:
            for job in jobs:
                summary.add(_run_job(job, spec, progress=step))
        else:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            q: mp.Queue = ctx.Queue()
            with ctx.Pool(
                workers, initializer=_init_worker, initargs=(q,), maxtasksperchild=8
            ) as pool:
                pending = [pool.apply_async(_run_job, (job, spec)) for job in jobs]
                while pending:
                    with contextlib.suppress(queue.Empty):
                        step(q.get(timeout=0.05))
                    still = []
                    for p in pending:
                        if p.ready():
                            summary.add(p.get())  # re-raises a worker's error (strict mode)
                        else:
                            still.append(p)
                    pending = still
                while True:
                    try:
                        step(q.get_nowait())
                    except queue.Empty:
                        break
    finally:
        bar.close()
    finalize(spec, jobs)
    summary.seconds = time.perf_counter() - t0
    atomic_write_text(
        Path(out) / "_summary.json",
        json.dumps(
            {
                **{k: v for k, v in asdict(summary).items() if k not in ("skipped", "failed")},
                "skipped": [asdict(s) for s in summary.skipped],
                "failed": [asdict(s) for s in summary.failed],
            },
            indent=1,
        )
        + "\n",
    )
    return summary


def source_is_v2(src: str | Path) -> bool:
    """Whether a source is a v2 dataset root."""
    from perceive.datasets.waymo.v2 import is_v2_root

    return is_v2_root(src)


def default_workers() -> int:
    """A worker count that leaves one core free."""
    return max(1, (os.cpu_count() or 2) - 1)
