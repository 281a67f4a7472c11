"""Training: config, data order, sandwich rule + distillation, exact resume, DDP (gloo), CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from litepose_nas.errors import InputError
from litepose_nas.space import Arch, SearchSpace
from litepose_nas.train.config import TrainConfig, default_config
from litepose_nas.train.data import StepBatchSampler
from litepose_nas.train.sandwich import SandwichStep, SubnetStep, distill_loss, sandwich_archs
from litepose_nas.train.state import lr_factor_fn, make_optimizer
from litepose_nas.train.trainer import Trainer, build_model

from cli_helpers import assert_one_line_error, run_cli

RES = 64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_space() -> SearchSpace:
    """Elastic in every dimension, small enough for a step in well under a second at 64 px."""
    return SearchSpace.create(
        "tiny", [64, 96], [16, 8],
        [
            dict(stride=2, widths=[16, 8], depths=[1, 2], kernels=[3, 5], expansions=[2, 3]),
            dict(stride=2, widths=[16, 8], depths=[1, 2], kernels=[3, 5], expansions=[2, 3]),
            dict(stride=2, widths=[24, 16], depths=[1, 2], kernels=[3, 5], expansions=[2, 3]),
            dict(stride=1, widths=[32, 16], depths=[1, 2], kernels=[3, 5], expansions=[2, 3]),
        ],
        [[16, 8], [16, 8], [16, 8]],
    )


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from litepose_nas.data import generate_synthetic

    root = tmp_path_factory.mktemp("train-data") / "synth"
    return generate_synthetic(root, 28, layout="coco", preset="easy", seed=3, image_size=96, val_fraction=0.15)


def supernet_config(data: Path, **kw) -> TrainConfig:
    base = dict(kind="supernet", dataset="coco", data=str(data), space=tiny_space().to_dict(), resolutions=(RES,),
                steps=4, batch_size=4, num_workers=0, val_every=-1, log_every=1, checkpoint_every=2)
    base.update(kw)
    return TrainConfig(**base).validate()


def fixed_batch(n: int = 4, joints: int = 17, size: int = RES, seed: int = 0) -> dict:
    """A batch with one gaussian person per image: enough signal to see learning in a few steps."""
    from litepose_nas.data.targets import ae_joints, heatmaps

    rng = np.random.default_rng(seed)
    images, hms, masks, js = [], [[], []], [[], []], []
    for _ in range(n):
        people = np.concatenate([rng.uniform(8, size - 8, (1, joints, 2)), np.ones((1, joints, 1))], -1).astype(np.float32)
        img = torch.zeros(3, size, size)
        for x, y, _ in people[0]:
            img[:, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 2.0
        images.append(img)
        for s, out in enumerate((size // 4, size // 2)):
            p = people.copy()
            p[..., :2] *= out / size
            hms[s].append(torch.from_numpy(heatmaps(p, out, 2.0)))
            masks[s].append(torch.ones(out, out))
        p4 = people.copy()
        p4[..., :2] /= 4
        js.append(torch.from_numpy(ae_joints(p4, size // 4, 30)))
    return {"image": torch.stack(images), "heatmaps": [torch.stack(h) for h in hms],
            "masks": [torch.stack(m) for m in masks], "joints": torch.stack(js)}


# ---------------------------------------------------------------------- config
def test_config_defaults_follow_the_original_recipe_but_the_tag_loss():
    cfg = default_config("supernet", space=tiny_space().to_dict())
    assert (cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.sigma) == ("adam", 4e-3, 1e-4, 16, 2.0)
    assert cfg.heatmap_weights == (1.0, 1.0)
    # the associative-embedding recipe that learns on small compute (docs/training.md)
    assert (cfg.push_loss, cfg.push_weight, cfg.pull_weight, cfg.tag_cost) == ("max", 1e-2, 1e-2, "distance")
    # a config saved before the loss was selectable trained the original recipe
    legacy = {k: v for k, v in cfg.to_dict().items() if k not in ("push_loss", "push_margin", "tag_cost")}
    assert (TrainConfig.from_dict(legacy).push_loss, TrainConfig.from_dict(legacy).tag_cost) == ("exp", "original")
    with pytest.raises(InputError, match="push_loss 'hinge' not allowed .*allowed: exp, max"):
        cfg.replace(push_loss="hinge")
    with pytest.raises(InputError, match="tag_cost 'nearest' not allowed .*allowed: original, distance"):
        cfg.replace(tag_cost="nearest")
    assert cfg.train_resolutions() == (64, 96)  # the space's
    arch = tiny_space().smallest().to_dict()
    assert default_config("subnet", arch=arch).lr == 4e-3
    assert default_config("subnet", arch=arch, init_from="x.pt").lr == 1e-3  # fine-tuning
    assert default_config("subnet", arch=arch, init_from="x.pt", lr=5e-4).lr == 5e-4
    again = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg


@pytest.mark.parametrize("field,value,fragment", [
    ("optimizer", "sgd", "allowed: adam, adamw"),
    ("resolutions", (100,), "multiple of 16 .the network's total stride"),
    ("batch_size", 0, "batch_size"),
    ("micro_batches", 3, "not divisible"),
    ("memory_format", "nhwc", "channels_last"),
])
def test_config_rejects_bad_values(field, value, fragment):
    with pytest.raises(InputError, match=fragment):
        TrainConfig(kind="supernet", space=tiny_space().to_dict(), **{field: value}).validate()


def test_lr_schedule_and_weight_decay_groups():
    cfg = TrainConfig(kind="supernet", space=tiny_space().to_dict(), steps=100, warmup_steps=10)
    f = lr_factor_fn(cfg)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(69) == 1.0 and f(70) == pytest.approx(0.1) and f(96) == pytest.approx(0.01)
    from litepose_nas.supernet import SuperLitePose

    net = SuperLitePose(tiny_space(), 17)
    opt = make_optimizer(net, cfg)
    decayed = {id(p) for p in opt.param_groups[0]["params"]}
    assert opt.param_groups[0]["weight_decay"] == 1e-4 and opt.param_groups[1]["weight_decay"] == 0.0
    for name, p in net.named_parameters():
        expect = p.ndim > 1 and "Linear" not in name  # convs yes; BN, biases, kernel maps no
        assert (id(p) in decayed) == expect, name


# ---------------------------------------------------------------------- data order
def test_step_sampler_shards_the_global_batch_and_resumes():
    single = StepBatchSampler(40, 8, (64, 96, 128), seed=5)
    ranks = [StepBatchSampler(40, 4, (64, 96, 128), seed=5, rank=r, world_size=2) for r in range(2)]
    sizes = set()
    for step in range(12):  # crosses epochs (5 steps each)
        whole = single.batch(step)
        parts = [r.batch(step) for r in ranks]
        assert parts[0] + parts[1] == whole
        assert len({s for s, _, _ in whole}) == 1  # one input size per step, on every rank
        sizes.add(whole[0][0])
    assert sizes == {64, 96, 128}
    epoch0 = [i for step in range(5) for _, i, _ in single.batch(step)]
    assert sorted(epoch0) == sorted(set(epoch0))  # no repeats within an epoch
    resumed = StepBatchSampler(40, 8, (64, 96, 128), seed=5, start_step=7, num_steps=10)
    assert list(resumed) == [single.batch(s) for s in (7, 8, 9)]
    with pytest.raises(InputError, match="fewer than one global batch"):
        StepBatchSampler(6, 4, (64,), seed=0, world_size=2)


# ---------------------------------------------------------------------- sandwich rule
def test_sandwich_archs_largest_smallest_and_random():
    space = tiny_space()
    archs = sandwich_archs(space, seed=1, step=3, resolution=96, num_random=2)
    assert len(archs) == 4
    assert archs[0].stages == space.largest().stages and archs[1].stages == space.smallest().stages
    assert all(a.img_size == 96 for a in archs)
    assert all(space.contains(a) for a in archs)
    assert sandwich_archs(space, 1, 3, 96) == archs  # a pure function of (seed, step)
    others = [sandwich_archs(space, 1, s, 96)[2:] for s in range(4, 10)]
    assert any(o != archs[2:] for o in others)


def test_distill_loss_is_masked_mse_to_the_teacher():
    t = [torch.rand(2, 34, 8, 8), torch.rand(2, 17, 16, 16)]
    masks = [torch.ones(2, 8, 8), torch.ones(2, 16, 16)]
    assert distill_loss(t, t, masks, 17).item() == 0.0
    s = [o.clone().requires_grad_() for o in t]
    with torch.no_grad():
        s[0][:, 17:] += 5.0  # tags are not distilled
    assert distill_loss(s, t, masks, 17).item() == 0.0
    with torch.no_grad():
        s[1] += 0.5
    loss = distill_loss(s, t, masks, 17)
    assert loss.item() == pytest.approx(0.25, rel=1e-5)
    masks[1].zero_()
    assert distill_loss(s, t, masks, 17).item() == 0.0


def test_sandwich_step_trains_all_subnets_and_kernel_transforms():
    from litepose_nas.losses import PoseLoss
    from litepose_nas.supernet import SuperLitePose

    torch.manual_seed(0)
    space = tiny_space()
    net = SuperLitePose(space, 17)
    step = SandwichStep(net, PoseLoss(17), distill_weight=1.0)
    cfg = supernet_config("unused", lr=3e-3, weight_decay=0.0)
    opt = make_optimizer(net, cfg)
    batch = fixed_batch()
    largest, smallest = space.largest(), space.smallest()

    def losses():
        from litepose_nas.supernet import recalibrate_bn

        loss = PoseLoss(17)
        out = []
        for a in (largest, smallest):
            recalibrate_bn(net, [batch["image"]], arch=a)  # shared BN statistics mix all subnets
            net.eval()
            with torch.no_grad():
                out.append(loss(net(batch["image"], a), batch)["heatmap"].item())
        return out

    transforms_before = {n: p.detach().clone() for n, p in net.named_parameters() if "Linear3x3" in n}
    before = losses()
    for i in range(30):
        net.train()
        total, stats = step(batch, sandwich_archs(space, 0, i, RES))
        assert {"loss", "largest_total", "smallest_total", "distill"} <= set(stats)
        opt.zero_grad()
        total.backward()
        opt.step()
    after = losses()
    # all-zero maps score about `before`; well below it the nets draw peaks where the joints are
    assert after[0] < 0.8 * before[0] and after[1] < 0.8 * before[1], (before, after)
    # the smallest subnet uses kernel 3 on every step: its transform maps must be trained
    changed = [n for n, p in net.named_parameters() if "Linear3x3" in n and not torch.equal(p, transforms_before[n])]
    assert changed


def test_subnet_step_learns():
    from litepose_nas.losses import PoseLoss
    from litepose_nas.models import LitePose

    torch.manual_seed(0)
    model = LitePose(tiny_space().smallest(), 17)
    step = SubnetStep(model, PoseLoss(17))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = fixed_batch()
    first = None
    for _ in range(30):
        loss, stats = step(batch)
        first = first if first is not None else stats["heatmap"].item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert stats["heatmap"].item() < 0.7 * first


# ---------------------------------------------------------------------- exact resume
class Killed(Exception):
    pass


def test_resume_continues_exactly(synth, tmp_path):
    cfg = supernet_config(synth, steps=5, num_workers=1)
    full = Trainer(cfg, tmp_path / "full", quiet=True).run()

    def kill_after_3(step, stats):
        if step == 3:
            raise Killed  # dies after step 3: the last checkpoint is step 2

    with pytest.raises(Killed):
        Trainer(cfg, tmp_path / "cut", quiet=True, on_step=kill_after_3).run()
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["step"] == 2
    resumed = Trainer(None, tmp_path / "cut", resume=True, quiet=True).run()
    want = [(h["step"], h["loss"]) for h in full.history]
    got = [(h["step"], h["loss"]) for h in resumed.history]
    assert got[0][0] == 3 and got == want[2:]  # the same next-step loss, and every one after it
    a = torch.load(full.weights, weights_only=True)["state_dict"]
    b = torch.load(resumed.weights, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]  # the log holds each step once
    # a finished run resumed again does nothing; --steps extends it; a new run into the folder is refused
    assert Trainer(None, tmp_path / "cut", resume=True, quiet=True).run().history == []
    longer = Trainer(None, tmp_path / "cut", resume=True, quiet=True, steps=6).run()
    assert [h["step"] for h in longer.history] == [6] and longer.step == 6
    with pytest.raises(InputError, match="--resume"):
        Trainer(cfg, tmp_path / "cut", quiet=True)


# ---------------------------------------------------------------------- DDP
WORKER = textwrap.dedent("""
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from litepose_nas.train.config import TrainConfig
    from litepose_nas.train.distributed import unwrap
    from litepose_nas.train.trainer import Trainer
    cfg = TrainConfig.from_dict(json.loads(open(sys.argv[1]).read()))
    trainer = Trainer(cfg, sys.argv[2], quiet=True)
    trainer.run()
    torch.save(unwrap(trainer.step_module).model.state_dict(), os.path.join(sys.argv[2], f"rank{trainer.info.rank}.pt"))
