"""Training targets: gaussian heatmaps and the joint lists of the associative-embedding loss.

Joint coordinates are continuous with pixel ``i`` covering ``[i, i + 1)``. Two target kinds:

* ``"subpixel"`` (our default): a gaussian centred on the exact coordinate, sampled at the pixel
  centres ``i + 0.5``, so its peak is on the pixel holding the joint and the neighbours encode
  where in the pixel it lies; each axis cut at ``3 sigma + 0.5`` px.
* ``"integer"`` (the original's, HigherHRNet's ``HeatmapGenerator``): a gaussian centred on the
  pixel ``int(x), int(y)`` (truncation toward zero, so a joint in ``(-1, 0)`` lands on pixel 0),
  over a ``(6 sigma + 3)``-px square window (15 x 15 at sigma 2).

Either way the peak is on the pixel holding the joint (for ``x >= 0``) and the decoder's ``+0.5``
step maps it to that pixel's centre. Joints of several people take the maximum, not the sum.
"""
from __future__ import annotations

import numpy as np

# people per vectorised chunk: bounds the [P, J, h, w] temporary at 30 people and 128 px maps
_CHUNK = 8
TARGET_KINDS = ("subpixel", "integer")


def joint_pixels(joints: np.ndarray, size: int, kind: str = "subpixel") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, kept) of joints ``[P, J, 3]``: the int64 pixel holding each joint and whether it
    counts (visible and on the map). ``"subpixel"`` floors; ``"integer"`` truncates toward zero
    like the original's ``int()``, which also keeps joints in ``(-1, 0)`` (on pixel 0)."""
    if kind not in TARGET_KINDS:
        raise ValueError(f"target kind {kind!r} not allowed (allowed: {', '.join(TARGET_KINDS)})")
    xy = joints[..., :2]
    pix = (np.floor(xy) if kind == "subpixel" else np.trunc(xy)).astype(np.int64)
    x, y = pix[..., 0], pix[..., 1]
    kept = (joints[..., 2] > 0) & (x >= 0) & (x < size) & (y >= 0) & (y < size)
    return x, y, kept


def heatmaps(joints: np.ndarray, size: int, sigma: float = 2.0, kind: str = "subpixel") -> np.ndarray:
    """Heatmaps ``[J, size, size]`` float32 of joints ``[P, J, 3]`` already at map resolution.

    Joints with ``v == 0`` or off the map (see :func:`joint_pixels`) give nothing.
    """
    p, j = joints.shape[:2]
    out = np.zeros((j, size, size), np.float32)
    if p == 0:
        return out
    px, py, inside = joint_pixels(joints, size, kind)
    if kind == "subpixel":
        # the gaussian's centre in pixel-index units (centres at i + 0.5), cut at 3 sigma + 0.5
        cx, cy, cut = joints[..., 0] - 0.5, joints[..., 1] - 0.5, 3 * sigma + 0.5
    else:
        # HigherHRNet: centred on the integer pixel, window of offsets within +-(3 sigma + 1) (rounded)
        cx, cy, cut = px.astype(np.float32), py.astype(np.float32), float(np.round(3 * sigma + 1))
    index = np.arange(size, dtype=np.float32)
    for start in range(0, p, _CHUNK):
        ok = inside[start:start + _CHUNK]
        dx = index[None, None, :] - cx[start:start + _CHUNK, :, None]   # [p, J, w]
        dy = index[None, None, :] - cy[start:start + _CHUNK, :, None]   # [p, J, h]
        gx = np.exp(-dx * dx / (2 * sigma * sigma)) * (np.abs(dx) <= cut)
        gy = np.exp(-dy * dy / (2 * sigma * sigma)) * (np.abs(dy) <= cut)
        gx *= ok[..., None]
        g = gy[..., :, None] * gx[..., None, :]            # [p, J, h, w]
        np.maximum(out, g.max(0), out=out)
    return out


def ae_joints(joints: np.ndarray, size: int, max_people: int, kind: str = "subpixel") -> np.ndarray:
    """``[max_people, J, 2]`` int64 of (flat index into the ``[J, size, size]`` tag maps, visible).

    The flat index is ``j * size * size + y * size + x`` of the pixel holding joint ``j`` (the
    heatmap's peak pixel for the same ``kind``), so the loss gathers every tag of a batch with one
    ``gather`` on the flattened tag maps.
    """
    p, j = joints.shape[:2]
    out = np.zeros((max_people, j, 2), np.int64)
    p = min(p, max_people)
    if p == 0:
        return out
    x, y, vis = joint_pixels(joints[:p], size, kind)
    idx = np.arange(j, dtype=np.int64)[None, :] * size * size + y * size + x
    out[:p, :, 0] = np.where(vis, idx, 0)
    out[:p, :, 1] = vis
    return out
