"""Synthetic (architecture -> AP) targets the search benchmarks fit predictors on.

Neither is a model of real accuracy: ``smooth_ap`` grows with size (the best subnet under a
budget sits on its boundary), ``peaked_ap`` does not (it lies inside a loose budget).
"""
from __future__ import annotations

import numpy as np

from litepose_nas.cost import macs


def smooth_ap(space, enc, seed=0):
    g = macs(enc, convention="paper", space=space) / 1e9
    a = space.arrays(enc)
    rng = np.random.default_rng(seed)
    return (0.62 - 0.4 * np.exp(-g / 3.0) + 0.03 * (a.resolution - 256) / 256
            + 0.01 * np.log(a.width[:, 0] / a.width[:, 0].min()) + 0.005 * rng.standard_normal(len(g)))


def peaked_ap(space, enc, seed=0):
    """Non-monotone in size: AP peaks near 2.5 G MACs and 384 px, and the last two stages'
    widths interact (a narrow stage 3 wants a narrow stage 4)."""
    g = macs(enc, convention="paper", space=space) / 1e9
    a = space.arrays(enc)
    w = a.width / a.width.max(axis=0, keepdims=True)
    rng = np.random.default_rng(seed)
    return (0.60 - 0.06 * np.log(np.maximum(g, 1e-3) / 2.5) ** 2 - 0.04 * ((a.resolution - 384) / 256) ** 2
            - 0.03 * (w[:, -2] - w[:, -1]) ** 2 + 0.01 * w[:, 0] + 0.004 * rng.standard_normal(len(g)))
