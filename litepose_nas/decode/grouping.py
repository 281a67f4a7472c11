"""Bottom-up grouping: heatmaps + associative-embedding tags -> people (numpy/scipy, no torch).

The steps are those of the original parser (``../shared/docs/evaluation-and-decoding.md``): max-pool NMS
and top-k candidates per joint type, joint-by-joint tag matching with an optimal assignment, a
quarter-pixel adjustment, scoring, and refine. Here people are rows of preallocated arrays indexed by
integers, the candidates of one joint type are matched in one vectorized cost matrix solved by scipy's
``linear_sum_assignment``, and refine evaluates only the (person, joint) pairs it can change, on the
pixels that can win, which gives the same argmax as the original's dense search over every pixel.

Coordinates: a map pixel ``(x, y)`` covers ``[x, x + 1) x [y, y + 1)``; decoded joints sit at pixel
centres plus or minus a quarter pixel, as in the original.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

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

    # OpenCV's dilation pads with -inf, as the original's max-pool does; it is ~20x faster than scipy
    element = np.ones((kernel, kernel), dtype=np.uint8)
    return np.stack([cv2.dilate(m, element) for m in heatmaps]) if len(heatmaps) else heatmaps.copy()


def nms(heatmaps: np.ndarray, kernel: int = 5) -> np.ndarray:
    """Zero every pixel that is not the maximum of its ``kernel`` x ``kernel`` window."""
    return np.where(max_pool(heatmaps, kernel) == heatmaps, heatmaps, np.float32(0))


def top_candidates(heatmaps: np.ndarray, tags: np.ndarray, k: int, nms_kernel: int = 5,
                   threshold: float = 0.0) -> Candidates:
    """Per joint type the ``k`` strongest NMS survivors above ``threshold`` (value, then flat pixel
    index order); rows past a joint's count are padding with value ``-inf``.

    The original takes the top k of the whole NMS-ed map and then drops values at or below the
    detection threshold; for a threshold >= 0 that keeps exactly these candidates.
    """
    if threshold < 0:
        raise ValueError(f"detection threshold must be >= 0, got {threshold}")
    num_joints, height, width = heatmaps.shape
    flat = heatmaps.reshape(num_joints, -1)
    survive = (max_pool(heatmaps, nms_kernel).reshape(num_joints, -1) == flat) & (flat > threshold)
    hits = np.flatnonzero(survive)  # ~15x faster than a 2-D nonzero
    j_idx, p_idx = np.divmod(hits, height * width)
    vals = flat[j_idx, p_idx]
    order = np.lexsort((p_idx, -vals, j_idx))
    j_idx, p_idx, vals = j_idx[order], p_idx[order], vals[order]
    counts = np.bincount(j_idx, minlength=num_joints)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(j_idx)) - starts[j_idx]
    keep = rank < k
    j_idx, p_idx, vals, rank = j_idx[keep], p_idx[keep], vals[keep], rank[keep]
    tag_dim = tags.shape[3]
    xy = np.zeros((num_joints, k, 2), dtype=np.int64)
    val = np.full((num_joints, k), -np.inf, dtype=np.float32)
    tag = np.zeros((num_joints, k, tag_dim), dtype=np.float32)
    xy[j_idx, rank, 0] = p_idx % width
    xy[j_idx, rank, 1] = p_idx // width
    val[j_idx, rank] = vals
    tag[j_idx, rank] = tags.reshape(num_joints, height * width, tag_dim)[j_idx, p_idx]
    return Candidates(xy=xy, val=val, tag=tag)


class _People:
    """Growing person table: joint rows as the original stores them (x, y, value, tag...)."""

    def __init__(self, capacity: int, num_joints: int, tag_dim: int) -> None:
        self.joints = np.zeros((capacity, num_joints, 3 + tag_dim), dtype=np.float64)
        self.tag_sum = np.zeros((capacity, tag_dim), dtype=np.float32)
        self.tag_count = np.zeros(capacity, dtype=np.int64)
        self.n = 0

    def mean_tags(self, count: int) -> np.ndarray:
        return self.tag_sum[:count] / self.tag_count[:count, None].astype(np.float32)


def _match(cand: Candidates, order: tuple[int, ...], detection_threshold: float, tag_threshold: float,
           max_people: int, use_detection_val: bool, float_keys: bool) -> np.ndarray:
    """Joint-by-joint assignment of candidates to people; returns ``[P, J, 3 + T]`` float32."""
    num_joints, k, tag_dim = cand.tag.shape
    people = _People(num_joints * k, num_joints, tag_dim)
    # exact mode: people are known by the first tag component of the joint that started them, so a
    # new person whose key exists overwrites that person's joint and tag history, as the original does
    key_to_id: dict[float, int] = {}

    def start(joint: int, rows: np.ndarray, tags: np.ndarray) -> None:
        for row, tag in zip(rows, tags):
            pid = people.n
            if float_keys:
                key = float(tag[0])
                if key in key_to_id:
                    pid = key_to_id[key]
                else:
                    key_to_id[key] = pid
                    people.n += 1
            else:
                people.n += 1
            people.joints[pid, joint] = row
            people.tag_sum[pid] = tag
            people.tag_count[pid] = 1

    for joint in order:
        keep = cand.val[joint] > detection_threshold
        if not keep.any():
            continue
        tags = cand.tag[joint][keep]
        rows = np.concatenate((cand.xy[joint][keep].astype(np.float64), cand.val[joint][keep, None].astype(np.float64),
                               tags.astype(np.float64)), axis=1)
        if people.n == 0:
            start(joint, rows, tags)
            continue
        grouped = min(people.n, max_people)
        diff = rows[:, None, 3:] - people.mean_tags(grouped).astype(np.float64)[None]
        dist = np.sqrt((diff * diff).sum(axis=2))
        cost = np.round(dist) * 100 - rows[:, 2:3] if use_detection_val else dist
        if not float_keys:
            # The original assigns every candidate (or, with more candidates than people, every
            # person) to something and rejects far pairs afterwards, so a person without a candidate
            # of this joint steals one from a neighbour, which then starts a duplicate person. Here a
            # rejected pair costs one step more than the worst acceptable pair: nobody is forced.
            reject = 100 * np.round(tag_threshold) + 1 if use_detection_val else tag_threshold
            cost = np.where(dist < tag_threshold, cost, reject)
        elif len(rows) > grouped:
            # the original's square padding; kept so that ties resolve as in the reference port
            cost = np.concatenate((cost, np.full((len(rows), len(rows) - grouped), 1e10)), axis=1)
        r_idx, c_idx = linear_sum_assignment(cost)
        real = c_idx < grouped
        r_idx, c_idx = r_idx[real], c_idx[real]
        accept = dist[r_idx, c_idx] < tag_threshold
        matched_rows = np.zeros(len(rows), dtype=bool)
        matched_rows[r_idx[accept]] = True
        cols = c_idx[accept]
        if float_keys:
            # the original walks the pairs in row order; with key collisions the order matters
            col_of = dict(zip(r_idx[accept].tolist(), cols.tolist()))
            for row in range(len(rows)):
                if row in col_of:
                    pid = col_of[row]
                    people.joints[pid, joint] = rows[row]
                    people.tag_sum[pid] += tags[row]
                    people.tag_count[pid] += 1
                else:
                    start(joint, rows[row:row + 1], tags[row:row + 1])
            continue
        people.joints[cols, joint] = rows[matched_rows]
        people.tag_sum[cols] += tags[matched_rows]
        people.tag_count[cols] += 1
        fresh = ~matched_rows
        start(joint, rows[fresh], tags[fresh])
    return people.joints[:people.n].astype(np.float32)


def _quarter_offsets(heatmaps: np.ndarray, joint: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quarter-pixel step towards the larger horizontal and vertical neighbour (ties: minus)."""
    _, height, width = heatmaps.shape
    right = heatmaps[joint, y, np.minimum(x + 1, width - 1)]
    left = heatmaps[joint, y, np.maximum(x - 1, 0)]
    down = heatmaps[joint, np.minimum(y + 1, height - 1), x]
    up = heatmaps[joint, np.maximum(y - 1, 0), x]
    return np.where(right > left, 0.25, -0.25), np.where(down > up, 0.25, -0.25)


