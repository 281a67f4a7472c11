"""The static LitePose network of one architecture, with the original state_dict layout."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..space.arch import Arch
from ..space.plan import network_plan
from .layers import ConvBNAct, InvertedResidual, SepConv, batch_norm, deconv


class LitePose(nn.Module):
    """Single-branch backbone + fusion deconv head, built from the architecture's
    :class:`~litepose_nas.space.plan.NetworkPlan`.

    ``forward`` returns one tensor per output of the plan; for the Lite Pose shape
    ``[N, 2J, S/4, S/4]`` (J heatmaps then J tag maps) and ``[N, J, S/2, S/2]``.
    """

    def __init__(self, arch: Arch, num_joints: int = 17) -> None:
        super().__init__()
        plan = network_plan(arch, num_joints)
        self.arch = arch
        self.num_joints = num_joints
        self.wiring = plan.wiring
        stem = plan.layer("first")
        self.first = nn.Sequential(
            ConvBNAct(stem.cin, stem.mid, stem.kernel, stem.stride),
            ConvBNAct(stem.mid, stem.mid, stem.kernel, 1, groups=stem.mid),
            nn.Conv2d(stem.mid, stem.cout, 1, bias=False),
            batch_norm(stem.cout),
        )
        self.stage = nn.ModuleList(
            nn.Sequential(*(InvertedResidual(b.cin, b.cout, b.mid, b.kernel, b.stride) for b in blocks))
            for blocks in plan.stage_blocks
        )
        deconvs = plan.of_kind("deconv")
        self.deconv_refined = nn.ModuleList(deconv(d.cin, d.cout) for d in deconvs if d.name.startswith("deconv_refined"))
        self.deconv_raw = nn.ModuleList(deconv(d.cin, d.cout) for d in deconvs if d.name.startswith("deconv_raw"))
        self.deconv_bnrelu = nn.ModuleList(nn.Sequential(batch_norm(f.cout), nn.ReLU()) for f in plan.of_kind("fuse"))
        finals = plan.of_kind("final")
        self.final_refined = nn.ModuleList(SepConv(f.cin, f.cout, f.kernel) for f in finals if f.name.startswith("final_refined"))
        self.final_raw = nn.ModuleList(SepConv(f.cin, f.cout, f.kernel) for f in finals if f.name.startswith("final_raw"))
        _init_weights(self)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.first(x)
        features = [x]
        for stage in self.stage:
            x = stage(x)
            features.append(x)
        w = self.wiring
        head = features[-1]
        outputs = []
        for i in range(len(self.deconv_refined)):
            head = self.deconv_bnrelu[i](self.deconv_refined[i](head) + self.deconv_raw[i](features[w.raw_sources[i]]))
            j = w.level_of_output(i)
            if j is not None:
                outputs.append(self.final_refined[j](head) + self.final_raw[j](features[w.skip_sources[j]]))
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
    w, s = arch.wiring, arch.img_size
    return [(batch, c, s // st, s // st) for c, st in zip(w.output_channels(num_joints), w.output_strides)]
