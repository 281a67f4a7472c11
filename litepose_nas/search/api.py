"""One entry point for every searcher: ``search(space, objective, constraints, budget, seed)``."""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import InputError
from ..space import SearchSpace
from .constraints import Constraint, Objective
from .problem import Problem, SearchBudget, as_budget
from .result import SearchResult
from .searchers import Searcher, searcher_for

ALGOS = ("evolution", "optuna", "random", "exhaustive")


def search(space: SearchSpace, objective: Objective, constraints: Constraint | Sequence[Constraint],
           budget: SearchBudget | int | dict | None = None, seed: int = 0, *, algo: str = "evolution",
           searcher: Searcher | None = None, limits: Sequence[float] | None = None, progress: bool = False,
           **options: Any) -> SearchResult:
    """Search ``space`` for the architectures maximizing ``objective`` under ``constraints``.

    ``constraints``: one :class:`Constraint` or a list; the first is the *budget* constraint,
    searched under each of ``limits`` (default: its own limit), the others keep their limits.
    ``searcher``: an :class:`EvolutionSearcher` (default), :class:`OptunaSearcher`,
    :class:`RandomSearcher` or :class:`ExhaustiveSearcher` holding its settings. The string form
    ``algo=`` with ``budget`` (a :class:`SearchBudget` or a number of evaluations) and, for optuna,
    ``options`` (``storage``, ``study_name``, ``multi_objective``, ``workers``, ``sampler``) builds
    the same searcher.
    """
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
