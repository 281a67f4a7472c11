"""litepose-nas: hardware-aware architecture search for real-time multi-person pose estimation."""
from __future__ import annotations

from .errors import ArchError, CheckpointError, DataError, InputError, JobError, PredictorError, SpaceError, TableError
from .space import Arch, ArchArrays, SearchSpace

__version__ = "0.1.0"

# torch-dependent names load on first use, so torch-free commands (profile) import this package.
_LAZY = {
    "build_model": "litepose_nas.models",
    "LitePose": "litepose_nas.models",
    "macs": "litepose_nas.cost",
    "params": "litepose_nas.cost",
}

__all__ = [
    "Arch", "ArchArrays", "SearchSpace", "build_model", "LitePose", "macs", "params",
    "ArchError", "SpaceError", "TableError", "DataError", "CheckpointError", "PredictorError", "InputError", "JobError",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'litepose_nas' has no attribute {name!r}")
