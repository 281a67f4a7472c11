"""The network plan: the one description of how a LitePose network is wired.

Every consumer builds from here instead of restating the wiring: the static model, the
supernet (and its channel re-ordering), the cost model, the latency layer set, the ONNX
profiling graphs and checkpoint inference.

Two levels:

* :class:`Wiring` is the topology, fixed by the stage strides and the number of head levels:
  the scale of every backbone feature, which feature each head level's raw deconv reads, which
  head levels produce an output and which feature each output's skip conv reads.
* :func:`plan_layers` lays out every layer (channels, kernel, stride, spatial sizes and inputs)
  for a batch of architectures (:class:`~litepose_nas.space.ArchArrays`, values ``[N]`` arrays);
  :func:`network_plan` does it for one :class:`~litepose_nas.space.Arch` (plain integers).

Features: ``feature.0`` is the stem output (stride 2), ``feature.k`` the output of stage ``k-1``.
Head level ``i`` doubles the resolution: it sums a transposed conv of the running head (the last
feature for level 0) and one of the last backbone feature at the head's scale (other than the
running head itself), then BN + ReLU. The last two head levels (the only one, if there is one)
each produce an output: a separable conv of the head plus one of the last feature at the output's
scale; the first output holds heatmaps and tags (2J channels), the second heatmaps (J).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import ArchError, InputError
from .structure import DECONV_KERNEL, FINAL_KERNEL, STEM_KERNEL, conv_out_size, expanded_channels_array

if TYPE_CHECKING:
    from .arch import Arch
    from .search_space import ArchArrays

MIN_STAGES, MAX_STAGES = 2, 6
MIN_HEAD_LEVELS, MAX_HEAD_LEVELS = 1, 4
STEM_STRIDE = 2
DEFAULT_STEM_MID_CHANNELS = 32
LAYER_KINDS = ("stem", "block", "deconv", "fuse", "final", "add")


@dataclass(frozen=True)
class FieldNames:
    """How the fields are called where the error is raised (an architecture file or a space)."""

    stages: str = "backbone_setting"
    stride: str = "stage {} stride"
    head: str = "deconv_setting"


ARCH_FIELDS = FieldNames()
SPACE_FIELDS = FieldNames("stages", "stages[{}].stride", "head.widths")


@dataclass(frozen=True)
class Wiring:
    """The topology of a network with these stage strides and this many head levels."""

    strides: tuple[int, ...]
    num_head_levels: int
    feature_strides: tuple[int, ...]  # per feature (stem, then each stage), its stride to the input
    raw_sources: tuple[int, ...]  # per head level, the feature its raw deconv reads
    output_levels: tuple[int, ...]  # the head levels that produce an output, in output order
    skip_sources: tuple[int, ...]  # per output, the feature its raw separable conv reads

    @property
    def total_stride(self) -> int:
        """The deepest feature's stride: input sizes must be a multiple of it."""
        return self.feature_strides[-1]

    @property
    def num_features(self) -> int:
        return len(self.feature_strides)

    @property
    def output_strides(self) -> tuple[int, ...]:
        """Stride of each output to the input (Lite Pose: 4 for heatmaps + tags, then 2)."""
        return tuple(self.total_stride >> (level + 1) for level in self.output_levels)

    def level_of_output(self, level: int) -> int | None:
        """The output index of head level ``level``, or None if it produces none."""
        return self.output_levels.index(level) if level in self.output_levels else None

    def output_channels(self, num_joints: int) -> tuple[int, ...]:
        """Heatmaps and tags first (2J), then heatmaps only (J)."""
        return tuple((2 if j == 0 else 1) * num_joints for j in range(len(self.output_levels)))


