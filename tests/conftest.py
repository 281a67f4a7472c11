"""Shared fixtures: the reference data inside the repository, copied into tmp folders."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from data_paths import LAYOUT_FILE, PUBLISHED, REAL, SEED_NAMES, TEST_DATA


@pytest.fixture(scope="session")
def published_dir() -> Path:
    """``search_spaces/published/``: the paper's architectures, shipped with the package."""
    return PUBLISHED


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    return TEST_DATA


@pytest.fixture(scope="session")
def checkpoint_layout() -> dict:
    """State_dict keys, shapes and dtypes of the original LitePose model and supernet."""
    return json.loads(LAYOUT_FILE.read_text())


@pytest.fixture
def seed_configs(tmp_path: Path) -> dict[str, Path]:
    """The published architecture files, copied into a temporary folder."""
    out = tmp_path / "seed-configs"
    out.mkdir()
    return {name: Path(shutil.copy(PUBLISHED / f"{name}.json", out / f"{name}.json")) for name in SEED_NAMES}


@pytest.fixture
def real_samples(tmp_path: Path) -> dict[str, dict]:
    """The real COCO and CrowdPose samples, copied into tmp_path/{coco,crowdpose} and read from there."""
    out = {}
    for name, file in (("coco", "test_coco.json"), ("crowdpose", "test_crowdpose.json")):
        shutil.copytree(REAL / name, tmp_path / name)
        out[name] = json.loads((tmp_path / name / file).read_text())
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: tiny ops on a busy 2-core machine run fastest and repeatably so."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
