"""The network plan: one wiring for the model, supernet, cost, latency layers, ONNX graphs and
checkpoints, on the Lite Pose shape and beyond it (2-6 stages, 1-4 head levels)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from litepose_nas import Arch, SearchSpace, macs, params
from litepose_nas.checkpoints import infer_architecture
from litepose_nas.errors import ArchError, SpaceError
from litepose_nas.models.litepose import LitePose, output_shapes
from litepose_nas.space.plan import network_plan, wiring
from litepose_nas.supernet import SuperLitePose
from test_model_cost import hook_macs


def _space(strides, heads, stem_mid=16, name="custom"):
    stages = [{"stride": s, "widths": [8, 16], "depths": [1, 2], "kernels": [3, 5], "expansions": [2, 3]}
              for s in strides]
    total = 2 * 2 ** sum(1 for s in strides if s == 2)
    return SearchSpace.create(name, [total * 2, total * 3], [8, 16], stages, [[8, 16]] * heads,
                              stem_mid_channels=stem_mid)


def test_lite_pose_wiring_is_the_original():
    w = wiring((2, 2, 2, 1), 3)
    assert w.feature_strides == (2, 4, 8, 16, 16)
    assert w.raw_sources == (3, 2, 1)  # stage 2, stage 1, stage 0
    assert w.output_levels == (1, 2)
    assert w.skip_sources == (1, 0)  # stage 0 (1/4) and the stem (1/2)
    assert w.output_strides == (4, 2) and w.total_stride == 16


@pytest.mark.parametrize("strides, heads, expected", [
    ((2, 2, 2), 2, r"stage 2 stride 2 not allowed \(allowed: 1\)"),
    ((2, 1, 1), 2, "need at least 2 stride-2 stages"),
    ((2,) * 6 + (1,), 2, r"backbone_setting has 7 stages \(allowed: 2 to 6\)"),
    ((2, 2, 2, 2, 1), 5, "deconv_setting .*1 to 4"),
])
def test_invalid_combinations_name_the_field(strides, heads, expected):
    with pytest.raises(ArchError, match=expected):
        wiring(strides, heads)
    arch = {"img_size": 64, "input_channel": 8, "deconv_setting": [8] * heads,
            "backbone_setting": [{"num_blocks": 1, "stride": s, "channel": 8, "block_setting": [[1, 3]]}
                                 for s in strides]}
    with pytest.raises(ArchError, match=expected):
        Arch.from_dict(arch)


def test_space_errors_name_the_field():
    with pytest.raises(SpaceError, match=r"stages\[1\]\.stride 2 not allowed"):
        _space((2, 2), 1)
    with pytest.raises(SpaceError, match="head.widths has 3 levels, which need at least 3 stride-2 stages"):
        _space((2, 2, 1), 3)


@pytest.mark.parametrize("strides, heads", [((2, 2, 1), 2), ((2, 1), 1), ((1, 2, 2, 1, 2, 1), 3), ((2, 2, 2, 2, 1), 4)])
def test_every_consumer_follows_the_plan(strides, heads):
    space = _space(strides, heads)
    arch = space.sample(0)
    plan = network_plan(arch, 5)
    model = LitePose(arch, 5).eval()
    # the static model's weights are exactly the plan's layers
    prefixes = {".".join(k.split(".")[:3 if k.startswith("stage") else 2]) for k in model.state_dict()}
    names = {layer.name for layer in plan.layers if layer.kind != "add"}
    assert {p if not p.startswith("first") else "first" for p in prefixes} == names
    x = torch.randn(1, 3, arch.img_size, arch.img_size)
    with torch.no_grad():
        outs = model(x)
    assert [tuple(o.shape) for o in outs] == output_shapes(arch, 5)
    assert len(outs) == min(heads, 2)
    # cost: the vectorized count equals a hook count on the built model, with the arch's stem width
    assert macs(arch, 5) == hook_macs(model, arch.img_size)
    assert params(arch, 5) == sum(p.numel() for p in model.parameters())
    assert macs(space.encode(arch), 5, space=space) == macs(arch, 5)
    # supernet: the subnet extracted from it runs the same function
    supernet = SuperLitePose(space, 5).eval()
    with torch.no_grad():
        ref = supernet(x, arch)
        sub = supernet.extract(arch).eval()(x)
    for a, b in zip(ref, sub):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    supernet.reorder_channels()
    # checkpoint inference recovers the architecture, stem width included
    inferred, joints, stem_mid = infer_architecture(model.state_dict(), img_size=arch.img_size, strides=arch.strides)
    assert (inferred, joints, stem_mid) == (arch, 5, 16)


def test_onnx_graph_follows_the_plan():
    ort = pytest.importorskip("onnxruntime")
    from litepose_nas.latency.onnx_graphs import network_model

    arch = _space((2, 2, 1), 2).sample(1)
    model = LitePose(arch, 4).eval()
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    proto = network_model(arch, 4, weights=weights)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(1, 3, arch.img_size, arch.img_size)).astype(np.float32)
    got = session.run(None, {"image": x})
    with torch.no_grad():
        want = model(torch.from_numpy(x))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-3, atol=1e-4)


def test_latency_layers_cover_the_plan():
    from litepose_nas.latency.layers import arch_layers, enumerate_layers
    from litepose_nas.space import ArchArrays

    space = _space((2, 2, 1), 2)
    arch = space.sample(2)
    layers = arch_layers(ArchArrays.from_archs([arch]), 17)
    plan = network_plan(arch, 17)
    assert len(layers) == len(plan.layers)
    assert layers[0][1].mid == 16  # the stem width travels with the architecture
    assert {cfg for _, cfg in layers} <= set(enumerate_layers(space, 17))


def test_stem_width_in_json_only_when_not_default():
    space = _space((2, 2, 1), 2)
    custom = space.sample(3)
    assert custom.stem_mid_channels == 16
    text = custom.to_json()
    assert '"stem_mid_channels": 16' in text and Arch.from_json(text) == custom
    default = Arch.from_dict({**custom.to_dict(), "stem_mid_channels": 32})
    assert "stem_mid_channels" not in default.to_json()
    assert list(default.to_dict()) == ["img_size", "input_channel", "deconv_setting", "backbone_setting"]
    with pytest.raises(ArchError, match="stem_mid_channels 32 not in space"):
        space.validate(default)
