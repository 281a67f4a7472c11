"""Hardware-aware architecture search: evolution, Optuna (TPE / NSGA-II), random, exhaustive.

``search(space, objective, constraints, budget, seed, algo=...) -> SearchResult``. Objectives
and constraints are vectorized functions of encoded architectures (:mod:`.constraints`).
"""
from __future__ import annotations

import sys
import types

from .api import ALGOS, search
from .constraints import (
    Constraint, Objective, device_latency_constraint, latency_constraint, macs_constraint, macs_proxy_objective,
    predictor_objective,
)
from .pareto import hypervolume_2d, pareto_mask
from .problem import Problem, SearchBudget
from .result import BudgetChoice, SearchResult
from .searchers import EvolutionSearcher, ExhaustiveSearcher, OptunaSearcher, RandomSearcher, Searcher

__all__ = [
    "search", "ALGOS", "Searcher", "EvolutionSearcher", "OptunaSearcher", "RandomSearcher", "ExhaustiveSearcher", "SearchResult", "BudgetChoice", "SearchBudget", "Problem", "Constraint", "Objective",
    "macs_constraint", "latency_constraint", "device_latency_constraint", "predictor_objective",
    "macs_proxy_objective", "pareto_mask", "hypervolume_2d",
]


class _CallableModule(types.ModuleType):
    """``litepose_nas.search`` is both this package and the top-level entry point: importing the
    package binds its name on ``litepose_nas``, so the package itself calls :func:`search`."""

    def __call__(self, *args, **kwargs) -> SearchResult:
        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
