"""Conversion driver (placeholder while being written)."""

from __future__ import annotations

import json
from pathlib import Path

from perceive.errors import DataError

#: Marker file naming the format and version of an output folder.
MARKER_NAME = "PERCEIVE_FORMAT.json"


def check_format_marker(root: Path, fmt: str, version: int, must_exist: bool = False) -> bool:
    """Check the marker of an output folder; True if it exists and matches."""
    marker = Path(root) / MARKER_NAME
    if not marker.exists():
        if must_exist:
            raise DataError(f"not a perceive {fmt} folder (no {MARKER_NAME})", path=root)
        return False
    info = json.loads(marker.read_text())
    if info.get("format") != fmt or info.get("version") != version:
        raise DataError(
            f"folder holds {info}, expected format {fmt!r} version {version}", path=root
        )
    return True
