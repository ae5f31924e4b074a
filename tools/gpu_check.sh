#!/usr/bin/env bash
# GPU checks of perceive: the GPU tests (onnxruntime CUDA provider, IO binding, FP16, the
# TensorRT request, PyTorch training with AMP and NCCL) and the latency benchmark on the GPU
# with PyTorch (CUDA) interleaved, plus a device x precision x threads sweep.
#
#   bash tools/gpu_check.sh [OUT_DIR]          (default outputs/gpu_check)
#
# Needs: an NVIDIA GPU, PyTorch with CUDA, onnxruntime-gpu built for the same CUDA major
# version (`pip uninstall onnxruntime; pip install -e '.[train,gpu]'`: the CPU and GPU
# builds of onnxruntime share one module name, so only one may be installed; onnxruntime-gpu
# 1.31 is built for CUDA 13) and this package importable. onnxruntime's CUDA provider finds the CUDA and cuDNN libraries of the
# nvidia-* wheels that PyTorch installed through LD_LIBRARY_PATH, set below.
# Every step runs even when one before it fails; the exit status is the number of failed steps.
# A machine without a usable GPU fails: the env step asserts CUDA in PyTorch and onnxruntime,
# the GPU tests run with PERCEIVE_REQUIRE_GPU=1 (they fail instead of skipping), and the
# CUDA benchmark must have run on CUDA (not on its CPU fallback).
set -u
OUT=${1:-outputs/gpu_check}
DEFAULT_PY=python3
[ -x .venv/bin/python ] && DEFAULT_PY=.venv/bin/python
PY=${PYTHON:-$DEFAULT_PY}
ITERS=${ITERS:-300}
SWEEP_ITERS=${SWEEP_ITERS:-40}
SWEEP_DEVICES=${SWEEP_DEVICES:-cpu,cuda,tensorrt}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
SP=$($PY -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
LIBS=$(find "$SP/nvidia" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${LIBS}${LD_LIBRARY_PATH:-}"
perceive() { $PY -c 'import sys; from perceive.cli.main import main; sys.exit(main())' "$@"; }
failed=0
step() {  # step NAME COMMAND...: run, log to OUT/NAME.txt, count failures
  local name=$1
  shift
  echo "=== $name: $*"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$OUT/$name.txt"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc in $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
}
step env bash -c "nvidia-smi && $PY -c \"import onnxruntime as o, torch; \
print('onnxruntime', o.__version__, o.get_available_providers()); \
print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no cuda'); \
assert 'CUDAExecutionProvider' in o.get_available_providers(), 'onnxruntime has no CUDA provider'; \
assert torch.cuda.is_available(), 'PyTorch sees no CUDA GPU'\""
step pytest_gpu env PERCEIVE_REQUIRE_GPU=1 $PY -m pytest -q -p no:cacheprovider -rs \
  tests/deploy/test_runner_gpu.py tests/training/test_train_gpu.py
step bench_cuda perceive bench exports/fusion.onnx --device cuda --synthetic --warmup 20 \
  --iters "$ITERS" --compare-torch exports/fusion.pt --json "$OUT/bench_cuda.json" \
  --plot "$OUT/bench_cuda.png"
step bench_ran_on_cuda $PY -c "import json, sys; d = json.load(open('$OUT/bench_cuda.json')); \
sys.exit(0 if d['main']['device'] == 'cuda' else 'the CUDA benchmark ran on ' + d['main']['device'])"
step sweep perceive bench exports/fusion.onnx --sweep --sweep-devices "$SWEEP_DEVICES" \
  --sweep-precisions fp32,fp16,int8 --sweep-threads 1,16 --synthetic --warmup 5 \
  --iters "$SWEEP_ITERS" --variant-dir "$OUT/variants" --json "$OUT/sweep.json" \
  --plot "$OUT/sweep.png"
echo "failed steps: $failed"
exit "$failed"
