"""PyTorch models: the static LitePose network."""
from .layers import ConvBNAct, InvertedResidual, SepConv
from .litepose import LitePose, build_model, count_parameters, output_shapes
from .registry import create_model, list_models, published_arch

__all__ = ["LitePose", "build_model", "create_model", "list_models", "published_arch", "count_parameters", "output_shapes", "ConvBNAct", "InvertedResidual", "SepConv"]
