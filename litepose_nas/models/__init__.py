"""PyTorch models: the static LitePose network."""
from .layers import ConvBNAct, InvertedResidual, SepConv
from .litepose import LitePose, build_model, count_parameters, output_shapes

__all__ = ["LitePose", "build_model", "count_parameters", "output_shapes", "ConvBNAct", "InvertedResidual", "SepConv"]