""")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(synth, tmp_path):
    """2 gloo ranks x 2 images == 1 process x 4 images in 2 micro-batches of 2.

    BatchNorm normalises each rank's images with their own statistics, so the single process
    must see the same per-BN batches: micro-batches of the per-rank size with accumulated
    gradients. Then the parameter updates agree to float rounding. BN running statistics are
    averaged over the ranks at checkpoints, an estimate the single process does not form, so they
    are compared across ranks only.
    """
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    base = dict(steps=3, checkpoint_every=10, num_workers=0)
    ddp_cfg, single_cfg = tmp_path / "ddp.json", tmp_path / "single.json"
    ddp_cfg.write_text(supernet_config(synth, batch_size=2, **base).to_json())
    single_cfg.write_text(supernet_config(synth, batch_size=4, micro_batches=2, **base).to_json())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(_free_port()), str(worker), str(ddp_cfg), str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run([sys.executable, str(worker), str(single_cfg), str(tmp_path / "single")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    one = torch.load(tmp_path / "single" / "rank0.pt", weights_only=True)
    for k in r0:  # identical on both ranks, buffers included
        assert torch.equal(r0[k], r1[k]), k
    init = build_model(supernet_config(synth)).state_dict()
    params = [k for k in r0 if "running" not in k and "num_batches" not in k]
    moved = max((r0[k] - init[k]).abs().max().item() for k in params)
    diff = max((r0[k] - one[k]).abs().max().item() for k in params)
    assert moved > 1e-3  # it trained
    assert diff <= 1e-5 * max(1.0, moved), (diff, moved)
    log = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]


# ---------------------------------------------------------------------- CLI
def test_cli_train_supernet_then_finetune_a_subnet(synth, tmp_path):
    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(tiny_space().to_yaml())
    run = tmp_path / "run"
    common = ["--data", synth, "--dataset", "coco", "--workers", "0", "--batch-size", "4", "--threads", "1"]
    r = run_cli("train-supernet", "--space", space_file, *common, "--out", run, "--steps", "2",
                "--resolutions", "64", "--val-images", "2", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["steps"] == 2
    assert set(summary["validation"]) == {"largest", "smallest"}
    assert 0.0 <= summary["validation"]["smallest"]["AP"] <= 1.0
    for name in ("checkpoint.pt", "config.json", "metrics.jsonl", "supernet.pt", "space.yaml"):
        assert (run / name).is_file(), name

    # a resumed run keeps its settings (--steps may grow: see test_resume_continues_exactly)
    r = run_cli("train-supernet", "--space", space_file, *common, "--out", run, "--resume", "--steps", "3",
                "--val-every", "-1", "--quiet")
    assert_one_line_error(r, 2, "--val-every")

    arch_file = tmp_path / "small.json"
    tiny_space().smallest().to_json(arch_file)
    sub = tmp_path / "sub"
    r = run_cli("train", "--arch", arch_file, *common, "--out", sub, "--init-from", run / "supernet.pt",
                "--steps", "1", "--resolutions", "64", "--val-every", "-1", "--json")
    assert r.returncode == 0, r.stderr
    cfg = json.loads((sub / "config.json").read_text())
    assert cfg["lr"] == 1e-3 and cfg["kind"] == "subnet"
    assert Arch.from_json(sub / "arch.json").stages == tiny_space().smallest().stages
    # initialisation by extraction: the subnet starts from the supernet's weights
    init = build_model(TrainConfig.from_dict(cfg)).state_dict()
    from litepose_nas.checkpoints import load_original_checkpoint

    supernet = load_original_checkpoint(run / "supernet.pt", space=tiny_space()).model
    extracted = supernet.extract(tiny_space().smallest()).state_dict()
    assert all(torch.equal(init[k], extracted[k]) for k in extracted)


def test_cli_errors_are_one_line(synth, tmp_path):
    run = tmp_path / "r"
    r = run_cli("train-supernet", "--data", synth, "--out", run, "--resume")
    assert_one_line_error(r, 2, "--resume", "checkpoint.pt")
    r = run_cli("train-supernet", "--data", tmp_path / "nope", "--out", run, "--resolutions", "64")
    assert_one_line_error(r, 2, "nope")
    r = run_cli("train-supernet", "--data", synth, "--out", run, "--resolutions", "64,100")
    assert_one_line_error(r, 2, "multiple of 16")
    r = run_cli("train-supernet", "--data", synth, "--out", run, "--resolutions", "64", "--amp", "on", "--device", "cpu")
    assert_one_line_error(r, 2, "CUDA")
    assert not (run / "checkpoint.pt").exists()
