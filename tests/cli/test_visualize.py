"""``perceive visualize`` on a tiny model and generated frames."""

import pytest

from perceive.cli.main import main
from perceive.datasets.waymo.fixtures import make_frame
from perceive.datasets.waymo.v1_writer import write_segment
from perceive.models.build import build_detector
from perceive.models.config import tiny_config
from perceive.training.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("viz")
    data = root / "seg.tfrecord"
    write_segment(data, [make_frame(s, num_boxes=3) for s in range(2)])
    ckpts = []
    for v in ("lidar", "fusion"):
        path = root / f"{v}.pt"
        save_checkpoint(path, model=build_detector(config=tiny_config(v)), provenance={})
        ckpts.append(str(path))
    return str(data), ckpts


def test_one_checkpoint_draws_cameras_and_bev(setup, tmp_path, capsys):
    data, ckpts = setup
    argv = ["visualize", ckpts[0], "--data", data, "--frames", "1", "--out", str(tmp_path)]
    assert main([*argv, "--score", "0.0"]) == 0
    pngs = sorted(tmp_path.glob("*.png"))
    assert len(pngs) == 1 and pngs[0].name.endswith("_lidar.png")
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


def test_several_checkpoints_add_a_comparison(setup, tmp_path):
    data, ckpts = setup
    assert main(["visualize", *ckpts, "--data", data, "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(names) == 2 and any(n.endswith("_compare.png") for n in names)


def test_frame_out_of_range(setup, tmp_path, capsys):
    data, ckpts = setup
    assert (
        main(["visualize", ckpts[0], "--data", data, "--frames", "5", "--out", str(tmp_path)]) == 1
    )
    assert "out of range" in capsys.readouterr().err
