"""Structural constants of the LitePose family (fixed by the original design, not searched)."""
from __future__ import annotations

import numpy as np

STEM_KERNEL = 3  # stem conv 3x3 s2, then depthwise 3x3 s1
DECONV_KERNEL = 4  # ConvTranspose2d k4 s2 p1: doubles the resolution
FINAL_KERNEL = 5  # depthwise kernel of the final separable convs
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor``, never below it nor 10% below ``value`` (MobileNetV2)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def expanded_channels(in_channels: int, expansion: int) -> int:
    """Width of an inverted-residual block's hidden layer."""
    return make_divisible(round(in_channels * expansion))


def expanded_channels_array(in_channels: np.ndarray, expansion: np.ndarray) -> np.ndarray:
    """Vectorized :func:`expanded_channels` (0 where ``expansion`` is 0, i.e. inactive)."""
    value = np.asarray(in_channels, dtype=np.int64) * np.asarray(expansion, dtype=np.int64)
    rounded = np.maximum(8, (value + 4) // 8 * 8)
    rounded = np.where(rounded < 0.9 * value, rounded + 8, rounded)
    return np.where(value > 0, rounded, 0)


def conv_out_size(size: np.ndarray | int, kernel: np.ndarray | int, stride: np.ndarray | int) -> np.ndarray | int:
    """Output side of a conv with padding ``kernel // 2``."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1
