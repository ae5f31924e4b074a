"""End to end: generated frames written as v1, read back, checked against the generator's truth."""

from __future__ import annotations

import numpy as np
import pytest

from perceive.datasets.waymo import v1
from perceive.errors import ConfigError
from perceive.synth.config import preset
from perceive.synth.generate import MANIFEST, generate_dataset, segment_filename


def test_points_round_trip_every_laser_and_return(tiny_frames, tiny_file):
    with v1.Segment(tiny_file) as seg:
        assert len(seg) == len(tiny_frames)
        for sf, fr in zip(tiny_frames, seg, strict=True):
            assert set(fr.range_images) == set(sf.returns)
            for (laser, ret), truth in sf.returns.items():
                pc = fr.point_cloud(lasers=[laser], returns=[ret])
                assert pc.xyz.shape == truth.xyz.shape, (laser, ret)
                np.testing.assert_allclose(
                    pc.xyz, truth.xyz, rtol=0, atol=1e-4, err_msg=f"{laser} return {ret}"
                )
            # both returns of the TOP laser exist and the second holds some points
            assert len(sf.returns[("TOP", 2)].xyz) > 0


def test_boxes_contain_the_points_they_claim(tiny_file):
    with v1.Segment(tiny_file) as seg:
        for fr in seg:
            pts = fr.point_cloud().xyz
            top = fr.point_cloud(lasers=["TOP"]).xyz
            assert len(fr.boxes) > 0
            np.testing.assert_array_equal(fr.boxes.contains(pts).sum(0), fr.boxes.num_lidar_points)
            np.testing.assert_array_equal(
                fr.boxes.contains(top).sum(0), fr.boxes.num_top_lidar_points
            )
            level2 = fr.boxes.num_lidar_points <= 5
            np.testing.assert_array_equal(fr.boxes.difficulty, np.where(level2, 2, 1))


def test_projected_labels_agree_with_camera_projection(tiny_file):
    with v1.Segment(tiny_file) as seg:
        fr = seg[0]
        corners = fr.boxes.corners()
        index = {str(i): k for k, i in enumerate(fr.boxes.ids)}
        n = 0
        for cam, boxes in fr.projected_boxes.items():
            cal = fr.cameras[cam]
            for j in range(len(boxes)):
                pid = str(boxes.ids[j])
                assert pid.endswith(f"_{cam}")
                oid = pid[: -len(cam) - 1]
                uv, depth, valid = cal.project(corners[index[oid]])
                assert (depth > 0).all() and valid.any()
                lo = np.clip(uv.min(0), 0, [cal.width, cal.height])
                hi = np.clip(uv.max(0), 0, [cal.width, cal.height])
                np.testing.assert_allclose(boxes.xyxy()[j], np.r_[lo, hi], atol=1e-3)
                n += 1
        assert n > 0


def test_camera_boxes_lie_in_their_images(tiny_file):
    with v1.Segment(tiny_file) as seg:
        fr = seg[0]
        for cam, boxes in fr.camera_boxes.items():
            cal = fr.cameras[cam]
            img = fr.images[cam]
            assert img.shape == (cal.height, cal.width, 3)
            xyxy = boxes.xyxy()
            assert (
                (xyxy[:, :2] >= 0).all()
                and (xyxy[:, 2] <= cal.width).all()
                and (xyxy[:, 3] <= cal.height).all()
            )
            assert set(boxes.type.tolist()) <= {1, 2, 4}


def test_ids_are_stable_across_frames(tiny_frames):
    a, b = (set(f.frame.boxes.ids.tolist()) for f in tiny_frames)
    assert len(a & b) >= 0.8 * min(len(a), len(b)) > 0


def test_same_seed_same_bytes_and_resume(tmp_path):
    cfg = preset("tiny")
    p1 = generate_dataset(tmp_path / "a", config=cfg, segments=1, frames=2, seed=3, progress=False)
    p2 = generate_dataset(tmp_path / "b", config=cfg, segments=1, frames=2, seed=3, progress=False)
    assert p1[0].read_bytes() == p2[0].read_bytes()
    assert p1[0].name == segment_filename(3, 0)
    mtime = p1[0].stat().st_mtime_ns
    again = generate_dataset(
        tmp_path / "a", config=cfg, segments=1, frames=2, seed=3, progress=False
    )
    assert again == p1 and p1[0].stat().st_mtime_ns == mtime  # complete segment skipped
    stale = tmp_path / "a" / f".{p1[0].name}.x1y2z3.tmp"  # what a killed run leaves
    stale.write_bytes(b"partial")
    generate_dataset(tmp_path / "a", config=cfg, segments=1, frames=2, seed=3, progress=False)
    assert not stale.exists()
    assert (tmp_path / "a" / MANIFEST).is_file()
    with pytest.raises(ConfigError, match="another seed"):
        generate_dataset(tmp_path / "a", config=cfg, segments=1, frames=2, seed=4, progress=False)


def test_v2_output_holds_the_same_points(tmp_path):
    pytest.importorskip("pyarrow")
    from perceive.datasets.waymo import v2

    cfg = preset("tiny")
    (path,) = generate_dataset(
        tmp_path, config=cfg, segments=1, frames=2, seed=11, v2=True, progress=False
    )
    (name,) = v2.list_segments(tmp_path / "v2", "training")
    seg2 = v2.open_v2(tmp_path / "v2", name)
    with v1.Segment(path) as seg1:
        assert len(seg2) == len(seg1) == 2
        for a, b in zip(seg1, seg2, strict=True):
            assert a.timestamp_us == b.timestamp_us
            np.testing.assert_array_equal(a.point_cloud().xyz, b.point_cloud().xyz)
            np.testing.assert_array_equal(a.boxes.num_lidar_points, b.boxes.num_lidar_points)


def test_parallel_workers_write_the_same_bytes(tmp_path):
    cfg = preset(
        "tiny", top_shape=(8, 64), side_shape=(8, 16), front_size=(32, 24), side_size=(32, 16)
    )
    serial = generate_dataset(
        tmp_path / "s", config=cfg, segments=2, frames=1, seed=5, progress=False
    )
    para = generate_dataset(
        tmp_path / "p", config=cfg, segments=2, frames=1, seed=5, progress=False, workers=2
    )
    assert [p.read_bytes() for p in serial] == [p.read_bytes() for p in para]


def test_seeds_outside_the_timestamp_plan_and_bad_manifests(tmp_path):
    from perceive.synth.generate import MAX_SEED, SegmentGenerator

    cfg = preset("tiny")
    for seed in (-1, MAX_SEED, 10**7):
        with pytest.raises(ConfigError, match="seed must be an integer in"):
            generate_dataset(tmp_path / "s", config=cfg, segments=1, frames=1, seed=seed)
    assert not (tmp_path / "s").exists()  # refused before anything was written
    last = SegmentGenerator(cfg, MAX_SEED - 1, 99_999, 1)  # the last slot fits in int64
    assert last.t0_us < 2**63 - 10**9
    with pytest.raises(ConfigError, match="segments per seed"):
        generate_dataset(tmp_path / "s", config=cfg, segments=100_001, frames=1, seed=0)
    for junk in ("{trunc", "[1, 2]"):
        (tmp_path / "m").mkdir(exist_ok=True)
        (tmp_path / "m" / MANIFEST).write_text(junk)
        with pytest.raises(ConfigError, match="synth manifest"):
            generate_dataset(
                tmp_path / "m", config=cfg, segments=1, frames=1, seed=0, progress=False
            )
