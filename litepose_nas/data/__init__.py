"""Pose data: COCO / CrowdPose readers, the synthetic generator, augmentation, targets, loaders.

The readers and the generator need no torch; :class:`PoseDataset`, :func:`make_loader`,
``MEAN`` and ``STD`` load torch on first use.
"""
from __future__ import annotations

from .sources import PoseSource, crowd_index, open_dataset
from .synth import PRESETS, generate_synthetic

_LAZY = {
    "PoseDataset": "litepose_nas.data.dataset",
    "make_loader": "litepose_nas.data.dataset",
    "normalize": "litepose_nas.data.dataset",
    "MEAN": "litepose_nas.data.dataset",
    "STD": "litepose_nas.data.dataset",
}

__all__ = ["open_dataset", "PoseSource", "crowd_index", "generate_synthetic", "PRESETS",
           "PoseDataset", "make_loader", "normalize", "MEAN", "STD"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'litepose_nas.data' has no attribute {name!r}")
