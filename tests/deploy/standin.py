"""A tiny stand-in for the exported detector, with exactly the contract's ONNX interface.

The runner and benchmark tests use it so that they do not depend on a trained
checkpoint: a few convolutions on a bird's-eye-view grid filled from the points and
a pooled image feature, top-K peaks decoded to boxes. It is exported the way the
real model is (``torch.onnx.export``, dynamo, opset 18) with the same metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from perceive.deploy.integrity import DIGEST_KEY, stamp_graph_digest

CLASS_NAMES = ("VEHICLE", "PEDESTRIAN", "CYCLIST", "SIGN")
CAMERAS = ("FRONT", "FRONT_LEFT")
IMAGE_SIZE = (32, 24)  # W, H
GRID = {"range": [-32.0, -32.0, -3.0, 32.0, 32.0, 3.0], "voxel_size": [2.0, 2.0, 6.0]}
MAX_POINTS = 4000
MAX_DETECTIONS = 16
POINT_FEATURES = ("x", "y", "z", "intensity", "elongation")


class StandIn(nn.Module):
    """Points + images + calibration -> (boxes (K, 7), scores (K,), labels (K,))."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        lo, hi = GRID["range"][:3], GRID["range"][3:]
        self.register_buffer("lo", torch.tensor(lo))
        self.register_buffer("hi", torch.tensor(hi))
        self.vs = GRID["voxel_size"][0]
        self.nx = round((hi[0] - lo[0]) / self.vs)
        self.ny = round((hi[1] - lo[1]) / self.vs)
        self.point_mlp = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8))
        self.image_conv = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)
        )
        self.calib = nn.Linear(9 + 16, 8)
        self.bev = nn.Sequential(
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU()
        )
        self.heat = nn.Conv2d(16, len(CLASS_NAMES), 1)
        self.reg = nn.Conv2d(16, 6, 1)
        # A fixed positional bias, so that peaks never tie (ties would make the top-K
        # order implementation-defined).
        self.pos = nn.Parameter(torch.randn(8, self.ny, self.nx) * 0.3)

    def forward(
        self,
        points: torch.Tensor,
        images: torch.Tensor,
        intrinsics: torch.Tensor,
        extrinsics: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xyz = points[:, :3]
        inside = ((xyz >= self.lo) & (xyz < self.hi)).all(dim=1)
        keep = torch.nonzero(inside).reshape(-1)[:MAX_POINTS]
        p = points[keep]
        ix = torch.floor((p[:, 0] - self.lo[0]) / self.vs).long().clamp(0, self.nx - 1)
        iy = torch.floor((p[:, 1] - self.lo[1]) / self.vs).long().clamp(0, self.ny - 1)
        cell = iy * self.nx + ix
        feat = self.point_mlp(p)
        grid = torch.zeros(self.ny * self.nx, 8, dtype=feat.dtype).index_add(0, cell, feat)
        bev = grid.t().reshape(8, self.ny, self.nx)
        img = images.permute(0, 3, 1, 2).float() / 255.0
        img_feat = self.image_conv(img).mean(dim=(0, 2, 3))
        cal = torch.cat([intrinsics, extrinsics.reshape(-1, 16)], dim=1)
        cal_feat = self.calib(cal).mean(dim=0)
        bev = bev + self.pos + (img_feat + 0.01 * cal_feat)[:, None, None]
        x = self.bev(bev.unsqueeze(0))
        heat = torch.sigmoid(self.heat(x))[0]  # (classes, ny, nx)
        reg = self.reg(x)[0]  # (6, ny, nx)
        scores, flat = heat.reshape(-1).topk(MAX_DETECTIONS)
        hw = self.ny * self.nx
        labels = flat // hw
        cellk = flat % hw
        cy = (cellk // self.nx).float()
        cx = (cellk % self.nx).float()
        r = reg.reshape(6, hw)[:, cellk]  # (6, K)
        x_c = self.lo[0] + (cx + 0.5 + torch.tanh(r[0])) * self.vs
        y_c = self.lo[1] + (cy + 0.5 + torch.tanh(r[1])) * self.vs
        z_c = r[2] * 0.1
        size = torch.stack(
            [4.0 + torch.tanh(r[3]), 2.0 + 0.5 * torch.tanh(r[4]), torch.full_like(r[3], 1.6)]
        )
        heading = torch.tanh(r[5]) * 3.1
        boxes = torch.stack([x_c, y_c, z_c, size[0], size[1], size[2], heading], dim=1)
        return boxes, scores, labels


def example_inputs(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the model's shapes with ``n`` points."""
    g = np.random.default_rng(seed)
    pts = np.c_[
        g.uniform(-40, 40, (n, 2)), g.uniform(-2, 2, (n, 1)), g.uniform(0, 1, (n, 2))
    ].astype(np.float32)
    w, h = IMAGE_SIZE
    imgs = g.integers(0, 255, (len(CAMERAS), h, w, 3), dtype=np.uint8)
    intr = np.tile(np.array([30, 30, 16, 12, 0, 0, 0, 0, 0], np.float32), (len(CAMERAS), 1))
    ext = np.tile(np.eye(4, dtype=np.float32), (len(CAMERAS), 1, 1))
    return tuple(torch.from_numpy(a) for a in (pts, imgs, intr, ext))


def metadata(variant: str = "fusion", score_threshold: float = 0.3) -> dict[str, str]:
    """The contract's metadata_props for the stand-in."""
    return {
        "perceive.version": "0.1.0",
        "perceive.class_names": json.dumps(list(CLASS_NAMES)),
        "perceive.cameras": json.dumps(list(CAMERAS)),
        "perceive.image_size": json.dumps(list(IMAGE_SIZE)),
        "perceive.point_features": json.dumps(list(POINT_FEATURES)),
        "perceive.max_points": str(MAX_POINTS),
        "perceive.grid": json.dumps(GRID),
        "perceive.score_threshold": str(score_threshold),
        "perceive.variant": variant,
        "perceive.provenance": json.dumps({"note": "test stand-in, random weights"}),
    }


def export_standin(
    path: Path, *, seed: int = 0, variant: str = "fusion", score_threshold: float = 0.3
) -> Path:
    """Export the stand-in to ``path`` (one ONNX graph, opset 18) with metadata and sidecar."""
    model = StandIn(seed).eval()
    n = torch.export.Dim("num_points", min=0, max=1_000_000)
    path = Path(path)
    with torch.no_grad():
        prog = torch.onnx.export(
            model,
            example_inputs(),
            dynamo=True,
            opset_version=18,
            input_names=["points", "images", "intrinsics", "extrinsics"],
            output_names=["boxes", "scores", "labels"],
            dynamic_shapes={
                "points": {0: n},
                "images": None,
                "intrinsics": None,
                "extrinsics": None,
            },
            verbose=False,
        )
    prog.save(str(path))
    proto = onnx.load(str(path))
    meta = metadata(variant, score_threshold)
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    data, meta[DIGEST_KEY] = stamp_graph_digest(proto)  # as the exporter writes models
    path.write_bytes(data)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return path


def relabel(src: Path, dst: Path, **meta: str) -> Path:
    """Copy the model at ``src`` to ``dst`` with some ``perceive.<key>`` metadata replaced.

    A value of ``None`` removes the key.
    """
    proto = onnx.load(str(src))
    props = {p.key: p.value for p in proto.metadata_props}
    for k, v in meta.items():
        if v is None:
            props.pop(f"perceive.{k}", None)
        else:
            props[f"perceive.{k}"] = v
    del proto.metadata_props[:]
    for k, v in props.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, str(dst))
    return Path(dst)
