"""ONNX export of a static LitePose subnet: BatchNorm folded into convs, batch-dynamic, checked.

The exported graph takes ``image`` ``[batch, 3, height, width]`` (float32, normalised RGB) and
returns ``heatmaps_tags`` ``[batch, 2J, height/4, width/4]`` (J heatmaps then J tag maps) and
``heatmaps`` ``[batch, J, height/2, width/2]``. Height and width are dynamic too, because the
decoder's resize policy feeds non-square inputs (short side = ``img_size``, long side a multiple
of 64); they must be multiples of the network's total stride (16).
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ArchError, JobError
from ..space.arch import Arch
from .interface import INPUT_NAME, OUTPUT_NAMES, ort_session, output_names, total_stride  # noqa: F401 (re-exported)

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4
# largest img_size export accepts: far past the published models (256-640 px), small enough that
# the parity check's img_size x img_size input and activations fit in memory
MAX_IMG_SIZE = 2048


@dataclass(frozen=True)
class Parity:
    """How closely onnxruntime reproduces the (unfolded) PyTorch model on one random input."""

    max_abs_diff: float
    max_abs_reference: float
    input_shape: tuple[int, ...]
    tolerance: float = PARITY_TOLERANCE

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "input_shape": list(self.input_shape), "ok": self.ok}


def check_input_size(arch: Arch, height: int, width: int) -> None:
    """The head adds deconv outputs to backbone features, so sides must divide evenly."""
    stride = total_stride(arch)
    if height % stride or width % stride:
        raise ArchError(
            f"input {height}x{width}: height and width must be multiples of {stride} "
            f"(the network's total stride) for the fusion head to line up"
        )


# ---------------------------------------------------------------------------- BN folding
def _bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    # float64 so folding adds no error of its own to the parity budget
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    return scale, beta - mean * scale


def _fold_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale, shift = _bn_scale_shift(bn)
    weight = conv.weight.double() * scale.view(-1, 1, 1, 1)  # Conv2d weight: [out, in/groups, k, k]
    bias = shift if conv.bias is None else conv.bias.double() * scale + shift
    conv.weight = nn.Parameter(weight.to(conv.weight.dtype))
    conv.bias = nn.Parameter(bias.to(conv.weight.dtype))


def _fold_into_deconv_sum(refined: nn.ConvTranspose2d, raw: nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    # BN(a + b) = s*a + s*b + t: scale both branches, the shift goes into one bias only.
    scale, shift = _bn_scale_shift(bn)
    for deconv in (refined, raw):
        if deconv.groups != 1:
            raise JobError("BN folding supports only ungrouped transposed convs")
        # ConvTranspose2d weight: [in, out, k, k]; BN acts on the out channels
        deconv.weight = nn.Parameter((deconv.weight.double() * scale.view(1, -1, 1, 1)).to(deconv.weight.dtype))
        if deconv.bias is not None:
            deconv.bias = nn.Parameter((deconv.bias.double() * scale).to(deconv.weight.dtype))
    bias = shift if refined.bias is None else refined.bias.double() + shift
    refined.bias = nn.Parameter(bias.to(refined.weight.dtype))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of a LitePose ``model`` with every BatchNorm folded away.

    A BN right after a conv inside a ``Sequential`` is folded into that conv (which gains a bias);
    the BN of ``deconv_bnrelu.i`` follows the sum of ``deconv_refined.i`` and ``deconv_raw.i`` and is
    folded into both. The original model is left untouched.
    """
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        if hasattr(folded, "deconv_bnrelu"):
            for i, seq in enumerate(folded.deconv_bnrelu):
                if len(seq) and isinstance(seq[0], nn.BatchNorm2d):
                    _fold_into_deconv_sum(folded.deconv_refined[i], folded.deconv_raw[i], seq[0])
                    seq[0] = nn.Identity()
        for module in folded.modules():
            if not isinstance(module, nn.Sequential):
                continue
            for idx in range(1, len(module)):
                prev, cur = module[idx - 1], module[idx]
                if isinstance(cur, nn.BatchNorm2d) and isinstance(prev, nn.Conv2d):
                    _fold_into_conv(prev, cur)
                    module[idx] = nn.Identity()
    left = [name for name, m in folded.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise JobError(f"could not fold BatchNorm layer {left[0]!r} (it does not follow a conv)")
    return folded


# ---------------------------------------------------------------------------- export
def export_onnx(
    model: nn.Module,
    path: str | Path,
    arch: Arch,
    opset: int = DEFAULT_OPSET,
    fold: bool = True,
) -> None:
    """Write ``model`` (a LitePose of ``arch``) as ONNX at ``path``: BN folded, dynamic batch and sides."""
    if not 13 <= opset <= 20:
        raise ArchError(f"opset {opset} not supported (allowed: 13 to 20)")
    net = fold_batchnorm(model) if fold else copy.deepcopy(model).eval()
    dummy = torch.zeros(1, 3, arch.img_size, arch.img_size)
    check_input_size(arch, arch.img_size, arch.img_size)
    dynamic = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    names = output_names(arch)
    for name in names:
        dynamic[name] = {0: "batch", 2: f"{name}_height", 3: f"{name}_width"}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not a dependency); its output is plain, well-supported ONNX.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (dummy,), str(path), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=list(names), dynamic_axes=dynamic,
            do_constant_folding=True,
        )


def check_onnx(path: str | Path) -> int:
    """Run ``onnx.checker`` on the file; return its default-domain opset."""
    import onnx

    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise JobError(f"{path}: exported model fails onnx.checker: {str(exc).splitlines()[0]}") from None
    return next(op.version for op in model.opset_import if op.domain in ("", "ai.onnx"))


@torch.no_grad()
def measure_parity(
    model: nn.Module,
    onnx_path: str | Path,
    input_shape: tuple[int, int, int, int],
    seed: int = 0,
    session: Any = None,
    threads: int | None = 1,
) -> Parity:
    """Max abs difference between onnxruntime and the PyTorch ``model`` (eval mode, unfolded).

    One onnxruntime thread by default: a single check run gains nothing from more, and spinning
    worker threads only slow down whatever else shares the machine.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(*input_shape, generator=gen)
    was_training = model.training
    model.eval()
    try:
        reference = [t.numpy() for t in model(x)]
    finally:
        model.train(was_training)
    session = session or ort_session(onnx_path, threads=threads)
    outputs = session.run([o.name for o in session.get_outputs()], {INPUT_NAME: x.numpy()})
    if [o.shape for o in outputs] != [r.shape for r in reference]:
        raise JobError(
            f"{onnx_path}: onnxruntime output shapes {[o.shape for o in outputs]} differ from PyTorch's "
            f"{[r.shape for r in reference]}"
        )
    diff = max(float(np.max(np.abs(o - r))) for o, r in zip(outputs, reference))
    ref = max(float(np.max(np.abs(r))) for r in reference)
    return Parity(max_abs_diff=diff, max_abs_reference=ref, input_shape=tuple(input_shape))
