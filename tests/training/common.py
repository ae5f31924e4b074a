"""Helpers shared by the training tests."""

from perceive.models.config import tiny_config
from perceive.training.train import TrainConfig


def train_config(data: str, out, device: str = "cpu", **kw) -> TrainConfig:
    """A 2-iteration config of the tiny fusion model on ``data``, logging every step."""
    base = dict(
        train_data=(data,),
        out_dir=str(out),
        model=tiny_config("fusion"),
        iterations=2,
        batch_size=2,
        num_workers=0,
        log_every=1,
        checkpoint_every=1,
        progress=False,
        device=device,
    )
    base.update(kw)
    return TrainConfig(**base)
