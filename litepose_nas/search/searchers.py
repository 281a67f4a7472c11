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

from .problem import Problem, SearchBudget
from .result import SearchResult


class Searcher:
    """Base class: ``run(problem, limits, seed, progress)`` -> :class:`SearchResult`."""

    name = "searcher"

    def run(self, problem: Problem, limits: Sequence[float], seed: int, progress: bool = False) -> SearchResult:
        raise NotImplementedError


@dataclass
class EvolutionSearcher(Searcher):
    """The original Lite Pose evolution (population x generations; see :class:`SearchBudget`)."""

    population: int = 40
    generations: int = 40
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    mutate_prob: float = 0.1
    grow: bool = True
    name = "evolution"

    @property
    def budget(self) -> SearchBudget:
        return SearchBudget(self.population, self.generations, self.parent_ratio, self.mutation_ratio,
                            self.mutate_prob, self.grow)

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
        return EvolutionSearcher(budget.population, budget.generations, budget.parent_ratio, budget.mutation_ratio,
                                 budget.mutate_prob, budget.grow)
    if algo == "random":
        return RandomSearcher(budget.n_evaluations)
    if algo == "exhaustive":
        return ExhaustiveSearcher()
    return OptunaSearcher(trials=budget.n_evaluations, **options)
