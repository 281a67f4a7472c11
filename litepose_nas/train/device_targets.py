"""``--gpu-resize``: the step's input size and its targets made on the training device.

Without it every step's batch is prepared by the data-loader workers at the step's resolution
(one :class:`~litepose_nas.data.PoseDataset` per size). With it the workers always prepare the
largest training size and skip the heatmaps and tag indices; on the device the images (and
ignore masks) are resized to the step's size and the heatmaps and tag indices are rendered from
the transformed joints. The augmentation is scale-covariant (``crop_matrix`` scales exactly with
the output size), so the heatmaps and tag indices are those the workers would have made at that
size (people beyond ``max_people`` excepted: they are dropped, as the tag loss drops them); the
image differs by the interpolation of a resize against a direct warp.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

# people per chunk when rendering heatmaps: bounds the [B, p, J, h, w] temporary
_CHUNK = 8


def people_tensor(joints: np.ndarray, max_people: int) -> Tensor:
    """Joints ``[P, J, 3]`` (input pixels) padded / cut to ``[max_people, J, 3]`` (padding invisible)."""
    out = torch.zeros((max_people, joints.shape[1], 3), dtype=torch.float32)
    p = min(len(joints), max_people)
    if p:
        out[:p] = torch.from_numpy(np.ascontiguousarray(joints[:p], dtype=np.float32))
    return out


def render_heatmaps(people: Tensor, size: int, sigma: float) -> Tensor:
    """Heatmaps ``[B, J, size, size]`` of joints ``[B, P, J, 3]`` at map resolution; the same values
    as :func:`litepose_nas.data.targets.heatmaps` (gaussians truncated at 3 sigma, maximum over people)."""
    # people are packed first (people_tensor): render only up to the last one with a visible joint
    present = (people[..., 2] > 0).any(-1)
    people = people[:, : int(present.sum(1).max())] if people.shape[1] else people
    b, p, j = people.shape[:3]
    out = people.new_zeros((b, j, size, size))
    centres = torch.arange(size, device=people.device, dtype=people.dtype) + 0.5
    x, y, v = people[..., 0], people[..., 1], people[..., 2]
    ok = (v > 0) & (x >= 0) & (x < size) & (y >= 0) & (y < size)
    for start in range(0, p, _CHUNK):
        sl = slice(start, start + _CHUNK)
        dx = centres - x[:, sl, :, None]  # [B, p, J, w]
        dy = centres - y[:, sl, :, None]
        gx = torch.exp(-dx * dx / (2 * sigma * sigma)) * (dx.abs() <= 3 * sigma + 0.5)
        gy = torch.exp(-dy * dy / (2 * sigma * sigma)) * (dy.abs() <= 3 * sigma + 0.5)
        gx = gx * ok[:, sl, :, None]
        out = torch.maximum(out, (gy[..., :, None] * gx[..., None, :]).amax(1))
    return out


def tag_indices(people: Tensor, size: int) -> Tensor:
    """``[B, P, J, 2]`` int64 (flat index into the ``[J, size, size]`` tag maps, visible) of joints at
    map resolution; :func:`litepose_nas.data.targets.ae_joints` for a batch."""
    j = people.shape[2]
    x = torch.floor(people[..., 0]).long()
    y = torch.floor(people[..., 1]).long()
    vis = (people[..., 2] > 0) & (x >= 0) & (x < size) & (y >= 0) & (y < size)
    idx = torch.arange(j, device=people.device)[None, None, :] * size * size + y * size + x
    return torch.stack([torch.where(vis, idx, torch.zeros_like(idx)), vis.long()], dim=-1)


def _resize(t: Tensor, size: int) -> Tensor:
    if t.shape[-1] == size:
        return t
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)


def resize_batch(batch: dict[str, Any], sigma: float, memory_format: torch.memory_format) -> dict[str, Any]:
    """The batch (on its device, prepared at the largest size) at its step's size ``batch['size']``,
    with the heatmaps, masks and tag indices of that size."""
    size = step_resolution(batch)
    image = batch["image"]
    full = image.shape[-1]
    people = batch["people"].float()
    outputs = (size // 4, size // 2)  # PoseDataset's map sizes: 1/4 and 1/2 of the input
    masks = []
    for m in batch["masks"]:
        # the workers' ignore masks are 0 / 1; bilinear then >= 0.5 keeps a region where it covers a pixel
        resized = _resize(m[:, None].float(), outputs[len(masks)])[:, 0]
        masks.append((resized >= 0.5).to(m.dtype) if resized.shape[-1] != m.shape[-1] else m)
    heatmaps = []
    for o in outputs:
        scaled = people.clone()
        scaled[..., :2] *= o / full
        heatmaps.append(render_heatmaps(scaled, o, sigma))
    scaled = people.clone()
    scaled[..., :2] *= outputs[0] / full
    return {
        **{k: v for k, v in batch.items() if k not in ("people", "size")},
        "image": _resize(image, size).contiguous(memory_format=memory_format),
        "heatmaps": heatmaps,
        "masks": masks,
        "joints": tag_indices(scaled, outputs[0]),
    }


def step_resolution(batch: dict[str, Any]) -> int:
    """The input size of a step's batch (its ``size`` entry under ``--gpu-resize``)."""
    if "size" in batch:
        return int(batch["size"].reshape(-1)[0])
    return int(batch["image"].shape[-1])


class DeviceTargetDataset(Dataset):
    """Items ``(size, index, aug_seed)`` prepared at the largest size, targets left to the device."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.dataset.device_targets = True

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int, int]) -> dict:
        size, index, aug_seed = item
        return {**self.dataset[(int(index), int(aug_seed))], "size": torch.tensor(int(size))}
