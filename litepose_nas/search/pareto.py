"""Pareto fronts (maximize score, minimize cost) and their 2-D hypervolume."""
from __future__ import annotations

import numpy as np


def unique_rows(encoded: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Drop repeated encodings (first occurrence kept, order kept) and the matching entries."""
    enc = np.atleast_2d(encoded)
    if len(enc) == 0:
        return (enc, *arrays)
    _, first = np.unique(enc, axis=0, return_index=True)
    keep = np.sort(first)
    return (enc[keep], *(np.asarray(a)[keep] for a in arrays))


def pareto_mask(scores: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Points no other point beats (higher-or-equal score at lower-or-equal cost, one strictly).

    Among exact ties (same score and cost) only the first is kept.
    """
    scores = np.asarray(scores, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    order = np.lexsort((-scores, costs))  # cost ascending, then score descending
    best = -np.inf
    mask = np.zeros(len(scores), dtype=bool)
    s_sorted = scores[order]
    # running max of the scores of all cheaper points; a point is on the front if it beats it
    running = np.maximum.accumulate(np.concatenate([[best], s_sorted[:-1]])) if len(s_sorted) else s_sorted
    on_front = s_sorted > running
    mask[order[on_front]] = True
    return mask


def hypervolume_2d(scores: np.ndarray, costs: np.ndarray, ref_score: float, ref_cost: float) -> float:
    """Area dominated by the points inside the box ``score >= ref_score, cost <= ref_cost``."""
    scores = np.asarray(scores, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    inside = (scores >= ref_score) & (costs <= ref_cost)
    s, c = scores[inside], costs[inside]
    if not len(s):
        return 0.0
    m = pareto_mask(s, c)
    s, c = s[m], c[m]
    order = np.argsort(c)
    s, c = s[order], c[order]
    widths = np.diff(np.concatenate([c, [ref_cost]]))
    return float(np.sum((s - ref_score) * widths))
