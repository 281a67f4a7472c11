"""Evolutionary search on encoded numpy batches, with adaptive operators, restarts and one
archive shared across budget limits.

Each generation keeps the best ``parent_ratio`` of the population as parents and refills it
with children drawn by seven operators (:mod:`.operators`):

- ``mutate``: resample each variable choice of a parent with probability ``mutate_prob``;
- ``crossover``: uniform crossover of two parents;
- ``grow``: a mutant repaired if over the budget (:func:`shrink_to_limit`), then pushed towards
  it (:func:`grow_to_limit`), so a change that overshoots is paid for by other choices; the best
  subnet sits on the budget's boundary when accuracy grows with size, not otherwise;
- ``local``: the feasible one-choice neighbours of the two best parents, which finishes a search
  in the optimum's basin;
- ``immigrant``: random feasible architectures (half of them grown), which keeps exploring;
- ``density``: the best rows' choices recombined and ranked by the density ratio of good to
  other rows (:func:`density_ratio_rows`, TPE's rule): reaches optima in another basin;
- ``model``: ``MODEL_POOL`` mutants per generation, costed but not scored, ranked by a ridge
  surrogate of the scores so far (:class:`.surrogate.RidgeSurrogate`); the best-ranked new ones
  are scored.

How many children each operator makes is *adaptive* (probability matching): an operator earns
credit when its children enter the next parent set or raise the best score, and its share
follows its recent credit (at least ``OPERATOR_FLOOR`` each). Growth is one operator among seven
because it helps only where accuracy grows with size: on a landscape where the best subnet lies
inside a loose budget, growing every child (the previous scheme) made the search no better than
random (issue 19). After ``restart_after`` generations without improvement the best row is
*polished* (every feasible one- and two-choice neighbour scored, :func:`pair_neighbours`); if
that does not help either, the population restarts from the best parent and fresh immigrants.

Budget limits are searched from the tightest up with one archive: a looser limit starts from
the best architectures already scored that meet it (free: no new evaluations), and nothing is
scored twice across limits. Each limit gets ``population + generations x children`` new
evaluations, as in the original scheme. ``SearchBudget(adaptive=False)`` is the previous fixed
scheme (half mutation, half crossover, every child grown; ``grow=False``: the original Lite
Pose / Once-for-All scheme). One seeded ``numpy.random.Generator`` drives everything.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from .operators import (  # noqa: F401  (grow_to_limit, mutate_rows: public helpers used by tests)
    MAX_REJECTION_ROUNDS, SeenRows, choice_densities, draw_by_density, feasible_children, grow_to_limit, mutate_rows,
    neighbours, pair_neighbours, row_keys, shrink_to_limit,
)
from .problem import Problem, SearchBudget
from .result import SearchResult
from .surrogate import RidgeSurrogate

OPERATORS = ("mutate", "crossover", "grow", "local", "immigrant", "density", "model")
MODEL_POOL = 1024  # mutants the model operator ranks per generation (cost model + surrogate only)
GOOD_SHARE = 0.15  # the density operator's "good" rows: this share of the best scored under the limit
DENSITY_ROWS = 4096  # at most this many good and other rows (long runs)
OPERATOR_FLOOR = 0.06  # every operator keeps this share: one that failed early may pay off later
CREDIT_RATE = 0.3  # weight of the latest generation in an operator's credit


class OperatorCredit:
    """Adaptive operator selection by probability matching on recent success."""

    def __init__(self, names: Sequence[str], floor: float = OPERATOR_FLOOR, rate: float = CREDIT_RATE) -> None:
        self.names = tuple(names)
        self.floor = min(floor, 1.0 / len(self.names))
        self.rate = rate
        self.quality = np.full(len(self.names), 0.5)

    def probabilities(self) -> np.ndarray:
        q = self.quality / self.quality.sum()
        return self.floor + (1.0 - self.floor * len(q)) * q

    def allocate(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.multinomial(n, self.probabilities())

    def update(self, origin: np.ndarray, reward: np.ndarray) -> None:
        for i in range(len(self.names)):
            mine = origin == i
            if mine.any():
                self.quality[i] = (1 - self.rate) * self.quality[i] + self.rate * (float(reward[mine].mean()) + 1e-3)


def archive_elite(problem: Problem, limit: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best distinct architectures already scored (any limit) that meet ``limit``."""
    enc, scores, costs = problem.log()
    if not len(enc):
        return enc, scores
    ok = np.all(costs <= problem.limits(limit), axis=1)
    enc, scores = enc[ok], scores[ok]
    order = np.argsort(-scores, kind="stable")
    enc, scores = enc[order], scores[order]
    _, first = np.unique(row_keys(enc), return_index=True)  # first (best) copy of each row
    keep = np.sort(first)[:n]
    return enc[keep], scores[keep]


