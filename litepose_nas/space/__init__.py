"""Architectures and search spaces."""
from .arch import Arch, Block, Stage
from .published import load_arch
from .search_space import INACTIVE, ArchArrays, Dimension, SearchSpace, StageSpace, resolve_space_path

__all__ = ["Arch", "Block", "Stage", "SearchSpace", "StageSpace", "Dimension", "ArchArrays", "INACTIVE", "resolve_space_path",
           "load_arch"]
