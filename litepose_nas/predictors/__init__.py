"""Accuracy predictors: learned models of (architecture -> AP) and the exact supernet evaluator.

``Predictor(space, 'mlp'|'gbdt'|'ridge'|'gp').fit(archs, ap)`` then ``predict(archs)``;
:func:`fit_predictor` cross-validates and picks a model; ``save`` / :func:`load_predictor`
use JSON + ``.npz`` (no pickle). :class:`ExactPredictor` evaluates subnets of a trained
supernet directly (torch, imported on first use).
"""
from __future__ import annotations

from .._lazy import lazy_getattr
from .cv import CVReport, ModelScore, cross_validate, fit_predictor
from .data import EvalTable, append_row, read_evals, write_evals
from .features import Featurizer, SpaceTranslator, space_fingerprint
from .models import MODEL_TYPES
from .predictor import Predictor, default_predictor, load_predictor, shipped_predictors

_LAZY = {
    "ExactPredictor": "litepose_nas.predictors.exact",
    "collect_evals": "litepose_nas.predictors.collect",
    "stratified_sample": "litepose_nas.predictors.collect",
}

__all__ = [
    "Predictor", "fit_predictor", "cross_validate", "CVReport", "ModelScore", "load_predictor", "default_predictor",
    "shipped_predictors", "Featurizer", "SpaceTranslator", "space_fingerprint", "MODEL_TYPES", "EvalTable",
    "read_evals", "append_row", "write_evals", "ExactPredictor", "collect_evals", "stratified_sample",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
