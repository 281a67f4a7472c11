"""Shared fixtures: the reference material beside the repository, copied into tmp folders."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED_NAMES = ("search-XS", "search-S", "search-M", "search-L", "prune-S", "prune-M", "prune-L")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"reference material not found at {SHARED} (expected ../shared beside the repo root)")
    return SHARED


@pytest.fixture
def seed_configs(shared_dir: Path, tmp_path: Path) -> dict[str, Path]:
    """The published architecture files, copied into a temporary folder."""
    out = tmp_path / "seed-configs"
    out.mkdir()
    paths = {}
    for name in SEED_NAMES:
        paths[name] = Path(shutil.copy(shared_dir / "seed-configs" / f"{name}.json", out / f"{name}.json"))
    return paths


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: tiny ops on a busy 2-core machine run fastest and repeatably so."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
