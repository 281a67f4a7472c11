"""Standalone weights of a static subnet: safe loading and saving in the original layout."""
from __future__ import annotations

import os

import torch
from torch import nn

from ..errors import CheckpointError, JobError
from ..io import atomic_path


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state_dict safely (``torch.load(weights_only=True)``).

    Accepts a plain ``{name: tensor}`` dict or a training checkpoint holding one (under
    ``state_dict``, ``model``, ...); wrapper prefixes (``module.`` from DDP, ``1.``) are stripped.
    """
    from ..checkpoints import load_state_dict_file

    return load_state_dict_file(path)


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model`` strictly; any mismatch is one :class:`CheckpointError`
    naming the first missing, unexpected or mis-shaped key (nothing is loaded then)."""
    from ..checkpoints import check_state_dict

    what = f"the static LitePose of {model.arch.describe()}" if hasattr(model, "arch") else "the model"
    for key, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_complex():
            # copying into a real parameter would silently drop the imaginary part
            raise CheckpointError(f"{source}: tensor {key!r} is {tensor.dtype} (allowed: real tensors)")
    check_state_dict(model.state_dict(), state, source, what)
    model.load_state_dict(state, strict=True)


def check_finite(model: nn.Module, source: str | os.PathLike) -> None:
    """Raise :class:`JobError` naming ``source`` and the first parameter or buffer holding NaN or inf."""
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise JobError(
                f"{source}: weight {key!r} has {bad} non-finite value(s) (NaN or inf); "
                "the model cannot be exported (was the training run diverging?)"
            )


def num_joints_of(state: dict[str, torch.Tensor]) -> int | None:
    """Joint count of a LitePose state_dict, if recognisable: the second output conv has J outputs,
    the first 2J (a network with one head level has only the first)."""
    for key, per_joint in (("final_refined.1.conv.3.weight", 1), ("final_refined.0.conv.3.weight", 2)):
        weight = state.get(key)
        if weight is not None and weight.dim() == 4:
            return int(weight.shape[0]) // per_joint
    return None


def save_state_dict(model: nn.Module, path: str | os.PathLike) -> None:
    """Save ``model.state_dict()`` as a plain dict of tensors (loads with ``weights_only=True``)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def model_from_weights(arch, path: str | os.PathLike, num_joints: int | None = None) -> nn.Module:
    """Build the static LitePose of ``arch`` and load standalone weights into it.

    ``num_joints`` defaults to the joint count the weights were trained for.
    """
    from ..models import build_model

    from ..checkpoints import LAYOUT_SUPERNET, detect_layout

    state = read_state_dict(path)
    if detect_layout(state) == LAYOUT_SUPERNET:
        raise CheckpointError(f"{path}: is a supernet checkpoint (it has kernel-transform keys); pass it with --supernet")
    found = num_joints_of(state)
    if num_joints is None:
        num_joints = found or 17
    elif found is not None and found != num_joints:
        raise CheckpointError(
            f"{path}: weights are for {found} joints but {num_joints} were asked for "
            "(17: COCO, 14: CrowdPose; leave --num-joints out to follow the weights)"
        )
    model = build_model(arch, num_joints)
    load_into(model, state, str(path))
    attach_keypoints(model, path)
    return model.eval()


def attach_keypoints(model: nn.Module, path: str | os.PathLike, fallback=None) -> None:
    """Set ``model.keypoints`` to the keypoint set the checkpoint at ``path`` records (a training run's
    ``model.pt`` / ``supernet.pt`` / ``checkpoint.pt``), else ``fallback``; export writes it to the metadata."""
    from ..checkpoints import read_checkpoint, recorded_keypoints

    spec = recorded_keypoints(read_checkpoint(path), str(path)) or fallback
    if spec is not None:
        if spec.num_joints != model.num_joints:
            raise CheckpointError(f"{path}: keypoint set {spec.name!r} has {spec.num_joints} joints, "
                                  f"the network {model.num_joints}")
        model.keypoints = spec


def random_init_model(arch, num_joints: int = 17, seed: int = 0) -> nn.Module:
    """The static LitePose of ``arch`` with its default initialisation, reproducibly seeded."""
    from ..models import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch, num_joints)
    return model.eval()