def _adjust(heatmaps: np.ndarray, people: np.ndarray) -> None:
    p_idx, j_idx = np.nonzero(people[:, :, 2] > 0)
    x = people[p_idx, j_idx, 0].astype(np.int64)
    y = people[p_idx, j_idx, 1].astype(np.int64)
    dx, dy = _quarter_offsets(heatmaps, j_idx, x, y)
    people[p_idx, j_idx, 0] = x + dx + 0.5
    people[p_idx, j_idx, 1] = y + dy + 0.5


def _refine(heatmaps: np.ndarray, tags: np.ndarray, people: np.ndarray) -> None:
    """Fill each person's missing joints with the pixel maximising ``heatmap - round(tag distance)``.

    The original scores every pixel of every joint type for every person. Only missing joints can
    change, so only those (person, joint) pairs are scored, all at once, first on each map's strong
    pixels (heatmap >= tau). Every other pixel scores below ``tau - r``, r a lower bound of its
    rounded tag distance, so when the strong pixels reach that they hold the answer; otherwise only
    the pixels whose heatmap value can still reach the best score are scored. Element by element the
    arithmetic is the original's (float32), so the argmax, ties by pixel order included, is the same.
    """
    num_joints, height, width = heatmaps.shape
    n_pix = height * width
    present = people[:, :, 2] > 0
    has_any = present.any(axis=1)
    missing = (people[:, :, 2] == 0) & has_any[:, None]
    pair_joint, pair_person = np.nonzero(missing.T)   # grouped by joint
    if len(pair_joint) == 0:
        return
    # mean tag of each person, read from the tag maps at its detected joints
    p_idx, j_idx = np.nonzero(present)
    x = people[p_idx, j_idx, 0].astype(np.int32)
    y = people[p_idx, j_idx, 1].astype(np.int32)
    tag_sum = np.zeros((len(people), tags.shape[3]), dtype=np.float32)
    np.add.at(tag_sum, p_idx, tags[j_idx, y, x])
    mean_tag = tag_sum / np.maximum(present.sum(axis=1), 1).astype(np.float32)[:, None]
    ref = mean_tag[pair_person]

    flat_det = heatmaps.reshape(num_joints, n_pix)
    det_all = flat_det.reshape(-1)
    tag_all = tags.reshape(num_joints * n_pix, -1)
    # strong pixels of the joint types that have missing joints only
    needed = np.unique(pair_joint)
    tau = np.zeros(num_joints, dtype=np.float32)
    tau[needed] = np.maximum(flat_det[needed].max(axis=1) * 0.5, 0)
    local = np.flatnonzero(flat_det[needed] >= tau[needed, None])
    strong = needed[local // n_pix] * n_pix + local % n_pix     # global indices, by joint
    per_joint = np.zeros(num_joints, dtype=np.int64)
    per_joint[needed] = np.bincount(local // n_pix, minlength=len(needed))
    joint_start = np.concatenate(([0], np.cumsum(per_joint)[:-1]))
    best, best_index = _segment_best(det_all, tag_all, strong, joint_start[pair_joint], per_joint[pair_joint], ref)

    open_ = best < tau[pair_joint]
    if open_.any():
        bins = _TagBins(tags[:, :, :, 0].reshape(num_joints, n_pix))
        bound = np.zeros(len(best), dtype=np.float32)
        bound[open_] = bins.rounded_distance_bound(pair_joint[open_], ref[open_, 0])
        still = np.flatnonzero(open_ & (best < tau[pair_joint] - bound))
        for joint in np.unique(pair_joint[still]):
            rows = still[pair_joint[still] == joint]
            # a pixel can only tie or win if det >= best + bound; score all of them
            floor = (best[rows] + bound[rows]).min()
            pixels = np.flatnonzero(flat_det[joint] >= floor) if np.isfinite(floor) else np.arange(n_pix)
            scores = _scores(flat_det[joint][pixels], tag_all[joint * n_pix + pixels], ref[rows])
            best_index[rows] = joint * n_pix + pixels[scores.argmax(axis=1)]

    val = det_all[best_index]
    fill = val > 0
    if not fill.any():
        return
    joints, persons, index = pair_joint[fill], pair_person[fill], best_index[fill] - pair_joint[fill] * n_pix
    px, py = index % width, index // width
    dx, dy = _quarter_offsets(heatmaps, joints, px, py)
    people[persons, joints, 0] = px + 0.5 + dx
    people[persons, joints, 1] = py + 0.5 + dy
    people[persons, joints, 2] = val[fill]


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
    seg_start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    elem = np.repeat(starts - seg_start, counts) + np.arange(total)
    pix = pixels[elem]
    owner = np.repeat(np.arange(rows), counts)
    diff = tag[pix] - ref[owner]
    score = det[pix] - np.round(np.sqrt((diff * diff).sum(axis=1)))
    nonempty = counts > 0
    seg_max = np.maximum.reduceat(score, seg_start[nonempty])
    best[nonempty] = seg_max
    at_max = np.flatnonzero(score == np.repeat(best, counts))
    first = at_max[np.searchsorted(at_max, seg_start[nonempty])]
    best_index[nonempty] = pix[first]
    return best, best_index


class _TagBins:
    """Which tag values occur on each joint's map, binned by ``width``, built per joint on first use.

    ``rounded_distance_bound`` gives a lower bound of ``round(min over pixels |tag - ref|)``: the
    distance to the nearest occupied bin bounds the distance to the nearest value, and rounding is
    monotone. Only the first tag component is used (a lower bound of the full distance).
    """

    MAX_BINS = 1 << 16

    def __init__(self, values: np.ndarray, width: float = 0.125) -> None:
        self.values = values          # [J, N]
        self.width = width
        self._starts: dict[int, np.ndarray | None] = {}

    def _build(self, joints: np.ndarray) -> None:
        # all requested joints in one pass: per-joint bin offsets in a single bincount
        w = self.width
        vals = np.ascontiguousarray(self.values[joints], dtype=np.float32)
        lo = vals.min(axis=1).astype(np.float64)
        hi = vals.max(axis=1).astype(np.float64)
        ok = np.isfinite(lo) & np.isfinite(hi) & ((hi - lo) / w < self.MAX_BINS)
        nbins = np.zeros(len(joints), dtype=np.int64)
        nbins[ok] = np.floor((hi[ok] - lo[ok]) / w).astype(np.int64) + 2  # a spare bin for rounding
        offsets = np.concatenate(([0], np.cumsum(nbins)[:-1])).astype(np.int32)
        for j in joints[~ok]:
            self._starts[int(j)] = None
        rows = np.flatnonzero(ok)
        if len(rows):
            idx = ((vals[rows] - lo[rows, None].astype(np.float32)) * np.float32(1 / w)).astype(np.int32)
            idx += offsets[rows, None]
            occupied = np.zeros(int(nbins.sum()), dtype=bool)
            occupied[idx.reshape(-1)] = True
            for r in rows:
                self._starts[int(joints[r])] = np.flatnonzero(occupied[offsets[r]:offsets[r] + nbins[r]]) * w + lo[r]

    def rounded_distance_bound(self, joints: np.ndarray, refs: np.ndarray) -> np.ndarray:
        """Per (joint, ref) pair a lower bound of the rounded tag distance to any pixel of the joint."""
        todo = np.array(sorted({int(j) for j in joints} - set(self._starts)), dtype=np.int64)
        if len(todo):
            self._build(todo)
        out = np.zeros(len(refs), dtype=np.float32)
        w = self.width
        for joint in np.unique(joints):
            occupied = self._starts[int(joint)]
            sel = joints == joint
            if occupied is None or len(occupied) == 0:
                continue
            r = refs[sel].astype(np.float64)
            right = np.searchsorted(occupied, r, side="right")
            left_start = occupied[np.maximum(right - 1, 0)]
            dist_left = np.where(right > 0, np.maximum(r - (left_start + w), 0.0), np.inf)
            dist_right = np.where(right < len(occupied), occupied[np.minimum(right, len(occupied) - 1)] - r, np.inf)
            dist = np.minimum(dist_left, dist_right)
            # float32 binning and distance errors are ulp-sized; stay below them
            out[sel] = np.round(np.maximum(dist - 1e-4 * (1.0 + np.abs(r)), 0.0))
        return out


def _scores(det: np.ndarray, tag: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``det - round(||tag - ref||)`` for every reference tag (rows) and pixel (columns), float32."""
    diff = tag[None, :, :] - ref[:, None, :]
    dist = np.sqrt((diff * diff).sum(axis=2))
    return det[None, :] - np.round(dist)


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
    cand = top_candidates(heatmaps, tag_maps, max_people, nms_kernel, detection_threshold)
    people = _match(cand, order, detection_threshold, tag_threshold, max_people, use_detection_val, exact)
    if adjust and len(people):
        _adjust(heatmaps, people)
    scores = people[:, :, 2].mean(axis=1) if len(people) else np.zeros(0, dtype=np.float32)
    if refine and len(people):
        _refine(heatmaps, tag_maps, people)
    return np.ascontiguousarray(people[:, :, :3]), scores.astype(np.float32)
