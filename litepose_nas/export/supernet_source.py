"""Weights of a subnet taken from a supernet checkpoint (ours or the original repository's)."""
from __future__ import annotations

import os

from torch import nn

from ..errors import CheckpointError
from ..space.arch import Arch


def model_from_supernet(
    arch: Arch,
    path: str | os.PathLike,
    num_joints: int | None = None,
    space: str | None = None,
    arch_source: str | None = None,
) -> nn.Module:
    """Load the supernet checkpoint at ``path`` strictly and extract the static LitePose of ``arch``.

    ``space`` (a YAML file or shipped name) is the supernet's search space; by default it is
    recognised from the checkpoint's largest network. ``num_joints`` must match the checkpoint's.
    ``arch_source`` (the architecture's file) is named when ``arch`` does not fit the supernet.
    """
    from ..checkpoints import LAYOUT_SUPERNET, load_original_checkpoint

    ckpt = load_original_checkpoint(path, space=space, img_size=arch.img_size)
    if ckpt.layout != LAYOUT_SUPERNET:
        raise CheckpointError(
            f"{path}: is a static LitePose checkpoint ({ckpt.arch.describe()}), not a supernet; "
            "pass it with --weights instead"
        )
    if num_joints is not None and num_joints != ckpt.num_joints:
        raise CheckpointError(
            f"{path}: the supernet has {ckpt.num_joints} joints but {num_joints} were asked for "
            "(leave --num-joints out to follow the checkpoint)"
        )
    from ..supernet import extract_subnet

    # ArchError naming both files and the first field of arch that the supernet cannot run
    model = extract_subnet(ckpt.model, arch, arch_source, str(path)).eval()
    if ckpt.keypoints or ckpt.space.keypoints:
        model.keypoints = ckpt.keypoints or ckpt.space.keypoints
    return model
