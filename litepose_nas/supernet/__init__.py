"""The weight-sharing supernet: dynamic layers, ``SuperLitePose``, channel re-ordering, BN recalibration."""
from .block import SuperInvertedResidual, centre_crop, transform_kernel_sizes
from .bn import recalibrate_bn
from .layers import DynamicBatchNorm2d, DynamicConv2d, DynamicConvTranspose2d, DynamicDepthwiseConv2d, DynamicSepConv
from .model import BlockPlan, SubnetPlan, SuperLitePose, extract_subnet
from .reorder import channel_groups, reorder_channels

__all__ = [
    "SuperLitePose", "extract_subnet", "recalibrate_bn", "reorder_channels", "channel_groups", "SubnetPlan", "BlockPlan",
    "SuperInvertedResidual", "centre_crop", "transform_kernel_sizes",
    "DynamicBatchNorm2d", "DynamicConv2d", "DynamicConvTranspose2d", "DynamicDepthwiseConv2d", "DynamicSepConv",
]
