"""One entry point for every searcher: ``search(space, objective, constraints, budget, seed)``."""
from __future__ import annotations

import os
from typing import Any, Sequence

from ..errors import InputError
from ..space import SearchSpace
from .constraints import Constraint, Objective
from .defaults import as_space, default_constraints, default_objective
from .problem import Problem, SearchBudget, as_budget
from .result import SearchResult
from .searchers import Searcher, searcher_for

ALGOS = ("evolution", "optuna", "random", "exhaustive")


def search(space: SearchSpace | str | os.PathLike = "litepose", objective: Objective | None = None,
           constraints: Constraint | Sequence[Constraint] | None = None,
           budget: SearchBudget | int | dict | None = None, seed: int = 0, *, algo: str = "evolution",
           searcher: Searcher | None = None, limits: Sequence[float] | None = None, progress: bool = False,
           device: str | None = None, max_latency_ms: float | None = None, max_macs: float | None = None,
           predictor: Any = None, **options: Any) -> SearchResult:
    """Search ``space`` (a :class:`SearchSpace`, or a shipped name / YAML file) for the architectures
    maximizing ``objective`` under ``constraints``.

    Left out, they are what ``litepose-nas search`` works out (:mod:`litepose_nas.search.defaults`):
    ``constraints`` from ``device`` (default ``raspberry-pi-4``), ``max_latency_ms``, ``limits`` and
    ``max_macs``; ``objective`` from ``predictor`` (default: the shipped predictor for the space, else
    MACs as a proxy). ``search("litepose", max_latency_ms=120)`` is ``litepose-nas search
    --max-latency-ms 120``.

    ``constraints``: one :class:`Constraint` or a list; the first is the *budget* constraint,
    searched under each of ``limits`` (default: its own limit), the others keep their limits.
    ``searcher``: an :class:`EvolutionSearcher` (default), :class:`OptunaSearcher`,
    :class:`RandomSearcher` or :class:`ExhaustiveSearcher` holding its settings. The string form
    ``algo=`` with ``budget`` (a :class:`SearchBudget` or a number of evaluations) and, for optuna,
    ``options`` (``storage``, ``study_name``, ``multi_objective``, ``workers``, ``sampler``) builds
    the same searcher.
    """
    space = as_space(space)
    if constraints is None:
        constraints, limits = default_constraints(space, device=device, max_latency_ms=max_latency_ms,
                                                  limits=limits, max_macs=max_macs)
    elif device is not None or max_latency_ms is not None or max_macs is not None:
        raise InputError("device, max_latency_ms and max_macs build the constraints: pass them or constraints, "
                         "not both")
    if objective is None:
        objective = default_objective(space, predictor)
    elif predictor is not None:
        raise InputError("predictor builds the objective: pass it or objective, not both")
    problem = Problem(space, objective, constraints)
    limits = sorted(float(x) for x in (limits if limits is not None else [problem.primary.limit]))
    if not limits:
        raise InputError("no budget limits given")
    if any(x <= 0 for x in limits):
        raise InputError(f"budget limits must be positive, got {', '.join(f'{x:g}' for x in limits)}")
    if searcher is None:
        if algo not in ALGOS:
            raise InputError(f"algorithm {algo!r} not known (allowed: {', '.join(ALGOS)})")
        if algo != "optuna" and options:
            raise InputError(f"options {', '.join(sorted(options))} apply to the optuna searcher only")
        searcher = searcher_for(algo, as_budget(budget), options)
    elif budget is not None or options:
        raise InputError("a searcher object holds its own budget and options: pass them to it, not to search()")
    return searcher.run(problem, limits, seed, progress)
