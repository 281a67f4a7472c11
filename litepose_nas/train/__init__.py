"""Training: supernets with the sandwich rule and in-place distillation, static subnets,
exact resume, torchrun / DistributedDataParallel.

``TrainConfig`` needs no torch; the rest loads it on first use.
"""
from __future__ import annotations

from .._lazy import lazy_getattr
from .config import DEFAULT_MEMORY_FORMAT, SUBNET_FINETUNE_LR, SUPERNET_LR, TrainConfig, default_config

_LAZY = {
    "Trainer": "litepose_nas.train.trainer",
    "TrainResult": "litepose_nas.train.trainer",
    "train": "litepose_nas.train.trainer",
    "build_model": "litepose_nas.train.trainer",
    "sandwich_archs": "litepose_nas.train.sandwich",
    "SandwichStep": "litepose_nas.train.sandwich",
    "SubnetStep": "litepose_nas.train.sandwich",
    "distill_loss": "litepose_nas.train.sandwich",
    "StepBatchSampler": "litepose_nas.train.data",
    "MultiResolutionDataset": "litepose_nas.train.data",
    "validate_run": "litepose_nas.train.validation",
    "evaluate_subnet": "litepose_nas.train.validation",
}

__all__ = ["TrainConfig", "default_config", "SUPERNET_LR", "SUBNET_FINETUNE_LR", "DEFAULT_MEMORY_FORMAT", *_LAZY]


__getattr__ = lazy_getattr(__name__, _LAZY)
