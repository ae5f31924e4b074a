"""perceive: ROS-free robot perception.

TensorFlow-free Waymo Open Dataset loaders, synthetic Waymo-format data, a
camera+LiDAR fusion 3D detector, one-graph ONNX export and an onnxruntime runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from perceive.deploy.runner import Detector

__all__ = ["Detector", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use so that `import perceive` stays light (no onnxruntime).
    if name == "Detector":
        from perceive.deploy.runner import Detector

        return Detector
    raise AttributeError(f"module 'perceive' has no attribute {name!r}")
