"""The Python API in the ecosystem's shape: timm-style create_model / list_models, py.typed."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import litepose_nas
from litepose_nas import Arch, ArchError, macs


def test_published_models_are_registered():
    names = litepose_nas.list_models()
    assert names == sorted(["litepose-auto-xs", "litepose-auto-s", "litepose-auto-m", "litepose-auto-l",
                            "litepose-prune-s", "litepose-prune-m", "litepose-prune-l"])
    assert litepose_nas.list_models("prune") == ["litepose-prune-l", "litepose-prune-m", "litepose-prune-s"]


def test_create_model_by_name_file_or_arch(tmp_path):
    from litepose_nas.models import published_arch
    from litepose_nas.resources import shipped_dir

    model = litepose_nas.create_model("litepose-auto-xs", num_joints=14)
    arch = Arch.from_json(shipped_dir("search_spaces") / "published" / "search-XS.json")
    assert published_arch("LitePose-Auto-XS") == arch == model.arch
    assert sum(p.numel() for p in model.parameters()) == litepose_nas.params(arch, 14)
    assert macs(model.arch, 14) == macs(arch, 14)
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    again = litepose_nas.create_model(shipped_dir("search_spaces") / "published" / "search-XS.json", num_joints=14,
                                      pretrained=path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert litepose_nas.create_model(arch, num_joints=3).num_joints == 3
    with pytest.raises(ArchError, match="unknown model name 'litepose-auto-xxl'.*litepose-auto-xs"):
        litepose_nas.create_model("litepose-auto-xxl")
    with pytest.raises(Exception, match="does not fit"):
        litepose_nas.create_model("litepose-auto-s", num_joints=14, pretrained=path)


def test_typed_package_exposes_lazy_names_to_type_checkers():
    root = Path(litepose_nas.__file__).parent
    assert (root / "py.typed").is_file()
    tree = ast.parse((root / "__init__.py").read_text())
    checked = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                checked.update(alias.name for alias in imp.names)
    assert checked == set(litepose_nas._LAZY)
    for name in litepose_nas.__all__:
        assert getattr(litepose_nas, name) is not None


def test_searchers_are_objects_passed_to_search():
    import optuna

    from litepose_nas import EvolutionSearcher, OptunaSearcher, RandomSearcher, SearchSpace
    from litepose_nas.search import macs_constraint, macs_proxy_objective

    space = SearchSpace.from_yaml("litepose")
    objective, constraint = macs_proxy_objective(space), macs_constraint(space, 1.0)
    evo = litepose_nas.search(space, objective, constraint, searcher=EvolutionSearcher(population=8, generations=2))
    assert evo.algo.startswith("evolution") and evo.best[0].cost <= 1.0
    same = litepose_nas.search(space, objective, constraint, {"population": 8, "generations": 2}, algo="evolution")
    assert same.best[0].arch == evo.best[0].arch  # the string form builds the same searcher
    rnd = litepose_nas.search(space, objective, constraint, searcher=RandomSearcher(evaluations=20), seed=1)
    assert rnd.best[0].cost <= 1.0
    opt = litepose_nas.search(space, objective, constraint, searcher=OptunaSearcher(
        sampler=optuna.samplers.RandomSampler(seed=0), trials=10))
    assert opt.info["sampler"] == "RandomSampler" and opt.info["trials"] == [10]
    with pytest.raises(litepose_nas.InputError, match="holds its own budget"):
        litepose_nas.search(space, objective, constraint, 10, searcher=RandomSearcher())
