"""Variation operators and candidate drawing shared by the evolutionary searchers.

Everything works on encoded numpy batches: mutation, growth towards a budget, the one-choice
neighbourhood of an architecture, a hash set of scored rows, and :func:`feasible_children`,
which draws new feasible unscored children from several operators with one cost call per round.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .problem import Problem

MAX_REJECTION_ROUNDS = 20
MAX_EMPTY_ROUNDS = 6
GROW_TRIES = 6  # single-choice changes tried per row and growth round


def mutate_rows(space, rows: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
    """Mutate each *variable* choice with probability ``prob`` to a different value; every row
    changes at least one choice (a mutant identical to its parent is wasted work).

    Dimensions with a single choice are left out, so ``prob`` means what it meant in the
    original space, whose genes were exactly its variable choices.
    """
    variable = space.variable_dims
    rows = np.array(rows, dtype=np.int64)
    n, v = len(rows), len(variable)
    if v == 0:
        return rows
    current = rows[:, variable]
    varies_depth = bool(space.depth_mask[variable].any())
    flip = rng.random((n, v)) < prob
    if varies_depth:  # force a change of an *active* choice: one past the depth changes nothing
        active = current >= 0
        forced = np.argmax(rng.random((n, v)) * active, axis=1)
        flip[np.arange(n), forced] |= ~(flip & active).any(axis=1)
    else:
        forced = rng.integers(v, size=n)
        flip[np.arange(n), forced] |= ~flip.any(axis=1)
    k = space.choice_counts()[variable]
    # active slots take a different value than before; inactive ones (-1, only where depths vary)
    # a uniform value
    shift = (rng.random((n, v)) * (k - 1)).astype(np.int64) + 1
    fresh = (current + shift) % k
    if not varies_depth:
        rows[:, variable] = np.where(flip, fresh, current)
        return rows  # no block appears or vanishes
    inactive = current < 0
    fresh = np.where(inactive, (rng.random((n, v)) * k).astype(np.int64), fresh)
    rows[:, variable] = np.where(flip | inactive, fresh, current)
    return space.canonicalize(rows, rng)


def _changeable(space, rows: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """A writable int64 copy of ``rows``, the number of variable choices and the depth-dimension mask."""
    return np.array(rows, dtype=np.int64), len(space.variable_dims), space.depth_mask


def _single_choice_trials(space, rows: np.ndarray, at: np.ndarray, tries: int, depth_dims: np.ndarray,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tries`` copies of each row ``rows[at]``, each with one random variable choice changed:
    (the row index of each copy, the copies, whether the changed slot was active)."""
    counts = space.choice_counts()
    variable = space.variable_dims
    rep = np.repeat(at, tries)
    dim = variable[rng.integers(len(variable), size=len(rep))]
    shift = (rng.random(len(rep)) * (counts[dim] - 1)).astype(np.int64) + 1
    trial = rows[rep]
    i = np.arange(len(rep))
    active = trial[i, dim] >= 0
    trial[i, dim] = np.where(active, (trial[i, dim] + shift) % counts[dim], trial[i, dim])
    if depth_dims[dim].any():
        trial = space.canonicalize(trial, rng)  # a depth changed: blocks appear or vanish
    return rep, trial, active


