"""Refine: fill the joints a person lacks from the whole map, guided by the person's mean tag.

The original scores every pixel of every joint type for every person: ``heatmap - round(||tag -
mean tag||)``, and keeps the argmax where the person lacks the joint and its value is positive.
Here only the (person, joint) pairs that can change are scored, and only on the pixels that can win:

1. joint types whose map has no positive pixel cannot fill anything and are skipped;
2. every pair is scored on its map's strong pixels (at least half the map's maximum ``tau``): its
   best score there is ``best``;
3. if ``best >= tau`` no other pixel can reach it. Otherwise, with K the least integer such that
   ``tau - K < best``, a pixel below tau can only tie or beat ``best`` if its rounded tag distance
   is below K, which needs its first tag component within ``K - 1/2`` of the person's: one pass of
   two comparisons over the map finds these "close" pixels (on oracle maps, none: the person's tag
   is nowhere on the map of a joint it lacks). The pair's answer is the argmax over its strong and
   close pixels.

Element by element the arithmetic is the original's (float32), so the argmax, ties by pixel order
included, is the same as the dense search (``tests/test_decode.py`` checks it against the port).
"""
from __future__ import annotations

import numpy as np

from .scratch import scratch

def quarter_offsets(heatmaps: np.ndarray, joint: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quarter-pixel step towards the larger horizontal and vertical neighbour (ties: minus)."""
    _, height, width = heatmaps.shape
    right = heatmaps[joint, y, np.minimum(x + 1, width - 1)]
    left = heatmaps[joint, y, np.maximum(x - 1, 0)]
    down = heatmaps[joint, np.minimum(y + 1, height - 1), x]
    up = heatmaps[joint, np.maximum(y - 1, 0), x]
    return np.where(right > left, 0.25, -0.25), np.where(down > up, 0.25, -0.25)


def refine(heatmaps: np.ndarray, tags: np.ndarray, people: np.ndarray, top: np.ndarray | None = None,
           above: np.ndarray | None = None, threshold: float = 0.0) -> None:
    """Fill, in place, each person's missing joints (value 0) of ``people [P, J, >= 3]`` (float32,
    adjusted x, y, value) from ``heatmaps [J, H, W]`` and ``tags [J, H, W, T]``.

    Optional, to save passes over the maps: ``top [J]``, each map's maximum; ``above``, the flat
    indices (ascending) of the pixels above ``threshold``.
    """
    num_joints, height, width = heatmaps.shape
    n_pix = height * width
    value = people[:, :, 2]
    present = value > 0
    flat_det = heatmaps.reshape(num_joints, n_pix)
    if top is None:
        top = flat_det.max(axis=1)
    # A joint is filled only from a pixel of positive value, so the types whose map has none change
    # nothing (on oracle maps: a joint type that nobody shows), nor do people without any joint.
    missing = (value == 0) & (top > 0)[None, :] & present.any(axis=1)[:, None]
    pair_joint, pair_person = np.nonzero(missing.T)   # grouped by joint
    if len(pair_joint) == 0:
        return
    ref = _mean_tags(tags, people, present, missing.any(axis=1))[pair_person]

    det_all = flat_det.reshape(-1)
    tag_all = tags.reshape(num_joints * n_pix, -1)
    # strong pixels of the joint types that have missing joints, all types in one pass
    tau = np.where(missing.any(axis=0), top * np.float32(0.5), np.float32(np.inf)).astype(np.float32)
    if above is not None and bool(np.all(tau > threshold)):
        # every strong pixel is above the threshold: pick them from those
        strong = above[det_all[above] >= tau[above // n_pix]]
    else:
        strong = np.flatnonzero(np.greater_equal(flat_det, tau[:, None], out=scratch("strong", flat_det.shape, np.bool_)))
    per_joint = np.bincount(strong // n_pix, minlength=num_joints)
    joint_start = np.cumsum(per_joint) - per_joint
    best, best_index = _segment_best(det_all, tag_all, strong, joint_start[pair_joint], per_joint[pair_joint], ref)

    pair_tau = tau[pair_joint]
    open_ = np.flatnonzero(best < pair_tau)   # others: no pixel below tau can reach their best
    if len(open_):
        tag0 = tags[:, :, :, 0].reshape(num_joints, n_pix)
        radius = _close_radius(ref[open_, 0], best[open_], pair_tau[open_])
        # a bounded work array: pairs in chunks of at most ~1M pixels (it stays in cache)
        chunk = max(1, (1 << 20) // n_pix)
        for lo in range(0, len(open_), chunk):
            rows = open_[lo:lo + chunk]
            close = _close_pixels(tag0, pair_joint[rows], ref[rows, 0], radius[lo:lo + chunk])
            # Rows without a close pixel are settled: every pixel scores below their best or is
            # strong. The others take the argmax over their strong and close pixels, in pixel
            # order, scored together per joint type on the union of those sets: a pixel that is
            # neither strong nor close for a row scores below that row's best, so it cannot win.
            near = np.flatnonzero(close.any(axis=1))
            near_joint = pair_joint[rows[near]]
            for joint in np.unique(near_joint).tolist():
                sel = near[near_joint == joint]
                mask = np.greater_equal(flat_det[joint], tau[joint], out=scratch("near", (n_pix,), np.bool_))
                mask |= close[sel].any(axis=0) if len(sel) > 1 else close[sel[0]]
                pixels = np.flatnonzero(mask)
                scores = _scores(flat_det[joint][pixels], tag_all[joint * n_pix + pixels], ref[rows[sel]])
                best_index[rows[sel]] = joint * n_pix + pixels[scores.argmax(axis=1)]

    val = det_all[best_index]
    fill = val > 0
    if not fill.any():
        return
    joints, persons, index = pair_joint[fill], pair_person[fill], best_index[fill] - pair_joint[fill] * n_pix
    px, py = index % width, index // width
    dx, dy = quarter_offsets(heatmaps, joints, px, py)
    people[persons, joints, 0] = px + 0.5 + dx
    people[persons, joints, 1] = py + 0.5 + dy
    people[persons, joints, 2] = val[fill]


def _mean_tags(tags: np.ndarray, people: np.ndarray, present: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``[P, T]`` mean tags read from the tag maps at each person's detected joints (rows where
    ``wanted`` is False are left 0).

    Summed joint after joint in float32 (a cumulative sum is sequential, like the original's running
    sum; a plain sum may pair the terms differently).
    """
    num_joints = tags.shape[0]
    persons = np.flatnonzero(wanted)
    seen = present[persons]
    x = np.where(seen, people[persons, :, 0], 0).astype(np.int32)
    y = np.where(seen, people[persons, :, 1], 0).astype(np.int32)
    at = np.where(seen[:, :, None], tags[np.arange(num_joints)[None, :], y, x], np.float32(0))   # [P', J, T]
    mean = np.zeros((len(people), tags.shape[3]), dtype=np.float32)
    mean[persons] = np.cumsum(at, axis=1, dtype=np.float32)[:, -1] / seen.sum(axis=1).astype(np.float32)[:, None]
    return mean


