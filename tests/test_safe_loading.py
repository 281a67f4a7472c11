"""Safe loading: a file that would run code when unpickled is refused and nothing in it runs.

The payload of every bomb here is ``open(MARKER, 'w')``: if any code of the file ran, the marker
file exists. Each bomb is first shown to be live (loading it with plain pickle creates the
marker), then passed to every command and function that reads checkpoints or predictors.
"""
from __future__ import annotations

import ast
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import run_cli
from litepose_nas.errors import CheckpointError, PredictorError
from reliability_helpers import (
    World, _Bomb, assert_clean_failure, bomb_is_live, build_world, files_under, pickle_bomb, run_inproc,
)

PACKAGE = Path(__file__).resolve().parents[1] / "litepose_nas"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(params=["torch-zip", "raw-pickle"])
def bomb(request, tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "BOMB-RAN"
    path = pickle_bomb(tmp_path / "evil.pth", marker, torch_format=request.param == "torch-zip")
    return path, marker


def test_bombs_are_live(tmp_path) -> None:
    """Without weights_only the payload does run: the refusals below are real."""
    for torch_format in (True, False):
        marker = tmp_path / "m"
        assert bomb_is_live(pickle_bomb(tmp_path / "b.pth", marker, torch_format), marker)


# ====================================================================== through the CLI
def _commands(w: World, bomb: Path, out: Path) -> dict[str, list]:
    train = ["--data", w.coco, "--steps", "1", "--batch-size", "2", "--resolutions", "64", "--workers", "0",
             "--val-every", "-1", "--out", out / "run", "-q", "--device", "cpu"]
    return {
        "checkpoint info": ["checkpoint", "info", bomb],
        "evaluate --weights": ["evaluate", "--arch", w.arch, "--weights", bomb, "--data", w.coco, "--dataset", "coco",
                               "-q", "--results", out / "r.json"],
        "export --weights": ["export", "--arch", w.arch, "--weights", bomb, "--out", out / "export"],
        "export --supernet": ["export", "--arch", w.arch, "--supernet", bomb, "--out", out / "export"],
        "train --init-from": ["train", "--arch", w.arch, "--init-from", bomb, *train],
        "train-supernet --init-from": ["train-supernet", "--space", w.space, "--init-from", bomb, *train],
    }


@pytest.mark.parametrize("command", ["checkpoint info", "evaluate --weights", "export --weights", "export --supernet",
                                     "train --init-from", "train-supernet --init-from"])
def test_bomb_as_checkpoint_is_refused(command: str, world: World, bomb, tmp_path) -> None:
    path, marker = bomb
    out = tmp_path / "out"
    before = files_under(tmp_path)
    result = run_inproc(*_commands(world, path, out)[command])
    assert_clean_failure(result, 2, str(path))
    assert not marker.exists(), "the pickle payload ran"
    assert files_under(tmp_path) == before


def test_bomb_refused_in_a_real_process(world: World, tmp_path) -> None:
    marker = tmp_path / "BOMB-RAN"
    path = pickle_bomb(tmp_path / "evil.pth", marker)
    result = run_cli("checkpoint", "info", path, cwd=tmp_path)
    assert_clean_failure(result, 2, str(path), "refused")
    assert not marker.exists()


def test_bomb_as_resume_checkpoint_is_refused(world: World, tmp_path) -> None:
    from litepose_nas.train.trainer import CHECKPOINT_NAME

    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "BOMB-RAN"
    pickle_bomb(run / CHECKPOINT_NAME, marker)
    result = run_inproc("train", "--arch", world.arch, "--data", world.coco, "--steps", "2", "--out", run, "--resume",
                        "-q", "--device", "cpu", "--workers", "0")
    assert_clean_failure(result, 2, CHECKPOINT_NAME, "refused")
    assert not marker.exists()


# ====================================================================== through the Python API
def test_checkpoint_readers_refuse(bomb) -> None:
    from litepose_nas.checkpoints import load_original_checkpoint, load_state_dict_file, read_checkpoint
    from litepose_nas.export import read_state_dict

    path, marker = bomb
    for reader in (read_checkpoint, load_state_dict_file, read_state_dict, load_original_checkpoint):
        with pytest.raises(CheckpointError, match="evil.pth"):
            reader(path)
        assert not marker.exists(), reader.__name__


@pytest.fixture(scope="module")
def predictor_dir(world: World, tmp_path_factory) -> Path:
    from litepose_nas.predictors import Predictor
    from litepose_nas.space import SearchSpace

    space = SearchSpace.from_yaml(world.space)
    enc = space.enumerate_encoded()
    pred = Predictor(space, "ridge").fit(enc, np.linspace(0.1, 0.4, len(enc)))
    return pred.save(tmp_path_factory.mktemp("pred") / "tiny-predictor")


def test_predictor_loads(predictor_dir: Path) -> None:
    from litepose_nas.predictors import Predictor

    assert Predictor.load(predictor_dir).kind == "ridge"


def test_predictor_with_pickled_array_is_refused(predictor_dir: Path, tmp_path) -> None:
    """``arrays.npz`` holding an object array (pickled): refused by ``allow_pickle=False``."""
    from litepose_nas.predictors import Predictor
    from litepose_nas.predictors.predictor import ARRAYS_FILE

    folder = Path(shutil.copytree(predictor_dir, tmp_path / "evil-predictor"))
    meta = json.loads((folder / "predictor.json").read_text())
    del meta["arrays_sha256"]  # the digest would refuse it first: show allow_pickle=False does too
    (folder / "predictor.json").write_text(json.dumps(meta))
    marker = tmp_path / "BOMB-RAN"
    with np.load(folder / ARRAYS_FILE) as npz:
        arrays = {k: npz[k] for k in npz.files}
    first = sorted(arrays)[0]
    evil = np.empty(1, dtype=object)
    evil[0] = _Bomb(marker)
    arrays[first] = evil
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (folder / ARRAYS_FILE).write_bytes(buf.getvalue())
    # live: numpy with allow_pickle=True runs it
    with np.load(folder / ARRAYS_FILE, allow_pickle=True) as npz:
        npz[first]
    assert marker.exists()
    marker.unlink()
    with pytest.raises(PredictorError, match=ARRAYS_FILE):
        Predictor.load(folder)
    assert not marker.exists()


def test_predictor_meta_that_is_a_pickle_is_refused(predictor_dir: Path, tmp_path) -> None:
    from litepose_nas.predictors import Predictor
    from litepose_nas.predictors.predictor import META_FILE

    folder = Path(shutil.copytree(predictor_dir, tmp_path / "evil-predictor"))
    marker = tmp_path / "BOMB-RAN"
    pickle_bomb(folder / META_FILE, marker, torch_format=False)
    with pytest.raises(PredictorError, match=META_FILE):
        Predictor.load(folder)
    assert not marker.exists()
    # a bomb file passed where the predictor folder goes
    with pytest.raises(PredictorError):
        Predictor.load(pickle_bomb(tmp_path / "evil.pkl", marker, torch_format=False))
    assert not marker.exists()


def test_predictor_edited_meta_is_refused(predictor_dir: Path, tmp_path) -> None:
    """Data formats only: an edited space definition is caught by its fingerprint."""
    from litepose_nas.predictors import Predictor
    from litepose_nas.predictors.predictor import META_FILE

    folder = Path(shutil.copytree(predictor_dir, tmp_path / "edited"))
    meta = json.loads((folder / META_FILE).read_text())
    meta["space"]["definition"]["resolutions"] = [64]
    (folder / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(PredictorError, match="fingerprint"):
        Predictor.load(folder)


# ====================================================================== no unsafe loader anywhere
def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield owner, name, node


def test_package_uses_only_safe_loaders() -> None:
    """Every ``torch.load`` passes ``weights_only=True``; no pickle / unsafe YAML / allow_pickle=True."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for owner, name, node in _calls(tree):
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            kw = {k.arg: k.value for k in node.keywords}
            if owner == "torch" and name == "load":
                value = kw.get("weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    problems.append(f"{where}: torch.load without weights_only=True")
            if owner in ("pickle", "dill", "joblib", "cloudpickle") and name in ("load", "loads"):
                problems.append(f"{where}: {owner}.{name}")
            if owner == "yaml" and name in ("load", "unsafe_load", "full_load"):
                problems.append(f"{where}: yaml.{name} (use yaml.safe_load)")
            if owner in ("np", "numpy") and name == "load":
                value = kw.get("allow_pickle")
                if isinstance(value, ast.Constant) and value.value is True:
                    problems.append(f"{where}: np.load(allow_pickle=True)")
    assert not problems, problems
