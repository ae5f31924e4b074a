"""What the scripts in tools/ share: one line per error, argument types with minimums."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perceive.errors import PerceiveError


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def run(main: Callable[[], Any]) -> None:
    """Run a tool's ``main`` and exit: errors about the input (perceive's, missing or
    unreadable files) are one line naming the tool, not a traceback."""
    name = Path(sys.argv[0]).stem
    try:
        code = main()
    except (PerceiveError, OSError) as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
