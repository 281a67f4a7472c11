"""Bottom-up oracles: decode with one half of the network's answer replaced by the ground truth.

- **ground-truth grouping** (oracle association): the predicted heatmaps, with tag maps in which
  every pixel carries the id of the person whose joint of that type is nearest (a person lacking
  the joint: its centre). Grouping is then exact, and the AP left is that of localisation.
- **ground-truth peaks** (oracle localization): gaussians at the ground-truth joints in place of the
  heatmaps, with the predicted tags. The AP left is that of grouping.

Both run the same grouping as the prediction (:func:`~.grouping.group`, any keyword), on the maps
at the resized input (:func:`~.postprocess.network_maps`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .postprocess import ResizeInfo, people_from_maps

# far beyond any tag threshold: two people's oracle tags never match
TAG_SPACING = 1e3
ORACLE_SIGMA = 2.0  # map pixels, the training targets' sigma


def gt_in_map(people: np.ndarray, info: ResizeInfo) -> np.ndarray:
    """Ground-truth ``people [P, J, 3]`` (x, y, v) from image to resized-input coordinates; people
    with no labelled joint are dropped."""
    people = np.asarray(people, dtype=np.float64).reshape(len(people), -1, 3)
    people = people[(people[..., 2] > 0).any(axis=1)]
    out = people.copy()
    m = info.matrix()
    out[..., :2] = people[..., :2] @ m[:, :2].T + m[:, 2]
    return out


def oracle_tags(people: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Tag maps ``[J, H, W]``: each pixel the id (x TAG_SPACING) of the person nearest to it by that
    joint type (by the person's centre when the joint is not labelled)."""
    j, h, w = shape
    tags = np.zeros(shape, np.float32)
    if not len(people):
        return tags
    vis = people[..., 2] > 0
    centre = (people[..., :2] * vis[..., None]).sum(1) / vis.sum(1)[:, None]      # [P, 2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ids = np.arange(len(people), dtype=np.float32) * TAG_SPACING
    for k in range(j):
        xy = np.where(vis[:, k, None], people[:, k, :2], centre).astype(np.float32)  # [P, 2]
        d2 = (xs[None] - xy[:, 0, None, None]) ** 2 + (ys[None] - xy[:, 1, None, None]) ** 2
        tags[k] = ids[d2.argmin(0)]
    return tags


def oracle_heatmaps(people: np.ndarray, shape: tuple[int, int, int], sigma: float = ORACLE_SIGMA) -> np.ndarray:
    """Heatmaps ``[J, H, W]``: a unit gaussian at every labelled ground-truth joint (max over people)."""
    j, h, w = shape
    heat = np.zeros(shape, np.float32)
    ys, xs = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)
    for person in people:
        for k in np.flatnonzero(person[:, 2] > 0):
            # a pixel (x, y) covers [x, x + 1): its centre is x + 0.5
            gx = np.exp(-((xs + 0.5 - person[k, 0]) ** 2) / (2 * sigma ** 2))
            gy = np.exp(-((ys + 0.5 - person[k, 1]) ** 2) / (2 * sigma ** 2))
            np.maximum(heat[k], gy[:, None] * gx[None, :], out=heat[k])
    return heat


def oracle_people(heatmaps: np.ndarray, tags: np.ndarray, info: ResizeInfo, gt_people: np.ndarray,
                  **group_kwargs: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """People (image pixels) and scores of both oracles for one image: ``{"grouping": ..., "localization": ...}``.

    ``heatmaps [J, H, W]`` and ``tags [J, H, W(, T)]`` are the network's maps at the resized input,
    ``gt_people [P, J, 3]`` the image's ground truth in image pixels.
    """
    gt = gt_in_map(gt_people, info)
    shape = heatmaps.shape
    return {
        "grouping": people_from_maps(heatmaps, oracle_tags(gt, shape), info, **group_kwargs),
        "localization": people_from_maps(oracle_heatmaps(gt, shape), tags, info, **group_kwargs),
    }
