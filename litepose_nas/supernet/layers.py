"""Dynamic layers: hold the largest tensor, run on its leading channels.

Every layer subclasses the matching ``torch.nn`` layer so that parameter names, initialisation
and ``isinstance`` checks (e.g. BN recalibration) stay those of the static network. The forward
passes slice the weights with views and call the functional ops directly: a subnet forward must
not cost much more than the static network's (no per-forward copies, no module bookkeeping).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..space.structure import BN_EPS, BN_MOMENTUM, FINAL_KERNEL


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over the leading ``x.shape[1]`` channels.

    The running statistics are updated in place through views of the full buffers, so training
    a subnet updates exactly the statistics of the channels it used.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            # momentum None = cumulative average, exactly as nn.BatchNorm2d does it
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean[:c] if track and self.running_mean is not None else None,
            self.running_var[:c] if track and self.running_var is not None else None,
            self.weight[:c],
            self.bias[:c],
            use_batch_stats,
            factor,
            self.eps,
        )


class DynamicConv2d(nn.Conv2d):
    """Dense conv (no bias) on the leading input channels, producing ``out_channels`` leading outputs."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__(in_ch, out_ch, kernel, stride, kernel // 2, bias=False)

    def forward(self, x: Tensor, out_channels: int | None = None) -> Tensor:  # type: ignore[override]
        out = self.out_channels if out_channels is None else out_channels
        return F.conv2d(x, self.weight[:out, : x.shape[1]], None, self.stride, self.padding)


class DynamicDepthwiseConv2d(nn.Conv2d):
    """Depthwise conv over the leading ``x.shape[1]`` channels (fixed kernel)."""

    def __init__(self, channels: int, kernel: int, stride: int = 1) -> None:
        super().__init__(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        return F.conv2d(x, self.weight[:c], None, self.stride, self.padding, 1, c)


class DynamicConvTranspose2d(nn.ConvTranspose2d):
    """The head's 4x4 stride-2 transposed conv; weight ``[in, out, 4, 4]`` sliced ``[:in, :out]``."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, 4, 2, 1, bias=False)

    def forward(self, x: Tensor, out_channels: int | None = None) -> Tensor:  # type: ignore[override]
        out = self.out_channels if out_channels is None else out_channels
        return F.conv_transpose2d(x, self.weight[: x.shape[1], :out], None, 2, 1)


class DynamicSepConv(nn.Module):
    """Final separable conv (depthwise 5x5, BN, ReLU, pointwise) on the leading input channels.

    Its output width is fixed (heatmaps and tags), only the input is elastic. Keys ``conv.0``,
    ``conv.1``, ``conv.3`` as in the original.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = FINAL_KERNEL) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            DynamicDepthwiseConv2d(in_ch, kernel),
            DynamicBatchNorm2d(in_ch),
            nn.ReLU(),
            DynamicConv2d(in_ch, out_ch, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.conv[1](self.conv[0](x)), inplace=True)
        return self.conv[3](y)
