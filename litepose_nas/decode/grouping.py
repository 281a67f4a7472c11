"""Bottom-up grouping: heatmaps + associative-embedding tags -> people (numpy/scipy, no torch).

The steps are those of the original parser (``docs/decoding-and-metrics.md``): max-pool NMS
and top-k candidates per joint type, joint-by-joint tag matching with an optimal assignment, a
quarter-pixel adjustment, scoring, and refine. Here people are rows of preallocated arrays indexed by
integers, the candidates of one joint type are matched in one vectorized cost matrix solved by scipy's
``linear_sum_assignment``, and refine evaluates only the (person, joint) pairs it can change, on the
pixels that can win, which gives the same argmax as the original's dense search over every pixel.

Coordinates: a map pixel ``(x, y)`` covers ``[x, x + 1) x [y, y + 1)``; decoded joints sit at pixel
centres plus or minus a quarter pixel, as in the original.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from .refine import quarter_offsets
from .refine import refine as _refine_people
from .scratch import scratch

# The original visits joints in this order (1-based in its source): head first, then shoulders, hips,
# elbows, wrists, knees, ankles for COCO. With 14 joints it takes the first 14 entries, which gives
# CrowdPose the peculiar order L/R shoulder, L/R elbow, L/R wrist, L hip, R ankle, head, R hip, L knee,
# R knee, L ankle, neck.
_ORIGINAL_ORDER = tuple(i - 1 for i in (1, 2, 3, 4, 5, 6, 7, 12, 13, 8, 9, 10, 11, 14, 15, 16, 17))


def original_joint_order(num_joints: int) -> tuple[int, ...]:
    """The joint visiting order of the original parser for ``num_joints`` joints."""
    order = _ORIGINAL_ORDER[:num_joints]
    if sorted(order) != list(range(num_joints)):
        return tuple(range(num_joints))
    return order


@dataclass
class Candidates:
    """The ``k`` strongest NMS survivors of every joint type, strongest first."""

    xy: np.ndarray    # [J, K, 2] int64 pixel column, row
    val: np.ndarray   # [J, K] float32 heatmap value
    tag: np.ndarray   # [J, K, T] float32 tag vector


def as_tag_maps(tags: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Tags as ``[J, H, W, T]`` float32 (a ``[J, H, W]`` input gets T = 1)."""
    tags = np.asarray(tags, dtype=np.float32)
    if tags.ndim == 3:
        tags = tags[..., None]
    if tags.ndim != 4 or tags.shape[:3] != heatmaps.shape:
        raise ValueError(f"tags must be [J, H, W] or [J, H, W, T] matching heatmaps {heatmaps.shape}, "
                         f"got {tags.shape}")
    return tags


def max_pool(heatmaps: np.ndarray, kernel: int = 5) -> np.ndarray:
    """Each pixel's maximum over its ``kernel`` x ``kernel`` window (stride 1, same size)."""
    import cv2

    heatmaps = np.ascontiguousarray(heatmaps, dtype=np.float32)
    if heatmaps.size == 0:
        return heatmaps.copy()
    num_joints, height, width = heatmaps.shape
    # all maps in one OpenCV call: stacked with kernel // 2 rows of -inf between them so that no
    # window reaches into a neighbouring map. OpenCV pads the border with -inf, as the original's
    # max-pool does, and is ~20x faster than scipy.
    pad = kernel // 2
    buf = np.full((num_joints, height + 2 * pad, width), -np.inf, dtype=np.float32)
    buf[:, pad:pad + height] = heatmaps
    pooled = cv2.dilate(buf.reshape(-1, width), np.ones((kernel, kernel), dtype=np.uint8))
    return np.ascontiguousarray(pooled.reshape(buf.shape)[:, pad:pad + height])


def nms(heatmaps: np.ndarray, kernel: int = 5) -> np.ndarray:
    """Zero every pixel that is not the maximum of its ``kernel`` x ``kernel`` window."""
    return np.where(max_pool(heatmaps, kernel) == heatmaps, heatmaps, np.float32(0))


