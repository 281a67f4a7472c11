"""Exhaustive scoring of a small space (the original Lite Pose space has 245,760 architectures).

Gives the true optimum under the objective for each budget and the true Pareto front, against
which searchers are measured (regret, hypervolume ratio).
"""
from __future__ import annotations

import time
from typing import Sequence


from .problem import Problem, SearchBudget
from .result import SearchResult

CHUNK = 65536


def exhaustive_search(problem: Problem, limits: Sequence[float], progress: bool = False,
                      limit_archs: int = 5_000_000) -> SearchResult:
    """Score every architecture of ``problem.space`` (refuses spaces above ``limit_archs``)."""
    start = time.perf_counter()
    everything = problem.space.enumerate_encoded(limit=limit_archs)
    chunks = range(0, len(everything), CHUNK)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="exhaustive", unit="chunk")
    for i in chunks:
        problem.score(everything[i:i + CHUNK])
    budget = SearchBudget(evaluations=len(everything))
    history = [{"evaluations": problem.evaluations}]
    return problem.result("exhaustive", limits, 0, budget, history, time.perf_counter() - start)
