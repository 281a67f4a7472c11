"""Small composable layers of the LitePose network, named as in the original state_dict."""
from __future__ import annotations

from torch import Tensor, nn

from ..space.structure import BN_EPS, BN_MOMENTUM, FINAL_KERNEL


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class ConvBNAct(nn.Sequential):
    """conv (no bias) + BN (+ activation): keys ``0`` (conv) and ``1`` (BN)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = nn.ReLU6
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            batch_norm(out_ch),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (``inv``), kxk depthwise (``depth_conv``), 1x1 project
    (``point_conv``); residual when stride 1 and in == out."""

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.inv = ConvBNAct(in_ch, mid_ch, 1)
        self.depth_conv = ConvBNAct(mid_ch, mid_ch, kernel, stride, groups=mid_ch)
        self.point_conv = ConvBNAct(mid_ch, out_ch, 1, act=None)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        y = self.point_conv(self.depth_conv(self.inv(x)))
        return x + y if self.use_residual else y


class SepConv(nn.Module):
    """Final separable conv: depthwise 5x5 + BN + ReLU + pointwise 1x1 (``conv.0/.1/.3``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = FINAL_KERNEL) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, kernel, 1, kernel // 2, groups=in_ch, bias=False),
            batch_norm(in_ch),
            nn.ReLU(),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def deconv(in_ch: int, out_ch: int) -> nn.ConvTranspose2d:
    """4x4 stride-2 transposed conv that doubles the resolution (weight ``[in, out, 4, 4]``)."""
    return nn.ConvTranspose2d(in_ch, out_ch, 4, 2, 1, bias=False)