def evolve(problem: Problem, limit: float, budget: SearchBudget, rng: np.random.Generator,
           history: list[dict], progress: Callable[[int], None] | None = None, *,
           seen: SeenRows | None = None) -> None:
    """One evolutionary run under ``cost <= limit``; every candidate is logged in ``problem``.

    ``seen``: rows scored before (shared across the limits of one search); with the adaptive
    scheme the run also starts from the best rows of ``problem``'s log that meet ``limit``.
    """
    space = problem.space
    P = budget.population
    n_parents = max(1, int(round(P * budget.parent_ratio)))
    n_children = P - n_parents
    adaptive = budget.adaptive
    seen = seen or SeenRows(space.num_dimensions, rng)
    seeds = problem.check_possible(limit, rng)
    names = [o for o in OPERATORS if budget.grow or o != "grow"] if adaptive else ["mutate", "crossover"]
    credit = OperatorCredit(names)
    surrogate = RidgeSurrogate(space)

    def grown(rows: np.ndarray, share: float) -> np.ndarray:
        """Grow the first ``share`` of ``rows`` towards the budget (cost model only)."""
        k = int(round(len(rows) * share)) if budget.grow else 0
        return rows if k == 0 else np.concatenate([grow_to_limit(problem, rows[:k], limit, rng), rows[k:]])

    pool: list[np.ndarray] = []

    def draw_random(n: int) -> np.ndarray:
        """Random feasible rows from a pool sampled a batch at a time (fewer cost calls)."""
        if not pool or len(pool[0]) < n:
            fresh = problem.sample_feasible(max(4 * n, 256), limit, rng, seeds)
            pool[:] = [np.concatenate([pool[0], fresh]) if pool else fresh]
        out, pool[0] = pool[0][:n], pool[0][n:]
        return out

    elite, elite_scores = archive_elite(problem, limit, n_parents) if adaptive else (None, None)
    pop = np.zeros((0, space.num_dimensions), dtype=np.int64)
    for _ in range(MAX_REJECTION_ROUNDS):
        cand = grown(draw_random(P - len(pop)), 0.5 if adaptive else 1.0)
        cand = cand[seen.new_mask(cand)]  # grown rows can coincide (or be known): draw again
        seen.add(cand)
        pop = np.concatenate([pop, cand])
        if len(pop) >= P:
            break
    scores = problem.score(pop)
    if elite is not None and len(elite):
        pop, scores = np.concatenate([elite, pop]), np.concatenate([elite_scores, scores])
    best = float(scores.max())
    history.append({"limit": limit, "generation": 0, "evaluations": problem.evaluations, "best": best,
                    "mean": float(scores.mean())})
    stale = restarts = empty = 0
    polished: set[int] = set()
    for gen in range(1, budget.generations + 1):
        order = np.argsort(-scores, kind="stable")[:n_parents]
        parents, parent_scores = pop[order], scores[order]
        restart = adaptive and stale >= budget.restart_after
        polish = restart and int(seen.keys(parents[:1])[0]) not in polished
        if polish:  # stuck: first score every feasible one- and two-choice neighbour of the best
            counts = np.zeros(len(names), dtype=np.int64)
            counts[names.index("local")] = n_children
            restart = False
        elif restart:  # stuck in a polished optimum: keep the best, explore from fresh immigrants
            parents, parent_scores = parents[:1], parent_scores[:1]
            counts = np.zeros(len(names), dtype=np.int64)
            counts[names.index("immigrant")] = n_children
            stale, restarts = 0, restarts + 1
        elif adaptive:
            counts = credit.allocate(n_children, rng)
        else:
            n_mutate = int(round(n_children * budget.mutation_ratio))
            counts = np.array([n_mutate, n_children - n_mutate])
        local_pool: list[np.ndarray] = []

        def pick(n: int) -> np.ndarray:
            return parents[rng.integers(len(parents), size=n)]

        def mutate(n: int, round_: int) -> np.ndarray:
            # raise the rate while new children are hard to find (a converged population)
            rows = mutate_rows(space, pick(n), rng, min(1.0, budget.mutate_prob * (1 + round_ // 5)))
            return rows if adaptive else grown(rows, 1.0)

        def crossover(n: int, round_: int) -> np.ndarray:
            rows = space.crossover_encoded(pick(n), pick(n), rng)
            return rows if adaptive else grown(rows, 1.0)

        def grow(n: int, round_: int) -> np.ndarray:
            # a mutant over the budget is repaired, then every mutant grows: trades across the boundary
            mutants = shrink_to_limit(problem, mutate_rows(space, pick(n), rng, budget.mutate_prob), limit, rng)
            return grow_to_limit(problem, mutants, limit, rng)

        def local(n: int, round_: int) -> np.ndarray:
            if not local_pool:
                near = neighbours(space, parents[:1 if polish else 2], rng)
                if polish:
                    near = np.concatenate([near, pair_neighbours(space, parents[0], rng)])
                # only feasible ones: an infeasible neighbour is never scored, so it would come back
                # at every call and crowd out the feasible ones behind it
                local_pool.append(near[problem.feasible(near, limit)[0]])
            near = local_pool[0][seen.new_mask(local_pool[0])]
            if len(near) >= n or polish:
                return near[:n]
            v = max(1, len(space.variable_dims))  # then random, mostly two-choice moves
            return np.concatenate([near, mutate_rows(space, parents[rng.integers(min(2, len(parents)), size=n)],
                                                     rng, 1.5 / v)])

        def immigrant(n: int, round_: int) -> np.ndarray:
            return grown(draw_random(n), 0.5)

        def model(n: int, round_: int) -> np.ndarray:
            # many cheap mutants ranked once per generation by a surrogate of the scores so far
            # (one cost call, no evaluation); each call takes the best-ranked ones not scored yet
            if not model_pool:
                cand = mutate_rows(space, pick(MODEL_POOL), rng, budget.mutate_prob * (1 + 2 * rng.random()))
                cand = cand[problem.feasible(cand, limit)[0]]
                enc, sc = problem.log()[:2]
                surrogate.add(enc[surrogate.rows:], sc[surrogate.rows:]).refit()
                model_pool.append(cand[np.argsort(-surrogate.predict(cand), kind="stable")])
            head, model_pool[0] = model_pool[0][: 4 * n], model_pool[0][4 * n:]
            return head[seen.new_mask(head)][:n]

        def density(n: int, round_: int) -> np.ndarray:
            # choices of the best rows under this limit, recombined and ranked by l(x) / g(x)
            if not density_split:
                enc, sc, co = problem.log()
                ok = np.flatnonzero(np.all(co <= problem.limits(limit), axis=1))
                n_good = min(max(2, int(len(ok) * GOOD_SHARE)), DENSITY_ROWS, len(ok))
                split = np.argpartition(-sc[ok], n_good - 1) if 0 < n_good < len(ok) else np.arange(len(ok))
                good, other = ok[split[:n_good]], ok[split[n_good:]]
                if len(other) > DENSITY_ROWS:  # long runs: a random sample of the rest, bounded work per call
                    other = rng.choice(other, DENSITY_ROWS, replace=False)
                good = enc[np.sort(good)]
                variable = space.variable_dims  # only the variable columns are counted: no copy of whole rows
                density_split.append((good, choice_densities(space, good[:, variable], enc[np.ix_(other, variable)])))
            return draw_by_density(space, *density_split[0], max(8 * n, 64), rng)

        model_pool: list[np.ndarray] = []
        density_split: list[tuple[np.ndarray, list]] = []
        makers = {"mutate": mutate, "crossover": crossover, "grow": grow, "local": local, "immigrant": immigrant,
                  "density": density, "model": model}
        children, child_costs, origin = feasible_children(problem, [makers[o] for o in names], counts, limit, seen)
        if polish and (origin == names.index("local")).sum() < n_children:  # neighbourhood used up (mutants filled in)
            polished.add(int(seen.keys(parents[:1])[0]))
        child_scores = problem.score(children, child_costs) if len(children) else np.zeros(0)
        pop = np.concatenate([parents, children])
        scores = np.concatenate([parent_scores, child_scores])
        if len(children):
            # credit: a child that enters the next parents, twice as much if it is a new best
            threshold = np.sort(scores)[-min(n_parents, len(scores))]
            credit.update(origin, (child_scores >= threshold).astype(float) + (child_scores > best))
        improved = len(child_scores) and float(child_scores.max()) > best
        best = float(child_scores.max()) if improved else best
        stale = 0 if improved else stale + 1
        entry = {"limit": limit, "generation": gen, "evaluations": problem.evaluations, "best": best,
                 "mean": float(scores.mean())}
        if adaptive:
            entry["operators"] = {o: int(c) for o, c in zip(names, counts)}
        if restart:
            entry["restart"] = restarts
        if len(children) < n_children:
            entry["children_not_found"] = n_children - len(children)
        history.append(entry)
        if progress:
            progress(1)
        empty = 0 if len(children) else empty + 1
        if empty >= 2:  # no new feasible architecture twice: the region under this limit is used up
            entry["stopped"] = "no new feasible architectures"
            if progress:
                progress(budget.generations - gen)
            break


def evolution_search(problem: Problem, limits: Sequence[float], budget: SearchBudget, seed: int,
                     progress: bool = False) -> SearchResult:
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    history: list[dict] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=budget.generations * len(limits), desc="evolution", unit="gen")
    # the adaptive scheme shares one archive across limits: nothing is scored twice
    seen = SeenRows(problem.space.num_dimensions, rng) if budget.adaptive else None
    for limit in sorted(limits):
        evolve(problem, float(limit), budget, rng, history, bar.update if bar else None, seen=seen)
    if bar:
        bar.close()
    return problem.result("evolution", limits, seed, budget, history, time.perf_counter() - start)
