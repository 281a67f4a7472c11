"""A straightforward port of the original parser: Python loops, a pure-Python Hungarian solver.

It keeps the original's structure (people in a dict keyed by their first tag component, a square
cost matrix padded with 1e10, per-person dense refine) so that :func:`~.grouping.group` can be checked
against it and timed against it in ``benchmarks/bench_grouping.py``. It is not meant for use.
"""
from __future__ import annotations

import numpy as np

from ..decode.grouping import Candidates, as_tag_maps, original_joint_order


def hungarian(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment of every row of an ``n x m`` matrix (n <= m), as (row, col) pairs.

    The shortest-augmenting-path Hungarian method with potentials, O(n^2 m), in plain Python: the
    kind of solver the original used (``munkres``).
    """
    n, m = cost.shape
    if n > m:
        raise ValueError("hungarian() needs at least as many columns as rows")
    c = cost.tolist()
    inf = float("inf")
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    match_col = [0] * (m + 1)   # match_col[j]: 1-based row assigned to column j (0: none)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        match_col[0] = i
        j0 = 0
        minv = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = match_col[j0]
            delta = inf
            j1 = 0
            row = c[i0 - 1]
            for j in range(1, m + 1):
                if not used[j]:
                    cur = row[j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[match_col[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if match_col[j0] == 0:
                break
        while True:
            j1 = way[j0]
            match_col[j0] = match_col[j1]
            j0 = j1
            if j0 == 0:
                break
    pairs = [(match_col[j] - 1, j - 1) for j in range(1, m + 1) if match_col[j] != 0]
    return sorted(pairs)


def dense_top_candidates(heatmaps: np.ndarray, tags: np.ndarray, k: int, nms_kernel: int = 5) -> Candidates:
    """The original's candidates: max-pool NMS of the whole map, then its top k (ties: pixel order)."""
    from scipy.ndimage import maximum_filter

    num_joints, height, width = heatmaps.shape
    pooled = maximum_filter(heatmaps, size=(1, nms_kernel, nms_kernel), mode="constant", cval=-np.inf)
    flat = (heatmaps * (pooled == heatmaps)).reshape(num_joints, -1)
    k = min(k, flat.shape[1])
    idx = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(flat, idx, axis=1)
    tag_k = np.take_along_axis(tags.reshape(num_joints, height * width, -1), idx[:, :, None], axis=1)
    xy = np.stack((idx % width, idx // width), axis=2).astype(np.int64)
    return Candidates(xy=xy, val=vals.astype(np.float32), tag=tag_k.astype(np.float32))


def _match_by_tag(cand, order, detection_threshold, tag_threshold, max_people, num_joints, solver):
    tag_dim = cand.tag.shape[2]
    default = np.zeros((num_joints, 3 + tag_dim))
    joint_dict: dict = {}
    tag_dict: dict = {}
    for i, idx in enumerate(order):
        tags = cand.tag[idx]
        joints = np.concatenate((cand.xy[idx], cand.val[idx, :, None], tags), 1)
        mask = joints[:, 2] > detection_threshold
        tags = tags[mask]
        joints = joints[mask]
        if joints.shape[0] == 0:
            continue
        if i == 0 or len(joint_dict) == 0:
            for tag, joint in zip(tags, joints):
                key = tag[0]
                joint_dict.setdefault(key, np.copy(default))[idx] = joint
                tag_dict[key] = [tag]
            continue
        grouped_keys = list(joint_dict.keys())[:max_people]
        grouped_tags = [np.mean(tag_dict[k], axis=0) for k in grouped_keys]
        diff = joints[:, None, 3:] - np.array(grouped_tags)[None, :, :]
        diff_normed = np.linalg.norm(diff, ord=2, axis=2)
        diff_saved = np.copy(diff_normed)
        diff_normed = np.round(diff_normed) * 100 - joints[:, 2:3]
        num_added, num_grouped = diff.shape[0], diff.shape[1]
        if num_added > num_grouped:
            diff_normed = np.concatenate((diff_normed, np.zeros((num_added, num_added - num_grouped)) + 1e10), axis=1)
        if solver == "python":
            pairs = hungarian(diff_normed)
        else:
            from scipy.optimize import linear_sum_assignment

            pairs = list(zip(*linear_sum_assignment(diff_normed)))
        for row, col in pairs:
            if row < num_added and col < num_grouped and diff_saved[row][col] < tag_threshold:
                key = grouped_keys[col]
                joint_dict[key][idx] = joints[row]
                tag_dict[key].append(tags[row])
            else:
                key = tags[row][0]
                joint_dict.setdefault(key, np.copy(default))[idx] = joints[row]
                tag_dict[key] = [tags[row]]
    return np.array([joint_dict[k] for k in joint_dict]).astype(np.float32).reshape(-1, num_joints, 3 + tag_dim)


def _adjust(people: np.ndarray, det: np.ndarray) -> None:
    for person in people:
        for joint_id, joint in enumerate(person):
            if joint[2] > 0:
                x, y = joint[0:2]
                xx, yy = int(x), int(y)
                tmp = det[joint_id]
                x += 0.25 if tmp[yy, min(xx + 1, tmp.shape[1] - 1)] > tmp[yy, max(xx - 1, 0)] else -0.25
                y += 0.25 if tmp[min(yy + 1, tmp.shape[0] - 1), xx] > tmp[max(0, yy - 1), xx] else -0.25
                person[joint_id, 0:2] = (x + 0.5, y + 0.5)


def _refine(det: np.ndarray, tag: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    tags = []
    for i in range(keypoints.shape[0]):
        if keypoints[i, 2] > 0:
            x, y = keypoints[i][:2].astype(np.int32)
            tags.append(tag[i, y, x])
    if not tags:
        return keypoints
    prev_tag = np.mean(tags, axis=0)
    ans = []
    for i in range(keypoints.shape[0]):
        tmp = det[i, :, :]
        diff = tag[i, :, :] - prev_tag[None, None, :]
        tt = np.sqrt((diff * diff).sum(axis=2))
        tmp2 = tmp - np.round(tt)
        y, x = np.unravel_index(np.argmax(tmp2), tmp.shape)
        xx, yy = x, y
        val = tmp[y, x]
        x = x + 0.5
        y = y + 0.5
        x += 0.25 if tmp[yy, min(xx + 1, tmp.shape[1] - 1)] > tmp[yy, max(xx - 1, 0)] else -0.25
        y += 0.25 if tmp[min(yy + 1, tmp.shape[0] - 1), xx] > tmp[max(0, yy - 1), xx] else -0.25
        ans.append((x, y, val))
    ans = np.array(ans)
    for i in range(det.shape[0]):
        if ans[i, 2] > 0 and keypoints[i, 2] == 0:
            keypoints[i, :2] = ans[i, :2]
            keypoints[i, 2] = ans[i, 2]
    return keypoints


def reference_group(
    heatmaps: np.ndarray,
    tags: np.ndarray,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    adjust: bool = True,
    refine: bool = True,
    *,
    nms_kernel: int = 5,
    solver: str = "python",
) -> tuple[np.ndarray, np.ndarray]:
    """The original parser, loop for loop; same signature and outputs as :func:`~.grouping.group`.

    ``solver``: ``"python"`` (pure-Python Hungarian, like the original's ``munkres``) or ``"scipy"``.
    """
    heatmaps = np.ascontiguousarray(heatmaps, dtype=np.float32)
    tag_maps = as_tag_maps(tags, heatmaps)
    num_joints = heatmaps.shape[0]
    cand = dense_top_candidates(heatmaps, tag_maps, max_people, nms_kernel)
    people = _match_by_tag(cand, original_joint_order(num_joints), detection_threshold, tag_threshold,
                           max_people, num_joints, solver)
    if adjust:
        _adjust(people, heatmaps)
    scores = np.array([p[:, 2].mean() for p in people], dtype=np.float32)
    if refine:
        for i in range(len(people)):
            people[i] = _refine(heatmaps, tag_maps, people[i])
    return np.ascontiguousarray(people[:, :, :3]), scores
