"""Local polish of a budget's best architecture: steepest ascent over *repaired* one-choice moves.

A plain one-choice neighbourhood cannot leave an optimum of the budget's boundary: every move
that raises one choice breaks the budget, every move that lowers one leaves budget unused. Each
move here is therefore judged in up to three forms: as it is when it stays feasible; *grown
back* to the budget when it frees some (:func:`grow_to_limit`, the moved choice kept); and
*repaired* when it breaks the budget (:func:`shrink_to_limit`, the other choices make room,
then it is grown back). So one step can trade a higher resolution for narrower stages, which
reaches optima several choices away from the runner-up family (issue 19). The climb moves to
the best form scored while that improves, within a number of evaluations.
"""
from __future__ import annotations

import numpy as np

from .operators import SeenRows, grow_to_limit, one_choice_moves, shrink_to_limit
from .problem import Problem


def polish(problem: Problem, row: np.ndarray, score: float, limit: float, rng: np.random.Generator,
           seen: SeenRows, max_evaluations: int) -> tuple[np.ndarray, float, int]:
    """Climb from ``row`` (the best scored row meeting ``limit``; rows in ``seen`` score no more)
    with at most ``max_evaluations`` new scores. Returns the best row, its score and the
    evaluations spent."""
    used = 0
    while used < max_evaluations:
        moves, dim = one_choice_moves(problem.space, row, rng)
        ok, _ = problem.feasible(moves, limit)
        fixed, idx = shrink_to_limit(problem, moves[~ok], limit, rng, frozen=dim[~ok])
        base = np.concatenate([moves[ok], fixed])
        frozen = np.concatenate([dim[ok], dim[~ok][idx]])
        grown = grow_to_limit(problem, base, limit, rng, frozen=frozen)
        cand = np.concatenate([moves[ok], grown, fixed])
        cand = cand[seen.new_mask(cand)]
        if len(cand):
            ok, costs = problem.feasible(cand, limit)
            cand, costs = cand[ok][: max_evaluations - used], costs[ok][: max_evaluations - used]
        if not len(cand):
            break
        seen.add(cand)
        scores = problem.score(cand, costs)
        used += len(cand)
        best = int(np.argmax(scores))
        if scores[best] <= score:
            break
        row, score = cand[best], float(scores[best])
    return row, score, used
