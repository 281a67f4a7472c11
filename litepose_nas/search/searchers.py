"""Searchers as objects, passed to :func:`litepose_nas.search`: each holds its algorithm's settings
and delegates to the search function of its module (so there is one implementation per algorithm).

    >>> import optuna, litepose_nas as ln
    >>> ln.search(space, objective, constraint, searcher=ln.EvolutionSearcher(population=40, generations=40))
    >>> ln.search(space, objective, constraint,
    ...           searcher=ln.OptunaSearcher(sampler=optuna.samplers.CmaEsSampler(), trials=500))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .problem import DEFAULT_GENERATIONS, DEFAULT_POPULATION, Problem, SearchBudget
from .result import SearchResult


class Searcher:
    """Base class: ``run(problem, limits, seed, progress)`` -> :class:`SearchResult`."""

    name = "searcher"

    def run(self, problem: Problem, limits: Sequence[float], seed: int, progress: bool = False) -> SearchResult:
        raise NotImplementedError


class EvolutionSearcher(Searcher):
    """Evolution: ``population`` x ``generations`` (the original Lite Pose search: 40 x 40); ``settings`` are the
    other fields of :class:`SearchBudget` (``parent_ratio``, ``mutation_ratio``, ``mutate_prob``,
    ``grow``)."""

    name = "evolution"

    def __init__(self, population: int = DEFAULT_POPULATION, generations: int = DEFAULT_GENERATIONS,
                 **settings: Any) -> None:
        self.budget = SearchBudget(population, generations, **settings)

    def __repr__(self) -> str:
        return f"EvolutionSearcher({self.budget})"

    def run(self, problem: Problem, limits: Sequence[float], seed: int, progress: bool = False) -> SearchResult:
        from .evolution import evolution_search

        return evolution_search(problem, limits, self.budget, seed, progress)


@dataclass
class RandomSearcher(Searcher):
    """``evaluations`` uniform random architectures per budget limit."""

    evaluations: int = 1600
    name = "random"

    def run(self, problem: Problem, limits: Sequence[float], seed: int, progress: bool = False) -> SearchResult:
        from .random_search import random_search

        return random_search(problem, limits, SearchBudget(evaluations=self.evaluations), seed, progress)


@dataclass
class ExhaustiveSearcher(Searcher):
    """Every architecture of a small space (the exact optimum; refuses large spaces)."""

    name = "exhaustive"

    def run(self, problem: Problem, limits: Sequence[float], seed: int, progress: bool = False) -> SearchResult:
        from .exhaustive import exhaustive_search

        return exhaustive_search(problem, limits, progress)


@dataclass
class OptunaSearcher(Searcher):
    """An Optuna study per budget limit. ``sampler``: any optuna sampler (default: multivariate
    TPE, or NSGA-II with ``multi_objective``); ``storage``: an optuna storage URL (share it and
    ``study_name`` between workers or machines)."""

    sampler: Any = None
    storage: str | None = None
    study_name: str | None = None
    trials: int = 1600
    multi_objective: bool = False
    workers: int = 1
    name = "optuna"

    def run(self, problem: Problem, limits: Sequence[float], seed: int, progress: bool = False) -> SearchResult:
        from .optuna_search import optuna_search

        return optuna_search(problem, limits, SearchBudget(evaluations=self.trials), seed, storage=self.storage,
                             study_name=self.study_name, multi_objective=self.multi_objective, workers=self.workers,
                             progress=progress, sampler=self.sampler)


def searcher_for(algo: str, budget: SearchBudget, options: dict[str, Any]) -> Searcher:
    """The searcher the string form ``algo=...`` (with a budget and optuna options) stands for."""
    if algo == "evolution":
        searcher = EvolutionSearcher()
        searcher.budget = budget
        return searcher
    if algo == "random":
        return RandomSearcher(budget.n_evaluations)
    if algo == "exhaustive":
        return ExhaustiveSearcher()
    return OptunaSearcher(trials=budget.n_evaluations, **options)
