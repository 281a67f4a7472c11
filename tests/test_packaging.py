"""A non-editable install (a built wheel) carries the shipped data folders."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True, capture_output=True,
    )
    (path,) = out.glob("litepose_nas-*.whl")
    return path


def test_wheel_contains_data_folders(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("search_spaces", "predictors", "latency_tables"):
        assert any(n.startswith(f"litepose_nas/_shipped/{folder}/") for n in names), folder
    assert "litepose_nas/_shipped/search_spaces/litepose.yaml" in names
    # what `arch info search-XS` and the derived tables' calibration read from an installed wheel
    assert "litepose_nas/_shipped/search_spaces/published/search-XS.json" in names
    assert "litepose_nas/_shipped/latency_tables/paper/whole_model_latency.csv" in names


def test_installed_wheel_finds_its_data(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = (
        "import litepose_nas, litepose_nas.resources as r;"
        "from litepose_nas import SearchSpace;"
        "assert '_shipped' in str(r.shipped_dir('search_spaces')), r.shipped_dir('search_spaces');"
        "assert str(r.shipped_dir('latency_tables')).startswith(str(__import__('pathlib').Path(litepose_nas.__file__).parent));"
        "print(SearchSpace.from_yaml('litepose').size())"
    )
    # run from an empty folder with only the installed copy on the path: the repo is not reachable
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "245760"
