"""The training dataset: contract shapes, consistent augmentation, safe DataLoader workers."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from perceive.convert.cache import CachedFrame
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.v1_writer import write_segment
from perceive.errors import ConfigError, MissingComponentError
from perceive.geometry.boxes import points_in_boxes
from perceive.models.classes import class_of_waymo_type
from perceive.training.augment import AugmentConfig
from perceive.training.data import Batch, DatasetConfig, FrameDataset, Sample, collate, make_sample

SIZE = (32, 24)


def _frames(n: int, segment: str = "seg") -> list:
    out = []
    for i in range(n):
        f = make_frame(i, num_boxes=6)
        out.append(dataclasses.replace(f, context=dataclasses.replace(f.context, segment=segment)))
    return out


@pytest.fixture(scope="module")
def v1_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("v1")
    write_segment(d / "a.tfrecord", _frames(3, "a"))
    write_segment(d / "b.tfrecord", _frames(2, "b"))
    return d


def test_sample_matches_contract(v1_dir: Path) -> None:
    cfg = DatasetConfig(cameras=("FRONT", "SIDE_LEFT"), image_size=SIZE, min_box_points=0)
    ds = FrameDataset.from_v1(v1_dir, cfg)
    assert len(ds) == 5
    s = ds[3]
    frame = _frames(1, "b")[0]
    assert isinstance(s, Sample) and s.segment == "b" and s.timestamp_us == frame.timestamp_us
    assert s.points.dtype == torch.float32 and s.points.shape[1] == 5
    assert s.images.shape == (2, SIZE[1], SIZE[0], 3) and s.images.dtype == torch.uint8
    assert s.intrinsics.shape == (2, 9) and s.extrinsics.shape == (2, 4, 4)
    # Without augmentation: points are the frame's (within range), extrinsics the calibration.
    pts = frame.point_cloud().features()
    r = np.asarray(cfg.point_range, np.float32)
    pts = pts[np.all((pts[:, :3] >= r[:3]) & (pts[:, :3] < r[3:]), axis=1)]
    np.testing.assert_array_equal(s.points.numpy(), pts)
    np.testing.assert_allclose(
        s.extrinsics[1].numpy(), frame.cameras["SIDE_LEFT"].extrinsic, atol=1e-6
    )
    np.testing.assert_allclose(
        s.intrinsics[0].numpy(), frame.cameras["FRONT"].resized(*SIZE).intrinsic, rtol=1e-6
    )
    # Boxes: only detector classes, labels through the class table.
    labels = class_of_waymo_type(frame.boxes.type)
    keep = labels >= 0
    np.testing.assert_array_equal(s.labels.numpy(), labels[keep])
    np.testing.assert_allclose(s.boxes.numpy(), frame.boxes.to_array()[keep])
    # num_points: the sample's own points in each box (here the frame's points in range).
    b = s.boxes.numpy()
    inside = points_in_boxes(pts[:, :3], b[:, :3], b[:, 3:6], b[:, 6]).sum(axis=0)
    assert inside.max() > 0
    np.testing.assert_array_equal(s.num_points.numpy(), inside)
    np.testing.assert_array_equal(s.difficulty.numpy(), frame.boxes.difficulty[keep])


def test_filters(v1_dir: Path) -> None:
    frame = CachedFrame.from_frame(_frames(1)[0])
    cfg = DatasetConfig(
        cameras=("FRONT",),
        image_size=SIZE,
        returns=(1,),
        point_range=(0, -20, -5, 30, 20, 5),
        max_points=100,
        min_box_points=150,
    )
    s = make_sample(frame, cfg)
    p = s.points.numpy()
    assert len(p) == 100
    assert np.all((p[:, 0] >= 0) & (p[:, 0] < 30) & (np.abs(p[:, 1]) <= 20))
    # every kept point is a return-1 point of the frame
    r1 = frame.points[frame.return_index == 1]
    assert {tuple(x) for x in p} <= {tuple(x) for x in r1}
    # Boxes are kept by their label's count; num_points counts the 100 points kept.
    fb = frame.boxes
    c = fb.to_array()[:, :3]
    wanted = (
        (class_of_waymo_type(fb.type) >= 0)
        & (fb.num_lidar_points >= 150)
        & np.all((c >= [0, -20, -5]) & (c < [30, 20, 5]), axis=1)
    )
    assert len(s.boxes) == wanted.sum()
    b = s.boxes.numpy()
    inside = points_in_boxes(p[:, :3], b[:, :3], b[:, 3:6], b[:, 6]).sum(axis=0)
    np.testing.assert_array_equal(s.num_points.numpy(), inside)
    assert len(b) and s.num_points.sum() <= 100
    assert np.all((s.boxes[:, 0] >= 0).numpy() & (s.boxes[:, 0] < 30).numpy())


def test_augmentation_is_consistent(v1_dir: Path) -> None:
    aug = AugmentConfig(rotation=np.pi, flip_prob=0.5, scale=(0.9, 1.1), translation_std=0.5)
    cfg = DatasetConfig(
        cameras=("FRONT", "FRONT_LEFT"),
        image_size=SIZE,
        augment=aug,
        min_box_points=0,
        point_range=(-500, -500, -500, 500, 500, 500),
    )
    plain = dataclasses.replace(cfg, augment=None)
    frame = CachedFrame.from_frame(_frames(1)[0])
    for seed in range(6):
        a = make_sample(frame, cfg, np.random.default_rng(seed))
        b = make_sample(frame, plain)
        assert a.points.shape == b.points.shape
        # Each point seen by each camera is at the same place in the camera frame.
        for c in range(2):
            inv_a = torch.linalg.inv(a.extrinsics[c].double())
            inv_b = torch.linalg.inv(b.extrinsics[c].double())
            ca = a.points[:, :3].double() @ inv_a[:3, :3].T + inv_a[:3, 3]
            cb = b.points[:, :3].double() @ inv_b[:3, :3].T + inv_b[:3, 3]
            torch.testing.assert_close(ca, cb, atol=5e-4, rtol=0)
        # Points inside a box stay inside it.
        from perceive.geometry.boxes import points_in_boxes

        ib = points_in_boxes(
            b.points[:, :3].numpy(), *np.split(b.boxes.numpy(), [3, 6], axis=1), margin=-1e-2
        )
        ia = points_in_boxes(
            a.points[:, :3].numpy(), *np.split(a.boxes.numpy(), [3, 6], axis=1), margin=1e-2
        )
        assert np.all(ia[ib])
        torch.testing.assert_close(a.images, b.images)


def test_collate_pads_and_moves(v1_dir: Path) -> None:
    ds = FrameDataset.from_v1(
        v1_dir, DatasetConfig(cameras=("FRONT",), image_size=SIZE, min_box_points=150)
    )
    samples = [ds[i] for i in range(3)]
    b = collate(samples)
    assert isinstance(b, Batch) and len(b) == 3
    mmax = max(len(s.boxes) for s in samples)
    assert b.boxes.shape == (3, mmax, 7) and b.labels.shape == (3, mmax)
    for i, s in enumerate(samples):
        m = len(s.boxes)
        torch.testing.assert_close(b.boxes[i, :m], s.boxes)
        assert torch.all(b.labels[i, m:] == -1) and torch.all(b.num_points[i, m:] == 0)
        torch.testing.assert_close(b.points[b.point_batch == i], s.points)
    assert b.images.shape == (3, 1, SIZE[1], SIZE[0], 3)
    moved = b.to("cpu")
    assert isinstance(moved, Batch) and moved.segments == b.segments


def test_dataloader_workers_give_the_same_samples(v1_dir: Path) -> None:
    aug = AugmentConfig()
    ds = FrameDataset.from_v1(
        v1_dir, DatasetConfig(cameras=("FRONT",), image_size=SIZE, augment=aug, seed=3)
    )
    ds2 = pickle.loads(pickle.dumps(ds))
    direct = [ds2[i] for i in range(len(ds))]
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate)
    got = [b for b in loader]
    pts = torch.cat([b.points for b in got])
    torch.testing.assert_close(pts, torch.cat([s.points for s in direct]))
    ds.set_epoch(1)
    assert not torch.equal(ds[0].points, direct[0].points)  # new epoch, new augmentation


def test_missing_camera_and_bad_config(v1_dir: Path) -> None:
    f = _frames(1)[0]
    f = dataclasses.replace(
        f, image_bytes={k: v for k, v in f.image_bytes.items() if k != "SIDE_RIGHT"}
    )
    with pytest.raises(MissingComponentError, match="SIDE_RIGHT"):
        make_sample(CachedFrame.from_frame(f), DatasetConfig(image_size=SIZE))
    with pytest.raises(ConfigError):
        DatasetConfig(cameras=("BACK",))
    with pytest.raises(ConfigError):
        DatasetConfig(returns=(3,))
    with pytest.raises(ConfigError):
        DatasetConfig(point_range=(1, 0, 0, 0, 1, 1))


def test_gt_database_from_dataset(v1_dir: Path) -> None:
    from perceive.training.augment import GTSamplingConfig

    aug = dataclasses.replace(
        AugmentConfig.none(), gt_sampling=GTSamplingConfig(max_per_class=(3, 3, 3, 3), min_points=1)
    )
    cfg = DatasetConfig(cameras=("FRONT",), image_size=SIZE, augment=aug, min_box_points=0)
    ds = FrameDataset.from_v1(v1_dir, cfg)
    db = ds.build_gt_database()
    ds.gt_database = db
    base = make_sample(ds.frame(0), dataclasses.replace(cfg, augment=None))
    s = ds[0]
    assert len(db) > 0 and len(s.boxes) >= len(base.boxes)


def test_cache_v1_and_v2_datasets_give_identical_samples(v1_dir: Path, tmp_path: Path) -> None:
    from perceive.convert.runner import run_conversion
    from perceive.datasets.waymo.v2 import write_v2_segment

    write_v2_segment(tmp_path / "v2", _frames(3, "a"))
    write_v2_segment(tmp_path / "v2", _frames(2, "b"))
    run_conversion(v1_dir, "cache", tmp_path / "cache", progress_bar=False)
    cfg = DatasetConfig(
        cameras=("FRONT_LEFT", "FRONT"), image_size=SIZE, augment=AugmentConfig(), seed=7
    )
    sets = [
        FrameDataset.from_cache(tmp_path / "cache", cfg),
        FrameDataset.from_v1(v1_dir, cfg),
        FrameDataset.from_v2(tmp_path / "v2", cfg),  # config second, as in its siblings
    ]
    assert [len(d) for d in sets] == [5, 5, 5]
    assert len(FrameDataset.from_v2(tmp_path / "v2", cfg, segments=["a"])) == 3
    with pytest.raises(ConfigError, match="split= and segments= by keyword"):
        FrameDataset.from_v2(tmp_path / "v2", "training")  # type: ignore[arg-type]
    for i in range(5):
        a, *others = (d[i] for d in sets)
        for b in others:
            for f in dataclasses.fields(Sample):
                x, y = getattr(a, f.name), getattr(b, f.name)
                assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y, f.name


def test_direct_source_bounds_open_files(v1_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import perceive.training.data as data

    monkeypatch.setattr(data, "MAX_OPEN_SEGMENTS", 1)
    src = data.V1Source(v1_dir)
    order = [0, 3, 1, 4, 2]
    got = [src[i] for i in order]
    assert len(src._open) == 1
    assert [g.segment for g in got] == ["a", "b", "a", "b", "a"]
    assert got[2] == CachedFrame.from_frame(_frames(3, "a")[1])


def test_fast_decode_is_close_to_the_full_decode() -> None:
    frame = CachedFrame.from_frame(_frames(1)[0])
    # Smooth pictures, as cameras see them (the fixture's noise images are the worst case).
    import cv2

    from perceive.datasets.image import encode_jpeg

    rng = np.random.default_rng(0)
    imgs = {}
    for n, cal in frame.cameras.items():
        small = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
        big = cv2.resize(small, (cal.width, cal.height), interpolation=cv2.INTER_CUBIC)
        imgs[n] = encode_jpeg(big)
    frame = dataclasses.replace(frame, image_bytes=imgs)
    slow = make_sample(frame, DatasetConfig(image_size=(16, 12)))
    fast = make_sample(frame, DatasetConfig(image_size=(16, 12), fast_decode=True))
    assert fast.images.shape == slow.images.shape
    diff = (fast.images.int() - slow.images.int()).abs().float()
    assert diff.mean() < 3.0
    torch.testing.assert_close(fast.points, slow.points)


def test_point_columns_follow_the_configured_features() -> None:
    frame = CachedFrame.from_frame(_frames(1)[0])
    base = DatasetConfig(cameras=("FRONT",), image_size=SIZE)
    full = make_sample(frame, base).points.numpy()
    for names in (("x", "y", "z"), ("x", "y", "z", "elongation", "intensity")):
        s = make_sample(frame, dataclasses.replace(base, point_features=names)).points.numpy()
        cols = [("x", "y", "z", "intensity", "elongation").index(n) for n in names]
        np.testing.assert_array_equal(s, full[:, cols])
    for bad in (("x", "y", "z", "intensity", "intensity"), ("x", "y", "z", "range")):
        with pytest.raises(ConfigError, match="point_features"):
            dataclasses.replace(base, point_features=bad)
    from perceive.models.config import PillarConfig

    with pytest.raises(ConfigError, match="each feature once"):
        PillarConfig(point_features=("x", "y", "z", "intensity", "intensity"))


def test_frame_numbers_within_segments(v1_dir: Path, tmp_path: Path) -> None:
    from perceive.cli.visualize import _where
    from perceive.convert.cache import CacheReader
    from perceive.convert.runner import run_conversion
    from perceive.training.data import V1Source

    v1 = V1Source(v1_dir)  # a: 3 frames, b: 2 frames
    assert [v1.frame_in_segment(i) for i in range(5)] == [0, 1, 2, 0, 1]
    run_conversion(v1_dir, "cache", tmp_path / "c", progress_bar=False)
    cache = CacheReader(tmp_path / "c")
    assert [cache.frame_in_segment(i) for i in range(5)] == [0, 1, 2, 0, 1]
    assert _where(v1, 4, "b") == "b frame 1 (data index 4)"
    assert _where(v1, 1, "a") == "a frame 1"
