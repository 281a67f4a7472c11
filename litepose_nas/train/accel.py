"""Speed settings of a training run: mixed precision, torch.compile, data-loader memory.

Each is a flag of ``train`` / ``train-supernet`` (and a :class:`TrainConfig` field); the defaults
and the measurements behind them are in docs/training.md.

* ``--amp auto|bf16|fp16|off`` (``on``: like ``auto`` but a CUDA device is required). ``auto``:
  bfloat16 on a GPU that supports it (no loss scaling needed: bf16 has fp32's exponent range),
  float16 with a ``GradScaler`` on older GPUs, off on CPU (where bf16 autocast was slower than
  fp32, see docs). ``bf16`` may be asked for on CPU; ``fp16`` needs CUDA.
* ``--compile``: ``torch.compile`` of the static network of ``train``. Refused for
  ``train-supernet``: every step runs four different subnets (slices of the weights chosen at
  run time) at a drawn resolution, so the graph would be recompiled on nearly every step.
* ``--pin-memory auto|on|off``: page-locked batches for asynchronous host-to-GPU copies; ``auto``
  pins when training on CUDA only (on CPU there is no copy to overlap).
* ``--persistent-workers``: keep the loader's worker processes between iterations of the loader.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import InputError


def amp_dtype(mode: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of ``--amp mode`` on ``device`` (None: full precision)."""
    cuda = device.type == "cuda"
    if mode == "off":
        return None
    if mode in ("on", "fp16") and not cuda:
        raise InputError(f"--amp {mode}: mixed precision {'in float16 ' if mode == 'fp16' else ''}needs a CUDA "
                         f"device (allowed here: auto, bf16, off)")
    if mode == "auto" and not cuda:
        return None
    if mode == "fp16":
        return torch.float16
    if mode == "bf16":
        if cuda and not torch.cuda.is_bf16_supported():
            raise InputError(f"--amp bf16: {torch.cuda.get_device_name(device)} does not support bfloat16 "
                             "(allowed here: auto, fp16, off)")
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16  # auto / on, on CUDA


def make_scaler(dtype: Optional[torch.dtype], device: torch.device) -> Optional[torch.amp.GradScaler]:
    """A gradient scaler for float16 (its narrow exponent range underflows small gradients); none
    for bfloat16 or full precision."""
    if dtype is torch.float16:
        return torch.amp.GradScaler(device.type)
    return None


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """The autocast context of a training step (a no-op without ``dtype``)."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def check_compile(kind: str) -> None:
    if kind == "supernet":
        raise InputError("--compile: not supported by train-supernet (every step runs four different subnets, "
                         "sliced at run time, at a drawn resolution: the graph would recompile on nearly every "
                         "step); use it with `train`")


def compile_model(model: nn.Module) -> nn.Module:
    """Compile ``model`` in place (its ``state_dict`` keys stay those of the plain module)."""
    model.compile()
    return model


def pin_memory(mode: str, device: torch.device) -> bool:
    return mode == "on" or (mode == "auto" and device.type == "cuda")
