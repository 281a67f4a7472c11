"""Checkpoints: the original layouts load strictly and safely; bad files fail with one clear error."""
from __future__ import annotations

import builtins
import dataclasses
import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from litepose_nas.checkpoints import (
    LAYOUT_STATIC,
    LAYOUT_SUPERNET,
    load_original_checkpoint,
    load_state_dict_file,
    read_checkpoint,
    save_checkpoint,
)
from litepose_nas.cli import main
from litepose_nas.errors import CheckpointError
from litepose_nas.space import Arch, SearchSpace
from litepose_nas.supernet import SuperLitePose

from data_paths import LAYOUT_FILE, PUBLISHED


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def layout(tmp_path) -> dict:
    path = tmp_path / "checkpoint-layout-search-XS.json"
    shutil.copy(LAYOUT_FILE, path)
    return json.loads(path.read_text())


def state_from_layout(entries: list[dict], seed: int = 0, prefix: str = "") -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for e in entries:
        if e["dtype"] == "int64":
            state[prefix + e["key"]] = torch.tensor(7, dtype=torch.int64)
        elif e["key"].endswith("running_var"):
            state[prefix + e["key"]] = 0.5 + torch.rand(e["shape"], generator=g)  # a variance is positive
        else:
            state[prefix + e["key"]] = 0.2 * torch.randn(e["shape"], generator=g)
    return state


def with_coco(entries: list[dict], differences: list[dict]) -> list[dict]:
    shapes = {d["key"]: d["coco_shape"] for d in differences}
    return [dict(e, shape=shapes.get(e["key"], e["shape"])) for e in entries]


# ---------------------------------------------------------------------- the original layouts
def test_static_layout_loads_strictly(layout, tmp_path):
    xs = layout["litepose_search_xs_crowdpose"]
    state = state_from_layout(xs["entries"])
    path = tmp_path / "final_state.pth.tar"
    torch.save(state, path)
    ckpt = load_original_checkpoint(path)
    assert ckpt.layout == LAYOUT_STATIC and ckpt.container == "" and ckpt.prefix == ""
    assert ckpt.num_joints == 14
    assert ckpt.num_parameters == xs["num_parameters"] == 1_675_552
    assert ckpt.arch == Arch.from_dict(xs["arch"])
    assert ckpt.arch == Arch.from_json(PUBLISHED / "search-XS.json")
    loaded = ckpt.model.state_dict()
    assert len(loaded) == xs["num_state_dict_entries"] == 679
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert not ckpt.model.training
    out = ckpt.model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in out] == [(1, 28, 16, 16), (1, 14, 32, 32)]


def test_static_coco_layout(layout, tmp_path):
    xs = layout["litepose_search_xs_crowdpose"]
    coco = layout["litepose_search_xs_coco_shape_differences"]
    torch.save(state_from_layout(with_coco(xs["entries"], coco["differences"])), tmp_path / "coco.pth")
    ckpt = load_original_checkpoint(tmp_path / "coco.pth")
    assert ckpt.num_joints == 17 and ckpt.num_parameters == coco["num_parameters"] == 1_675_912


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda s: s, id="plain"),
        pytest.param(lambda s: {"epoch": 3, "model": "pose_supermobilenet", "perf": 0.5,
                                "state_dict": {f"module.{k}": v for k, v in s.items()},
                                "best_state_dict": s, "optimizer": {"state": {}, "param_groups": [{"lr": 4e-3}]}},
                     id="training-checkpoint-module-prefix"),
        pytest.param(lambda s: {"model": {f"1.{k}": v for k, v in s.items()}}, id="model-key-sequential-prefix"),
    ],
)
def test_supernet_layout_loads_strictly(layout, tmp_path, wrap):
    sup = layout["superlitepose_crowdpose"]
    state = state_from_layout(sup["entries"], seed=1)
    path = tmp_path / "supernet.pth"
    torch.save(wrap(state), path)
    ckpt = load_original_checkpoint(path)
    assert ckpt.layout == LAYOUT_SUPERNET
    assert isinstance(ckpt.model, SuperLitePose)
    assert ckpt.space is not None and ckpt.space.name == "litepose-elastic"
    assert ckpt.num_joints == 14 and ckpt.num_parameters == sup["num_parameters"] == 5_837_904
    loaded = ckpt.model.state_dict()
    assert list(loaded) == [e["key"] for e in sup["entries"]]
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    # the loaded supernet runs (and extracts) subnets of both spaces
    arch = dataclasses.replace(SearchSpace.from_yaml("litepose-elastic").sample(0), img_size=64)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = ckpt.model(x, arch), ckpt.model.extract(arch)(x)
    assert max(float((u - v).abs().max()) for u, v in zip(a, b)) <= 1e-4 * max(1.0, float(a[0].abs().max()))


