"""Random search: the baseline every searcher is compared with.

For each budget limit it scores ``budget.n_evaluations`` uniformly sampled *feasible*
architectures (infeasible samples are rejected by the cost model and not scored), the same
evaluation count the other searchers get.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from .problem import Problem, SearchBudget
from .result import SearchResult

CHUNK = 4096


def random_search(problem: Problem, limits: Sequence[float], budget: SearchBudget, seed: int,
                  progress: bool = False) -> SearchResult:
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    history: list[dict] = []
    n = budget.n_evaluations
    for limit in sorted(limits):
        seeds = problem.check_possible(float(limit), rng)
        done, best = 0, -np.inf
        while done < n:
            k = min(CHUNK, n - done)
            rows = problem.sample_feasible(k, float(limit), rng, seeds)
            scores = problem.score(rows)
            done += k
            best = max(best, float(scores.max()))
            history.append({"limit": float(limit), "evaluations": problem.evaluations, "best": best})
    return problem.result("random", limits, seed, budget, history, time.perf_counter() - start)
