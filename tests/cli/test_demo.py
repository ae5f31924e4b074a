"""The demo's plan: every step is a valid ``perceive`` command line."""

from __future__ import annotations

import argparse

from perceive.cli import demo
from perceive.cli.main import build_parser, main


def _args(tmp_path, **kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    ns = parser.parse_args(["--out", str(tmp_path / "demo")])
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_every_step_parses_with_its_subcommand(tmp_path):
    steps = demo.plan(_args(tmp_path))
    assert [s.argv[0] for s in steps] == [
        "synth",
        "synth",
        "info",
        "convert",
        "convert",
        "train",
        "export",
        "evaluate",
        "visualize",
        "bench",
    ]
    for step in steps:
        args = build_parser(step.argv[0]).parse_args(list(step.argv))
        assert args.command == step.argv[0]


def test_steps_chain_outputs_to_inputs(tmp_path):
    steps = {s.argv[0] + str(i): s.argv for i, s in enumerate(demo.plan(_args(tmp_path)))}
    train_out = steps["train5"][steps["train5"].index("--out") + 1]
    assert steps["export6"][1].startswith(train_out)
    cache = steps["convert3"][steps["convert3"].index("--out") + 1]
    assert cache in steps["train5"]


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path / "d"), "--checkpoint", str(tmp_path / "nope.pt")])
    assert rc == 1
    assert "nope.pt" in capsys.readouterr().err
