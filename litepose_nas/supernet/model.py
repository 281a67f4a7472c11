"""``SuperLitePose``: one set of weights that runs every architecture of a search space.

The module holds the largest network of the space under the original supernet's state_dict
names (``pose_supermobilenet``: the static names plus ``stage.s.b.Linear5x5`` / ``Linear3x3``).
A subnet takes the leading channels of every tensor, the first ``d`` blocks of each stage, the
leading channels of each expanded layer and, for small kernels, the transformed centre crop of
the largest depthwise kernel. :meth:`SuperLitePose.extract` turns a subnet into the standalone
static :class:`~litepose_nas.models.LitePose` with the same outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ArchError
from ..models.layers import ConvBNAct
from ..models.litepose import LitePose
from ..space.arch import Arch
from ..space.search_space import SearchSpace
from ..space.plan import network_plan
from ..space.structure import expanded_channels
from .block import SuperInvertedResidual
from .layers import DynamicBatchNorm2d, DynamicConv2d, DynamicConvTranspose2d, DynamicSepConv


@dataclass(frozen=True)
class BlockPlan:
    """What one active block runs: output width, kernel, hidden width, residual add."""

    out_channels: int
    kernel: int
    mid_channels: int
    residual: bool


@dataclass(frozen=True)
class SubnetPlan:
    """An architecture resolved against the supernet, computed once per :meth:`set_active`."""

    arch: Arch
    stem: int
    stages: tuple[tuple[BlockPlan, ...], ...]
    head: tuple[int, ...]


class SuperLitePose(nn.Module):
    """The weight-sharing supernet of a search space.

    ``supernet(x, arch)`` runs ``arch`` (any architecture that fits the largest network; the input
    size is free, a multiple of the network's total stride); ``supernet(x)`` runs the active one (:meth:`set_active`,
    initially the largest). Outputs are those of :class:`~litepose_nas.models.LitePose`:
    ``[N, 2J, S/4, S/4]`` and ``[N, J, S/2, S/2]``.
    """

    def __init__(self, space: SearchSpace, num_joints: int = 17) -> None:
        super().__init__()
        if num_joints <= 0:
            raise ValueError(f"num_joints must be positive, got {num_joints}")
        self.space = space
        self.num_joints = num_joints
        self.max_arch = space.largest()
        self.stem_mid_channels = space.stem_mid_channels
        # the largest network's plan: every elastic layer holds its largest tensor
        largest = network_plan(self.max_arch, num_joints)
        self.wiring = largest.wiring
        stem = largest.layer("first")
        self.first = nn.Sequential(
            ConvBNAct(stem.cin, stem.mid, stem.kernel, stem.stride),
            ConvBNAct(stem.mid, stem.mid, stem.kernel, 1, groups=stem.mid),
            DynamicConv2d(stem.mid, stem.cout, 1),
            DynamicBatchNorm2d(stem.cout),
        )
        stages = []
        for sspace, blocks in zip(space.stages, largest.stage_blocks):
            max_kernel = max(sspace.kernels)
            max_expansion = max(sspace.expansions)
            stages.append(nn.Sequential(*(
                SuperInvertedResidual(b.cin, b.cout, expanded_channels(b.cin, max_expansion), max_kernel, b.stride)
                for b in blocks
            )))
        self.stage = nn.ModuleList(stages)
        deconvs = largest.of_kind("deconv")
        self.deconv_refined = nn.ModuleList(
            DynamicConvTranspose2d(d.cin, d.cout) for d in deconvs if d.name.startswith("deconv_refined"))
        self.deconv_raw = nn.ModuleList(
            DynamicConvTranspose2d(d.cin, d.cout) for d in deconvs if d.name.startswith("deconv_raw"))
        self.deconv_bnrelu = nn.ModuleList(
            nn.Sequential(DynamicBatchNorm2d(f.cout), nn.ReLU()) for f in largest.of_kind("fuse"))
        finals = largest.of_kind("final")
        self.final_refined = nn.ModuleList(
            DynamicSepConv(f.cin, f.cout, f.kernel) for f in finals if f.name.startswith("final_refined"))
        self.final_raw = nn.ModuleList(
            DynamicSepConv(f.cin, f.cout, f.kernel) for f in finals if f.name.startswith("final_raw"))
        self._init_weights()
        self._plan: SubnetPlan = self.plan(self.max_arch)

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def _init_weights(self) -> None:
        # The static network's initialisation (see models.litepose), on the largest tensors.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for sep in (*self.final_refined, *self.final_raw):
            nn.init.normal_(sep.conv[3].weight, std=0.001)
        self.reset_kernel_transforms()

    def reset_kernel_transforms(self) -> None:
        """Set every ``Linear{k}x{k}`` to identity / zero bias (plain centre crops).

        Useful after loading the original supernet, whose maps were never trained (its sampler
        fixes the kernel at 7) and hold their random default initialisation.
        """
        for block in self.blocks():
            block.reset_kernel_transforms()

    def blocks(self) -> list[SuperInvertedResidual]:
        return [block for stage in self.stage for block in stage]

    def clear_cache(self) -> None:
        """Drop cached transformed kernels (they are also invalidated by any in-place weight update)."""
        for block in self.blocks():
            block.clear_cache()

    # ------------------------------------------------------------------ active architecture
    def plan(self, arch: Arch) -> SubnetPlan:
        """Resolve ``arch`` against this supernet; :class:`ArchError` names the first field that does not fit."""
        largest = self.max_arch
        where = "architecture"
        if arch.stem_mid_channels != largest.stem_mid_channels:
            raise ArchError(f"{where}: stem_mid_channels {arch.stem_mid_channels} does not fit the supernet "
                            f"(allowed: {largest.stem_mid_channels})")

        def fits(value: int, limit: int, field: str) -> None:
            if not 0 < value <= limit:
                raise ArchError(f"{where}: {field} {value} does not fit the supernet (allowed: 1..{limit})")

        if len(arch.stages) != len(largest.stages):
            raise ArchError(f"{where}: {len(arch.stages)} stages, the supernet has {len(largest.stages)}")
        if len(arch.deconv_setting) != len(largest.deconv_setting):
            raise ArchError(f"{where}: {len(arch.deconv_setting)} head layers, the supernet has {len(largest.deconv_setting)}")
        fits(arch.input_channel, largest.input_channel, "input_channel")
        in_ch = arch.input_channel
        stages = []
        for s, (stage, max_stage, blocks) in enumerate(zip(arch.stages, largest.stages, self.stage)):
            if stage.stride != max_stage.stride:
                raise ArchError(f"{where}: stage {s} stride {stage.stride} not allowed (allowed: {max_stage.stride})")
            fits(stage.channel, max_stage.channel, f"stage {s} channel")
            fits(stage.num_blocks, max_stage.num_blocks, f"stage {s} num_blocks")
            plans = []
            for b, block in enumerate(stage.blocks):
                sup = blocks[b]
                if block.kernel not in sup.kernel_sizes:
                    allowed = ", ".join(map(str, sorted(sup.kernel_sizes)))
                    raise ArchError(f"{where}: stage {s} block {b} kernel {block.kernel} not allowed (allowed: {allowed})")
                mid = expanded_channels(in_ch, block.expansion)
                if block.expansion <= 0 or mid > sup.max_mid:
                    raise ArchError(
                        f"{where}: stage {s} block {b} expansion {block.expansion} gives {mid} hidden channels "
                        f"for {in_ch} inputs, the supernet has {sup.max_mid}"
                    )
                stride = stage.stride if b == 0 else 1
                # the static network's rule, on the active widths
                plans.append(BlockPlan(stage.channel, block.kernel, mid, stride == 1 and in_ch == stage.channel))
                in_ch = stage.channel
            stages.append(tuple(plans))
        for i, (w, limit) in enumerate(zip(arch.deconv_setting, largest.deconv_setting)):
            fits(w, limit, f"deconv_setting[{i}]")
        return SubnetPlan(arch, arch.input_channel, tuple(stages), tuple(arch.deconv_setting))

    def set_active(self, arch: Arch) -> "SuperLitePose":
        """Make ``arch`` the architecture that ``forward(x)`` runs."""
        if arch is not self._plan.arch and arch != self._plan.arch:
            self._plan = self.plan(arch)
        return self

    @property
    def active_arch(self) -> Arch:
        return self._plan.arch

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor, arch: Arch | None = None) -> list[Tensor]:
        if arch is not None:
            self.set_active(arch)
        plan = self._plan
        first = self.first
        x = first[1](first[0](x))
        x = first[3](first[2](x, plan.stem))
        features = [x]
        for stage, blocks in zip(self.stage, plan.stages):
            for module, bp in zip(stage, blocks):
                x = module(x, bp.out_channels, bp.kernel, bp.mid_channels, bp.residual)
            features.append(x)
        w = self.wiring
        head = features[-1]
        outputs = []
        for i, width in enumerate(plan.head):
            y = self.deconv_refined[i](head, width) + self.deconv_raw[i](features[w.raw_sources[i]], width)
            head = F.relu(self.deconv_bnrelu[i][0](y), inplace=True)
            j = w.level_of_output(i)
            if j is not None:
                outputs.append(self.final_refined[j](head) + self.final_raw[j](features[w.skip_sources[j]]))
        return outputs

    # ------------------------------------------------------------------ extraction
    @torch.no_grad()
    def subnet_state_dict(self, arch: Arch) -> dict[str, Tensor]:
        """The static network's state_dict of ``arch`` (original ``pose_mobilenet`` key names)."""
        plan = self.plan(arch)
        target = LitePose(arch, self.num_joints).state_dict()
        source = self.state_dict()
        kernels = {
            f"stage.{s}.{b}.depth_conv.0.weight": (self.stage[s][b], bp)
            for s, blocks in enumerate(plan.stages)
            for b, bp in enumerate(blocks)
        }
        out: dict[str, Tensor] = {}
        for key, like in target.items():
            if key in kernels:
                block, bp = kernels[key]
                value = block.depthwise_weight(bp.kernel, bp.mid_channels)
            else:
                value = source[key]
                if value.dim() != like.dim() or value.shape[2:] != like.shape[2:]:
                    raise RuntimeError(f"{key}: supernet shape {list(value.shape)} cannot give {list(like.shape)}")
                value = value[tuple(slice(0, n) for n in like.shape)]
            if value.shape != like.shape:
                raise RuntimeError(f"{key}: supernet gives shape {list(value.shape)}, static net needs {list(like.shape)}")
            out[key] = value.detach().clone()
        return out

    def extract(self, arch: Arch) -> LitePose:
        """A standalone static :class:`LitePose` of ``arch`` with the supernet's weights (same outputs
        in eval mode; same train/eval mode, device and dtype as the supernet)."""
        model = LitePose(arch, self.num_joints)
        model.load_state_dict(self.subnet_state_dict(arch), strict=True)
        ref = next(self.parameters())
        return model.to(device=ref.device, dtype=ref.dtype).train(self.training)

    # ------------------------------------------------------------------ channel order
    def reorder_channels(self) -> "SuperLitePose":
        """Sort channels by importance (L1 norm of the next layer's input weights, descending),
        keeping the largest network's function; see :mod:`litepose_nas.supernet.reorder`."""
        from .reorder import reorder_channels

        reorder_channels(self)
        return self

    def extra_repr(self) -> str:
        return f"space={self.space.name!r}, num_joints={self.num_joints}, largest={self.max_arch.describe()!r}"


def extract_subnet(supernet: SuperLitePose, arch: Arch, arch_source: str | None, supernet_source: str) -> LitePose:
    """``supernet.extract(arch)`` where an ``arch`` that does not fit raises :class:`ArchError` naming
    both the architecture file and the supernet file (the user has to fix one of the two)."""
    try:
        return supernet.extract(arch)
    except ArchError as exc:
        detail = str(exc).removeprefix("architecture: ")
        raise ArchError(
            f"{arch_source or 'architecture'}: not a subnet of the supernet {supernet_source}: {detail}"
        ) from None
