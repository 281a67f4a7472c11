"""One optimisation step's forward: the sandwich rule with in-place distillation, or a static net.

Sandwich rule (BigNAS / Once-for-All): every step trains the largest subnet, the smallest and
``num_random`` random ones on the same batch and sums their losses, so the extremes of the space
(the upper and lower bounds of every subnet's accuracy) are trained on every step. In-place
distillation: the smaller subnets also fit the largest subnet's heatmaps of the same step,
detached (a soft target that is easier to follow than the gaussians and costs no extra forward).

The whole step is one ``forward`` of one module, so that ``DistributedDataParallel`` sees one
forward and one backward per step (it cannot follow several forwards of differently shaped
subnets before a backward) and all-reduces the summed gradient once.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..space.arch import Arch
from ..space.search_space import SearchSpace
from .data import STREAM_ARCHS


def sandwich_archs(space: SearchSpace, seed: int, step: int, resolution: int, num_random: int = 2) -> list[Arch]:
    """Largest, smallest and ``num_random`` random architectures of step ``step``, at ``resolution``.

    A pure function of ``(seed, step)``: every rank of a distributed run and a resumed run draw
    the same subnets. The input size is the step's (sampled once per step for the whole batch);
    the subnets' own ``img_size`` is set to it.
    """
    rng = np.random.default_rng([int(seed), STREAM_ARCHS, int(step)])
    archs = [space.largest(), space.smallest()]
    archs += [space.sample(rng) for _ in range(num_random)]
    return [dataclasses.replace(a, img_size=int(resolution)) for a in archs]


def distill_loss(student: Sequence[Tensor], teacher: Sequence[Tensor], masks: Sequence[Tensor], num_joints: int) -> Tensor:
    """Masked MSE of the student's heatmaps to the teacher's, summed over the output scales.

    Same reduction as the heatmap loss (mean over pixels and joints per image, then over images),
    so a weight of 1 puts the soft target on the same footing as the ground truth.
    """
    total = student[0].new_zeros((), dtype=torch.float32)
    for s_out, t_out, mask in zip(student, teacher, masks):
        s_hm = s_out[:, :num_joints].float()
        t_hm = t_out[:, :num_joints].float()
        diff = (s_hm - t_hm) ** 2 * mask[:, None].float()
        total = total + diff.mean(dim=(1, 2, 3)).mean()
    return total


class StepModule(nn.Module):
    """Base of the per-step forward: returns the loss to minimise and detached figures to log."""

    def __init__(self, model: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    @property
    def num_joints(self) -> int:
        return int(self.model.num_joints)

    def _loss(self, outputs: list[Tensor], batch: dict) -> dict[str, Tensor]:
        return self.loss(outputs, batch)


class SandwichStep(StepModule):
    """Forward of one supernet step: ``archs[0]`` is the teacher (the largest subnet)."""

    def __init__(self, supernet: nn.Module, loss: nn.Module, distill_weight: float = 1.0) -> None:
        super().__init__(supernet, loss)
        self.distill_weight = float(distill_weight)
        self.archs: Sequence[Arch] = ()

    def set_archs(self, archs: Sequence[Arch]) -> None:
        """The subnets of the next step (so that DDP's forward only sees tensors)."""
        self.archs = tuple(archs)

    def forward(self, batch: dict, archs: Sequence[Arch] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        archs = self.archs if archs is None else archs
        if not archs:
            raise ValueError("SandwichStep: no subnets given (call set_archs or pass archs)")
        images = batch["image"]
        teacher_out = self.model(images, archs[0])
        parts = self._loss(teacher_out, batch)
        total = parts["total"]
        stats = {f"largest_{k}": v.detach() for k, v in parts.items()}
        teacher = [o.detach() for o in teacher_out]
        distill_sum = torch.zeros((), device=images.device)
        for i, arch in enumerate(archs[1:], start=1):
            out = self.model(images, arch)
            sub = self._loss(out, batch)
            total = total + sub["total"]
            if self.distill_weight > 0:
                kd = distill_loss(out, teacher, batch["masks"], self.num_joints)
                total = total + self.distill_weight * kd
                distill_sum = distill_sum + kd.detach()
            if i == 1:
                stats["smallest_total"] = sub["total"].detach()
        if len(archs) > 1:
            stats["distill"] = distill_sum / (len(archs) - 1)
        stats["loss"] = total.detach()
        return total, stats


class SubnetStep(StepModule):
    """Forward of one step of a static network."""

    def forward(self, batch: dict, archs: Sequence[Arch] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        parts = self._loss(self.model(batch["image"]), batch)
        stats = {k: v.detach() for k, v in parts.items()}
        stats["loss"] = parts["total"].detach()
        return parts["total"], stats
