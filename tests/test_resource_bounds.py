"""Resource bounds: unreadable images in a dataset, people per image, absurd image sizes.

* The data loader survives a corrupt image: it is skipped with a warning (the next readable
  image takes its place, so batch shapes and determinism hold) and counted at the end of the pass;
  ``on_bad_image="fail"`` / ``LITEPOSE_NAS_ON_BAD_IMAGE=fail`` stops instead with one clear error.
* The decoder returns at most ``max_people`` people per image and refuses absurd image sizes.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import run_cli
from litepose_nas.data import PoseDataset, generate_synthetic, make_loader, open_dataset
from litepose_nas.data.dataset import BAD_IMAGE_KEY, BadImageCounter, BadImageWarning
from litepose_nas.data.sources import BadImageError
from litepose_nas.errors import DataError
from reliability_helpers import TINY_ARCH, assert_clean_failure, junk_bytes, write_json


@pytest.fixture(scope="module")
def clean_data(tmp_path_factory) -> Path:
    return Path(generate_synthetic(tmp_path_factory.mktemp("d") / "coco", 8, layout="coco", image_size=64,
                                   val_fraction=0.25, progress=False))


@pytest.fixture
def corrupt_data(clean_data, tmp_path) -> tuple[Path, int, Path]:
    """A copy with one train image corrupt: (root, its image id, its path)."""
    root = Path(shutil.copytree(clean_data, tmp_path / "coco"))
    src = open_dataset(root, "coco", "train")
    bad_id = src.image_ids[2]
    path = src.image_path(bad_id)
    junk_bytes(path)
    return root, bad_id, path


def _images(ds, items):
    return [ds[i]["image"] for i in items]


def test_corrupt_image_is_skipped_with_a_warning(corrupt_data) -> None:
    root, bad_id, path = corrupt_data
    ds = PoseDataset(open_dataset(root, "coco", "train"), input_size=64, seed=3)
    bad_index = ds.ids.index(bad_id)
    with pytest.warns(BadImageWarning, match=path.name):
        sample = ds[(bad_index, 11)]
    # replaced by the next readable image, with the same augmentation seed
    nxt = ds[(bad_index + 1, 11)]
    assert torch.equal(sample["image"], nxt["image"])
    assert int(sample["image_id"]) == ds.ids[bad_index + 1]
    assert int(sample[BAD_IMAGE_KEY]) == bad_id and int(nxt[BAD_IMAGE_KEY]) == -1
    # known bad from now on: no new warning, still counted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ds[(bad_index, 11)]
    assert int(again[BAD_IMAGE_KEY]) == bad_id and ds.bad_images == {bad_id}


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_counts_skipped_images(corrupt_data, workers: int) -> None:
    root, bad_id, _ = corrupt_data
    ds = PoseDataset(open_dataset(root, "coco", "train"), input_size=64, seed=3)
    loader = make_loader(ds, batch_size=2, shuffle=True, num_workers=workers, seed=5)
    with pytest.warns(BadImageWarning) as record:
        batches = list(loader)
    assert loader.bad_images.count == 1 and loader.bad_images.ids == {bad_id}
    summary = [str(r.message) for r in record if "unreadable image(s)" in str(r.message)]
    assert len(summary) == 1 and "skipped 1 unreadable image(s)" in summary[0]
    assert sum(len(b["image"]) for b in batches) == len(ds) - (len(ds) % 2)
    assert all(b["image"].shape[1:] == (3, 64, 64) for b in batches)


def test_skipping_is_deterministic_across_workers(corrupt_data) -> None:
    root, _, _ = corrupt_data
    ds = PoseDataset(open_dataset(root, "coco", "train"), input_size=64, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = [b["image"] for b in make_loader(ds, 2, shuffle=True, num_workers=0, seed=5)]
        b = [b["image"] for b in make_loader(ds, 2, shuffle=True, num_workers=2, seed=5)]
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_fail_policy(corrupt_data, monkeypatch) -> None:
    root, bad_id, path = corrupt_data
    src = open_dataset(root, "coco", "train")
    bad_index = src.image_ids.index(bad_id)
    ds = PoseDataset(src, input_size=64, on_bad_image="fail")
    with pytest.raises(BadImageError, match=path.name):
        ds[bad_index]
    monkeypatch.setenv("LITEPOSE_NAS_ON_BAD_IMAGE", "fail")
    with pytest.raises(BadImageError, match="cannot be decoded"):
        PoseDataset(src, input_size=64)[bad_index]
    monkeypatch.setenv("LITEPOSE_NAS_ON_BAD_IMAGE", "ignore")
    with pytest.raises(DataError, match="LITEPOSE_NAS_ON_BAD_IMAGE 'ignore' not allowed"):
        PoseDataset(src, input_size=64)
    with pytest.raises(DataError, match="on_bad_image 'maybe'"):
        PoseDataset(src, input_size=64, on_bad_image="maybe")


def test_missing_and_oversized_images_are_bad_images(corrupt_data) -> None:
    root, _, _ = corrupt_data
    src = open_dataset(root, "coco", "train")
    missing = src.image_path(src.image_ids[0])
    missing.unlink()
    with pytest.raises(BadImageError, match="not found"):
        src.load_image(src.image_ids[0])
    # a PNG header claiming 10^10 pixels: refused by OpenCV's limit, reported as a bad image
    huge = src.image_path(src.image_ids[1])
    huge.write_bytes(_png_header(100_000, 100_000))
    with pytest.raises(BadImageError, match="cannot be decoded"):
        src.load_image(src.image_ids[1])


def test_no_readable_image_at_all(clean_data, tmp_path) -> None:
    root = Path(shutil.copytree(clean_data, tmp_path / "coco"))
    for p in (root / "images" / "train2017").glob("*.jpg"):
        junk_bytes(p)
    ds = PoseDataset(open_dataset(root, "coco", "train"), input_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="no readable image"):
            ds[0]


def test_counter_reads_batches() -> None:
    c = BadImageCounter()
    c.update({BAD_IMAGE_KEY: torch.tensor([-1, 7, 7, -1])})
    c.update({BAD_IMAGE_KEY: torch.tensor([3])})
    c.update({"image": torch.zeros(1)})
    assert c.count == 2 and "skipped 2 unreadable image(s)" in c.summary()
    assert BadImageCounter().summary() is None


def _train_args(root: Path, out: Path, workers: int) -> list:
    arch = write_json(out.parent / "arch.json", TINY_ARCH)
    return ["train", "--arch", arch, "--data", root, "--steps", "2", "--batch-size", "4", "--resolutions", "64",
            "--workers", str(workers), "--val-every", "-1", "--out", out, "-q", "--device", "cpu", "--threads", "1"]


def test_training_survives_a_corrupt_image(corrupt_data, tmp_path) -> None:
    """``litepose-nas train`` on a split with a corrupt image finishes and says which image it skipped."""
    root, _, path = corrupt_data
    result = run_cli(*_train_args(root, tmp_path / "run", 0), env={"PYTHONWARNINGS": "default"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "skipping image" in result.stderr and path.name in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_training_fails_cleanly_when_asked(corrupt_data, tmp_path, workers: int) -> None:
    root, _, path = corrupt_data
    result = run_cli(*_train_args(root, tmp_path / "run", workers), env={"LITEPOSE_NAS_ON_BAD_IMAGE": "fail"},
                     cwd=tmp_path)
    assert_clean_failure(result, 2, path.name, "cannot be decoded")


# ====================================================================== decoder bounds
def test_decoder_caps_people_per_image() -> None:
    from litepose_nas.decode import group

    joints, size = 17, 96
    heat = np.zeros((joints, size, size), np.float32)
    tags = np.zeros((joints, size, size), np.float32)
    # 100 well separated people, each with its own tag value
    ys, xs = np.meshgrid(np.arange(4, size, 9)[:10], np.arange(4, size, 9)[:10], indexing="ij")
    for k, (y, x) in enumerate(zip(ys.ravel(), xs.ravel())):
        heat[:, y, x] = 0.5 + 0.004 * k
        tags[:, y, x] = 3.0 * k
    people, scores = group(heat, tags, max_people=30)
    assert len(people) == 30 and len(scores) == 30
    people, _ = group(heat, tags, max_people=5)
    assert len(people) == 5
    with pytest.raises(ValueError, match="max_people"):
        group(heat, tags, max_people=0)


def test_decoder_refuses_absurd_image_sizes() -> None:
    from litepose_nas.decode import resize_info

    with pytest.raises(ValueError, match="image"):
        resize_info(2, 60_000, 256)
    with pytest.raises(ValueError, match="image"):
        resize_info(0, 64, 256)


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
