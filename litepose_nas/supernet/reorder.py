"""Channel re-ordering by importance, so that a subnet's leading channels are the important ones.

Every elastic channel dimension of the supernet is a *group*: the tensors that produce those
channels (conv outputs, BN vectors), the per-channel layers they pass through (depthwise convs,
BNs) and the layers that consume them (conv / deconv inputs). One permutation is applied to the
whole group, so the largest network computes the same function. The permutation sorts channels
by the L1 norm of the next layer's input weights, descending, as the original's
``re_organize_weights`` does for the stem and stage outputs. Unlike the original we also
permute the head layers that read the backbone features (the original re-initialised them and
so could skip them) and, as OFA does, each block's expanded channels (elastic expansion) and the
head widths.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

BN_VECTORS = ("weight", "bias", "running_mean", "running_var")


@dataclass
class ChannelGroup:
    """Tensors sharing one channel index: ``(tensor, dim)`` pairs, plus the importance source."""

    name: str
    importance: tuple[Tensor, int]
    members: list[tuple[Tensor, int]] = field(default_factory=list)

    def add_bn(self, bn: nn.BatchNorm2d) -> None:
        for attr in BN_VECTORS:
            tensor = getattr(bn, attr)
            if tensor is not None:
                self.members.append((tensor, 0))

    def add_sepconv_input(self, sep: nn.Module) -> None:
        """A final separable conv reading these channels: depthwise + BN per channel, pointwise input."""
        self.members.append((sep.conv[0].weight, 0))
        self.add_bn(sep.conv[1])
        self.members.append((sep.conv[3].weight, 1))


def importance_order(weight: Tensor, dim: int) -> Tensor:
    """Channel indices along ``dim`` sorted by L1 norm over the other dims, descending (stable)."""
    other = tuple(d for d in range(weight.dim()) if d != dim)
    norms = weight.detach().abs().sum(dim=other)
    return torch.sort(norms, descending=True, stable=True).indices


def channel_groups(net: nn.Module) -> list[ChannelGroup]:
    """The elastic channel groups of a :class:`~litepose_nas.supernet.SuperLitePose`."""
    stages = [list(stage) for stage in net.stage]
    # consumers of each backbone feature (stem, then each stage) in the head, from the plan's wiring
    raw_readers: dict[int, list[tuple[Tensor, int]]] = {f: [] for f in range(len(stages) + 1)}
    feature_sepconvs: dict[int, list[nn.Module]] = {f: [] for f in range(len(stages) + 1)}
    num_features = len(stages) + 1
    wiring = net.wiring
    for i, deconv in enumerate(net.deconv_raw):
        raw_readers[wiring.raw_sources[i]].append((deconv.weight, 0))
    raw_readers[num_features - 1].append((net.deconv_refined[0].weight, 0))
    for j, sep in enumerate(net.final_raw):
        feature_sepconvs[wiring.skip_sources[j]].append(sep)

    groups: list[ChannelGroup] = []
    # backbone features: the stem output and each stage's output (a residual stream within a stage)
    feature_groups: list[ChannelGroup] = []
    for f in range(num_features):
        if f + 1 < num_features:
            next_weight = stages[f][0].inv[0].weight  # the first block that reads this feature
            group = ChannelGroup(f"feature{f}", (next_weight, 1))
        else:
            group = ChannelGroup(f"feature{f}", (net.deconv_refined[0].weight, 0))
        if f == 0:
            group.members.append((net.first[2].weight, 0))
            group.add_bn(net.first[3])
        else:
            for b, block in enumerate(stages[f - 1]):
                group.members.append((block.point_conv[0].weight, 0))
                group.add_bn(block.point_conv[1])
                if b > 0:
                    group.members.append((block.inv[0].weight, 1))
        if f + 1 < num_features:
            group.members.append((stages[f][0].inv[0].weight, 1))
        group.members.extend(raw_readers[f])
        for sep in feature_sepconvs[f]:
            group.add_sepconv_input(sep)
        feature_groups.append(group)
    # A stride-1 first block with equal widths adds its input to its output: one channel index.
    merged = [feature_groups[0]]
    for f in range(1, num_features):
        block0 = stages[f - 1][0]
        if block0.stride == 1 and block0.max_in == block0.max_out:
            merged[-1].members.extend(feature_groups[f].members)
        else:
            merged.append(feature_groups[f])
    groups.extend(merged)

    # expanded (hidden) channels of every block
    for s, stage in enumerate(stages):
        for b, block in enumerate(stage):
            group = ChannelGroup(f"stage{s}.block{b}.hidden", (block.point_conv[0].weight, 1))
            group.members.append((block.inv[0].weight, 0))
            group.add_bn(block.inv[1])
            group.members.append((block.depth_conv[0].weight, 0))
            group.add_bn(block.depth_conv[1])
            group.members.append((block.point_conv[0].weight, 1))
            groups.append(group)

    # head widths: deconv outputs, their BN, and the next deconv / final separable conv
    num_head = len(net.deconv_refined)
    for i in range(num_head):
        j = wiring.level_of_output(i)
        if i + 1 < num_head:
            importance = (net.deconv_refined[i + 1].weight, 0)
        else:
            importance = (net.final_refined[j].conv[3].weight, 1)
        group = ChannelGroup(f"head{i}", importance)
        group.members.append((net.deconv_refined[i].weight, 1))
        group.members.append((net.deconv_raw[i].weight, 1))
        group.add_bn(net.deconv_bnrelu[i][0])
        if i + 1 < num_head:
            group.members.append((net.deconv_refined[i + 1].weight, 0))
        if j is not None:
            group.add_sepconv_input(net.final_refined[j])
        groups.append(group)
    return groups


@torch.no_grad()
def reorder_channels(net: nn.Module) -> None:
    """Permute every channel group of ``net`` (a SuperLitePose) in place by importance."""
    # Orders are computed first: a group's importance is a sum over dims that other groups
    # permute, so it does not depend on the order in which groups are applied.
    orders = [(group, importance_order(*group.importance)) for group in channel_groups(net)]
    for group, order in orders:
        for tensor, dim in group.members:
            if tensor.shape[dim] != order.numel():
                raise RuntimeError(
                    f"channel group {group.name}: tensor of shape {list(tensor.shape)} has "
                    f"{tensor.shape[dim]} channels on dim {dim}, expected {order.numel()}"
                )
            tensor.copy_(tensor.index_select(dim, order.to(tensor.device)))
    net.clear_cache()
