"""Published architectures by name, and ``create_model`` in the shape of timm's.

    >>> import litepose_nas
    >>> litepose_nas.list_models()
    ['litepose-auto-l', 'litepose-auto-m', 'litepose-auto-s', 'litepose-auto-xs', 'litepose-prune-l', ...]
    >>> model = litepose_nas.create_model("litepose-auto-s", num_joints=14)

The architectures are read from the shipped JSON files of the original repository
(``search_spaces/published/``), so the registry restates no numbers.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ArchError
from ..space.arch import Arch

if TYPE_CHECKING:
    from .litepose import LitePose

def list_models(pattern: str = "") -> list[str]:
    """Registered architecture names (those containing ``pattern``), sorted: the paper's names of the
    shipped published architectures (LitePose-Auto-* = search-*, pruned baselines = prune-*)."""
    from ..space.published import paper_model_names

    return [name for name in paper_model_names() if pattern.lower() in name]


def published_arch(name: str) -> Arch:
    """The :class:`Arch` registered as ``name`` (case-insensitive; ``search-XS`` style names too)."""
    from ..space.published import find_published

    path = find_published(name)
    if path is None:
        raise ArchError(f"unknown model name {name!r} (registered: {', '.join(list_models())})")
    return Arch.from_json(path)


def create_model(name_or_arch: str | os.PathLike | Arch, num_joints: int = 17,
                 pretrained: str | os.PathLike | None = None) -> "LitePose":
    """The static network of a registered name, an architecture JSON file or an :class:`Arch`.

    ``num_joints``: 17 (COCO) or 14 (CrowdPose), or any keypoint set. ``pretrained``: a checkpoint
    file to load strictly (weights only); no weights are downloaded.
    """
    from ..space.published import find_published
    from .litepose import LitePose

    if isinstance(name_or_arch, Arch):
        arch = name_or_arch
    elif (isinstance(name_or_arch, str) and not Path(name_or_arch).exists()
          and (published := find_published(name_or_arch)) is not None):
        arch = Arch.from_json(published)
    elif Path(name_or_arch).suffix == ".json" or Path(name_or_arch).is_file():
        arch = Arch.from_json(Path(name_or_arch))
    else:
        raise ArchError(f"unknown model name {str(name_or_arch)!r} (registered: {', '.join(list_models())}; "
                        "or an architecture JSON file)")
    model = LitePose(arch, num_joints)
    if pretrained is not None:
        from ..evaluate import load_weights

        load_weights(model, pretrained)
    return model