def wiring(strides: Sequence[int], num_head_levels: int, *, where: str = "architecture",
           fields: FieldNames = ARCH_FIELDS, error: type[InputError] = ArchError) -> Wiring:
    """The :class:`Wiring` of these strides and head levels; ``error`` names the field that makes
    the combination invalid."""
    strides = tuple(int(s) for s in strides)
    if not MIN_STAGES <= len(strides) <= MAX_STAGES:
        raise error(f"{where}: {fields.stages} has {len(strides)} stages (allowed: {MIN_STAGES} to {MAX_STAGES})")
    for s, stride in enumerate(strides):
        if stride not in (1, 2):
            raise error(f"{where}: {fields.stride.format(s)} {stride} not allowed (allowed: 1, 2)")
    if not MIN_HEAD_LEVELS <= num_head_levels <= MAX_HEAD_LEVELS:
        raise error(f"{where}: {fields.head} has {num_head_levels} levels "
                    f"(allowed: {MIN_HEAD_LEVELS} to {MAX_HEAD_LEVELS})")
    if strides[-1] != 1:
        raise error(f"{where}: {fields.stride.format(len(strides) - 1)} 2 not allowed (allowed: 1): the first "
                    "head level fuses the last stage with the stage before it, at the same scale")
    down = sum(1 for s in strides if s == 2)
    if down < num_head_levels:
        raise error(f"{where}: {fields.head} has {num_head_levels} levels, which need at least {num_head_levels} "
                    f"stride-2 stages; {fields.stages} has {down} (strides {list(strides)})")
    feature_strides = [STEM_STRIDE]
    for stride in strides:
        feature_strides.append(feature_strides[-1] * stride)
    last = len(feature_strides) - 1

    def latest(scale: int, exclude: int = -1) -> int:
        return max(f for f, st in enumerate(feature_strides) if st == scale and f != exclude)

    total = feature_strides[-1]
    raw = tuple(latest(total >> i, exclude=last if i == 0 else -1) for i in range(num_head_levels))
    outputs = tuple(range(max(0, num_head_levels - 2), num_head_levels))
    skips = tuple(latest(total >> (level + 1)) for level in outputs)
    return Wiring(strides, num_head_levels, tuple(feature_strides), raw, outputs, skips)


def default_strides(num_stages: int) -> tuple[int, ...]:
    """Strides when only the number of stages is known (a bare state_dict): every stage halves
    the resolution but the last (Lite Pose: 2, 2, 2, 1)."""
    return (2,) * (num_stages - 1) + (1,)


@dataclass(frozen=True)
class Layer:
    """One layer of the plan. Values are ints (one architecture) or ``[N]`` arrays (a batch).

    ``h_in``/``h_out`` are spatial sides; ``inputs`` names the tensors it reads: ``image``,
    ``feature.k`` or another layer's name (its output). ``name`` is the layer's state_dict prefix
    (``output.j`` adds the two separable convs of output ``j``; it has no weights).
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    cin: Any
    cout: Any
    mid: Any = 0
    kernel: Any = 0
    stride: Any = 1
    h_in: Any = 0
    h_out: Any = 0
    active: Any = True


@dataclass(frozen=True)
class NetworkPlan:
    """Every layer of one architecture's network, in forward order (inactive blocks dropped)."""

    wiring: Wiring
    num_joints: int
    layers: tuple[Layer, ...]
    feature_channels: tuple[int, ...]

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def of_kind(self, kind: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind == kind]

    def feature_producers(self) -> dict[str, str]:
        """Layer name -> the feature its output is: the stem gives ``feature.0``, the last block
        of stage ``s`` gives ``feature.{s + 1}``."""
        out = {"first": "feature.0"}
        for s, blocks in enumerate(self.stage_blocks):
            out[blocks[-1].name] = f"feature.{s + 1}"
        return out

    @property
    def stage_blocks(self) -> list[list[Layer]]:
        stages: list[list[Layer]] = [[] for _ in self.wiring.strides]
        for layer in self.of_kind("block"):
            stages[int(layer.name.split(".")[1])].append(layer)
        return stages


