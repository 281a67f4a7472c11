"""Everything a resumed run needs besides the weights: optimiser, schedule, RNG states.

Training checkpoints are plain containers of tensors, numbers and strings, so they load with
``torch.load(weights_only=True)`` like every other file of the toolkit.
"""
from __future__ import annotations

import math
import random
import re
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .config import TrainConfig

# The kernel-transform maps start as identity: decay would pull them towards a zero kernel.
_NO_DECAY_MODULE = re.compile(r"(^|\.)Linear\d+x\d+\.")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv / deconv weights only (not BN affine, biases or kernel transforms)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or _NO_DECAY_MODULE.search(name):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas))
    # Adam with the L2 term the original configured (its optimiser never received it)
    return torch.optim.Adam(groups, lr=config.lr, betas=tuple(config.betas))


def lr_factor_fn(config: TrainConfig) -> Callable[[int], float]:
    """Multiplier of the base lr after ``step`` completed steps (linear warm-up, then the schedule)."""
    steps, warmup = config.steps, config.warmup_steps
    bounds = sorted(int(round(m * steps)) for m in config.milestones)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.schedule == "constant":
            return 1.0
        if config.schedule == "step":
            return config.gamma ** sum(step >= b for b in bounds)
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor_fn(config))


def capture_rng() -> dict[str, Any]:
    """Python, numpy (global) and torch (CPU and CUDA) generator states, checkpoint-safe."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