def test_supernet_coco_layout(layout, tmp_path):
    sup = layout["superlitepose_crowdpose"]
    entries = with_coco(sup["entries"], layout["superlitepose_coco_shape_differences"]["differences"])
    torch.save(state_from_layout(entries), tmp_path / "coco_super.pth")
    ckpt = load_original_checkpoint(tmp_path / "coco_super.pth")
    assert ckpt.layout == LAYOUT_SUPERNET and ckpt.num_joints == 17


# ---------------------------------------------------------------------- corrupted files
@pytest.mark.parametrize("which", ["litepose_search_xs_crowdpose", "superlitepose_crowdpose"])
@pytest.mark.parametrize(
    "corrupt, key",
    [
        pytest.param(lambda s: s.pop("stage.1.2.depth_conv.1.running_var"), "stage.1.2.depth_conv.1.running_var", id="missing"),
        pytest.param(lambda s: s.update({"deconv_raw.1.weight": torch.zeros(8, 8, 4, 4)}), "deconv_raw.1.weight", id="shape"),
        pytest.param(lambda s: s.update({"head.extra.weight": torch.zeros(3)}), "head.extra.weight", id="extra"),
        pytest.param(lambda s: s.pop("stage.2.9.inv.0.weight") if "stage.2.9.inv.0.weight" in s else None,
                     "stage.2.9.inv.0.weight", id="missing-block-conv"),
    ],
)
def test_corrupted_checkpoint_names_the_key(layout, tmp_path, which, corrupt, key):
    state = state_from_layout(layout[which]["entries"])
    corrupt(state)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    with pytest.raises(CheckpointError) as info:
        load_original_checkpoint(path)
    message = str(info.value)
    assert key in message and str(path) in message
    assert "\n" not in message


def test_depthwise_kernel_size_is_read_from_the_shapes(layout, tmp_path):
    """A 5x5 kernel is a kernel-5 block in a static net, but a corrupt tensor in a supernet."""
    for which, ok in (("litepose_search_xs_crowdpose", True), ("superlitepose_crowdpose", False)):
        state = state_from_layout(layout[which]["entries"])
        key = "stage.0.1.depth_conv.0.weight"
        state[key] = state[key][..., 1:6, 1:6].contiguous()
        torch.save(state, tmp_path / "k5.pth")
        if ok:
            assert load_original_checkpoint(tmp_path / "k5.pth").arch.stages[0].blocks[1].kernel == 5
        else:
            with pytest.raises(CheckpointError, match=key):
                load_original_checkpoint(tmp_path / "k5.pth")


def test_supernet_checkpoint_for_another_space_is_refused(layout, tmp_path):
    torch.save(state_from_layout(layout["superlitepose_crowdpose"]["entries"]), tmp_path / "s.pth")
    small = SearchSpace.create("tiny", [256], [16], [
        {"stride": st.stride, "widths": [st.widths[-1]], "depths": [2], "kernels": [3, 5, 7], "expansions": [6]}
        for st in SearchSpace.from_yaml("litepose").stages
    ], [[16], [16], [8]])
    with pytest.raises(CheckpointError, match="space 'tiny'.*first.2.weight"):
        load_original_checkpoint(tmp_path / "s.pth", space=small)


def test_pickle_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (builtins.open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"first.0.0.weight": torch.zeros(1)}, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_original_checkpoint(path)
    with pytest.raises(CheckpointError, match="refused"):
        load_state_dict_file(path)
    assert not marker.exists()


