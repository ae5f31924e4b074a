"""Export of a small model to one ONNX graph, its metadata, and parity with PyTorch."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from perceive.deploy.export import (  # noqa: E402
    STANDARD_DOMAINS,
    check_parity,
    compare_detections,
    export_onnx,
    non_standard_nodes,
    parity_inputs,
    read_metadata,
    run_torch,
)
from perceive.errors import ConfigError, DataError  # noqa: E402
from perceive.models.build import build_detector  # noqa: E402
from perceive.models.config import DetectorConfig, tiny_config  # noqa: E402
from perceive.training.checkpoint import (  # noqa: E402
    detector_from_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from tests.models.common import randomised  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
#: Parity tolerances: boxes in metres (and radians for heading), scores in probability.
BOX_ATOL = 1e-3
SCORE_ATOL = 1e-5


def perturbed(model):
    """Randomise normalisation statistics so outputs vary strongly across cells (no ties)."""
    return randomised(model, seed=3)


@pytest.fixture(
    scope="module",
    params=(
        "fusion",
        pytest.param("lidar", marks=pytest.mark.slow),
        pytest.param("camera", marks=pytest.mark.slow),
    ),
)
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model = perturbed(build_detector(config=tiny_config(), variant=request.param))
    out = tmp_path_factory.mktemp(request.param) / f"{request.param}.onnx"
    result = export_onnx(model, out, provenance={"data": "test", "iterations": 0})
    return model, result


def test_one_graph_of_standard_ops_that_passes_the_checker(exported):
    _, result = exported
    proto = onnx.load(str(result.onnx_path))
    onnx.checker.check_model(proto, full_check=True)
    assert len(proto.functions) == 0
    assert non_standard_nodes(proto) == []
    assert all(node.domain in STANDARD_DOMAINS for node in proto.graph.node)
    assert {o.domain for o in proto.opset_import} <= STANDARD_DOMAINS
    assert result.opset >= 18


def test_inputs_outputs_and_dynamic_point_count(exported):
    model, result = exported
    proto = onnx.load(str(result.onnx_path))
    names = [i.name for i in proto.graph.input]
    assert names == ["points", "images", "intrinsics", "extrinsics"]
    assert [o.name for o in proto.graph.output] == ["boxes", "scores", "labels"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].HasField("dim_value")
    assert dims[1].dim_value == 5
    img = proto.graph.input[1].type.tensor_type
    assert img.elem_type == onnx.TensorProto.UINT8
    w, h = model.config.camera.image_size
    assert [d.dim_value for d in img.shape.dim] == [len(model.config.camera.cameras), h, w, 3]


def test_metadata_and_sidecar(exported):
    model, result = exported
    meta = read_metadata(result.onnx_path)
    side = json.loads(result.sidecar_path.read_text())
    assert meta == side
    cfg = model.config
    assert meta["perceive.class_names"] == ["VEHICLE", "PEDESTRIAN", "CYCLIST", "SIGN"]
    assert meta["perceive.cameras"] == list(cfg.camera.cameras)
    assert meta["perceive.image_size"] == list(cfg.camera.image_size)
    assert meta["perceive.point_features"] == ["x", "y", "z", "intensity", "elongation"]
    assert meta["perceive.max_points"] == cfg.pillars.max_points
    assert meta["perceive.grid"]["point_cloud_range"] == list(cfg.grid.point_cloud_range)
    assert meta["perceive.variant"] == cfg.variant
    assert meta["perceive.provenance"]["data"] == "test"
    assert "git_commit" in meta["perceive.provenance"]
    # The raw props are strings, JSON where structured (the runner's contract).
    props = {p.key: p.value for p in onnx.load(str(result.onnx_path)).metadata_props}
    assert json.loads(props["perceive.image_size"]) == list(cfg.camera.image_size)
    assert props["perceive.variant"] == cfg.variant
    # the graph's digest, checked by the runner on load
    from perceive.deploy.integrity import DIGEST_KEY, graph_digest

    assert props[DIGEST_KEY] == graph_digest(result.onnx_path.read_bytes()) == side[DIGEST_KEY]


def test_parity_with_pytorch_across_point_counts(exported):
    model, result = exported
    cap = model.config.pillars.max_points
    sizes = [0, 1, 17, None, cap - 1, cap + 1, 20 * cap]
    inputs = parity_inputs(model.config, count=len(sizes), sizes=sizes)
    results = check_parity(model, result.onnx_path, inputs, score_atol=SCORE_ATOL)
    for res in results:
        assert res.within(box_atol=BOX_ATOL, score_atol=SCORE_ATOL), res
    # The comparisons were not vacuous: most inputs had distinct top detections.
    assert sum(r.num_compared > 0 for r in results) >= len(sizes) - 2
    assert [r.num_points for r in results][:3] == [0, 1, 17]


def test_parity_when_no_camera_sees_the_grid_and_with_points_far_outside(exported):
    model, result = exported
    (inp,) = parity_inputs(model.config, count=1, sizes=[300])
    points, images, intr, ext = (x.copy() for x in inp)
    intr[:, 2] = -1e5  # principal point far off: no BEV sample projects into any image
    points[::3, :3] *= 50.0  # a third of the cloud far outside the grid
    points[1::3, 2] = -100.0  # and some below it
    (res,) = check_parity(model, result.onnx_path, [(points, images, intr, ext)])
    assert res.within(box_atol=BOX_ATOL, score_atol=SCORE_ATOL), res


def test_integer_index_arithmetic_stays_integer(exported):
    """No integer index goes through float Div/Floor: float16 variants would corrupt it."""
    _, result = exported
    graph = onnx.load(str(result.onnx_path)).graph
    producer = {o: n for n in graph.node for o in n.output}
    for node in graph.node:
        if node.op_type != "Floor":
            continue
        div = producer.get(node.input[0])
        assert div is not None and div.op_type == "Div", node.name
        cast = producer.get(div.input[0])
        assert cast is None or cast.op_type != "Cast", f"{node.name}: floor of a cast integer"


def test_no_filled_constants_folded_into_the_file(exported):
    """A ``full``/``ones_like`` of a static shape must stay an op or a scalar: folded by the
    exporter it becomes an initializer as large as the tensor (it once added 330 kB)."""
    from onnx import numpy_helper

    _, result = exported
    for init in onnx.load(str(result.onnx_path)).graph.initializer:
        value = numpy_helper.to_array(init)
        if value.size >= 64:
            assert not np.all(value == value.flat[0]), f"{init.name}: {value.shape} filled constant"


def test_git_commit_marks_uncommitted_changes_to_tracked_files(tmp_path):
    import subprocess

    from perceive.deploy.export import git_commit

    assert git_commit(tmp_path) == "unknown"  # not a repository

    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-qm", "one")
    head = git_commit(tmp_path)
    assert len(head) == 40 and int(head, 16) >= 0
    (tmp_path / "new.py").write_text("")  # untracked: not a change to the code
    assert git_commit(tmp_path) == head
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_eager_formulation_exports_the_forward_itself(tmp_path):
    model = perturbed(build_detector(config=tiny_config(), variant="fusion"))
    fast = export_onnx(model, tmp_path / "fast.onnx", sidecar=False)
    eager = export_onnx(model, tmp_path / "eager.onnx", sidecar=False, formulation="eager")
    ops = lambda r: {n.op_type for n in onnx.load(str(r.onnx_path)).graph.node}  # noqa: E731
    assert "NonZero" in ops(fast) and "NonZero" not in ops(eager)
    inputs = parity_inputs(model.config, count=2, sizes=[0, 400])
    for path in (fast.onnx_path, eager.onnx_path):
        for res in check_parity(model, path, inputs, score_atol=SCORE_ATOL):
            assert res.within(box_atol=BOX_ATOL, score_atol=SCORE_ATOL), res
    with pytest.raises(ConfigError):
        export_onnx(model, tmp_path / "x.onnx", formulation="fastest")


def test_graph_applies_the_range_crop_and_point_cap():
    torch.manual_seed(1)
    model = perturbed(build_detector(config=tiny_config(), variant="lidar"))
    cap = model.config.pillars.max_points
    (inp,) = parity_inputs(model.config, count=1, sizes=[3 * cap])
    pts = inp[0]
    r = np.asarray(model.config.grid.point_cloud_range, np.float32)
    inside = np.all((pts[:, :3] >= r[:3]) & (pts[:, :3] < r[3:]), axis=1)
    kept = pts[inside][:cap]
    full = run_torch(model, inp)
    cropped = run_torch(model, (kept, *inp[1:]))
    res = compare_detections(full, cropped, score_atol=SCORE_ATOL)
    assert res.within(box_atol=1e-5, score_atol=SCORE_ATOL)
    # ...and points after the cap really are dropped: a different subset changes the output.
    other = run_torch(model, (pts[inside][cap : 2 * cap], *inp[1:]))
    assert not np.allclose(other[1], full[1])


def test_export_from_a_checkpoint_keeps_its_provenance(tmp_path):
    model = perturbed(build_detector(config=tiny_config(), variant="lidar"))
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, model=model, step=7, provenance={"iterations": 7})
    result = export_onnx(ckpt, tmp_path / "m.onnx", provenance={"metrics": {"mAPH_L2": 0.1}})
    prov = read_metadata(result.onnx_path)["perceive.provenance"]
    assert prov["iterations"] == 7 and prov["step"] == 7 and prov["metrics"] == {"mAPH_L2": 0.1}
    loaded = detector_from_checkpoint(load_checkpoint(ckpt))
    (inp,) = parity_inputs(loaded.config, count=1, sizes=[None])
    (res,) = check_parity(loaded, result.onnx_path, [inp])
    assert res.within(box_atol=BOX_ATOL, score_atol=SCORE_ATOL)


def test_bad_arguments(tmp_path):
    model = build_detector(config=tiny_config(), variant="lidar")
    with pytest.raises(ConfigError):
        export_onnx(model, tmp_path / "x.onnx", opset=17)
    with pytest.raises(FileNotFoundError):
        export_onnx(tmp_path / "missing.pt", tmp_path / "x.onnx")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"junk\.pt"):
        export_onnx(tmp_path / "junk.pt", tmp_path / "x.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(DataError):
        read_metadata(tmp_path / "junk.onnx")


def test_compare_detections_tolerates_tie_order_but_not_differences():
    boxes = np.arange(21, dtype=np.float32).reshape(3, 7)
    scores = np.array([0.9, 0.5, 0.5], np.float32)
    labels = np.array([0, 1, 1])
    swapped = (boxes[[0, 2, 1]], scores, labels)
    assert compare_detections((boxes, scores, labels), swapped).max_box_diff == 0.0
    moved = boxes.copy()
    moved[0, 0] += 0.5
    assert compare_detections((boxes, scores, labels), (moved, scores, labels)).max_box_diff == 0.5
    relabelled = (boxes, scores, np.array([2, 1, 1]))
    assert not compare_detections((boxes, scores, labels), relabelled).labels_match


COMMITTED_ONNX = REPO / "exports" / "fusion.onnx"
COMMITTED_CKPT = REPO / "exports" / "fusion.pt"


@pytest.mark.skipif(
    not (COMMITTED_ONNX.exists() and COMMITTED_CKPT.exists()), reason="no committed fusion export"
)
def test_committed_fusion_export_matches_its_checkpoint():
    model = detector_from_checkpoint(COMMITTED_CKPT)
    meta = read_metadata(COMMITTED_ONNX)
    assert meta["perceive.variant"] == model.config.variant
    # Compared as configs: a mapping written before a field existed takes its legacy value.
    assert DetectorConfig.from_dict(meta["perceive.config"]) == model.config
    proto = onnx.load(str(COMMITTED_ONNX))
    assert non_standard_nodes(proto) == []
    inputs = parity_inputs(model.config, count=3, sizes=[0, None, 5000])
    for res in check_parity(model, COMMITTED_ONNX, inputs, score_atol=SCORE_ATOL):
        assert res.within(box_atol=BOX_ATOL, score_atol=SCORE_ATOL), res


def test_gated_fusion_exports_with_parity(tmp_path):
    from perceive.models.config import FusionConfig

    torch.manual_seed(4)
    cfg = tiny_config().replace(fusion=FusionConfig(bev_channels=8, gate=True))
    model = perturbed(build_detector(config=cfg))
    model.lift.gate.data.uniform_(-1.0, 1.0)  # an opened gate: the camera map matters
    result = export_onnx(model, tmp_path / "gated.onnx", sidecar=False)
    assert not non_standard_nodes(onnx.load(str(result.onnx_path)))
    results = check_parity(model, result.onnx_path, parity_inputs(cfg, count=3), score_atol=1e-5)
    for res in results:
        assert res.within(box_atol=BOX_ATOL, score_atol=SCORE_ATOL), res
    assert sum(r.num_compared > 0 for r in results) >= 2
