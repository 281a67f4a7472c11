"""The static LitePose model (original layout) and the analytical cost model."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from torch import nn

from litepose_nas import Arch, SearchSpace, build_model, macs, params
from litepose_nas.cost import cost_arrays
from litepose_nas.space import ArchArrays

PAPER_GMACS = {("search-XS", 14): 1.2, ("search-S", 14): 5.0, ("search-M", 14): 7.8, ("search-L", 14): 13.7,
               ("search-L", 17): 13.8}


def hook_macs(model: nn.Module, size: int) -> int:
    """Count conv and transposed-conv MACs with forward hooks (the reference for 'exact')."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):
            x = inputs[0]
            total += x.shape[2] * x.shape[3] * module.in_channels * module.out_channels * k // module.groups
        else:
            total += output.shape[2] * output.shape[3] * module.out_channels * module.in_channels * k // module.groups

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total


def test_state_dict_matches_original_layout(checkpoint_layout, published_dir):
    layout = checkpoint_layout
    xs = Arch.from_json(published_dir / "search-XS.json")
    expected = layout["litepose_search_xs_crowdpose"]
    state = build_model(xs, 14).state_dict()
    assert list(state) == [e["key"] for e in expected["entries"]]
    assert [list(t.shape) for t in state.values()] == [e["shape"] for e in expected["entries"]]
    assert params(xs, 14) == expected["num_parameters"] == sum(p.numel() for p in build_model(xs, 14).parameters())
    coco = layout["litepose_search_xs_coco_shape_differences"]
    coco_state = build_model(xs, 17).state_dict()
    for diff in coco["differences"]:
        assert list(coco_state[diff["key"]].shape) == diff["coco_shape"]
    assert params(xs, 17) == coco["num_parameters"]


def test_original_checkpoint_layout_loads_strictly(checkpoint_layout, published_dir):
    """A state dict built from the layout file alone loads with strict=True and no renaming."""
    layout = checkpoint_layout
    state = {e["key"]: torch.randn(e["shape"]) if e["dtype"] == "float32" else torch.tensor(3)
             for e in layout["litepose_search_xs_crowdpose"]["entries"]}
    model = build_model(Arch.from_json(published_dir / "search-XS.json"), 14)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.first[0][0].weight, state["first.0.0.weight"])


@pytest.mark.parametrize("name", ["search-XS", "search-S", "search-M", "search-L"])
def test_published_costs(seed_configs, name):
    arch = Arch.from_json(seed_configs[name])
    for joints in (14, 17):
        model = build_model(arch, joints)
        assert params(arch, joints) == sum(p.numel() for p in model.parameters())
        assert macs(arch, joints) == hook_macs(model, arch.img_size)
        paper = PAPER_GMACS.get((name, joints))
        if paper is not None:
            assert abs(macs(arch, joints, "paper") / 1e9 - paper) / paper < 0.02


def test_doc_figures_to_the_unit(seed_configs):
    expected = {"search-XS": 882_892_800, "search-S": 3_614_139_648, "search-M": 5_263_675_648, "search-L": 9_961_996_288}
    for name, value in expected.items():
        assert macs(Arch.from_json(seed_configs[name]), 14) == value


@pytest.mark.parametrize("space_name", ["litepose", "litepose-elastic"])
def test_random_samples_build_run_and_cost(space_name):
    space = SearchSpace.from_yaml(space_name)
    rng = np.random.default_rng(0 if space_name == "litepose" else 1)
    for _ in range(3):
        arch = space.sample(rng)
        small = Arch(256, arch.input_channel, arch.deconv_setting, arch.stages)  # keep the test fast
        for a in (arch, small) if arch.img_size == 256 else (small,):
            model = build_model(a, 14).eval()
            with torch.no_grad():
                out = model(torch.randn(2, 3, a.img_size, a.img_size))
            s = a.img_size
            assert [tuple(o.shape) for o in out] == [(2, 28, s // 4, s // 4), (2, 14, s // 2, s // 2)]
            assert macs(a, 14) == hook_macs(model, s)
            assert params(a, 14) == sum(p.numel() for p in model.parameters())


def test_vectorized_costs_equal_single_arch_costs():
    space = SearchSpace.from_yaml("litepose-elastic")
    enc = space.sample_encoded(3, 200)
    batch = cost_arrays(space.arrays(enc), 17)
    archs = space.decode(enc)
    assert (macs(enc, 17, space=space) == batch["macs"]).all()
    assert (params(archs, 17) == batch["params"]).all()
    for n in range(0, 200, 37):
        assert macs(archs[n], 17, "paper") == batch["macs_paper"][n]
        assert params(archs[n], 17) == batch["params"][n]
    assert (cost_arrays(ArchArrays.from_archs(archs), 17)["macs"] == batch["macs"]).all()


def test_unknown_convention_is_rejected(seed_configs):
    with pytest.raises(ValueError, match="allowed: exact, paper"):
        macs(Arch.from_json(seed_configs["search-XS"]), 14, "flops")
