"""The ``perceive`` entry point: one line per error, whatever raised it."""

from __future__ import annotations


def test_worker_tracebacks_are_cut_to_the_error():
    from perceive.cli.main import _without_worker_traceback

    msg = (
        "Caught MissingComponentError in DataLoader worker process 0.\n"
        "Original Traceback (most recent call last):\n"
        '  File "worker.py", line 375, in _worker_loop\n'
        "perceive.errors.MissingComponentError: seg: camera 'SIDE_LEFT' is not in the frame\n"
    )
    assert _without_worker_traceback(msg) == (
        "seg: camera 'SIDE_LEFT' is not in the frame (in a DataLoader worker)"
    )
    assert _without_worker_traceback("plain message") == "plain message"


def test_cli_turns_ctrl_c_into_one_line(monkeypatch, capsys):
    import perceive.cli.main as cli

    class Interrupted:
        @staticmethod
        def add_arguments(parser):
            parser.add_argument("path")

        @staticmethod
        def run(args):
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_load", lambda name: Interrupted)
    assert cli.main(["info", "x"]) == 130
    assert capsys.readouterr().err.strip() == "perceive info: interrupted"
