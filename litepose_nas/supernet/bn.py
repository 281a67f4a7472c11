"""BatchNorm recalibration: re-estimate running statistics for one (sub)network.

A subnet of a supernet sees feature statistics that differ from those the shared BN buffers
accumulated while training many subnets, so every subnet must be recalibrated before it is
evaluated (OFA, BigNAS). The statistics are reset and re-estimated as the cumulative average
over the given batches (``momentum=None``); nothing else changes: weights, biases, the modules'
momentum and train/eval mode are as before.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..space.arch import Arch


def _batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def _images(batch) -> Tensor:
    """The image tensor of a batch: a tensor, or the first item of a tuple / list / the 'image' of a dict."""
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, dict):
        for key in ("image", "images", "img", "input"):
            if key in batch:
                return batch[key]
        raise InputError(f"recalibrate_bn: batch dict has no image key (expected one of image, images, img, input; got {', '.join(map(str, batch))})")
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
        return batch[0]
    raise InputError(f"recalibrate_bn: a batch must be an image tensor, a (images, ...) tuple or a dict, got {type(batch).__name__}")


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable, arch: Arch | None = None) -> int:
    """Reset and re-estimate the BN running statistics of ``model`` over ``batches``.

    ``model`` is a static network or a :class:`~litepose_nas.supernet.SuperLitePose`; for a
    supernet, ``arch`` (default: the active one) is the subnet to calibrate, and only the
    statistics of the channels and blocks it uses change (the others keep their values).
    Returns the number of batches used; raises :class:`InputError` if there were none.
    """
    from .model import SuperLitePose

    if arch is not None:
        if not isinstance(model, SuperLitePose):
            raise InputError("recalibrate_bn: arch= is only for a SuperLitePose (a static network has one architecture)")
        model.set_active(arch)
    norms = _batch_norms(model)
    momenta = {m: m.momentum for m in norms}
    saved = {m: [t.clone() for t in (m.running_mean, m.running_var, m.num_batches_tracked)] for m in norms}
    used: dict[nn.Module, int] = {}

    def record(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        used[module] = max(used.get(module, 0), int(inputs[0].shape[1]))

    hooks = [m.register_forward_pre_hook(record) for m in norms]
    modes = {m: m.training for m in model.modules()}
    device = next(model.parameters()).device
    count = 0
    try:
        model.eval()  # everything else deterministic; only the BNs estimate statistics
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
            m.train()
        for batch in batches:
            model(_images(batch).to(device))
            count += 1
    except BaseException:
        for m, stats in saved.items():
            _restore(m, stats, 0)
        raise
    finally:
        for h in hooks:
            h.remove()
        for m, momentum in momenta.items():
            m.momentum = momentum
        for m, training in modes.items():
            m.training = training
    if count == 0:
        for m, stats in saved.items():
            _restore(m, stats, 0)
        raise InputError("recalibrate_bn: no batches given")
    # Channels and BNs the (sub)network did not use keep their old statistics.
    for m, stats in saved.items():
        c = used.get(m, 0)
        if c < m.num_features:
            _restore(m, stats, c)
    return count


def _restore(m: nn.modules.batchnorm._BatchNorm, stats: list[Tensor], from_channel: int) -> None:
    mean, var, tracked = stats
    m.running_mean[from_channel:] = mean[from_channel:]
    m.running_var[from_channel:] = var[from_channel:]
    if from_channel == 0:
        m.num_batches_tracked.copy_(tracked)
