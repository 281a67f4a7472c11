"""Pose data: COCO / CrowdPose readers, the synthetic generator, augmentation, targets, loaders.

The readers and the generator need no torch; :class:`PoseDataset`, :func:`make_loader`,
``MEAN`` and ``STD`` load torch on first use.
"""
from __future__ import annotations

from .._lazy import lazy_getattr
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


__getattr__ = lazy_getattr(__name__, _LAZY)
