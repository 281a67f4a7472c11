"""Training speed settings, on the CPU: AMP dtype and scaler choice, --compile refusal, channels-last
layout, pinned memory, and --gpu-resize targets equal to the workers' at the step's size."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from litepose_nas.errors import InputError
from litepose_nas.train import accel
from litepose_nas.train.device_targets import (
    DeviceTargetDataset, render_heatmaps, resize_batch, step_resolution, tag_indices,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def test_amp_dtype_and_scaler(monkeypatch) -> None:
    assert accel.amp_dtype("auto", CPU) is None and accel.amp_dtype("off", CPU) is None
    assert accel.amp_dtype("bf16", CPU) is torch.bfloat16
    for mode in ("fp16", "on"):
        with pytest.raises(InputError, match=f"--amp {mode}.*CUDA"):
            accel.amp_dtype(mode, CPU)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert accel.amp_dtype("auto", CUDA) is torch.bfloat16 and accel.amp_dtype("on", CUDA) is torch.bfloat16
    assert accel.amp_dtype("fp16", CUDA) is torch.float16 and accel.amp_dtype("off", CUDA) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Old GPU")
    assert accel.amp_dtype("auto", CUDA) is torch.float16  # no bf16: fp16 with a scaler
    with pytest.raises(InputError, match="Old GPU does not support bfloat16"):
        accel.amp_dtype("bf16", CUDA)
    # loss scaling for float16 only
    assert isinstance(accel.make_scaler(torch.float16, CPU), torch.amp.GradScaler)
    assert accel.make_scaler(torch.bfloat16, CPU) is None and accel.make_scaler(None, CPU) is None
    with accel.autocast(CPU, torch.bfloat16):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype is torch.bfloat16
    with accel.autocast(CPU, None):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype is torch.float32


def test_pin_memory_and_compile_choices() -> None:
    assert accel.pin_memory("auto", CUDA) and not accel.pin_memory("auto", CPU)
    assert accel.pin_memory("on", CPU) and not accel.pin_memory("off", CUDA)
    from litepose_nas.space import SearchSpace
    from litepose_nas.train import default_config

    space = SearchSpace.from_yaml("litepose")
    with pytest.raises(InputError, match="--compile: not supported by train-supernet"):
        default_config("supernet", space=space.to_dict(), compile=True)
    cfg = default_config("subnet", arch=space.smallest().to_dict(), compile=True)
    assert cfg.compile
    with pytest.raises(InputError, match="pin_memory 'sometimes'.*auto, on, off"):
        default_config("subnet", arch=space.smallest().to_dict(), pin_memory="sometimes")


def test_render_targets_match_the_workers() -> None:
    from litepose_nas.data.targets import ae_joints, heatmaps

    rng = np.random.default_rng(0)
    joints = np.concatenate([rng.uniform(-4, 36, (11, 17, 2)), rng.integers(0, 3, (11, 17, 1))], -1).astype(np.float32)
    people = torch.from_numpy(joints)[None].repeat(2, 1, 1, 1)
    got = render_heatmaps(people, 32, 2.0)
    assert got.shape == (2, 17, 32, 32)
    assert torch.allclose(got[1], torch.from_numpy(heatmaps(joints, 32, 2.0)), atol=1e-6)
    padded = torch.zeros(2, 30, 17, 3)
    padded[:, :11] = people
    assert torch.equal(tag_indices(padded, 32)[0], torch.from_numpy(ae_joints(joints, 32, 30)))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from litepose_nas.data import generate_synthetic, open_dataset

    root = generate_synthetic(tmp_path_factory.mktemp("d") / "coco", 6, layout="coco", image_size=128,
                              val_fraction=0.2, progress=False)
    source = open_dataset(root, "coco", "train")
    source.folder = root
    return source


def test_gpu_resize_equals_the_workers_targets_at_the_step_size(source) -> None:
    """Prepared at 128 and resized on the device to 64 = prepared at 64 by the workers: the same
    heatmaps, masks and tag indices; the image up to interpolation."""
    from torch.utils.data import default_collate

    from litepose_nas.data import PoseDataset

    items = [(i, 1000 + i) for i in range(4)]
    for size in (64, 128):
        direct = default_collate([PoseDataset(source, size, seed=0)[it] for it in items])
        big = DeviceTargetDataset(PoseDataset(source, 128, seed=0))
        batch = default_collate([big[(size, *it)] for it in items])
        assert step_resolution(batch) == size and batch["image"].shape[-1] == 128
        moved = resize_batch(batch, 2.0, torch.channels_last)
        assert moved["image"].shape == direct["image"].shape and "people" not in moved
        assert moved["image"].is_contiguous(memory_format=torch.channels_last)
        for a, b in zip(moved["heatmaps"], direct["heatmaps"]):
            assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
        for a, b in zip(moved["masks"], direct["masks"]):
            assert torch.equal(a, b)
        assert torch.equal(moved["joints"], direct["joints"])
        diff = (moved["image"] - direct["image"]).abs().mean().item()
        assert diff < (1e-5 if size == 128 else 0.25), diff  # normalised pixels: a resize vs a direct warp


def test_trainer_steps_with_gpu_resize_channels_last(source, tmp_path) -> None:
    """Two supernet steps at drawn sizes 64 / 96 with device-side resize: the step size is the
    sampler's, weights and inputs are channels-last."""
    from litepose_nas.space import SearchSpace
    from litepose_nas.train import Trainer, default_config
    from litepose_nas.train.distributed import unwrap
    from reliability_helpers import TINY_SPACE_YAML

    (tmp_path / "tiny.yaml").write_text(TINY_SPACE_YAML)
    space = SearchSpace.from_yaml(tmp_path / "tiny.yaml")
    cfg = default_config("supernet", space=space.to_dict(), data=str(source.folder), resolutions=(64, 96), steps=3,
                         batch_size=2, num_workers=0, val_every=-1, num_random=1, gpu_resize=True)
    seen = []
    trainer = Trainer(cfg, tmp_path / "run", quiet=True, device="cpu", on_step=lambda s, st: seen.append(st))
    result = trainer.run()
    assert result.step == 3 and all(np.isfinite(h["loss"]) for h in result.history)
    assert [int(h["resolution"]) for h in result.history] == [trainer.sampler.resolution(s) for s in range(3)]
    assert trainer.amp_dtype is None and trainer.scaler is None  # CPU default: full precision
    convs = [m for m in unwrap(trainer.step_module).model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs
                         if m.weight.shape[-1] > 1 or m.weight.shape[1] > 1)


def test_cli_refuses_compile_on_supernet_and_fp16_on_cpu(source, tmp_path) -> None:
    from cli_helpers import assert_one_line_error
    from reliability_helpers import run_inproc

    run = tmp_path / "run"
    r = run_inproc("train-supernet", "--data", source.folder, "--out", run, "--resolutions", "64", "--compile")
    assert_one_line_error(r, 2, "--compile", "train-supernet")
    r = run_inproc("train-supernet", "--data", source.folder, "--out", run, "--resolutions", "64", "--amp", "fp16",
                   "--device", "cpu", "--steps", "1", "--batch-size", "2", "--workers", "0")
    assert_one_line_error(r, 2, "--amp fp16", "CUDA")
    assert not (run / "checkpoint.pt").exists()
