"""The camera + LiDAR BEV detector: configs, parts, builders (PyTorch).

Import the parts from their modules (``perceive.models.build.build_detector``,
``perceive.models.config.DetectorConfig``, ``perceive.models.classes.CLASS_NAMES``);
this package's ``__init__`` imports nothing so that ``perceive.models.classes`` stays
usable without torch.
"""
