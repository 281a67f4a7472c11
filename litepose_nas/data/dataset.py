"""The torch Dataset of training samples and its deterministic DataLoader."""
from __future__ import annotations

import os
import warnings
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import DataError
from .recipe import Recipe, get_recipe
from .sources import BadImageError, PoseSource
from .targets import ae_joints, heatmaps
from .transforms import AugmentConfig, crop_matrix, sample_params, scale_matrix, transform_joints, warp

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# what a dataset does with an image it cannot read: "skip" (warn, use the next readable image) or "fail"
BAD_IMAGE_POLICIES = ("skip", "fail")
BAD_IMAGE_ENV = "LITEPOSE_NAS_ON_BAD_IMAGE"
# per-sample key: id of the unreadable image this sample replaces, -1 if none (see BadImageCounter)
BAD_IMAGE_KEY = "bad_image"


class BadImageWarning(UserWarning):
    """An unreadable image was skipped."""


def bad_image_policy(policy: str | None = None) -> str:
    """``policy``, else ``$LITEPOSE_NAS_ON_BAD_IMAGE``, else ``"skip"``; checked."""
    value = policy if policy is not None else os.environ.get(BAD_IMAGE_ENV, "skip")
    if value not in BAD_IMAGE_POLICIES:
        origin = "on_bad_image" if policy is not None else f"${BAD_IMAGE_ENV}"
        raise DataError(f"{origin} {value!r} not allowed (allowed: {', '.join(BAD_IMAGE_POLICIES)})")
    return value


