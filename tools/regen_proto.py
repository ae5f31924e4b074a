"""Regenerate perceive/datasets/waymo/proto/waymo_pb2.py from waymo.proto.

Usage:  python tools/regen_proto.py [--check]

Needs grpcio-tools (the ``dev`` extra), which bundles protoc. With --check it
compiles to a temporary folder and exits 1 if the committed module differs.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "perceive" / "datasets" / "waymo" / "proto"


def compile_to(out_dir: Path) -> Path:
    from grpc_tools import protoc

    rc = protoc.main(
        [
            "protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            str(PROTO_DIR / "waymo.proto"),
        ]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    return out_dir / "waymo_pb2.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="only compare with the committed module"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generated = compile_to(Path(tmp))
        target = PROTO_DIR / "waymo_pb2.py"
        if args.check:
            same = target.exists() and filecmp.cmp(generated, target, shallow=False)
            print("waymo_pb2.py is up to date" if same else "waymo_pb2.py differs from waymo.proto")
            return 0 if same else 1
        shutil.copy(generated, target)
        shutil.copy(Path(tmp) / "waymo_pb2.pyi", PROTO_DIR / "waymo_pb2.pyi")
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
