"""The static LitePose network of one architecture, with the original state_dict layout."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..space.arch import Arch
from ..space.structure import STEM_KERNEL, expanded_channels
from .layers import ConvBNAct, InvertedResidual, SepConv, batch_norm, deconv

STEM_MID_CHANNELS = 32


class LitePose(nn.Module):
    """Single-branch backbone + fusion deconv head.

    ``forward`` returns ``[N, 2J, S/4, S/4]`` (J heatmaps then J tag maps) and ``[N, J, S/2, S/2]``.
    """

    def __init__(self, arch: Arch, num_joints: int = 17, stem_mid_channels: int = STEM_MID_CHANNELS) -> None:
        super().__init__()
        if num_joints <= 0:
            raise ValueError(f"num_joints must be positive, got {num_joints}")
        self.arch = arch
        self.num_joints = num_joints
        mid = stem_mid_channels
        self.first = nn.Sequential(
            ConvBNAct(3, mid, STEM_KERNEL, 2),
            ConvBNAct(mid, mid, STEM_KERNEL, 1, groups=mid),
            nn.Conv2d(mid, arch.input_channel, 1, bias=False),
            batch_norm(arch.input_channel),
        )
        stages = []
        in_ch = arch.input_channel
        feature_channels = [arch.input_channel]
        for stage in arch.stages:
            blocks = []
            for b, block in enumerate(stage.blocks):
                stride = stage.stride if b == 0 else 1
                blocks.append(
                    InvertedResidual(in_ch, stage.channel, expanded_channels(in_ch, block.expansion), block.kernel, stride)
                )
                in_ch = stage.channel
            stages.append(nn.Sequential(*blocks))
            feature_channels.append(stage.channel)
        self.stage = nn.ModuleList(stages)

        head = arch.deconv_setting
        refined_in = [feature_channels[-1], head[0], head[1]]
        raw_in = [feature_channels[-i - 2] for i in range(len(head))]
        self.deconv_refined = nn.ModuleList(deconv(refined_in[i], head[i]) for i in range(len(head)))
        self.deconv_raw = nn.ModuleList(deconv(raw_in[i], head[i]) for i in range(len(head)))
        self.deconv_bnrelu = nn.ModuleList(nn.Sequential(batch_norm(w), nn.ReLU()) for w in head)
        # final layer j follows head layer j + 1: 1/4 scale (heatmaps + tags), then 1/2 (heatmaps)
        out_channels = [2 * num_joints, num_joints]
        self.final_refined = nn.ModuleList(SepConv(head[j + 1], out_channels[j]) for j in range(2))
        self.final_raw = nn.ModuleList(SepConv(feature_channels[-j - 4], out_channels[j]) for j in range(2))
        _init_weights(self)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.first(x)
        features = [x]
        for stage in self.stage:
            x = stage(x)
            features.append(x)
        head = features[-1]
        outputs = []
        for i in range(len(self.deconv_refined)):
            head = self.deconv_bnrelu[i](self.deconv_refined[i](head) + self.deconv_raw[i](features[-i - 2]))
            if i > 0:
                outputs.append(self.final_refined[i - 1](head) + self.final_raw[i - 1](features[-i - 3]))
        return outputs


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    # Output convs start small so the first heatmaps are near zero, as the targets mostly are.
    for sep in (*model.final_refined, *model.final_raw):
        nn.init.normal_(sep.conv[3].weight, std=0.001)


def build_model(arch: Arch, num_joints: int = 17) -> LitePose:
    """The static LitePose network of ``arch`` (COCO: 17 joints, CrowdPose: 14)."""
    return LitePose(arch, num_joints)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def output_shapes(arch: Arch, num_joints: int, batch: int = 1) -> list[tuple[int, ...]]:
    """Expected output shapes at the architecture's own resolution."""
    s = arch.img_size
    return [(batch, 2 * num_joints, s // 4, s // 4), (batch, num_joints, s // 2, s // 2)]
