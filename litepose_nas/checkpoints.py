"""Reading and writing model checkpoints, including the original LitePose repository's.

Safety: files are read with ``torch.load(..., weights_only=True)`` only, so a checkpoint that
holds anything but tensors and plain containers is refused without running any of its code.

The original repository saves two layouts (``tests/data/checkpoint-layout-search-XS.json``):

* ``static`` (``lib/models/pose_mobilenet.py``): the network of one architecture, e.g. the
  published LitePose-Auto-XS..L models;
* ``supernet`` (``lib/models/pose_supermobilenet.py``): the largest network plus the per-block
  kernel-transform matrices ``stage.s.b.Linear5x5`` / ``Linear3x3``.

Either comes as a plain state_dict (``final_state.pth.tar``, ``model_best.pth.tar``) or inside a
training checkpoint (``{'epoch', 'model', 'state_dict' (keys prefixed ``module.``), ...}``);
models wrapped as ``Sequential(normalizer, net)`` prefix their keys with ``1.``. The architecture
is inferred from tensor shapes (a state_dict does not store the input resolution nor the strides;
they come from the arguments and the LitePose family), and every key is checked before anything is
loaded: a mismatch raises one :class:`CheckpointError` naming the offending keys.
"""
from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .errors import CheckpointError, InputError
from .io import check_readable_file
from .io import atomic_path
from .space.arch import Arch
from .space.plan import default_strides, wiring
from .space.search_space import SearchSpace
from .space.structure import expanded_channels

LAYOUT_STATIC = "static"
LAYOUT_SUPERNET = "supernet"
LAYOUT_NAMES = {LAYOUT_STATIC: "pose_mobilenet (static LitePose)", LAYOUT_SUPERNET: "pose_supermobilenet (supernet)"}
# Where a state_dict may sit inside a training checkpoint, in order of preference.
CONTAINER_KEYS = ("state_dict", "model", "net", "best_state_dict")
# 'module.' from DistributedDataParallel; '1.' from Sequential(normalizer, net).
KEY_PREFIXES = ("module.", "1.")
DEFAULT_IMG_SIZE = 256

_BLOCK_KEY = re.compile(r"^stage\.(\d+)\.(\d+)\.")
_TRANSFORM_KEY = re.compile(r"^stage\.\d+\.\d+\.Linear\d+x\d+\.(weight|bias)$")