def _segment_best(det: np.ndarray, tag: np.ndarray, pixels: np.ndarray, starts: np.ndarray, counts: np.ndarray,
                  ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row r: the best score over ``pixels[starts[r]:starts[r] + counts[r]]`` against
    ``ref[r]`` and the first pixel reaching it (``-inf`` and index 0 for an empty range)."""
    rows = len(ref)
    best = np.full(rows, -np.inf, dtype=np.float32)
    best_index = np.zeros(rows, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return best, best_index
    seg_start = np.cumsum(counts) - counts
    elem = np.repeat(starts - seg_start, counts) + np.arange(total)
    pix = pixels[elem]
    owner = np.repeat(np.arange(rows), counts)
    if tag.shape[1] == 1:
        diff = tag.reshape(-1)[pix] - ref[owner, 0]
        score = det[pix] - np.round(np.sqrt(diff * diff))
    else:
        diff = tag[pix] - ref[owner]
        score = det[pix] - np.round(np.sqrt((diff * diff).sum(axis=1)))
    nonempty = counts > 0
    best[nonempty] = np.maximum.reduceat(score, seg_start[nonempty])
    at_max = np.flatnonzero(score == np.repeat(best, counts))
    first = at_max[np.searchsorted(at_max, seg_start[nonempty])]
    best_index[nonempty] = pix[first]
    return best, best_index


def _close_radius(refs: np.ndarray, best: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Per pair, how far (first tag component) a pixel below tau may be and still tie or beat the
    pair's ``best`` (< ``tau``), the best score on its map's strong pixels.

    K is the least integer with ``fl(tau - K) < best``. A pixel below tau whose rounded tag distance
    k is at least K scores ``fl(det - k) <= fl(tau - K) < best``, so only pixels with k < K matter,
    and ``k < K`` needs ``|tag0 - ref| <= K - 1/2``: the first component bounds the distance, and
    the margin absorbs float32 rounding.
    """
    tau32, best32 = tau.astype(np.float32), best.astype(np.float32)
    need = np.floor(tau32.astype(np.float64) - best32) + 1    # K in exact arithmetic (>= 1: best < tau)
    # float32 rounding of tau - K moves that boundary by at most one step either way
    need = np.where((need > 1) & (tau32 - (need - 1).astype(np.float32) < best32), need - 1, need)
    need = np.where(tau32 - need.astype(np.float32) < best32, need, need + 1)
    need = np.where(np.isnan(need), np.inf, need)   # NaN scores: look at every pixel
    return (need - 0.5 + 1e-4 * (1.0 + need + np.abs(refs))).astype(np.float32)


def _close_pixels(tag0: np.ndarray, joints: np.ndarray, refs: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """``[R, N]`` mask (a work array, valid until the next call): pixels of map ``joints[r]`` whose
    first tag component ``tag0 [J, N]`` lies within ``radius[r]`` of ``refs[r]``.

    Tested as ``ref - radius <= tag0 <= ref + radius``: two comparisons on the map itself, no
    temporary; the radius' margin covers the rounding of the bounds.
    """
    low = (refs - radius).astype(np.float32).tolist()
    high = (refs + radius).astype(np.float32).tolist()
    close = scratch("close", (len(joints), tag0.shape[1]), np.bool_)
    upper = scratch("close_upper", (tag0.shape[1],), np.bool_)
    for i, joint in enumerate(joints.tolist()):
        np.greater_equal(tag0[joint], np.float32(low[i]), out=close[i])
        close[i] &= np.less_equal(tag0[joint], np.float32(high[i]), out=upper)
    return close


def _scores(det: np.ndarray, tag: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``det - round(||tag - ref||)`` for every reference tag (rows) and pixel (columns), float32."""
    diff = tag[None, :, :] - ref[:, None, :]
    dist = np.sqrt((diff * diff).sum(axis=2))
    return det[None, :] - np.round(dist)
