"""Deployment: one-graph ONNX export, the onnxruntime runner, FP16/INT8 variants, the benchmark.

Modules are imported on use (``from perceive.deploy.runner import Detector``) so that
``import perceive.deploy`` needs neither torch nor onnxruntime.
"""
