#!/usr/bin/env bash
# Set up a development environment for perceive on a fresh Debian/Ubuntu machine.
# Installs the system libraries Open3D needs, creates .venv and installs perceive
# with every extra (torch, onnx, open3d, dev tools). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ldconfig -p 2>/dev/null | grep -q libusb-1.0 || ! ldconfig -p 2>/dev/null | grep -q libgomp; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq libusb-1.0-0 libgomp1 >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch/torchvision pinned: these exact builds are on the local disk of our machines.
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q -e ".[all,dev]"
