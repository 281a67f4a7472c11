"""The paper's architectures shipped in ``search_spaces/published/``, addressable by name.

One place maps names to files, so every command that takes an architecture file can also take
``search-XS`` (case-insensitive, with or without ``.json``) or the paper's model name
(``litepose-auto-xs``, ``litepose-prune-s``).
"""
from __future__ import annotations

import os
from pathlib import Path

from typing import TYPE_CHECKING

from ..errors import ArchError

if TYPE_CHECKING:
    from .arch import Arch

# paper model name prefix -> file name prefix in search_spaces/published/
_PAPER_PREFIXES = {"litepose-auto-": "search-", "litepose-prune-": "prune-"}


def published_dir() -> Path:
    from ..resources import shipped_dir

    return shipped_dir("search_spaces") / "published"


def published_names() -> list[str]:
    """File stems of the shipped published architectures (``search-XS``, ..., ``prune-L``)."""
    return sorted(p.stem for p in published_dir().glob("*.json"))


def paper_model_names() -> dict[str, Path]:
    """The paper's model names (``litepose-auto-xs``, ``litepose-prune-s``, ...) and their shipped files."""
    names = {}
    for path in published_dir().glob("*.json"):
        for paper, stem in _PAPER_PREFIXES.items():
            if path.stem.lower().startswith(stem):
                names[paper + path.stem.lower()[len(stem):]] = path
    return dict(sorted(names.items()))


def find_published(name: str) -> Path | None:
    """The shipped file of a published architecture ``name``, or None when no such name exists."""
    key = name.lower().removesuffix(".json")
    for paper, stem in _PAPER_PREFIXES.items():
        if key.startswith(paper):
            key = stem + key[len(paper):]
    matches = [p for p in published_dir().glob("*.json") if p.stem.lower() == key]
    return matches[0] if matches else None


def resolve_arch_path(ref: str | os.PathLike) -> Path:
    """An architecture file as given, or the shipped file of a published name."""
    path = Path(ref)
    if path.exists() or os.sep in str(ref):
        return path
    found = find_published(str(ref))
    if found is None:
        raise ArchError(f"{ref}: file not found, and not a published architecture "
                        f"(allowed names: {', '.join(published_names())})")
    return found


def load_arch(ref: str | os.PathLike) -> "Arch":
    """The architecture of a JSON file, or of a published name (``search-XS``, ``litepose-auto-xs``)."""
    from .arch import Arch

    return Arch.from_json(resolve_arch_path(ref))
