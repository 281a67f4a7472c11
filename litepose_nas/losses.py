"""Training losses: masked heatmap MSE at both output scales and the associative-embedding loss.

Associative embedding: per image, ``pull`` is the mean over people of the variance of their joints'
tags around the person's mean tag, ``push`` the mean over ordered pairs of different people, halved, of

- ``exp``: ``exp(-(t_i - t_j)^2)``, the original's (HigherHRNet / Lite Pose). Its gradient,
  ``-2 d exp(-d^2)``, vanishes as two people's tags approach each other: tags that start (or
  collapse) together are never pushed apart, and grouping then swaps joints between people
  (measured with ``evaluate --breakdown``, docs/training.md);
- ``max``: ``max(0, margin - |t_i - t_j|)``, HigherHRNet's hinge variant, whose gradient keeps its
  full size however close the tags are, and which stops pushing once people are ``margin`` apart.

Both are computed for the whole batch at once from the joint lists of
:func:`litepose_nas.data.targets.ae_joints` (no Python loop over images or people).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .train.config import PUSH_LOSSES


def heatmap_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Per-image masked MSE ``[N]``: mean over joints and pixels of ``(pred - gt)^2 * mask``."""
    return ((pred - target) ** 2 * mask[:, None]).mean(dim=(1, 2, 3))


def ae_loss(tags: Tensor, joints: Tensor, push_loss: str = "exp", margin: float = 1.0) -> tuple[Tensor, Tensor]:
    """Per-image (push, pull) ``[N]`` of tag maps ``[N, J, h, w]`` (or flattened ``[N, J*h*w]``).

    ``joints``: ``[N, P, J, 2]`` int64 of (flat index into the image's ``J*h*w`` tags, visible).
    ``push_loss``: ``exp`` (original) or ``max`` (hinge at ``margin``), see the module doc.
    """
    if push_loss not in PUSH_LOSSES:
        raise ValueError(f"push loss {push_loss!r} not allowed (allowed: {', '.join(PUSH_LOSSES)})")
    n = tags.shape[0]
    flat = tags.reshape(n, -1)
    idx, vis = joints[..., 0], joints[..., 1].to(flat.dtype)           # [N, P, J]
    p, j = idx.shape[1:]
    tag = flat.gather(1, idx.reshape(n, -1)).reshape(n, p, j)           # [N, P, J]
    count = vis.sum(-1)                                                  # joints per person
    valid = (count > 0).to(flat.dtype)                                   # [N, P]
    mean = (tag * vis).sum(-1) / count.clamp(min=1)                      # [N, P]
    var = (((tag - mean[..., None]) ** 2) * vis).sum(-1) / count.clamp(min=1)
    people = valid.sum(-1)                                               # [N]
    pull = (var * valid).sum(-1) / people.clamp(min=1)
    diff = mean[:, :, None] - mean[:, None, :]
    # pairs of different people (the diagonal is masked, not subtracted: exact for both kinds)
    pair = valid[:, :, None] * valid[:, None, :] * (1 - torch.eye(p, dtype=flat.dtype, device=flat.device))
    push_term = torch.exp(-diff ** 2) if push_loss == "exp" else torch.clamp(margin - diff.abs(), min=0)
    push_sum = (push_term * pair).sum((1, 2))
    pairs = (people - 1) * people
    push = torch.where(people > 1, push_sum / pairs.clamp(min=1), torch.zeros_like(push_sum)) * 0.5
    return push, pull


class PoseLoss(nn.Module):
    """Heatmap MSE at both scales plus the associative-embedding loss at 1/4 scale.

    Defaults are the weights of the original configs: heatmaps 1.0 at each scale, push and pull
    0.001, ``exp`` push (the training recipe's defaults differ: see ``train/config.py``).
    ``loss(outputs, batch)`` returns a dict of scalars: ``total``, ``heatmap`` (summed over
    scales), ``heatmap_0`` / ``heatmap_1`` (each weighted), ``push``, ``pull`` (weighted).
    """

    def __init__(self, num_joints: int, heatmap_weights: Sequence[float] = (1.0, 1.0),
                 push_factor: float = 0.001, pull_factor: float = 0.001, push_loss: str = "exp",
                 push_margin: float = 1.0) -> None:
        super().__init__()
        self.num_joints = int(num_joints)
        self.heatmap_weights = tuple(float(w) for w in heatmap_weights)
        self.push_factor = float(push_factor)
        self.pull_factor = float(pull_factor)
        if push_loss not in PUSH_LOSSES:
            raise ValueError(f"push loss {push_loss!r} not allowed (allowed: {', '.join(PUSH_LOSSES)})")
        self.push_loss = push_loss
        self.push_margin = float(push_margin)

    def forward(self, outputs: Sequence[Tensor], batch: dict) -> dict[str, Tensor]:
        j = self.num_joints
        if len(outputs) != len(self.heatmap_weights):
            raise ValueError(f"expected {len(self.heatmap_weights)} outputs, got {len(outputs)}")
        if outputs[0].shape[1] != 2 * j:
            raise ValueError(f"the 1/4-scale output needs {2 * j} channels (heatmaps + tags), got {outputs[0].shape[1]}")
        result: dict[str, Tensor] = {}
        heatmap = outputs[0].new_zeros(())
        for s, (out, weight) in enumerate(zip(outputs, self.heatmap_weights)):
            hm = heatmap_loss(out[:, :j], batch["heatmaps"][s], batch["masks"][s]).mean() * weight
            result[f"heatmap_{s}"] = hm
            heatmap = heatmap + hm
        push, pull = ae_loss(outputs[0][:, j:2 * j], batch["joints"], self.push_loss, self.push_margin)
        push = push.mean() * self.push_factor
        pull = pull.mean() * self.pull_factor
        result.update(heatmap=heatmap, push=push, pull=pull, total=heatmap + push + pull)
        return result


def reference_ae_loss(tags: torch.Tensor, joints: torch.Tensor, push_loss: str = "exp",
                      margin: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The original per-person loop (HigherHRNet's AELoss, 'exp' or 'max'), the reference the
    vectorized loss is tested and benchmarked against (slow: a Python loop over people)."""
    pushes, pulls = [], []
    for pred, jl in zip(tags.reshape(tags.shape[0], -1), joints):
        means, pull = [], torch.zeros(())
        for person in jl:
            t = [pred[idx] for idx, v in person if v > 0]
            if not t:
                continue
            t = torch.stack(t)
            means.append(t.mean())
            pull = pull + ((t - means[-1]) ** 2).mean()
        n = len(means)
        if n == 0:
            pushes.append(torch.zeros(())), pulls.append(torch.zeros(()))
            continue
        pulls.append(pull / n)
        if n == 1:
            pushes.append(torch.zeros(()))
            continue
        m = torch.stack(means)
        diff = m[:, None] - m[None, :]
        term = torch.exp(-diff ** 2) if push_loss == "exp" else torch.clamp(margin - diff.abs(), min=0)
        pushes.append((term.sum() - term.diagonal().sum()) / ((n - 1) * n) * 0.5)
    return torch.stack(pushes), torch.stack(pulls)
