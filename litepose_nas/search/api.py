"""One entry point for every searcher: ``search(space, objective, constraints, budget, seed)``."""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import InputError
from ..space import SearchSpace
from .constraints import Constraint, Objective
from .problem import Problem, SearchBudget, as_budget
from .result import SearchResult

ALGOS = ("evolution", "optuna", "random", "exhaustive")


def search(space: SearchSpace, objective: Objective, constraints: Constraint | Sequence[Constraint],
           budget: SearchBudget | int | dict | None = None, seed: int = 0, *, algo: str = "evolution",
           limits: Sequence[float] | None = None, progress: bool = False, **options: Any) -> SearchResult:
    """Search ``space`` for the architectures maximizing ``objective`` under ``constraints``.

    ``constraints``: one :class:`Constraint` or a list; the first is the *budget* constraint,
    searched under each of ``limits`` (default: its own limit), the others keep their limits.
    ``budget``: a :class:`SearchBudget` (default: the original population 40 x 40 generations)
    or a number of evaluations. ``algo``: evolution | optuna | random | exhaustive.
    ``options`` go to the searcher: optuna takes ``storage``, ``study_name``, ``multi_objective``,
    ``workers``.
    """
    if algo not in ALGOS:
        raise InputError(f"algorithm {algo!r} not known (allowed: {', '.join(ALGOS)})")
    problem = Problem(space, objective, constraints)
    limits = sorted(float(x) for x in (limits if limits is not None else [problem.primary.limit]))
    if not limits:
        raise InputError("no budget limits given")
    if any(x <= 0 for x in limits):
        raise InputError(f"budget limits must be positive, got {', '.join(f'{x:g}' for x in limits)}")
    b = as_budget(budget)
    if algo != "optuna" and options:
        raise InputError(f"options {', '.join(sorted(options))} apply to the optuna searcher only")
    if algo == "evolution":
        from .evolution import evolution_search

        return evolution_search(problem, limits, b, seed, progress)
    if algo == "random":
        from .random_search import random_search

        return random_search(problem, limits, b, seed, progress)
    if algo == "exhaustive":
        from .exhaustive import exhaustive_search

        return exhaustive_search(problem, limits, progress)
    from .optuna_search import optuna_search

    return optuna_search(problem, limits, b, seed, progress=progress, **options)
