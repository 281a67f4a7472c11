"""litepose-nas: hardware-aware architecture search for real-time multi-person pose estimation."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_getattr
from .errors import ArchError, CheckpointError, DataError, InputError, JobError, PredictorError, SpaceError, TableError
from .space import Arch, ArchArrays, SearchSpace

__version__ = "0.1.0"

# torch-dependent names load on first use, so torch-free commands (profile) import this package.
_LAZY = {
    "build_model": "litepose_nas.models",
    "create_model": "litepose_nas.models",
    "list_models": "litepose_nas.models",
    "LitePose": "litepose_nas.models",
    "macs": "litepose_nas.cost",
    "params": "litepose_nas.cost",
    "LatencyTable": "litepose_nas.latency",
    "load_table": "litepose_nas.latency",
    "list_tables": "litepose_nas.latency",
    "open_dataset": "litepose_nas.data",
    "PoseDataset": "litepose_nas.data",
    "make_loader": "litepose_nas.data",
    "generate_synthetic": "litepose_nas.data",
    "PoseLoss": "litepose_nas.losses",
    "SuperLitePose": "litepose_nas.supernet",
    "recalibrate_bn": "litepose_nas.supernet",
    "load_original_checkpoint": "litepose_nas.checkpoints",
    "TrainConfig": "litepose_nas.train",
    "Trainer": "litepose_nas.train",
    "export_model": "litepose_nas.export",
    "PoseEstimator": "litepose_nas.export",
    "group": "litepose_nas.decode",
    "keypoint_metrics": "litepose_nas.metrics",
    "search": "litepose_nas.search",
    "EvolutionSearcher": "litepose_nas.search",
    "OptunaSearcher": "litepose_nas.search",
    "RandomSearcher": "litepose_nas.search",
    "ExhaustiveSearcher": "litepose_nas.search",
    "error_breakdown": "litepose_nas.metrics",
    "evaluate": "litepose_nas.evaluate",
    "SearchResult": "litepose_nas.search",
    "SearchBudget": "litepose_nas.search",
    "Constraint": "litepose_nas.search",
    "Predictor": "litepose_nas.predictors",
    "load_predictor": "litepose_nas.predictors",
    "fit_predictor": "litepose_nas.predictors",
    "ExactPredictor": "litepose_nas.predictors",
    "run_demo": "litepose_nas.demo",
}

__all__ = [
    "Arch", "ArchArrays", "SearchSpace", "create_model", "list_models", "build_model", "LitePose", "macs", "params", "LatencyTable", "load_table", "list_tables",
    "open_dataset", "PoseDataset", "make_loader", "generate_synthetic", "PoseLoss",
    "SuperLitePose", "recalibrate_bn", "load_original_checkpoint",
    "TrainConfig", "Trainer",
    "export_model", "PoseEstimator",
    "group", "keypoint_metrics", "error_breakdown", "evaluate",
    "search", "EvolutionSearcher", "OptunaSearcher", "RandomSearcher", "ExhaustiveSearcher",
    "SearchResult", "SearchBudget", "Constraint", "Predictor", "load_predictor", "fit_predictor", "ExactPredictor",
    "run_demo",
    "ArchError", "SpaceError", "TableError", "DataError", "CheckpointError", "PredictorError", "InputError", "JobError",
]


__getattr__ = lazy_getattr(__name__, _LAZY)

if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs (never run)
    from .checkpoints import load_original_checkpoint
    from .cost import macs, params
    from .data import PoseDataset, generate_synthetic, make_loader, open_dataset
    from .decode import group
    from .demo import run_demo
    from .export import PoseEstimator, export_model
    from .latency import LatencyTable, list_tables, load_table
    from .losses import PoseLoss
    from .evaluate import evaluate
    from .metrics import error_breakdown, keypoint_metrics
    from .models import LitePose, build_model, create_model, list_models
    from .predictors import ExactPredictor, Predictor, fit_predictor, load_predictor
    from .search import (
        Constraint, EvolutionSearcher, ExhaustiveSearcher, OptunaSearcher, RandomSearcher, SearchBudget, SearchResult,
        search,
    )
    from .supernet import SuperLitePose, recalibrate_bn
    from .train import Trainer, TrainConfig