def normalize(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 RGB -> [3, H, W] float normalised with ImageNet mean and std."""
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return t.sub_(mean).div_(std)


class PoseDataset(Dataset):
    """Augmented samples of a :class:`PoseSource` with heatmap, mask and tag targets.

    ``ds[i]`` uses a transform drawn from ``(seed, i)``; ``ds[(i, s)]`` one drawn from ``s``
    (what :func:`make_loader` passes, so every epoch differs yet a run repeats for a seed).
    With ``train=False`` the whole image is letterboxed into the input without randomness.
    ``recipe`` (a :class:`~.recipe.Recipe` or a name of ``RECIPES``; default ``"default"``) decides the
    augmentation, targets, masks and which training images are kept; ``augment`` overrides its
    augmentation.

    ``on_bad_image``: an image that is missing or cannot be decoded either stops the run with a
    :class:`BadImageError` (``"fail"``) or is replaced by the next readable image of the split with
    a :class:`BadImageWarning` (``"skip"``, the default; ``$LITEPOSE_NAS_ON_BAD_IMAGE`` sets the
    default). Replacement keeps batch shapes and determinism (it depends only on the index); the
    sample's ``bad_image`` entry holds the skipped image id (-1 if none), which
    :class:`BadImageCounter` sums up across data-loader workers.

    ``device_targets = True`` (``--gpu-resize``): the heatmaps and tag indices are left to the
    device (:mod:`litepose_nas.train.device_targets`); the sample carries ``people`` instead.
    """

    device_targets = False

    def __init__(self, source: PoseSource, input_size: int = 256, output_sizes: Sequence[int] | None = None,
                 train: bool = True, max_people: int = 30, sigma: float = 2.0, seed: int = 0,
                 augment: AugmentConfig | None = None, on_bad_image: str | None = None,
                 recipe: Recipe | str | None = None) -> None:
        if input_size <= 0 or input_size % 4:
            raise DataError(f"input size {input_size} must be a positive multiple of 4")
        self.source = source
        self.input_size = int(input_size)
        self.output_sizes = tuple(int(s) for s in (output_sizes or (input_size // 4, input_size // 2)))
        if len(self.output_sizes) not in (1, 2):
            raise DataError(f"output_sizes must name one or two map sizes (one per network output: heatmaps + "
                            f"tags, then heatmaps), got {self.output_sizes}")
        self.train = train
        self.max_people = int(max_people)
        self.sigma = float(sigma)
        self.seed = int(seed)
        self.recipe = get_recipe(recipe)
        self.augment = augment or self.recipe.augment
        self.ids = source.training_ids(self.recipe.image_filter) if train else source.image_ids
        self.flip_index = np.asarray(source.spec.flip_index)
        self.on_bad_image = bad_image_policy(on_bad_image)
        self.bad_images: set[int] = set()  # seen by this process (workers keep their own)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_joints(self) -> int:
        return self.source.num_joints

    def transform(self, index: int, aug_seed: int | None = None) -> tuple[np.ndarray, bool]:
        """(image -> input 2x3 affine, mirrored?) of sample ``index``, as ``ds[index]`` or
        ``ds[(index, aug_seed)]`` draws it; joints of a mirrored sample are permuted by the flip index."""
        h, w = self.source.image_size(self.ids[index])
        return self._params(index, aug_seed, h, w)

    def _params(self, index: int, aug_seed: int | None, h: int, w: int) -> tuple[np.ndarray, bool]:
        if not self.train:
            return crop_matrix(h, w, self.input_size, scale_type="long"), False
        seed = [self.seed, index] if aug_seed is None else [aug_seed]
        p = sample_params(np.random.default_rng(seed), self.augment, self.input_size, image_hw=(h, w))
        return crop_matrix(h, w, self.input_size, **p), p["flip"]

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        index, aug_seed = (item if isinstance(item, tuple) else (int(item), None))
        if self.on_bad_image == "fail":
            return {**self._sample(index, aug_seed), BAD_IMAGE_KEY: torch.tensor(-1, dtype=torch.int64)}
        skipped = -1
        n = len(self.ids)
        for offset in range(n):
            j = (index + offset) % n
            if self.ids[j] in self.bad_images:
                continue
            try:
                sample = self._sample(j, aug_seed)
            except BadImageError as exc:
                self.bad_images.add(self.ids[j])
                warnings.warn(f"skipping {exc}", BadImageWarning, stacklevel=2)
                skipped = self.ids[j] if skipped < 0 else skipped
                continue
            if skipped < 0 and offset:
                skipped = self.ids[index]  # known bad in this process: still count it
            return {**sample, BAD_IMAGE_KEY: torch.tensor(skipped, dtype=torch.int64)}
        raise DataError(f"no readable image in {self.source.image_dir} ({len(self.bad_images)} of {n} images "
                        f"listed in {self.source.annotation_file.name} are missing or corrupt)")

    def _sample(self, index: int, aug_seed: int | None) -> dict:
        image_id = self.ids[index]
        img = self.source.load_image(image_id)
        h, w = img.shape[:2]
        mat, flipped = self._params(index, aug_seed, h, w)
        joints = self.source.people(image_id)
        ignore = self.source.ignore_mask(image_id) if self._needs_mask(image_id) else None
        kind = self.recipe.targets
        if ignore is not None and ignore.shape != (h, w):
            raise BadImageError(f"image {self.source.image_path(image_id)} is {w}x{h} but the annotation "
                            f"file records {ignore.shape[1]}x{ignore.shape[0]}")

        s = self.input_size
        image = warp(img, mat, s)
        joints_in = transform_joints(mat, joints, self.flip_index if flipped else None)
        hms, masks = [], []
        for size in self.output_sizes:
            m = scale_matrix(mat, size / s)
            jt = joints_in.copy()
            jt[..., :2] *= size / s
            hms.append(torch.zeros(0) if self.device_targets else torch.from_numpy(heatmaps(jt, size, self.sigma, kind)))
            masks.append(torch.from_numpy(self._mask(ignore, (h, w), m, size)))
        if self.device_targets:
            from ..train.device_targets import people_tensor

            return {"image": normalize(image), "heatmaps": hms, "masks": masks,
                    "people": people_tensor(joints_in, self.max_people),
                    "image_id": torch.tensor(image_id, dtype=torch.int64)}
        jt4 = joints_in.copy()
        jt4[..., :2] *= self.output_sizes[0] / s
        return {
            "image": normalize(image),
            "heatmaps": hms,
            "masks": masks,
            "joints": torch.from_numpy(ae_joints(jt4, self.output_sizes[0], self.max_people, kind)),
            "image_id": torch.tensor(image_id, dtype=torch.int64),
        }

    def _needs_mask(self, image_id: int) -> bool:
        if self.source.dataset == "crowdpose" and not self.recipe.mask_unlabelled_crowdpose:
            return False
        return bool(self.source.ignored_annotations(image_id))

    def _mask(self, ignore: np.ndarray | None, hw: tuple[int, int], mat: np.ndarray, size: int) -> np.ndarray:
        """The loss mask of one map (1 = supervised) through the map's affine ``mat``."""
        if self.recipe.mask_padding:
            # the original: warp the valid region with a 0 border, so padding is not supervised either
            valid = np.ones(hw, np.float32) if ignore is None else (1 - ignore).astype(np.float32)
            return (warp(valid, mat, size, border_value=0.0) > 0.5).astype(np.float32)
        if ignore is None:
            return np.ones((size, size), np.float32)
        # outside the image is background (nothing is there), so only ignored regions get 0
        return (warp(ignore.astype(np.float32), mat, size, border_value=0.0) < 0.5).astype(np.float32)


class BadImageCounter:
    """Distinct unreadable images met by a loader, from the ``bad_image`` entry of its batches
    (works with any number of workers, each of which warns on its own)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()

    def update(self, batch: dict) -> None:
        value = batch.get(BAD_IMAGE_KEY)
        if value is not None:
            self.ids.update(int(v) for v in torch.as_tensor(value).flatten().tolist() if v >= 0)

    @property
    def count(self) -> int:
        return len(self.ids)

    def summary(self, where: str = "the dataset") -> str | None:
        if not self.ids:
            return None
        shown = ", ".join(map(str, sorted(self.ids)[:5])) + (", ..." if len(self.ids) > 5 else "")
        return (f"skipped {len(self.ids)} unreadable image(s) of {where} (ids {shown}); "
                f"set {BAD_IMAGE_ENV}=fail to stop on them instead")


class CountingLoader:
    """A DataLoader that counts skipped images and warns once with the total when a pass ends."""

    def __init__(self, loader: DataLoader, where: str) -> None:
        self.loader = loader
        self.where = where
        self.bad_images = BadImageCounter()

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[dict]:
        for batch in self.loader:
            self.bad_images.update(batch)
            yield batch
        message = self.bad_images.summary(self.where)
        if message:
            warnings.warn(message, BadImageWarning, stacklevel=2)


class SeededSampler(Sampler):
    """Yields ``(index, augmentation seed)``; epoch ``e`` is fixed by ``(seed, e)``."""

    def __init__(self, n: int, shuffle: bool, seed: int) -> None:
        self.n, self.shuffle, self.seed = n, shuffle, int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        seeds = rng.integers(0, 2**62, size=self.n)
        return iter([(int(i), int(s)) for i, s in zip(order, seeds)])


def _worker_init(_: int) -> None:
    # each worker is one process on a small machine: no nested thread pools
    import cv2

    cv2.setNumThreads(0)
    torch.set_num_threads(1)


def make_loader(ds: PoseDataset, batch_size: int, shuffle: bool = True, num_workers: int = 0, seed: int = 0,
                drop_last: bool | None = None) -> CountingLoader:
    """A DataLoader whose order and augmentation depend only on ``seed`` (and the epoch).

    It counts the unreadable images its dataset skipped (``loader.bad_images.count``) and warns
    with the total at the end of each pass.
    """
    if batch_size <= 0:
        raise DataError(f"batch size must be positive, got {batch_size}")
    sampler = SeededSampler(len(ds), shuffle, seed)
    loader = DataLoader(
        ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        drop_last=shuffle and len(ds) > batch_size if drop_last is None else drop_last,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
    )
    return CountingLoader(loader, f"{ds.source.image_dir}")
