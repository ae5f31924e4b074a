"""Add the graph digest (``perceive.graph_sha256``) to models exported before it existed.

    python tools/stamp_model_digest.py exports/fusion.onnx [MORE.onnx ...]

The graph (nodes and weights) is left as it is; only the metadata gains the digest, and the
JSON sidecar beside each model too (files are replaced atomically). From then on
:class:`perceive.Detector` refuses the file if its graph is damaged or edited.
"""

from __future__ import annotations

import argparse
import sys

from perceive.deploy.integrity import stamp_model_file
from perceive.errors import PerceiveError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help=".onnx files to stamp")
    args = ap.parse_args(argv)
    failed = 0
    for m in args.models:
        try:
            digest = stamp_model_file(m)
        except (OSError, PerceiveError) as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{m}: perceive.graph_sha256 = {digest}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
