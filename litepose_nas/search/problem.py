"""What every searcher shares: the problem (space, objective, constraints), the evaluation log,
feasibility checks (including the detection of impossible budgets) and the result assembly."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..space import SearchSpace
from .constraints import Constraint, Objective, as_constraints
from .result import BudgetChoice, SearchResult, make_front


DEFAULT_POPULATION = 40
DEFAULT_GENERATIONS = 80  # twice the original search's 40 (see SearchBudget)


@dataclass(frozen=True)
class SearchBudget:
    """Search effort. Evolution runs ``generations`` of ``population`` (``population +
    generations x children`` new evaluations per budget limit); the other searchers get
    ``evaluations`` (default ``population * generations``) per budget limit.

    The original Lite Pose search used population 40, 40 generations, 25 % parents, half of the
    children by mutation (probability 0.1 per choice) and half by crossover. The default runs 80
    generations: on a landscape with isolated optima the seven-operator search needs about twice the
    original's evaluations to find the optimum in >= 9 of 10 seeds, and a 4-budget search still takes
    under 2 s (docs/search.md). ``adaptive`` (the default) draws children from seven operators in
    adaptive shares, restarts after ``restart_after`` generations without improvement and shares one
    archive across the budget limits (:mod:`.evolution`); ``grow`` enables its
    growth-towards-the-budget operator.
    ``adaptive=False`` is the previous fixed scheme (every child grown when ``grow``;
    ``grow=False`` as well: the original scheme).
    """

    population: int = DEFAULT_POPULATION
    generations: int = DEFAULT_GENERATIONS
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    mutate_prob: float = 0.1
    grow: bool = True
    evaluations: int | None = None
    adaptive: bool = True
    restart_after: int = 12

    def __post_init__(self) -> None:
        if self.population < 2:
            raise InputError(f"population {self.population} too small (at least 2)")
        if self.generations < 0:
            raise InputError(f"generations {self.generations} must be >= 0")
        if not 0 < self.parent_ratio < 1:
            raise InputError(f"parent_ratio {self.parent_ratio} must lie in (0, 1)")
        if not 0 <= self.mutation_ratio <= 1:
            raise InputError(f"mutation_ratio {self.mutation_ratio} must lie in [0, 1]")
        if not 0 < self.mutate_prob <= 1:
            raise InputError(f"mutate_prob {self.mutate_prob} must lie in (0, 1]")
        if self.restart_after < 1:
            raise InputError(f"restart_after {self.restart_after} must be >= 1")
        if self.evaluations is not None and self.evaluations < 1:
            raise InputError(f"evaluations {self.evaluations} must be >= 1")

    @property
    def n_evaluations(self) -> int:
        return int(self.evaluations or self.population * self.generations)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_evaluations": self.n_evaluations}


def as_budget(budget: SearchBudget | int | dict | None) -> SearchBudget:
    if budget is None:
        return SearchBudget()
    if isinstance(budget, SearchBudget):
        return budget
    if isinstance(budget, dict):
        return SearchBudget(**budget)
    if isinstance(budget, (int, np.integer)):
        return SearchBudget(evaluations=int(budget))
    raise InputError(f"budget must be a SearchBudget, a dict or a number of evaluations, got {type(budget).__name__}")


class Problem:
    """The objective and constraints over one space, plus a log of every scored candidate.

    The first constraint is the *primary* one: its limit varies across the budgets of a search
    and its value is the cost axis of the Pareto front. The others keep their own limits.
    """

    def __init__(self, space: SearchSpace, objective: Objective, constraints: Constraint | Sequence[Constraint]) -> None:
        self.space = space
        self.objective = objective
        self.constraints = as_constraints(constraints)
        self.primary = self.constraints[0]
        # the log: growing buffers (capacity doubles), so appending is amortized O(batch) even in
        # runs 100x the default that read the log every generation
        self._log = (np.zeros((0, space.num_dimensions), dtype=np.int64), np.zeros(0),
                     np.zeros((0, len(self.constraints))))
        self.evaluations = 0

    # ------------------------------------------------------------------ vectorized checks
    def costs(self, encoded: np.ndarray) -> np.ndarray:
        """``[N, C]`` values of every constraint."""
        enc = np.atleast_2d(encoded)
        if len(self.constraints) == 1:  # the usual case, called many times per generation
            return self.primary.values(enc)[:, None]
        return np.stack([c.values(enc) for c in self.constraints], axis=1)

    def limits(self, primary_limit: float) -> np.ndarray:
        return np.array([primary_limit] + [c.limit for c in self.constraints[1:]], dtype=np.float64)

    def feasible(self, encoded: np.ndarray, primary_limit: float) -> tuple[np.ndarray, np.ndarray]:
        costs = self.costs(encoded)
        return np.all(costs <= self.limits(primary_limit), axis=1), costs

    # ------------------------------------------------------------------ scoring with a log
    def score(self, encoded: np.ndarray, costs: np.ndarray | None = None) -> np.ndarray:
        enc = np.atleast_2d(encoded)
        if costs is None:
            costs = self.costs(enc)
        scores = self.objective(enc)
        n, k = self.evaluations, len(enc)
        if n + k > len(self._log[1]):
            capacity = max(1024, 2 * (n + k))
            self._log = tuple(np.concatenate([a[:n], np.zeros((capacity - n,) + a.shape[1:], dtype=a.dtype)])
                              for a in self._log)
        for buf, new in zip(self._log, (enc, scores, costs)):
            buf[n:n + k] = new  # a copy: the caller's arrays stay theirs
        self.evaluations += k
        return scores

    def log(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every scored row, its score and costs, as read-only views (rows appended later never
        change a log taken earlier: they land past its end, or in a new buffer)."""
        views = tuple(a[: self.evaluations] for a in self._log)
        for v in views:
            v.flags.writeable = False
        return views

    # ------------------------------------------------------------------ impossible budgets
    def check_possible(self, primary_limit: float, rng: np.random.Generator, probe: int = 2048) -> np.ndarray:
        """Return some feasible rows, or raise :class:`InputError` naming the cheapest found.

        Probes the smallest architecture and random samples, then walks down from the cheapest
        ones by mutation: a budget nothing meets is reported instead of resampling forever.
        """
        limits = self.limits(primary_limit)
        cand = np.concatenate([self.space.encode([self.space.smallest()]), self.space.sample_encoded(rng, probe)])
        for _ in range(20):
            costs = self.costs(cand)
            ok = np.all(costs <= limits, axis=1)
            if ok.any():
                return cand[ok]
            # excess over the limits, relative, summed: walk towards cheaper rows
            excess = np.maximum(costs / np.maximum(limits, 1e-12) - 1.0, 0).sum(axis=1)
            cheapest = cand[np.argsort(excess)[:64]]
            cand = np.concatenate([cheapest, self.space.mutate_encoded(np.repeat(cheapest, 8, axis=0), rng, 0.2)])
        costs = self.costs(cand)
        parts = []
        for j, c in enumerate(self.constraints):
            if (costs[:, j] > limits[j]).all():
                parts.append(f"{c.label or c.name} limit {limits[j]:g} {c.unit}, cheapest found {costs[:, j].min():.4g} {c.unit}")
        detail = "; ".join(parts) or "no architecture meets all constraints at once"
        raise InputError(f"impossible budget in space '{self.space.name}': {detail}")

    def sample_feasible(self, n: int, primary_limit: float, rng: np.random.Generator,
                        seeds: np.ndarray | None = None, max_rounds: int = 200) -> np.ndarray:
        """``n`` random feasible rows (uniform sampling with rejection, vectorized).

        Where random samples are rarely feasible, mutations of feasible ``seeds`` fill the rest.
        """
        found: list[np.ndarray] = []
        total = 0
        batch = max(256, 4 * n)
        for round_ in range(max_rounds):
            cand = self.space.sample_encoded(rng, batch)
            ok, _ = self.feasible(cand, primary_limit)
            if ok.any():
                found.append(cand[ok])
                total += int(ok.sum())
            if total >= n:
                break
            if round_ >= 4 and total < n // 4:
                break  # random sampling is too sparse here: grow from the feasible seeds
        pool = np.concatenate(found) if found else np.zeros((0, self.space.num_dimensions), dtype=np.int64)
        if len(pool) < n:
            if seeds is None or not len(seeds):
                seeds = self.check_possible(primary_limit, rng)
            pool = np.concatenate([pool, seeds])
            for _ in range(max_rounds):
                if len(pool) >= n:
                    break
                parents = pool[rng.integers(len(pool), size=batch)]
                cand = self.space.mutate_encoded(parents, rng, 0.2)
                ok, _ = self.feasible(cand, primary_limit)
                pool = np.concatenate([pool, cand[ok]])
        if len(pool) < n:  # only a handful of feasible rows exist: repeat them
            pool = pool[rng.integers(len(pool), size=n)]
        return pool[:n]

    # ------------------------------------------------------------------ result
    def result(self, algo: str, limits: Sequence[float], seed: int, budget: SearchBudget, history: list[dict],
               seconds: float, info: dict[str, Any] | None = None) -> SearchResult:
        enc, scores, costs = (a.copy() for a in self.log())  # the result's own, writable arrays
        others_ok = np.all(costs[:, 1:] <= self.limits(0)[1:], axis=1) if len(enc) else np.zeros(0, dtype=bool)
        best = []
        for limit in sorted(limits):
            ok = others_ok & (costs[:, 0] <= limit)
            if not ok.any():
                best.append(BudgetChoice(float(limit), None, None, None, None))
                continue
            i = np.flatnonzero(ok)[np.argmax(scores[ok])]
            best.append(BudgetChoice(
                float(limit), enc[i], self.space.decode(enc[i]), float(scores[i]), float(costs[i, 0]),
                {c.name: float(costs[i, j]) for j, c in enumerate(self.constraints)},
            ))
        feasible = others_ok & (costs[:, 0] <= max(limits)) if len(enc) else others_ok
        f_enc, f_scores, f_costs = make_front(enc[feasible], scores[feasible], costs[feasible, 0])
        return SearchResult(
            algo=algo, space=self.space, objective=self.objective.describe(),
            constraint={**self.primary.describe(), "limits": sorted(float(x) for x in limits)},
            constraints=[c.describe() for c in self.constraints], seed=int(seed), budget=budget.to_dict(), best=best,
            front_encoded=f_enc, front_scores=f_scores, front_costs=f_costs, history=history,
            evaluations=self.evaluations, seconds=seconds, info=info or {},
            evaluated_encoded=enc, evaluated_scores=scores, evaluated_costs=costs[:, 0] if len(enc) else np.zeros(0),
        )