def _pick_improving(good: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random improving try per row of ``good`` ([rows, tries]): whether the row has one, and the
    index of the chosen try in the flattened trials (random keys, improving ones ranked first)."""
    pick = np.argmax(good + rng.random(good.shape) * 0.5, axis=1)
    return good[np.arange(len(good)), pick], np.arange(len(good)) * good.shape[1] + pick


def grow_to_limit(problem: Problem, rows: np.ndarray, limit: float, rng: np.random.Generator,
                  rounds: int | None = None) -> np.ndarray:
    """Push feasible rows towards the budget: random single-choice changes that raise the primary
    cost and keep every constraint are kept. Bigger subnets of a space are (nearly always) more
    accurate, so the best subnet under a budget sits on its boundary; growing lets a mutation that
    frees budget (a lower resolution, say) spend it elsewhere instead of being judged half-empty.
    """
    space = problem.space
    rows, v, depth_dims = _changeable(space, rows)
    if not len(rows) or not v:
        return rows
    ok, costs = problem.feasible(rows, limit)
    # Each round tries `tries` random single-choice changes per row in one cost call (the cost
    # model's overhead is per call) and keeps a random one among those that grow the row. Only
    # rows still growing are costed: an infeasible row never grows, and one whose changes all
    # failed for `patience` rounds is (nearly) maximal.
    tries = min(GROW_TRIES, v)
    patience = max(1, -(-v // tries))
    fails = np.where(ok, 0, patience)
    for _ in range(rounds or 2 * patience):
        at = np.flatnonzero(fails < patience)
        if not len(at):
            break
        rep, trial, active = _single_choice_trials(space, rows, at, tries, depth_dims, rng)
        t_ok, t_costs = problem.feasible(trial, limit)
        good = (t_ok & active & (t_costs[:, 0] > costs[rep, 0])).reshape(len(at), tries)
        grew, chosen = _pick_improving(good, rng)
        rows[at[grew]], costs[at[grew]] = trial[chosen[grew]], t_costs[chosen[grew]]
        fails[at] = np.where(grew, 0, fails[at] + 1)
    return rows


def shrink_to_limit(problem: Problem, rows: np.ndarray, limit: float, rng: np.random.Generator,
                    rounds: int | None = None) -> np.ndarray:
    """Repair rows over the budget: random single-choice changes that reduce their excess over the
    limits (summed relative excess, so a secondary cap counts too) are kept until the row fits.
    With :func:`grow_to_limit` after it, a mutation that overshoots (a higher resolution, say)
    is paid for by shrinking other choices instead of being thrown away: the trades a budget
    forces are reachable in one step."""
    space = problem.space
    rows, v, depth_dims = _changeable(space, rows)
    if not len(rows) or not v:
        return rows
    caps = problem.limits(limit)

    def excess(c: np.ndarray) -> np.ndarray:
        return np.maximum(c / caps - 1.0, 0.0).sum(axis=1)

    over = excess(problem.costs(rows))
    tries = min(GROW_TRIES, v)
    for _ in range(rounds or 4 * -(-v // tries)):
        at = np.flatnonzero(over > 0)
        if not len(at):
            break
        rep, trial, active = _single_choice_trials(space, rows, at, tries, depth_dims, rng)
        t_over = excess(problem.costs(trial))
        good = (active & (t_over < over[rep])).reshape(len(at), tries)
        moved, chosen = _pick_improving(good, rng)
        rows[at[moved]], over[at[moved]] = trial[chosen[moved]], t_over[chosen[moved]]
    return rows


def neighbours(space, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every row differing from one of ``rows`` in exactly one active variable choice, the
    neighbours of ``rows[0]`` first (local search scores the best architecture's first)."""
    counts = space.choice_counts()
    variable = space.variable_dims
    depth = space.depth_mask
    out = []
    for row in np.atleast_2d(rows):
        dims = variable[row[variable] >= 0]
        k = counts[dims] - 1  # alternatives per dimension
        dim = np.repeat(dims, k)
        offset = np.concatenate([np.arange(1, n + 1) for n in k]) if len(k) else np.zeros(0, dtype=np.int64)
        cand = np.repeat(row[None, :], len(dim), axis=0)
        at = np.arange(len(dim))
        cand[at, dim] = (cand[at, dim] + offset) % counts[dim]
        if depth[dims].any():  # a depth changed: blocks appear or vanish
            cand = space.canonicalize(cand, rng)
        out.append(cand)
    return np.concatenate(out) if out else np.zeros((0, space.num_dimensions), dtype=np.int64)


_KEY_WEIGHTS: dict[int, np.ndarray] = {}


def row_keys(rows: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """A 64-bit hash of each row (collisions are negligible at these sizes): equal rows, equal keys.
    Without ``weights``, fixed ones per row length (the same keys in every run)."""
    if weights is None:
        n = rows.shape[1]
        if n not in _KEY_WEIGHTS:
            _KEY_WEIGHTS[n] = np.random.default_rng(n).integers(1, 2**62, size=n, dtype=np.int64)
        weights = _KEY_WEIGHTS[n]
    with np.errstate(over="ignore"):
        return (rows + 2) @ weights  # int64 wraps around: a fine hash


class SeenRows:
    """Rows already scored, by a 64-bit hash of the row (:func:`row_keys`)."""

    def __init__(self, num_dims: int, rng: np.random.Generator) -> None:
        self.weights = rng.integers(1, 2**62, size=num_dims, dtype=np.int64)
        self.seen: set[int] = set()

    def keys(self, rows: np.ndarray) -> np.ndarray:
        return row_keys(rows, self.weights)

    def new_mask(self, rows: np.ndarray) -> np.ndarray:
        """True for rows neither seen before nor repeated earlier in ``rows``."""
        keys = self.keys(rows)
        mask = np.zeros(len(keys), dtype=bool)
        mask[np.unique(keys, return_index=True)[1]] = True  # the first copy of each row
        if self.seen:
            seen = self.seen
            mask &= np.fromiter((k not in seen for k in keys.tolist()), dtype=bool, count=len(keys))
        return mask

    def add(self, rows: np.ndarray) -> None:
        self.seen.update(self.keys(rows).tolist())


def feasible_children(problem: Problem, makers: Sequence[Callable[[int, int], np.ndarray]], wanted: Sequence[int],
                      limit: float, seen: SeenRows, oversample: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New feasible children: ``wanted[i]`` of them from ``makers[i](batch, round)``, with their
    costs and the index of the maker of each (for operator credit).
    After two rounds, the unmet need of the other makers moves to ``makers[0]`` (mutation).

    Every maker's candidates go through one cost call per round (the cost model's overhead is
    per call). Children already scored are rejected like infeasible ones (re-scoring them would
    only waste evaluations). Fewer come back when new feasible children are too rare.
    """
    need = list(wanted)
    rows: list[np.ndarray] = []
    costs: list[np.ndarray] = []
    makers_of: list[np.ndarray] = []
    empty_rounds = 0
    for round_ in range(MAX_REJECTION_ROUNDS):
        if sum(need) <= 0:
            break
        if round_ == 2:
            # crossover of a converged population mostly repeats known rows: mutate instead
            need = [need[0] + sum(need[1:])] + [0] * (len(need) - 1)
        # few candidates first (most are kept on loose budgets), more while they are rejected
        factor = min(oversample, 2 ** (round_ + 1))
        parts = [(i, make(factor * k + 4, round_)) for i, (make, k) in enumerate(zip(makers, need)) if k > 0]
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
        ok_idx = np.flatnonzero(ok)
        ok_origin = origin[ok_idx]
        for i in range(len(need)):
            if need[i] <= 0:
                continue
            idx = ok_idx[ok_origin == i][: need[i]]
            if len(idx):
                rows.append(cand[idx])
                costs.append(c[idx])
                makers_of.append(np.full(len(idx), i))
                seen.add(cand[idx])
                need[i] -= len(idx)
    if not rows:
        return (np.zeros((0, problem.space.num_dimensions), dtype=np.int64), np.zeros((0, len(problem.constraints))),
                np.zeros(0, dtype=np.int64))
    return np.concatenate(rows), np.concatenate(costs), np.concatenate(makers_of)


def density_ratio_rows(space, good: np.ndarray, other: np.ndarray, n: int, rng: np.random.Generator,
                       prior: float = 1.0) -> np.ndarray:
    """``n`` rows drawn choice by choice from the choices of the ``good`` rows, best-ranked first
    by the density ratio l(x) / g(x) of the good rows against the ``other`` ones (the
    tree-structured Parzen estimator's rule with independent categorical choices, as in Optuna's
    TPE sampler). Unlike mutation it can combine the good rows' choices into an architecture far
    from every one of them, which is how an isolated optimum in another basin is reached.
    """
    variable = space.variable_dims
    other = other if len(other) else np.zeros((0, space.num_dimensions), dtype=np.int64)
    return draw_by_density(space, good, choice_densities(space, good[:, variable], other[:, variable], prior), n, rng)


def choice_densities(space, good: np.ndarray, other: np.ndarray, prior: float = 1.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per variable dimension (columns of ``good`` / ``other``, in :attr:`variable_dims` order) the
    choice frequencies l of the good rows and g of the others, each with ``prior`` spread evenly
    (inactive slots, -1, are not counted)."""
    out = []
    for j, k in enumerate(space.choice_counts()[space.variable_dims]):
        g_col, o_col = good[:, j], other[:, j]
        l = np.bincount(g_col[g_col >= 0], minlength=k) + prior / k
        g = np.bincount(o_col[o_col >= 0], minlength=k) + prior / k
        out.append((l / l.sum(), g / g.sum()))
    return out


def draw_by_density(space, good: np.ndarray, densities: list[tuple[np.ndarray, np.ndarray]], n: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``n`` rows: each variable choice drawn from l (:func:`choice_densities`), the rest of the row
    (single-choice dimensions, layout) from a random good row; ranked by the summed log l / g."""
    if not len(good):
        return np.zeros((0, space.num_dimensions), dtype=np.int64)
    rows = good[rng.integers(len(good), size=n)]  # fancy indexing: a copy
    log_ratio = np.zeros(n)
    for dim, (l, g) in zip(space.variable_dims, densities):
        value = np.minimum(np.searchsorted(np.cumsum(l), rng.random(n) * (1 - 1e-12)), len(l) - 1)
        active = rows[:, dim] >= 0
        rows[:, dim] = np.where(active, value, rows[:, dim])
        log_ratio += np.where(active, np.log(l[value]) - np.log(g[value]), 0.0)
    if space.depth_mask[space.variable_dims].any():  # a depth changed: blocks appear or vanish
        rows = space.canonicalize(rows, rng)
    return rows[np.argsort(-log_ratio, kind="stable")]


def pair_neighbours(space, row: np.ndarray, rng: np.random.Generator, limit: int = 2048) -> np.ndarray:
    """Rows that change two active variable choices of ``row`` (every pair of values; a random
    ``limit`` of them in a large space), in random order. Under a budget, the best subnet's
    feasible neighbours trade one choice against another (a wider stage for a narrower head):
    one-choice moves cannot make that trade, random two-choice mutations find it by luck."""
    counts = space.choice_counts()
    dims = np.flatnonzero((counts > 1) & (row >= 0))
    a, b = np.triu_indices(len(dims), k=1)
    a, b = dims[a], dims[b]
    per_pair = (counts[a] - 1) * (counts[b] - 1)
    total = int(per_pair.sum())
    if total == 0:
        return np.zeros((0, len(row)), dtype=np.int64)
    pick = rng.permutation(total)[:limit]  # index into the flattened (pair, offset_a, offset_b) list
    pair = np.searchsorted(np.cumsum(per_pair), pick, side="right")
    within = pick - np.concatenate([[0], np.cumsum(per_pair)[:-1]])[pair]
    off_a, off_b = within // (counts[b[pair]] - 1) + 1, within % (counts[b[pair]] - 1) + 1
    cand = np.repeat(row[None, :], len(pick), axis=0)
    at = np.arange(len(pick))
    cand[at, a[pair]] = (row[a[pair]] + off_a) % counts[a[pair]]
    cand[at, b[pair]] = (row[b[pair]] + off_b) % counts[b[pair]]
    return space.canonicalize(cand, rng) if space.depth_mask[dims].any() else cand