def _nms_survivors(heatmaps: np.ndarray, threshold: float, kernel: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Flat indices (ascending) of the pixels above ``threshold`` that equal their window maximum,
    and those of all the pixels above ``threshold`` when there are few (else None)."""
    _, _, width = heatmaps.shape
    flat = heatmaps.reshape(-1)
    above = np.greater(flat, threshold, out=scratch("above", flat.shape, np.bool_))
    if np.count_nonzero(above) * 16 >= flat.size:
        return _survivors_dense(heatmaps, above, kernel), None
    # Few hits (few people): cheap necessary conditions, then the windows of the few candidates
    # left, gathered, cost less than pooling whole maps (crossovers measured at 17 x 128 x 128).
    hits = np.flatnonzero(above)
    candidates = hits[_row_neighbour_max(hits, flat[hits], width, kernel)]
    candidates = candidates[_column_neighbour_max(heatmaps, candidates, kernel)]
    if len(candidates) * kernel * kernel * 2 < flat.size:
        return candidates[_window_max_sparse(heatmaps, candidates, kernel) == flat[candidates]], hits
    above[:] = False          # the mask of the candidates left, in the same work array
    above[candidates] = True
    return _survivors_dense(heatmaps, above, kernel), hits


def _row_neighbour_max(hits: np.ndarray, vals: np.ndarray, width: int, kernel: int) -> np.ndarray:
    """Mask of the ``hits`` (ascending flat indices of the pixels above the threshold, values
    ``vals``) not below their left and right neighbours within the window: a cheap necessary
    condition for surviving NMS that drops most hits. A neighbour that is not a hit is at or below
    the threshold, so below the hit; one that is a hit is the next (or previous) entry."""
    before, after = _window_bounds(kernel)
    keep = np.ones(len(hits), dtype=bool)
    # entries i and i + 1 are horizontal neighbours (same row)
    adjacent = (hits[1:] - hits[:-1] == 1) & (hits[1:] % width != 0)
    if after:
        keep[:-1] &= ~adjacent | (vals[:-1] >= vals[1:])
    if before:
        keep[1:] &= ~adjacent | (vals[1:] >= vals[:-1])
    return keep


def _column_neighbour_max(heatmaps: np.ndarray, hits: np.ndarray, kernel: int) -> np.ndarray:
    """Mask of the ``hits`` not below the pixels above and below them within the window (and the
    map): another cheap necessary condition."""
    _, height, width = heatmaps.shape
    flat = heatmaps.reshape(-1)
    before, after = _window_bounds(kernel)
    vals = flat[hits]
    y = hits // width % height
    keep = np.ones(len(hits), dtype=bool)
    if before:
        keep &= (y == 0) | (vals >= flat[hits - width])   # y == 0: index unused (may wrap)
    if after:
        keep &= (y == height - 1) | (vals >= flat[np.minimum(hits + width, len(flat) - 1)])
    return keep


def _window_bounds(kernel: int) -> tuple[int, int]:
    """Window rows (and columns) before and after the centre, with OpenCV's anchor at kernel // 2."""
    return kernel // 2, kernel - 1 - kernel // 2


def _window_max_sparse(heatmaps: np.ndarray, pixels: np.ndarray, kernel: int) -> np.ndarray:
    """The window maximum of each flat pixel index, gathered. Indices are clipped to the map: that
    repeats a pixel of the window, as a -inf border would not change the maximum."""
    _, height, width = heatmaps.shape
    flat = heatmaps.reshape(-1)
    before, after = _window_bounds(kernel)
    offsets = np.arange(-before, after + 1)[:, None]
    row = pixels // width                   # row of the stacked maps
    y = row % height
    cols = offsets + (pixels - row * width)
    np.clip(cols, 0, width - 1, out=cols)
    rows = offsets + y
    np.clip(rows, 0, height - 1, out=rows)
    rows += row - y
    rows *= width
    # [kernel * kernel, n]: the maximum reduces along axis 0, element by element (fast in numpy)
    return flat[(rows[:, None, :] + cols[None, :, :]).reshape(kernel * kernel, -1)].max(axis=0)


def _survivors_dense(heatmaps: np.ndarray, candidates: np.ndarray, kernel: int) -> np.ndarray:
    """Flat indices of the pixels where the mask ``candidates`` is set that equal their window
    maximum, from one dilation of all maps stacked as a single image, with ``kernel // 2`` rows
    of -inf between them so that no window reaches into a neighbouring map. OpenCV pads the border
    with -inf, as the original's max-pool does, and is ~20x faster than scipy."""
    import cv2

    num_joints, height, width = heatmaps.shape
    before, after = _window_bounds(kernel)
    rows = height + before + after
    padded = scratch("padded", (num_joints, rows, width), np.float32)
    padded[:, :before] = -np.inf
    padded[:, before + height:] = -np.inf
    padded[:, before:before + height] = heatmaps
    pooled = scratch("pooled", (num_joints * rows, width), np.float32)
    pooled = cv2.dilate(padded.reshape(-1, width), np.ones((kernel, kernel), dtype=np.uint8), dst=pooled)
    inner = pooled.reshape(num_joints, rows, width)[:, before:before + height]
    survive = np.equal(inner, heatmaps, out=scratch("survive", heatmaps.shape, np.bool_))
    survive &= candidates.reshape(heatmaps.shape)
    return np.flatnonzero(survive)


def top_candidates(heatmaps: np.ndarray, tags: np.ndarray, k: int, nms_kernel: int = 5,
                   threshold: float = 0.0) -> Candidates:
    """Per joint type the ``k`` strongest NMS survivors above ``threshold`` (value, then flat pixel
    index order); rows past a joint's count are padding with value ``-inf``.

    The original takes the top k of the whole NMS-ed map and then drops values at or below the
    detection threshold; for a threshold >= 0 that keeps exactly these candidates.
    """
    heatmaps = np.ascontiguousarray(heatmaps, dtype=np.float32)
    return _top_candidates(heatmaps, tags, k, nms_kernel, threshold)[0]


def _top_candidates(heatmaps: np.ndarray, tags: np.ndarray, k: int, nms_kernel: int,
                    threshold: float) -> tuple[Candidates, np.ndarray | None]:
    """:func:`top_candidates` of contiguous float32 maps, and the flat indices of all the pixels
    above the threshold when they are few (refine reuses them), else None."""
    if threshold < 0:
        raise ValueError(f"detection threshold must be >= 0, got {threshold}")
    num_joints, height, width = heatmaps.shape
    n_pix = height * width
    tag_dim = tags.shape[3]
    xy = np.zeros((num_joints, k, 2), dtype=np.int64)
    val = np.full((num_joints, k), -np.inf, dtype=np.float32)
    tag = np.zeros((num_joints, k, tag_dim), dtype=np.float32)
    hits, above = _nms_survivors(heatmaps, threshold, nms_kernel)
    if len(hits) == 0:
        return Candidates(xy=xy, val=val, tag=tag), above
    j_idx = hits // n_pix
    vals = heatmaps.reshape(-1)[hits]
    # hits are in (joint, pixel) order and lexsort is stable: ties keep pixel order
    order = np.lexsort((-vals, j_idx))
    j_idx, vals, hits = j_idx[order], vals[order], hits[order]
    counts = np.bincount(j_idx, minlength=num_joints)
    rank = np.arange(len(j_idx)) - (np.cumsum(counts) - counts)[j_idx]
    if counts.max() > k:
        keep = rank < k
        j_idx, vals, rank, hits = j_idx[keep], vals[keep], rank[keep], hits[keep]
    pixel = hits - j_idx * n_pix
    xy[j_idx, rank, 0] = pixel % width
    xy[j_idx, rank, 1] = pixel // width
    val[j_idx, rank] = vals
    tag[j_idx, rank] = tags.reshape(num_joints * n_pix, tag_dim)[hits]
    return Candidates(xy=xy, val=val, tag=tag), above


def _match(cand: Candidates, order: tuple[int, ...], detection_threshold: float, tag_threshold: float,
           max_people: int, use_detection_val: bool, shortcut: bool = True) -> np.ndarray:
    """Joint-by-joint assignment of candidates to people (default mode); ``[P, J, 3]`` float32.

    People are integers; a person's state is the float32 sum of its tags and their count, one row of
    ``state``. ``shortcut`` skips the assignment solver where its answer is known (disjoint
    acceptable pairs, see below); the result is the same either way (``tests/test_decode.py``).
    These problems are tiny (at most ``max_people`` squared pairs), so the loop is written for few
    numpy calls per joint type.
    """
    num_joints, k, tag_dim = cand.tag.shape
    # candidates come strongest first, so those above the threshold are a prefix of each row
    counts = np.count_nonzero(cand.val > detection_threshold, axis=1).tolist()
    tags64 = cand.tag.astype(np.float64)
    tags64_1 = tags64[:, :, 0]
    # what a candidate adds to the state of the person it joins: its tag and a count of one
    addend = np.concatenate((cand.tag, np.ones((num_joints, k, 1), dtype=np.float32)), axis=2)
    state = np.zeros((max(sum(counts), 1), tag_dim + 1), dtype=np.float32)
    sums, count = state[:, :tag_dim], state[:, tag_dim:]
    person_of = np.full((num_joints, k), -1, dtype=np.int64)   # the person each candidate joins
    n_people = 0
    abs_ok = 1e-150 <= tag_threshold <= 1e150
    # a rejected pair costs one step more than the worst acceptable pair (see below)
    reject = 100 * np.round(tag_threshold) + 1 if use_detection_val else tag_threshold
    for joint in order:
        n = counts[joint]
        if n == 0:
            continue
        if n_people == 0:
            state[:n] = addend[joint, :n]
            person_of[joint, :n] = np.arange(n)
            n_people = n
            continue
        grouped = min(n_people, max_people)
        if n == 1 and grouped == 1 and tag_dim == 1 and shortcut:
            # One candidate, one person (every joint of a lone person): the same arithmetic on
            # scalars, ~10x cheaper than on arrays; the pair is taken if acceptable.
            diff = float(tags64_1[joint, 0]) - float(state[0, 0] / state[0, 1])   # float64 - float32 mean
            person = 0 if math.sqrt(diff * diff) < tag_threshold else n_people
            if person:
                state[person] = addend[joint, 0]
                n_people += 1
            else:
                state[0] += addend[joint, 0]
            person_of[joint, 0] = person
            continue
        if tag_dim == 1:
            diff = tags64_1[joint, :n, None] - state[:grouped, 0] / state[:grouped, 1]   # float64 - float32 mean
            # |d| is sqrt(d * d) exactly in binary floating point without under/overflow, and
            # for thresholds in [1e-150, 1e150] the comparison is the same even with it
            accept = (np.abs(diff) if abs_ok else np.sqrt(diff * diff)) < tag_threshold
        else:
            diff = tags64[joint, :n, None, :] - sums[:grouped] / count[:grouped]
            dist = np.sqrt((diff * diff).sum(axis=2))
            accept = dist < tag_threshold
        r_idx, c_idx = accept.nonzero()
        # Every acceptable pair costs less than a rejected one (below), so when no row and no column
        # has two acceptable pairs, every optimal assignment contains all of them and only rejected
        # pairs besides: the solver's answer is known without calling it.
        if not (shortcut and len(set(r_idx.tolist())) == len(r_idx) and len(set(c_idx.tolist())) == len(c_idx)):
            if tag_dim == 1:
                dist = np.sqrt(diff * diff)
            cost = np.round(dist) * 100 - cand.val[joint, :n, None].astype(np.float64) if use_detection_val else dist
            # The original assigns every candidate (or, with more candidates than people, every
            # person) to something and rejects far pairs afterwards, so a person without a candidate
            # of this joint steals one from a neighbour, which then starts a duplicate person. Here a
            # rejected pair costs one step more than the worst acceptable pair: nobody is forced.
            r_idx, c_idx = linear_sum_assignment(np.where(accept, cost, reject))
            ok = accept[r_idx, c_idx]
            r_idx, c_idx = r_idx[ok], c_idx[ok]
        state[c_idx] += addend[joint, r_idx]
        person_of[joint, r_idx] = c_idx
        fresh = n - len(r_idx)
        if fresh:
            new = np.flatnonzero(person_of[joint, :n] < 0)
            state[n_people:n_people + fresh] = addend[joint, new]
            person_of[joint, new] = np.arange(n_people, n_people + fresh)
            n_people += fresh
    people = np.zeros((n_people, num_joints, 3), dtype=np.float32)
    j_idx, c_idx = np.nonzero(person_of >= 0)
    p_idx = person_of[j_idx, c_idx]
    people[p_idx, j_idx, :2] = cand.xy[j_idx, c_idx]
    people[p_idx, j_idx, 2] = cand.val[j_idx, c_idx]
    return people


def _match_exact(cand: Candidates, order: tuple[int, ...], detection_threshold: float, tag_threshold: float,
                 max_people: int, use_detection_val: bool) -> np.ndarray:
    """The original's assignment, choice for choice; ``[P, J, 3 + T]`` float32.

    People are known by the first tag component of the joint that started them, so a new person
    whose key exists overwrites that person's joint and tag history; every candidate is assigned
    (square cost matrix padded with 1e10) and far pairs are rejected afterwards.
    """
    num_joints, k, tag_dim = cand.tag.shape
    counts = np.count_nonzero(cand.val > detection_threshold, axis=1).tolist()
    rows_all = np.concatenate((cand.xy.astype(np.float64), cand.val[:, :, None].astype(np.float64),
                               cand.tag.astype(np.float64)), axis=2)
    tags_all = cand.tag
    capacity = max(sum(counts), 1)
    joints = np.zeros((capacity, num_joints, 3 + tag_dim), dtype=np.float64)
    tag_sum = np.zeros((capacity, tag_dim), dtype=np.float32)
    tag_count = np.zeros(capacity, dtype=np.float32)
    n_people = 0
    key_to_id: dict[float, int] = {}

    def start(joint: int, rows: np.ndarray, tags: np.ndarray) -> None:
        nonlocal n_people
        for row, tag in zip(rows, tags):
            key = float(tag[0])
            pid = key_to_id.get(key)
            if pid is None:
                pid = key_to_id[key] = n_people
                n_people += 1
            joints[pid, joint] = row
            tag_sum[pid] = tag
            tag_count[pid] = 1

    for joint in order:
        n = counts[joint]
        if n == 0:
            continue
        rows = rows_all[joint, :n]
        tags = tags_all[joint, :n]
        if n_people == 0:
            start(joint, rows, tags)
            continue
        grouped = min(n_people, max_people)
        mean = (tag_sum[:grouped] / tag_count[:grouped, None]).astype(np.float64)
        diff = rows[:, None, 3:] - mean[None]
        dist = np.sqrt((diff * diff).sum(axis=2))
        cost = np.round(dist) * 100 - rows[:, 2:3] if use_detection_val else dist
        if n > grouped:
            # the original's square padding; kept so that ties resolve as in the reference port
            cost = np.concatenate((cost, np.full((n, n - grouped), 1e10)), axis=1)
        r_idx, c_idx = linear_sum_assignment(cost)
        real = c_idx < grouped
        r_idx, c_idx = r_idx[real], c_idx[real]
        ok = dist[r_idx, c_idx] < tag_threshold
        # the original walks the pairs in row order; with key collisions the order matters
        col_of = dict(zip(r_idx[ok].tolist(), c_idx[ok].tolist()))
        for row in range(n):
            pid = col_of.get(row)
            if pid is not None:
                joints[pid, joint] = rows[row]
                tag_sum[pid] += tags[row]
                tag_count[pid] += 1
            else:
                start(joint, rows[row:row + 1], tags[row:row + 1])
    return joints[:n_people].astype(np.float32)


def _adjust(heatmaps: np.ndarray, people: np.ndarray) -> None:
    p_idx, j_idx = np.nonzero(people[:, :, 2] > 0)
    x = people[p_idx, j_idx, 0].astype(np.int64)
    y = people[p_idx, j_idx, 1].astype(np.int64)
    dx, dy = quarter_offsets(heatmaps, j_idx, x, y)
    people[p_idx, j_idx, 0] = x + dx + 0.5
    people[p_idx, j_idx, 1] = y + dy + 0.5


def group(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    adjust: bool = True,
    refine: bool = True,
    *,
    exact: bool = False,
    nms_kernel: int = 5,
    joint_order: tuple[int, ...] | None = None,
    use_detection_val: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Group joint candidates into people by their associative-embedding tags.

    Args:
        heatmaps: ``[J, H, W]`` joint heatmaps in map coordinates.
        tags: ``[J, H, W]`` or ``[J, H, W, T]`` tag maps (T = 2 with flip test).
        detection_threshold: candidates at or below this heatmap value are ignored.
        tag_threshold: a candidate joins a person only if its tag is closer than this to the
            person's mean tag; otherwise it starts a new person.
        max_people: candidates per joint type (top-k) and the number of people a joint can join.
        adjust: quarter-pixel step towards the larger neighbour, then to the pixel centre.
        refine: fill the joints a person lacks from the whole map, guided by its mean tag.
        exact: key people by their first tag component as the original does (two people with equal
            tags then overwrite each other); the default keys them by integers.
        nms_kernel: max-pool window of the candidate NMS.
        joint_order: visiting order of the joint types; default: the original's.
        use_detection_val: matching cost ``round(distance) * 100 - value`` (original) or the distance.

    Returns:
        ``people [P, J, 3]`` float32 (x, y, heatmap value; 0 for joints not found) and ``scores [P]``
        float32, the mean heatmap value over all J joints before refine.
    """
    heatmaps = np.ascontiguousarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 3:
        raise ValueError(f"heatmaps must be [J, H, W], got shape {heatmaps.shape}")
    tag_maps = np.ascontiguousarray(as_tag_maps(tags, heatmaps))
    num_joints = heatmaps.shape[0]
    order = tuple(joint_order) if joint_order is not None else original_joint_order(num_joints)
    if sorted(order) != list(range(num_joints)):
        raise ValueError(f"joint_order must be a permutation of 0..{num_joints - 1}, got {order}")
    if max_people < 1:
        raise ValueError(f"max_people must be at least 1, got {max_people}")
    cand, above = _top_candidates(heatmaps, tag_maps, max_people, nms_kernel, detection_threshold)
    if exact:
        people = _match_exact(cand, order, detection_threshold, tag_threshold, max_people, use_detection_val)
    else:
        people = _match(cand, order, detection_threshold, tag_threshold, max_people, use_detection_val)
    if adjust and len(people):
        _adjust(heatmaps, people)
    scores = people[:, :, 2].mean(axis=1) if len(people) else np.zeros(0, dtype=np.float32)
    if refine and len(people):
        # a map's maximum is its strongest candidate, when it has one
        top = cand.val[:, 0].copy()
        for joint in np.flatnonzero(~np.isfinite(top)).tolist():
            top[joint] = heatmaps[joint].max()
        _refine_people(heatmaps, tag_maps, people, top, above, detection_threshold)
    return np.ascontiguousarray(people[:, :, :3]), scores.astype(np.float32)