def plan_layers(a: "ArchArrays", num_joints: int) -> tuple[Wiring, list[Layer], list[tuple[Any, Any]]]:
    """``(wiring, layers, features)`` of a batch: every layer slot, active or not, in forward
    order (block slots up to the batch's largest depth), and each feature's ``(channels, side)``."""
    w = wiring(a.strides, a.head.shape[1])
    n = len(a)
    s = a.resolution
    h = conv_out_size(s, STEM_KERNEL, STEM_STRIDE)
    layers = [Layer("first", "stem", ("image",), np.full(n, 3), a.stem, a.stem_mid, STEM_KERNEL, STEM_STRIDE, s, h)]
    features = [(a.stem, h)]
    cin = a.stem
    for st, stride in enumerate(w.strides):
        cout = a.width[:, st]
        source = f"feature.{st}"
        for b in range(a.kernel.shape[2]):
            block_stride = stride if b == 0 else 1
            k = a.kernel[:, st, b]
            h_out = conv_out_size(h, np.maximum(k, 1), block_stride)
            name = f"stage.{st}.{b}"
            layers.append(Layer(name, "block", (source,), cin, cout, expanded_channels_array(cin, a.expansion[:, st, b]),
                                k, block_stride, h, h_out, b < a.depth[:, st]))
            source = name
            if b == 0:
                cin, h = cout, h_out
        features.append((cout, h))
    head_source, (head_c, head_h) = f"feature.{w.num_features - 1}", features[-1]
    out_channels = w.output_channels(num_joints)
    for i in range(w.num_head_levels):
        width = a.head[:, i]
        raw = w.raw_sources[i]
        raw_c, raw_h = features[raw]
        layers.append(Layer(f"deconv_refined.{i}", "deconv", (head_source,), head_c, width, 0, DECONV_KERNEL, 2,
                            head_h, 2 * head_h))
        layers.append(Layer(f"deconv_raw.{i}", "deconv", (f"feature.{raw}",), raw_c, width, 0, DECONV_KERNEL, 2,
                            raw_h, 2 * raw_h))
        head_source, head_c, head_h = f"deconv_bnrelu.{i}", width, 2 * head_h
        layers.append(Layer(head_source, "fuse", (f"deconv_refined.{i}", f"deconv_raw.{i}"), width, width, 0, 0, 1,
                            head_h, head_h))
        j = w.level_of_output(i)
        if j is None:
            continue
        skip = w.skip_sources[j]
        skip_c, skip_h = features[skip]
        outputs = np.full(n, out_channels[j], dtype=np.int64)
        layers.append(Layer(f"final_refined.{j}", "final", (head_source,), head_c, outputs, 0, FINAL_KERNEL, 1,
                            head_h, head_h))
        layers.append(Layer(f"final_raw.{j}", "final", (f"feature.{skip}",), skip_c, outputs, 0, FINAL_KERNEL, 1,
                            skip_h, skip_h))
        layers.append(Layer(f"output.{j}", "add", (f"final_refined.{j}", f"final_raw.{j}"), outputs, outputs, 0, 0, 1,
                            head_h, head_h))
    return w, layers, features


def network_plan(arch: "Arch", num_joints: int = 17) -> NetworkPlan:
    """The plan of one architecture (plain integers; only the blocks it runs)."""
    from .search_space import ArchArrays

    if num_joints <= 0:
        raise ValueError(f"num_joints must be positive, got {num_joints}")
    w, layers, features = plan_layers(ArchArrays.from_archs([arch]), num_joints)

    def scalar(v: Any) -> Any:
        return int(np.asarray(v).reshape(-1)[0]) if not isinstance(v, (str, tuple)) else v

    kept = []
    for layer in layers:
        if not bool(np.asarray(layer.active).reshape(-1)[0]):
            continue
        kept.append(Layer(layer.name, layer.kind, layer.inputs, *(scalar(getattr(layer, f)) for f in _VALUE_FIELDS),
                          active=True))
    return NetworkPlan(w, num_joints, tuple(kept), tuple(scalar(c) for c, _ in features))


_VALUE_FIELDS = ("cin", "cout", "mid", "kernel", "stride", "h_in", "h_out")