# ---------------------------------------------------------------------- safe reading
def read_checkpoint(path: str | os.PathLike) -> Any:
    """The object stored in ``path``, loaded with ``weights_only=True`` on the CPU."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: file not found")
    if p.is_dir():
        raise CheckpointError(f"{p}: is a folder, expected a checkpoint file")
    if check_readable_file(p, "checkpoint", CheckpointError) == 0:
        raise CheckpointError(f"{p}: file is empty (expected a PyTorch checkpoint)")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickling_detail(str(exc))
        if "global" in detail.lower() or "class" in detail.lower():
            raise CheckpointError(
                f"{p}: refused to load: the file holds Python objects other than tensors and plain containers "
                f"({detail}); only weights are loaded (torch.load weights_only=True), nothing in it was run"
            ) from None
        raise CheckpointError(
            f"{p}: not a readable PyTorch checkpoint: refused by the weights-only loader ({detail}); "
            "nothing in it was run"
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a corrupt file
        message = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{p}: not a readable PyTorch checkpoint ({type(exc).__name__}: {message})") from None


def _unpickling_detail(message: str) -> str:
    """The weights-only unpickler's reason, without torch's advice to load unsafely."""
    if "WeightsUnpickler error:" not in message:
        return " ".join(message.split())[:120]
    tail = message.split("WeightsUnpickler error:", 1)[1]
    for line in tail.splitlines():
        line = line.strip()
        if line:
            return line.split(" was not an allowed global")[0].split(". Please")[0]
    return "not a weights-only pickle"


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) for k in obj) and all(
        isinstance(v, Tensor) for v in obj.values()
    )


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> tuple[dict[str, Tensor], str]:
    """The state_dict inside a loaded checkpoint and where it was (``''`` for a plain one)."""
    if _is_state_dict(obj):
        return dict(obj), ""
    if isinstance(obj, Mapping):
        for key in CONTAINER_KEYS:
            if _is_state_dict(obj.get(key)):
                return dict(obj[key]), key
        bad = _first_non_tensor(obj)
        keys = ", ".join(map(str, list(obj)[:8])) or "(none)"
        has_tensors = any(isinstance(v, Tensor) for v in obj.values())
        if bad is not None and has_tensors and not any(k in obj for k in CONTAINER_KEYS):
            # a state_dict with a stray entry, rather than a container
            raise CheckpointError(f"{source}: entry {bad!r} is not a tensor (a state_dict maps names to tensors)")
        raise CheckpointError(
            f"{source}: no state_dict found (top-level keys: {keys}; expected a state_dict or a dict with "
            f"{' / '.join(repr(k) for k in CONTAINER_KEYS)})"
        )
    raise CheckpointError(f"{source}: holds a {type(obj).__name__}, expected a state_dict (a dict of tensors)")


def _first_non_tensor(obj: Mapping) -> str | None:
    for k, v in obj.items():
        if not isinstance(v, Tensor):
            return str(k)
    return None


def strip_prefixes(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """Remove wrapper prefixes shared by every key (``module.``, ``1.``, or both)."""
    stripped = ""
    out = dict(state)
    changed = True
    while changed and out:
        changed = False
        for prefix in KEY_PREFIXES:
            if all(k.startswith(prefix) for k in out):
                out = {k[len(prefix):]: v for k, v in out.items()}
                stripped += prefix
                changed = True
    return out, stripped


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """The (prefix-free) state_dict of a checkpoint file: a plain one or inside a training checkpoint."""
    state, _ = unwrap_state_dict(read_checkpoint(path), str(path))
    return strip_prefixes(state)[0]


# ---------------------------------------------------------------------- writing
def _check_saveable(value: Any, where: str) -> Any:
    """Convert what we can (an Arch becomes its JSON dict), refuse what weights_only cannot read back."""
    if isinstance(value, Arch):
        return value.to_dict()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()  # numpy scalars (e.g. a metric) become Python numbers
    if isinstance(value, (Tensor, str, int, float, bool, type(None), torch.Size)):
        return value
    if isinstance(value, Mapping):
        return {k: _check_saveable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        converted = [_check_saveable(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return converted if isinstance(value, list) else tuple(converted)
    raise TypeError(f"{where}: a {type(value).__name__} cannot be stored in a weights-only checkpoint")


def save_checkpoint(path: str | os.PathLike, model_or_state: nn.Module | Mapping[str, Any], **extra: Any) -> Path:
    """Write ``{'state_dict': ..., **extra}`` (or a given mapping) atomically; readable with
    :func:`read_checkpoint` / :func:`load_state_dict_file` (weights only)."""
    if isinstance(model_or_state, nn.Module):
        payload: dict[str, Any] = {"state_dict": model_or_state.state_dict()}
    elif isinstance(model_or_state, Mapping):
        payload = dict(model_or_state)
    else:
        raise TypeError(f"save_checkpoint: expected a module or a mapping, got {type(model_or_state).__name__}")
    payload.update(extra)
    payload = _check_saveable(payload, "checkpoint")
    target = Path(path)
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return target


# ---------------------------------------------------------------------- layout and architecture
def detect_layout(state: Mapping[str, Tensor]) -> str:
    """``supernet`` when the kernel-transform matrices are present, otherwise ``static``."""
    return LAYOUT_SUPERNET if any(_TRANSFORM_KEY.match(k) for k in state) else LAYOUT_STATIC


def _need(state: Mapping[str, Tensor], key: str, source: str, dims: int) -> Tensor:
    if key not in state:
        raise CheckpointError(f"{source}: missing key {key!r} (not a LitePose checkpoint, or truncated)")
    value = state[key]
    if value.dim() != dims:
        raise CheckpointError(f"{source}: key {key!r} has shape {list(value.shape)}, expected a {dims}-d tensor")
    return value


def infer_architecture(
    state: Mapping[str, Tensor],
    source: str = "checkpoint",
    img_size: int = DEFAULT_IMG_SIZE,
    strides: tuple[int, ...] | None = None,
) -> tuple[Arch, int, int]:
    """``(arch, num_joints, stem_mid_channels)`` from the tensor shapes of a LitePose state_dict.

    For a supernet this is its largest network. Resolution and strides are not in a state_dict:
    ``img_size`` and ``strides`` (default: :func:`~litepose_nas.space.plan.default_strides`, the
    LitePose family's 2, 2, 2, 1 for four stages) fill them in.
    """
    stem_mid = int(_need(state, "first.0.0.weight", source, 4).shape[0])
    input_channel = int(_need(state, "first.2.weight", source, 4).shape[0])
    blocks: dict[int, set[int]] = {}
    for key in state:
        match = _BLOCK_KEY.match(key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if not blocks:
        raise CheckpointError(f"{source}: missing key 'stage.0.0.inv.0.weight' (no backbone blocks found)")
    num_stages = max(blocks) + 1
    strides = tuple(strides) if strides is not None else default_strides(num_stages)
    if len(strides) != num_stages:
        raise CheckpointError(f"{source}: {num_stages} backbone stages, but {len(strides)} strides are known ({list(strides)})")
    stages = []
    in_ch = input_channel
    for s in range(num_stages):
        if s not in blocks:
            raise CheckpointError(f"{source}: missing key 'stage.{s}.0.inv.0.weight' (stage {s} has no blocks)")
        # a block with any key counts, so a block that lost its expansion conv is named as missing
        depth = max(blocks[s]) + 1
        missing = sorted(set(range(depth)) - blocks[s])
        if missing:
            raise CheckpointError(f"{source}: missing key 'stage.{s}.{missing[0]}.inv.0.weight'")
        channel = int(_need(state, f"stage.{s}.0.point_conv.0.weight", source, 4).shape[0])
        block_setting = []
        for b in range(depth):
            inv = _need(state, f"stage.{s}.{b}.inv.0.weight", source, 4)
            dw = _need(state, f"stage.{s}.{b}.depth_conv.0.weight", source, 4)
            hidden, block_in = int(inv.shape[0]), int(inv.shape[1])
            if block_in != in_ch:
                raise CheckpointError(
                    f"{source}: key 'stage.{s}.{b}.inv.0.weight' has {block_in} input channels, expected {in_ch} "
                    f"(the width of the previous layer)"
                )
            expansion = max(1, round(hidden / block_in))
            if expanded_channels(block_in, expansion) != hidden:
                raise CheckpointError(
                    f"{source}: key 'stage.{s}.{b}.inv.0.weight': {hidden} hidden channels for {block_in} inputs "
                    "is no integer expansion"
                )
            block_setting.append((expansion, int(dw.shape[-1])))
            in_ch = channel
        stages.append((channel, strides[s], block_setting))
    head = []
    while f"deconv_refined.{len(head)}.weight" in state or not head:
        head.append(int(_need(state, f"deconv_refined.{len(head)}.weight", source, 4).shape[1]))
    # the plan's last output holds J heatmaps (2J when it is the only output)
    num_outputs = len(wiring([st[1] for st in stages], len(head), where=source, error=CheckpointError).output_levels)
    last = _need(state, f"final_refined.{num_outputs - 1}.conv.3.weight", source, 4)
    num_joints = int(last.shape[0]) // (2 if num_outputs == 1 else 1)
    try:
        arch = Arch.create(img_size, input_channel, head, stages, stem_mid_channels=stem_mid)
        Arch.from_dict(arch.to_dict(), source)  # same structural checks as an architecture file
    except InputError as exc:
        raise CheckpointError(f"{source}: the tensor shapes give no valid architecture ({exc})") from None
    return arch, num_joints, stem_mid


def check_state_dict(expected: Mapping[str, Tensor], state: Mapping[str, Tensor], source: str, what: str) -> None:
    """Raise ONE :class:`CheckpointError` listing missing, unexpected and mis-shaped keys."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []

    def some(keys: list[str]) -> str:
        more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
        return f"{keys[0]!r}{more}"

    if missing:
        problems.append(f"missing key {some(missing)}")
    if unexpected:
        problems.append(f"unexpected key {some(unexpected)}")
    if misshaped:
        k = misshaped[0]
        more = f" (and {len(misshaped) - 1} more mis-shaped)" if len(misshaped) > 1 else ""
        problems.append(f"key {k!r} has shape {list(state[k].shape)}, expected {list(expected[k].shape)}{more}")
    if problems:
        raise CheckpointError(f"{source}: does not fit {what}: " + "; ".join(problems) + "; nothing was loaded")


def _same_network(a: Arch, b: Arch) -> bool:
    return (a.input_channel, a.deconv_setting, a.stages) == (b.input_channel, b.deconv_setting, b.stages)


def _supernet_space(max_arch: Arch, stem_mid: int, space: SearchSpace | str | None) -> SearchSpace:
    """The space whose supernet has this largest network: the given one, a shipped one, or a minimal one."""
    if isinstance(space, SearchSpace):
        return space
    if space is not None:
        return SearchSpace.from_yaml(space)
    shipped = SearchSpace.from_yaml("litepose-elastic")
    if _same_network(shipped.largest(), max_arch) and shipped.stem_mid_channels == stem_mid:
        return shipped
    from .supernet.block import transform_kernel_sizes

    stages = []
    for stage in max_arch.stages:
        kmax = max(b.kernel for b in stage.blocks)
        stages.append({
            "stride": stage.stride, "widths": [stage.channel], "depths": [stage.num_blocks],
            "kernels": sorted((kmax, *transform_kernel_sizes(kmax))),
            "expansions": [max(b.expansion for b in stage.blocks)],
        })
    return SearchSpace.create(
        "checkpoint-supernet", [max_arch.img_size], [max_arch.input_channel], stages,
        [[w] for w in max_arch.deconv_setting], stem_mid_channels=stem_mid,
        description="largest network read from a supernet checkpoint",
    )


# ---------------------------------------------------------------------- the loader
@dataclass
class OriginalCheckpoint:
    """A checkpoint of the original layouts, loaded strictly into a model of ours."""

    path: str
    layout: str  # 'static' | 'supernet'
    container: str  # '' for a plain state_dict, else the key it sat under
    prefix: str  # key prefix that was stripped ('', 'module.', '1.', ...)
    arch: Arch  # static: its architecture; supernet: its largest network (img_size from the caller)
    num_joints: int
    num_parameters: int
    model: nn.Module  # LitePose or SuperLitePose, eval mode
    space: SearchSpace | None = None  # supernet only
    keypoints: Any = None  # the KeypointSpec a checkpoint of ours records (None: not recorded)

    def summary(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "layout": self.layout,
            "layout_name": LAYOUT_NAMES[self.layout],
            "container": self.container or "plain state_dict",
            "prefix": self.prefix,
            "num_joints": self.num_joints,
            "num_parameters": self.num_parameters,
            "num_entries": len(self.model.state_dict()),
            "space": self.space.name if self.space is not None else None,
            "arch": self.arch.to_dict(),
        }


def load_original_checkpoint(
    path: str | os.PathLike,
    *,
    space: SearchSpace | str | None = None,
    img_size: int = DEFAULT_IMG_SIZE,
    strides: tuple[int, ...] | None = None,
) -> OriginalCheckpoint:
    """Read a checkpoint of the original LitePose repository (or ours) into a model, strictly.

    The layout is detected from the keys, the architecture and number of joints from the shapes.
    A supernet is built for ``space`` (default: the shipped ``litepose-elastic`` space when its
    largest network matches, else a minimal space around the checkpoint's network). Every key and
    shape is checked before loading; any difference raises one :class:`CheckpointError`.
    """
    source = str(path)
    raw = read_checkpoint(path)
    keypoints = recorded_keypoints(raw, source)
    state, container = unwrap_state_dict(raw, source)
    state, prefix = strip_prefixes(state)
    layout = detect_layout(state)
    arch, num_joints, stem_mid = infer_architecture(state, source, img_size, strides)
    chosen_space = None
    if layout == LAYOUT_SUPERNET:
        from .supernet import SuperLitePose

        chosen_space = _supernet_space(arch, stem_mid, space)
        model: nn.Module = SuperLitePose(chosen_space, num_joints)
        what = f"the supernet of space '{chosen_space.name}' ({num_joints} joints)"
    else:
        from .models.litepose import LitePose

        model = LitePose(arch, num_joints)
        what = f"the static LitePose of {arch.describe()} ({num_joints} joints)"
    if keypoints is not None and keypoints.num_joints != num_joints:
        raise CheckpointError(f"{source}: field 'keypoints' has {keypoints.num_joints} joints, the weights "
                              f"{num_joints}")
    check_state_dict(model.state_dict(), state, source, what)
    model.load_state_dict(state, strict=True)
    if layout == LAYOUT_SUPERNET:
        model.clear_cache()
    model.eval()
    return OriginalCheckpoint(
        path=source,
        layout=layout,
        container=container,
        prefix=prefix,
        arch=arch,
        num_joints=num_joints,
        num_parameters=sum(p.numel() for p in model.parameters()),
        model=model,
        space=chosen_space,
        keypoints=keypoints,
    )


def recorded_keypoints(checkpoint: Any, source: str) -> Any:
    """The keypoint set a training run of ours recorded (field ``keypoints``), or None."""
    if not isinstance(checkpoint, dict):
        return None
    data, field = checkpoint.get("keypoints"), "keypoints"
    if data is None and isinstance(checkpoint.get("config"), dict):  # a training checkpoint
        data, field = checkpoint["config"].get("keypoints"), "config.keypoints"
    if data is None:
        return None
    from .keypoints import keypoint_set

    return keypoint_set(data, f"{source}: {field}", CheckpointError)
