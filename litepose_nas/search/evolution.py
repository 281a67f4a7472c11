"""Evolutionary search on encoded numpy batches (the Lite Pose / Once-for-All scheme).

Each generation keeps the best ``parent_ratio`` of the population as parents and refills the
population with children: ``mutation_ratio`` of them by mutating a random parent (each choice
resampled with probability ``mutate_prob``), the rest by uniform crossover of two random
parents. Children that break a constraint, or that were scored before, are rejected before the
objective sees them; candidates are drawn in batches, so a generation is a few numpy calls.
Unlike the original (which resampled without limit and could hang), an impossible budget is
detected up front, and when new feasible children are too rare to find the generation goes on
with fewer (reported in the history) after raising the mutation rate for a while.

Also unlike the original, the first population and every child are *grown* towards the budget
before they are scored (:func:`grow_to_limit`, cost model only, no extra evaluations): the best
subnet under a budget sits on its boundary, and a mutation that frees budget (a lower
resolution) is otherwise judged with the budget half spent. At the original budget this took
the share of seeds that find the exhaustive optimum from about half to ~99 %
(``benchmarks/bench_search.py``); ``SearchBudget(grow=False)`` restores the original scheme.

One run per budget limit, each with the full budget; everything is driven by one seeded
``numpy.random.Generator``, so a seed gives the same result.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from .problem import Problem, SearchBudget
from .result import SearchResult

MAX_REJECTION_ROUNDS = 20
MAX_EMPTY_ROUNDS = 6


def mutate_rows(space, rows: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
    """Mutate each *variable* choice with probability ``prob`` to a different value; every row
    changes at least one choice (a mutant identical to its parent is wasted work).

    Dimensions with a single choice are left out, so ``prob`` means what it meant in the
    original space, whose genes were exactly its variable choices.
    """
    counts = space.choice_counts()
    variable = np.flatnonzero(counts > 1)
    rows = np.array(rows, dtype=np.int64)
    n, v = len(rows), len(variable)
    if v == 0:
        return rows
    flip = rng.random((n, v)) < prob
    forced = rng.integers(v, size=n)
    flip[np.arange(n), forced] |= ~flip.any(axis=1)
    k = counts[variable][None, :]
    current = rows[:, variable]
    # inactive slots (-1) take a uniform value, active ones a different value than before
    shift = (rng.random((n, v)) * (k - 1)).astype(np.int64) + 1
    fresh = np.where(current < 0, (rng.random((n, v)) * k).astype(np.int64), (current + shift) % k)
    rows[:, variable] = np.where(flip | (current < 0), fresh, current)
    return space.canonicalize(rows, rng)


def grow_to_limit(problem: Problem, rows: np.ndarray, limit: float, rng: np.random.Generator,
                  rounds: int | None = None) -> np.ndarray:
    """Push feasible rows towards the budget: random single-choice changes that raise the primary
    cost and keep every constraint are kept. Bigger subnets of a space are (nearly always) more
    accurate, so the best subnet under a budget sits on its boundary; growing lets a mutation that
    frees budget (a lower resolution, say) spend it elsewhere instead of being judged half-empty.
    """
    space = problem.space
    counts = space.choice_counts()
    variable = np.flatnonzero(counts > 1)
    rows = np.array(rows, dtype=np.int64)
    if not len(rows) or not len(variable):
        return rows
    depth_dims = np.array([d.kind == "depth" for d in space.dimensions])
    ok, costs = problem.feasible(rows, limit)
    stale = 0
    for _ in range(rounds or 2 * len(variable)):
        dim = variable[rng.integers(len(variable), size=len(rows))]
        shift = (rng.random(len(rows)) * (counts[dim] - 1)).astype(np.int64) + 1
        trial = rows.copy()
        at = np.arange(len(rows))
        active = trial[at, dim] >= 0
        trial[at, dim] = np.where(active, (trial[at, dim] + shift) % counts[dim], trial[at, dim])
        if depth_dims[dim].any():  # a depth changed: blocks appear or vanish
            trial = space.canonicalize(trial, rng)
        t_ok, t_costs = problem.feasible(trial, limit)
        better = ok & t_ok & active & (t_costs[:, 0] > costs[:, 0])
        rows[better], costs[better] = trial[better], t_costs[better]
        stale = 0 if better.any() else stale + 1
        if stale >= len(variable):  # nothing grew for a while: the rows are (nearly) maximal
            break
    return rows


class SeenRows:
    """Rows already scored, by a 64-bit hash of the row (collisions are negligible at these sizes)."""

    def __init__(self, num_dims: int, rng: np.random.Generator) -> None:
        self.weights = rng.integers(1, 2**62, size=num_dims, dtype=np.int64)
        self.seen: set[int] = set()

    def keys(self, rows: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return (rows + 2) @ self.weights  # int64 wraps around: a fine hash

    def new_mask(self, rows: np.ndarray) -> np.ndarray:
        """True for rows neither seen before nor repeated earlier in ``rows``."""
        keys = self.keys(rows).tolist()
        mask = np.zeros(len(keys), dtype=bool)
        batch: set[int] = set()
        for i, k in enumerate(keys):
            if k not in self.seen and k not in batch:
                mask[i] = True
                batch.add(k)
        return mask

    def add(self, rows: np.ndarray) -> None:
        self.seen.update(self.keys(rows).tolist())


def _feasible_children(problem: Problem, makers: Sequence[Callable[[int, int], np.ndarray]], wanted: Sequence[int],
                       limit: float, seen: SeenRows, oversample: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """New feasible children: ``wanted[i]`` of them from ``makers[i](batch, round)``, with costs.
    After two rounds, the unmet need of the other makers moves to ``makers[0]`` (mutation).

    Every maker's candidates go through one cost call per round (the cost model's overhead is
    per call). Children already scored are rejected like infeasible ones (re-scoring them would
    only waste evaluations). Fewer come back when new feasible children are too rare.
    """
    need = list(wanted)
    rows: list[np.ndarray] = []
    costs: list[np.ndarray] = []
    empty_rounds = 0
    for round_ in range(MAX_REJECTION_ROUNDS):
        if sum(need) <= 0:
            break
        if round_ == 2:
            # crossover of a converged population mostly repeats known rows: mutate instead
            need = [need[0] + sum(need[1:])] + [0] * (len(need) - 1)
        parts = [(i, make(oversample * k + 4, round_)) for i, (make, k) in enumerate(zip(makers, need)) if k > 0]
        cand = np.concatenate([p for _, p in parts])
        origin = np.concatenate([np.full(len(p), i) for i, p in parts])
        new = seen.new_mask(cand)
        cand, origin = cand[new], origin[new]
        if not len(cand):
            empty_rounds += 1
            if empty_rounds >= MAX_EMPTY_ROUNDS:
                break
            continue
        ok, c = problem.feasible(cand, limit)
        for i in range(len(need)):
            idx = np.flatnonzero(ok & (origin == i))
            idx = idx[: max(need[i], 0)]
            if len(idx):
                rows.append(cand[idx])
                costs.append(c[idx])
                seen.add(cand[idx])
                need[i] -= len(idx)
    if not rows:
        return np.zeros((0, problem.space.num_dimensions), dtype=np.int64), np.zeros((0, len(problem.constraints)))
    return np.concatenate(rows), np.concatenate(costs)




def evolve(problem: Problem, limit: float, budget: SearchBudget, rng: np.random.Generator,
           history: list[dict], progress: Callable[[int], None] | None = None) -> None:
    """One evolutionary run under ``cost <= limit``; every candidate is logged in ``problem``."""
    space = problem.space
    P = budget.population
    n_parents = max(1, int(round(P * budget.parent_ratio)))
    n_children = P - n_parents
    n_mutate = int(round(n_children * budget.mutation_ratio))
    n_cross = n_children - n_mutate

    seen = SeenRows(space.num_dimensions, rng)
    seeds = problem.check_possible(limit, rng)
    pop = np.zeros((0, space.num_dimensions), dtype=np.int64)
    for _ in range(MAX_REJECTION_ROUNDS):
        cand = problem.sample_feasible(P - len(pop), limit, rng, seeds)
        if budget.grow:
            cand = grow_to_limit(problem, cand, limit, rng)  # grown rows can coincide: draw again
        cand = cand[seen.new_mask(cand)]
        seen.add(cand)
        pop = np.concatenate([pop, cand])
        if len(pop) >= P:
            break
    scores = problem.score(pop)
    best = float(scores.max())
    history.append({"limit": limit, "generation": 0, "evaluations": problem.evaluations, "best": best,
                    "mean": float(scores.mean())})
    for gen in range(1, budget.generations + 1):
        order = np.argsort(-scores, kind="stable")[:n_parents]
        parents, parent_scores = pop[order], scores[order]

        def mutate(n: int, round_: int) -> np.ndarray:
            # raise the rate while new children are hard to find (a converged population)
            prob = min(1.0, budget.mutate_prob * (1 + round_ // 5))
            rows = mutate_rows(space, parents[rng.integers(len(parents), size=n)], rng, prob)
            return grow_to_limit(problem, rows, limit, rng) if budget.grow else rows

        def cross(n: int, round_: int) -> np.ndarray:
            a = parents[rng.integers(len(parents), size=n)]
            b = parents[rng.integers(len(parents), size=n)]
            rows = space.crossover_encoded(a, b, rng)
            return grow_to_limit(problem, rows, limit, rng) if budget.grow else rows

        children, child_costs = _feasible_children(problem, (mutate, cross), (n_mutate, n_cross), limit, seen)
        child_scores = problem.score(children, child_costs) if len(children) else np.zeros(0)
        pop = np.concatenate([parents, children])
        scores = np.concatenate([parent_scores, child_scores])
        best = max(best, float(child_scores.max()) if len(child_scores) else best)
        entry = {"limit": limit, "generation": gen, "evaluations": problem.evaluations, "best": best,
                 "mean": float(scores.mean())}
        if len(children) < n_children:
            entry["children_not_found"] = n_children - len(children)
        history.append(entry)
        if progress:
            progress(1)


def evolution_search(problem: Problem, limits: Sequence[float], budget: SearchBudget, seed: int,
                     progress: bool = False) -> SearchResult:
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    history: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=budget.generations * len(limits), desc="evolution", unit="gen")
    for limit in sorted(limits):
        evolve(problem, float(limit), budget, rng, history, bar.update if bar else None)
    if bar:
        bar.close()
    return problem.result("evolution", limits, seed, budget, history, time.perf_counter() - start)