@pytest.mark.parametrize("content, match", [(b"", "empty"), (b"not a checkpoint at all", "not a readable")])
def test_unreadable_files(tmp_path, content, match):
    path = tmp_path / "x.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pth")


def test_no_state_dict_inside(tmp_path):
    torch.save({"epoch": 3, "perf": 0.1}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match="no state_dict found"):
        load_original_checkpoint(tmp_path / "c.pth")
    torch.save({"a.weight": torch.zeros(2)}, tmp_path / "d.pth")
    with pytest.raises(CheckpointError, match="missing key 'first.0.0.weight'"):
        load_original_checkpoint(tmp_path / "d.pth")


# ---------------------------------------------------------------------- our own files
def test_save_and_reload_our_models(tmp_path):
    space = SearchSpace.from_yaml("litepose-elastic")
    net = SuperLitePose(space, 17)
    arch = space.sample(4)
    static = net.extract(arch)
    path = save_checkpoint(tmp_path / "run" / "static.pth", static, arch=arch, epoch=2)
    assert sorted(p.name for p in path.parent.iterdir()) == ["static.pth"]  # atomic: no temp files left
    raw = read_checkpoint(path)
    assert raw["epoch"] == 2 and Arch.from_dict(raw["arch"]) == arch
    state = load_state_dict_file(path)
    assert all(torch.equal(state[k], v) for k, v in static.state_dict().items())
    ckpt = load_original_checkpoint(path, img_size=arch.img_size)
    assert ckpt.layout == LAYOUT_STATIC and ckpt.arch == arch and ckpt.num_joints == 17

    save_checkpoint(tmp_path / "super.pth", net)
    again = load_original_checkpoint(tmp_path / "super.pth")
    assert again.layout == LAYOUT_SUPERNET and again.space.name == "litepose-elastic"
    with pytest.raises(TypeError, match="cannot be stored"):
        save_checkpoint(tmp_path / "bad.pth", {"state_dict": {}, "space": space})
    assert not (tmp_path / "bad.pth").exists()


# ---------------------------------------------------------------------- CLI
def test_cli_checkpoint_info(layout, tmp_path):
    torch.save(state_from_layout(layout["litepose_search_xs_crowdpose"]["entries"]), tmp_path / "xs.pth")
    torch.save({"state_dict": state_from_layout(layout["superlitepose_crowdpose"]["entries"])}, tmp_path / "sup.pth")
    runner = CliRunner()
    result = runner.invoke(main, ["checkpoint", "info", str(tmp_path / "xs.pth")])
    assert result.exit_code == 0, result.output
    assert "pose_mobilenet" in result.output and "1,675,552" in result.output and "CrowdPose" in result.output
    seed_xs = PUBLISHED / "search-XS.json"
    result = runner.invoke(main, ["checkpoint", "info", str(tmp_path / "xs.pth"), "--json", "--arch", str(seed_xs)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["layout"] == "static" and report["num_parameters"] == 1_675_552 and report["num_joints"] == 14
    assert report["arch_check"]["fits"] is True
    assert set(report["in_spaces"]) == {"litepose", "litepose-elastic"}
    result = runner.invoke(main, ["checkpoint", "info", str(tmp_path / "sup.pth"), "--json",
                                  "--arch", str(PUBLISHED / "search-L.json")])
    report = json.loads(result.output)
    assert report["layout"] == "supernet" and report["num_parameters"] == 5_837_904
    assert report["arch_check"]["fits"] is True and "litepose" in report["in_spaces"]


def test_cli_checkpoint_info_errors(layout, tmp_path):
    state = state_from_layout(layout["litepose_search_xs_crowdpose"]["entries"])
    state["deconv_raw.1.weight"] = torch.zeros(8, 8, 4, 4)
    torch.save(state, tmp_path / "bad.pth")
    result = CliRunner().invoke(main, ["checkpoint", "info", str(tmp_path / "bad.pth")])
    assert result.exit_code == 2
    assert "deconv_raw.1.weight" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["checkpoint", "info", str(tmp_path / "none.pth")])
    assert result.exit_code == 2 and "not found" in result.output
