"""The weight-sharing supernet: layout, extraction, kernel transform, reorder, BN recalibration."""
from __future__ import annotations

import copy
import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from litepose_nas.errors import ArchError, InputError
from litepose_nas.models import LitePose
from litepose_nas.space import Arch, SearchSpace
from litepose_nas.supernet import SuperLitePose, centre_crop, channel_groups, recalibrate_bn

from data_paths import LAYOUT_FILE, PUBLISHED

RES = 64  # the network runs at any multiple of 32; small keeps the suite fast
TOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def elastic() -> SearchSpace:
    return SearchSpace.from_yaml("litepose-elastic")


@pytest.fixture(scope="module")
def original() -> SearchSpace:
    return SearchSpace.from_yaml("litepose")


def randomize(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights everywhere: BN affine + running stats, kernel maps, output convs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            elif isinstance(m, nn.Linear):
                m.weight.add_(0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
        for sep in (*net.final_refined, *net.final_raw):
            sep.conv[3].weight.normal_(0, 0.1, generator=g)
    return net


@pytest.fixture(scope="module")
def supernet(elastic) -> SuperLitePose:
    torch.manual_seed(0)
    return randomize(SuperLitePose(elastic, num_joints=14)).eval()


def small(arch: Arch) -> Arch:
    return dataclasses.replace(arch, img_size=RES)


def images(n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, RES, RES, generator=torch.Generator().manual_seed(seed))


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    assert [t.shape for t in a] == [t.shape for t in b]
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def mixed_kernel_arch(space: SearchSpace) -> Arch:
    """Mid widths, every kernel and expansion, partial depths: all elastic dimensions at once."""
    kernels, expansions = (3, 5, 7), (3, 4, 6)
    stages = []
    for s, st in enumerate(space.stages):
        depth = st.depths[len(st.depths) // 2]
        blocks = [(expansions[(s + b) % 3], kernels[(s + 2 * b) % 3]) for b in range(depth)]
        stages.append((st.widths[1], st.stride, blocks))
    return Arch.create(RES, space.stem_widths[1], [w[2] for w in space.head_widths], stages)


# ---------------------------------------------------------------------- layout
def test_state_dict_matches_original_supernet_layout(elastic, tmp_path):
    layout_file = tmp_path / "layout.json"
    shutil.copy(LAYOUT_FILE, layout_file)
    layout = json.loads(layout_file.read_text())["superlitepose_crowdpose"]
    net = SuperLitePose(elastic, num_joints=14)
    state = net.state_dict()
    assert list(state) == [e["key"] for e in layout["entries"]]  # same keys, same order
    assert {k: list(v.shape) for k, v in state.items()} == {e["key"]: e["shape"] for e in layout["entries"]}
    assert sum(p.numel() for p in net.parameters()) == layout["num_parameters"] == 5_837_904


def test_both_spaces_share_the_largest_network(elastic, original):
    a = SuperLitePose(elastic, 17).state_dict()
    b = SuperLitePose(original, 17).state_dict()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}


# ---------------------------------------------------------------------- extraction
@pytest.mark.parametrize("space_name", ["litepose-elastic", "litepose"])
def test_extraction_equals_supernet_on_random_archs(supernet, space_name):
    space = SearchSpace.from_yaml(space_name)
    x = images()
    kernels_seen = set()
    archs = [small(space.sample(seed)) for seed in range(5)] + [small(space.largest()), small(space.smallest())]
    for arch in archs:
        kernels_seen |= {k for ks in arch.kernels() for k in ks}
        static = supernet.extract(arch)
        assert isinstance(static, LitePose) and not static.training
        assert list(static.state_dict()) == list(LitePose(arch, 14).state_dict())
        with torch.no_grad():
            out_super = supernet(x, arch)
            out_static = static(x)
        assert out_super[0].shape == (2, 28, RES // 4, RES // 4)
        assert out_super[1].shape == (2, 14, RES // 2, RES // 2)
        assert max_diff(out_super, out_static) <= TOL, arch.describe()
        assert float(out_super[0].abs().max()) > 1e-2  # the comparison is not between zeros
    if space_name == "litepose-elastic":
        assert kernels_seen == {3, 5, 7}


def test_extraction_with_all_kernels_and_expansions(supernet, elastic):
    arch = mixed_kernel_arch(elastic)
    elastic.validate(dataclasses.replace(arch, img_size=256))
    assert {k for ks in arch.kernels() for k in ks} == {3, 5, 7}
    x = images(seed=3)
    with torch.no_grad():
        assert max_diff(supernet(x, arch), supernet.extract(arch)(x)) <= TOL
    # the extracted 5x5 / 3x3 kernels are the transformed ones, not plain crops
    static = supernet.extract(arch).state_dict()
    for s, stage in enumerate(arch.stages):
        for b, block in enumerate(stage.blocks):
            key = f"stage.{s}.{b}.depth_conv.0.weight"
            assert static[key].shape[-1] == block.kernel
            if block.kernel < 7:
                crop = centre_crop(supernet.state_dict()[key][: static[key].shape[0]], block.kernel)
                assert not torch.allclose(static[key], crop)


def test_extraction_in_training_mode_matches_batch_statistics_updates(elastic):
    """Training a subnet through the supernet updates the same BN statistics as training the static net."""
    torch.manual_seed(2)
    net = randomize(SuperLitePose(elastic, 14), seed=2)
    arch = mixed_kernel_arch(elastic)
    static = net.extract(arch).train()
    net.train()
    x = images(seed=4)
    out_super = net(x, arch)
    out_static = static(x)
    assert max_diff([o.detach() for o in out_super], [o.detach() for o in out_static]) <= 1e-4
    after = net.eval().extract(arch).state_dict()
    for key, value in static.state_dict().items():
        if "running" in key:
            assert torch.allclose(after[key], value, atol=1e-6), key


def test_set_active_then_forward(supernet, elastic):
    arch = small(elastic.sample(11))
    x = images()
    with torch.no_grad():
        direct = supernet(x, arch)
        supernet.set_active(small(elastic.largest()))
        supernet.set_active(arch)
        assert supernet.active_arch == arch
        assert max_diff(direct, supernet(x)) == 0.0


def test_any_input_size_and_seed_config(supernet):
    arch = Arch.from_json(PUBLISHED / "search-XS.json")
    x = torch.randn(1, 3, 96, 64)  # not square, not the arch's img_size
    with torch.no_grad():
        assert max_diff(supernet(x, arch), supernet.extract(arch)(x)) <= TOL


def test_archs_that_do_not_fit_are_refused(supernet, elastic):
    largest = elastic.largest()
    too_wide = dataclasses.replace(largest, input_channel=32)
    with pytest.raises(ArchError, match="input_channel 32"):
        supernet(images(1), too_wide)
    stages = list(largest.stages)
    stages[1] = dataclasses.replace(stages[1], blocks=stages[1].blocks[:1] + (dataclasses.replace(stages[1].blocks[1], kernel=9),))
    with pytest.raises(ArchError, match="stage 1 block 1 kernel 9"):
        supernet.plan(dataclasses.replace(largest, stages=tuple(stages)))
    stages = list(largest.stages)
    stages[2] = dataclasses.replace(stages[2], blocks=stages[2].blocks * 2)
    with pytest.raises(ArchError, match="stage 2 num_blocks 20"):
        supernet.plan(dataclasses.replace(largest, stages=tuple(stages)))
    with pytest.raises(ArchError, match="expansion 8"):
        supernet.plan(Arch.create(64, 24, [64, 48, 32], [(c, s, [(8 if i == 0 else 6, 7)] * 2) for i, (c, s) in
                                                          enumerate([(32, 2), (64, 2), (96, 2), (160, 1)])]))


# ---------------------------------------------------------------------- kernel transform
def test_fresh_kernel_transform_is_the_plain_crop(elastic):
    net = SuperLitePose(elastic, 14)
    block = net.stage[1][0]
    assert block.Linear5x5.weight.shape == (25, 25) and block.Linear5x5.bias.shape == (25,)
    assert block.Linear3x3.weight.shape == (9, 9) and block.Linear3x3.bias.shape == (9,)
    full = block.depth_conv[0].weight
    with torch.no_grad():
        for k in (3, 5):
            w = block.depthwise_weight(k, 40)
            assert w.shape == (40, 1, k, k)
            assert torch.equal(w, centre_crop(full[:40], k))
        assert block.depthwise_weight(7, 40).shape == (40, 1, 7, 7)


def test_kernel_transform_maps_the_centre_crop_of_the_largest_kernel(supernet):
    block = supernet.stage[2][3]
    full = block.depth_conv[0].weight.detach()
    for k in (5, 3):  # both read the 7x7 kernel directly, as in the original
        linear = getattr(block, f"Linear{k}x{k}")
        expected = (centre_crop(full, k).reshape(-1, k * k) @ linear.weight.detach().T + linear.bias.detach())
        with torch.no_grad():
            got = block.depthwise_weight(k, full.shape[0])
        assert torch.allclose(got.reshape(-1, k * k), expected, atol=1e-6)


def test_gradients_reach_shared_weights_and_kernel_maps(elastic):
    torch.manual_seed(5)
    net = randomize(SuperLitePose(elastic, 14), seed=5).train()
    arch = mixed_kernel_arch(elastic)
    out = net(images(seed=6), arch)
    (out[0].square().mean() + out[1].square().mean()).backward()
    for s, stage in enumerate(arch.stages):
        for b, block in enumerate(stage.blocks):
            sup = net.stage[s][b]
            for k in (3, 5):
                grad = getattr(sup, f"Linear{k}x{k}").weight.grad
                if block.kernel == k:
                    assert grad is not None and grad.abs().sum() > 0, (s, b, k)
                else:
                    assert grad is None or grad.abs().sum() == 0, (s, b, k)
            dw_grad = sup.depth_conv[0].weight.grad
            assert dw_grad is not None and dw_grad.abs().sum() > 0
            if block.kernel < 7:  # only the centre crop is used
                border = dw_grad.clone()
                lo = (7 - block.kernel) // 2
                border[..., lo:lo + block.kernel, lo:lo + block.kernel] = 0
                assert border.abs().sum() == 0
        # blocks past the depth receive nothing
        for b in range(stage.num_blocks, len(net.stage[s])):
            assert net.stage[s][b].inv[0].weight.grad is None
    # leading channels only: stem output 16 of 24
    stem_grad = net.first[2].weight.grad
    assert stem_grad[:16].abs().sum() > 0 and stem_grad[16:].abs().sum() == 0


def test_cached_kernels_follow_weight_updates(elastic):
    net = randomize(SuperLitePose(elastic, 14), seed=7).eval()
    arch = mixed_kernel_arch(elastic)
    x = images(seed=8)
    with torch.no_grad():
        before = net(x, arch)
        again = net(x, arch)
        assert max_diff(before, again) == 0.0
        for block in net.blocks():
            block.Linear3x3.bias.add_(0.5)
            block.Linear5x5.weight.mul_(1.5)
        after = net(x, arch)
        assert max_diff(before, after) > 1e-3
        assert max_diff(after, net.extract(arch)(x)) <= TOL


# ---------------------------------------------------------------------- reorder
def test_reorder_keeps_the_largest_network_and_sorts_by_importance(elastic):
    torch.manual_seed(9)
    net = randomize(SuperLitePose(elastic, 14), seed=9).eval()
    largest, sub = small(elastic.largest()), mixed_kernel_arch(elastic)
    x = images(seed=10)
    with torch.no_grad():
        before_largest, before_sub = net(x, largest), net(x, sub)
        net.reorder_channels()
        after_largest, after_sub = net(x, largest), net(x, sub)
    assert max_diff(before_largest, after_largest) <= TOL
    assert max_diff(before_sub, after_sub) > 1e-4  # subnets now keep the important channels
    for group in channel_groups(net):
        weight, dim = group.importance
        other = tuple(d for d in range(weight.dim()) if d != dim)
        norms = weight.abs().sum(dim=other)
        # the norms are recomputed after other groups permuted the summed dims: float ties may swap
        assert torch.all(norms[:-1] >= norms[1:] - 1e-5), group.name
    with torch.no_grad():  # extraction still exact after the permutation
        assert max_diff(net(x, sub), net.extract(sub)(x)) <= TOL


# ---------------------------------------------------------------------- BN recalibration
def _snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_recalibrate_supernet_changes_running_stats_only(elastic):
    net = randomize(SuperLitePose(elastic, 14), seed=11)
    net.eval()
    net.deconv_bnrelu[0][0].momentum = 0.3  # restored afterwards, whatever it was
    arch = mixed_kernel_arch(elastic)
    before = _snapshot(net)
    batches = [images(2, seed=s) for s in range(3)]
    assert recalibrate_bn(net, batches, arch=arch) == 3
    after = net.state_dict()
    assert not net.training and all(not m.training for m in net.modules())
    assert net.deconv_bnrelu[0][0].momentum == 0.3 and net.first[3].momentum == 0.1
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked") for k in changed)
    # blocks the subnet does not run and channels it does not use keep their statistics
    depth0 = arch.stages[0].num_blocks
    key = f"stage.0.{depth0}.inv.1.running_mean"
    assert torch.equal(before[key], after[key])
    used = arch.input_channel
    assert not torch.equal(before["first.3.running_mean"][:used], after["first.3.running_mean"][:used])
    assert torch.equal(before["first.3.running_mean"][used:], after["first.3.running_mean"][used:])
    assert int(after["first.3.num_batches_tracked"]) == 3


def test_recalibrated_supernet_equals_recalibrated_static_net(elastic):
    """Cumulative average over the batches, identical through the supernet or on the extracted net."""
    net = randomize(SuperLitePose(elastic, 14), seed=12).eval()
    arch = mixed_kernel_arch(elastic)
    static = net.extract(arch)
    batches = [images(2, seed=20 + s) for s in range(3)]
    recalibrate_bn(net, batches, arch=arch)
    recalibrate_bn(static, [(b, None) for b in batches])  # (images, targets) tuples work too
    ref = net.extract(arch).state_dict()
    for key, value in static.state_dict().items():
        assert torch.allclose(ref[key].float(), value.float(), atol=1e-5, rtol=1e-5), key
    # cumulative: equals the plain mean of per-batch means for the first BN
    mean = torch.stack([static.first[0][0](b).mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    assert torch.allclose(static.first[0][1].running_mean, mean.detach(), atol=1e-5)


def test_recalibrate_keeps_train_mode_and_rejects_bad_input(elastic):
    net = SuperLitePose(elastic, 14).train()
    static = net.extract(small(elastic.smallest()))
    recalibrate_bn(static, [images(1)])
    assert static.training
    before = _snapshot(static)
    with pytest.raises(InputError, match="no batches"):
        recalibrate_bn(static, [])
    with pytest.raises(InputError, match="only for a SuperLitePose"):
        recalibrate_bn(static, [images(1)], arch=small(elastic.smallest()))
    assert all(torch.equal(before[k], v) for k, v in static.state_dict().items())


def test_top_level_api():
    import litepose_nas

    assert litepose_nas.SuperLitePose is SuperLitePose
    assert litepose_nas.recalibrate_bn is recalibrate_bn
    assert callable(litepose_nas.load_original_checkpoint)


def test_deepcopy_and_extract_do_not_share_storage(supernet, elastic):
    arch = small(elastic.sample(3))
    static = supernet.extract(arch)
    with torch.no_grad():
        static.first[2].weight.add_(1.0)
    assert not torch.equal(supernet.first[2].weight[: arch.input_channel], static.first[2].weight)
    clone = copy.deepcopy(supernet)
    x = images(1)
    with torch.no_grad():
        assert max_diff(clone(x, arch), supernet(x, arch)) == 0.0
        assert np.isfinite(float(clone(x, arch)[0].sum()))
