"""Training targets: gaussian heatmaps and the joint lists of the associative-embedding loss.

Joint coordinates are continuous with pixel ``i`` covering ``[i, i + 1)``; a gaussian centred on
joint ``x`` has its peak on the pixel whose centre ``i + 0.5`` is nearest to ``x`` (the decoder's
``+0.5`` step maps a peak back to the same place). Gaussians are truncated at 3 sigma like the
original's and joints of several people take the maximum, not the sum.
"""
from __future__ import annotations

import numpy as np

# people per vectorised chunk: bounds the [P, J, h, w] temporary at 30 people and 128 px maps
_CHUNK = 8


def heatmaps(joints: np.ndarray, size: int, sigma: float = 2.0) -> np.ndarray:
    """Heatmaps ``[J, size, size]`` float32 of joints ``[P, J, 3]`` already at map resolution.

    Joints with ``v == 0`` or outside the map give nothing.
    """
    p, j = joints.shape[:2]
    out = np.zeros((j, size, size), np.float32)
    if p == 0:
        return out
    inside = (joints[..., 2] > 0) & (joints[..., 0] >= 0) & (joints[..., 0] < size) \
        & (joints[..., 1] >= 0) & (joints[..., 1] < size)
    centres = np.arange(size, dtype=np.float32) + 0.5
    for start in range(0, p, _CHUNK):
        jt = joints[start:start + _CHUNK]
        ok = inside[start:start + _CHUNK]
        dx = centres[None, None, :] - jt[..., 0, None]   # [p, J, w]
        dy = centres[None, None, :] - jt[..., 1, None]   # [p, J, h]
        gx = np.exp(-dx * dx / (2 * sigma * sigma)) * (np.abs(dx) <= 3 * sigma + 0.5)
        gy = np.exp(-dy * dy / (2 * sigma * sigma)) * (np.abs(dy) <= 3 * sigma + 0.5)
        gx *= ok[..., None]
        g = gy[..., :, None] * gx[..., None, :]            # [p, J, h, w]
        np.maximum(out, g.max(0), out=out)
    return out


def ae_joints(joints: np.ndarray, size: int, max_people: int) -> np.ndarray:
    """``[max_people, J, 2]`` int64 of (flat index into the ``[J, size, size]`` tag maps, visible).

    The flat index is ``j * size * size + y * size + x`` of the pixel holding joint ``j``, so the
    loss gathers every tag of a batch with one ``gather`` on the flattened tag maps.
    """
    p, j = joints.shape[:2]
    out = np.zeros((max_people, j, 2), np.int64)
    p = min(p, max_people)
    if p == 0:
        return out
    jt = joints[:p]
    x = np.floor(jt[..., 0]).astype(np.int64)
    y = np.floor(jt[..., 1]).astype(np.int64)
    vis = (jt[..., 2] > 0) & (x >= 0) & (x < size) & (y >= 0) & (y < size)
    idx = np.arange(j, dtype=np.int64)[None, :] * size * size + y * size + x
    out[:p, :, 0] = np.where(vis, idx, 0)
    out[:p, :, 1] = vis
    return out
