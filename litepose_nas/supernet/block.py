"""The elastic inverted-residual block: elastic width, expansion and depthwise kernel.

Kernel transform, as in the original ``SuperInvBottleneck``: a kernel ``k`` smaller than the
largest ``K`` is the centre ``k x k`` crop of the ``K x K`` depthwise kernel, flattened per channel
and passed through the block's own linear map ``Linear{k}x{k}`` (k*k -> k*k, with bias). The
original applies each map to the crop of the *largest* kernel directly (7 -> 5 and 7 -> 3; unlike
OFA, which chains 7 -> 5 -> 3); we follow the original so its checkpoints mean the same thing.
The maps start as identity with zero bias, so a fresh supernet's small kernels are plain crops.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import DynamicBatchNorm2d, DynamicConv2d, DynamicDepthwiseConv2d


def transform_kernel_sizes(max_kernel: int) -> tuple[int, ...]:
    """Kernels reachable from ``max_kernel`` through a transform: every odd size from 3 below it.

    For the original supernet (7) that is 5 and 3, i.e. its ``Linear5x5`` and ``Linear3x3``.
    """
    return tuple(range(max_kernel - 2, 2, -2))


def centre_crop(weight: Tensor, kernel: int) -> Tensor:
    """Centre ``kernel x kernel`` window of a ``[C, 1, K, K]`` kernel (a view)."""
    start = (weight.shape[-1] - kernel) // 2
    return weight[..., start : start + kernel, start : start + kernel]


class SuperInvertedResidual(nn.Module):
    """MobileNetV2 block at its largest size (``inv``, ``depth_conv``, ``point_conv``,
    ``Linear{k}x{k}``), runnable at any smaller width / expansion / kernel."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int, max_kernel: int, stride: int) -> None:
        super().__init__()
        self.max_in = in_ch
        self.max_out = out_ch
        self.max_mid = mid_ch
        self.max_kernel = max_kernel
        self.stride = stride
        # Registration order gives the original state_dict order: inv, depth_conv, point_conv, Linear5x5, Linear3x3.
        self.inv = nn.Sequential(DynamicConv2d(in_ch, mid_ch, 1), DynamicBatchNorm2d(mid_ch), nn.ReLU6())
        self.depth_conv = nn.Sequential(
            DynamicDepthwiseConv2d(mid_ch, max_kernel, stride), DynamicBatchNorm2d(mid_ch), nn.ReLU6()
        )
        self.point_conv = nn.Sequential(DynamicConv2d(mid_ch, out_ch, 1), DynamicBatchNorm2d(out_ch))
        for k in transform_kernel_sizes(max_kernel):
            self.add_module(f"Linear{k}x{k}", nn.Linear(k * k, k * k))
        self.reset_kernel_transforms()
        self._kernel_cache: dict[int, tuple[tuple, Tensor]] = {}

    @property
    def kernel_sizes(self) -> tuple[int, ...]:
        return (self.max_kernel, *transform_kernel_sizes(self.max_kernel))

    def kernel_transform(self, kernel: int) -> nn.Linear:
        return getattr(self, f"Linear{kernel}x{kernel}")

    @torch.no_grad()
    def reset_kernel_transforms(self) -> None:
        """Identity maps with zero bias: small kernels become the plain centre crop."""
        for k in transform_kernel_sizes(self.max_kernel):
            linear = self.kernel_transform(k)
            linear.weight.copy_(torch.eye(k * k))
            linear.bias.zero_()
        self.clear_cache()

    def clear_cache(self) -> None:
        if hasattr(self, "_kernel_cache"):
            self._kernel_cache.clear()

    def _transform(self, weight: Tensor, kernel: int) -> Tensor:
        c = weight.shape[0]
        linear = self.kernel_transform(kernel)
        flat = centre_crop(weight, kernel).reshape(c, kernel * kernel)
        return F.linear(flat, linear.weight, linear.bias).reshape(c, 1, kernel, kernel)

    def depthwise_weight(self, kernel: int, channels: int) -> Tensor:
        """The ``[channels, 1, kernel, kernel]`` depthwise kernel of a subnet (transformed if needed)."""
        weight = self.depth_conv[0].weight
        if kernel == self.max_kernel:
            return weight[:channels]
        if torch.is_grad_enabled():
            # training / autograd: recompute so gradients reach both the kernel and the map
            return self._transform(weight[:channels], kernel)
        linear = self.kernel_transform(kernel)
        # Any in-place update (optimizer step, load_state_dict, reorder) bumps a version counter.
        key = (weight._version, weight.data_ptr(), linear.weight._version, linear.weight.data_ptr(),
               linear.bias._version, weight.dtype, weight.device)
        cached = self._kernel_cache.get(kernel)
        if cached is None or cached[0] != key:
            cached = (key, self._transform(weight, kernel))
            self._kernel_cache[kernel] = cached
        return cached[1][:channels]

    def forward(self, x: Tensor, out_channels: int, kernel: int, mid_channels: int, residual: bool) -> Tensor:
        y = F.conv2d(x, self.inv[0].weight[:mid_channels, : x.shape[1]])
        y = F.relu6(self.inv[1](y), inplace=True)
        y = F.conv2d(y, self.depthwise_weight(kernel, mid_channels), None, self.stride, kernel // 2, 1, mid_channels)
        y = F.relu6(self.depth_conv[1](y), inplace=True)
        y = self.point_conv[1](F.conv2d(y, self.point_conv[0].weight[:out_channels, :mid_channels]))
        return x + y if residual else y
