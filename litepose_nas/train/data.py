"""Training batches as a pure function of (seed, step): multi-resolution, sharded, resumable.

Step ``t`` of a run draws a global batch of ``batch_size x world`` images from the epoch's
permutation (``epoch = t // steps_per_epoch``, fixed by ``(seed, epoch)``) and one input size
for the whole step (fixed by ``(seed, t)``), as Once-for-All does; rank ``r`` takes the ``r``-th
contiguous slice of the global batch (the sharding of ``DistributedSampler``, drawn per step so
every rank sees the same resolution). Each image's augmentation comes from its own seed, so a run
resumed at step ``t`` sees exactly the batches an uninterrupted run would, with any number of
data-loader workers.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import DataError

# separate streams derived from the run seed, so adding a use of randomness never shifts another
STREAM_ORDER = 11
STREAM_RESOLUTION = 12
STREAM_ARCHS = 13


class MultiResolutionDataset(Dataset):
    """One :class:`~litepose_nas.data.PoseDataset` per input size, indexed by ``(size, index, aug_seed)``."""

    def __init__(self, datasets: dict[int, Dataset]) -> None:
        if not datasets:
            raise DataError("no training resolutions given")
        self.datasets = dict(datasets)
        sizes = {len(d) for d in self.datasets.values()}
        if len(sizes) != 1:
            raise DataError("the per-resolution datasets must hold the same images")
        self._len = sizes.pop()

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, item: tuple[int, int, int]) -> dict:
        size, index, aug_seed = item
        return self.datasets[int(size)][(int(index), int(aug_seed))]


def check_batch_fits(num_images: int, batch_size: int, world_size: int = 1, what: str = "the training split") -> None:
    """Raise :class:`DataError` when the split cannot fill one global batch (every step needs one)."""
    if num_images < batch_size * world_size:
        raise DataError(
            f"{what} has {num_images} images, fewer than one global batch "
            f"(--batch-size {batch_size} per process x {world_size} processes)"
        )


class StepBatchSampler(Sampler):
    """Yields this rank's batch of ``(size, index, aug_seed)`` for steps ``start_step, start_step + 1, ...``."""

    def __init__(self, num_images: int, batch_size: int, resolutions: Sequence[int], seed: int,
                 rank: int = 0, world_size: int = 1, start_step: int = 0, num_steps: int | None = None) -> None:
        self.num_images = int(num_images)
        self.batch_size = int(batch_size)
        self.world_size = int(world_size)
        self.global_batch = self.batch_size * self.world_size
        check_batch_fits(self.num_images, self.batch_size, self.world_size)
        self.resolutions = tuple(int(r) for r in resolutions)
        self.seed = int(seed)
        self.rank = int(rank)
        self.start_step = int(start_step)
        self.num_steps = num_steps
        self.steps_per_epoch = self.num_images // self.global_batch  # the tail of an epoch is dropped

    def __len__(self) -> int:
        if self.num_steps is None:
            raise TypeError("an endless StepBatchSampler has no length")
        return max(0, self.num_steps - self.start_step)

    def resolution(self, step: int) -> int:
        rng = np.random.default_rng([self.seed, STREAM_RESOLUTION, step])
        return self.resolutions[int(rng.integers(len(self.resolutions)))]

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, STREAM_ORDER, epoch])
        return rng.permutation(self.num_images), rng.integers(0, 2**62, size=self.num_images)

    def batch(self, step: int) -> list[tuple[int, int, int]]:
        epoch, pos = divmod(step, self.steps_per_epoch)
        order, seeds = self._epoch(epoch)
        start = pos * self.global_batch + self.rank * self.batch_size
        size = self.resolution(step)
        return [(size, int(order[i]), int(seeds[i])) for i in range(start, start + self.batch_size)]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        step = self.start_step
        cached_epoch, order, seeds = -1, None, None
        while self.num_steps is None or step < self.num_steps:
            epoch, pos = divmod(step, self.steps_per_epoch)
            if epoch != cached_epoch:
                order, seeds = self._epoch(epoch)
                cached_epoch = epoch
            start = pos * self.global_batch + self.rank * self.batch_size
            size = self.resolution(step)
            yield [(size, int(order[i]), int(seeds[i])) for i in range(start, start + self.batch_size)]
            step += 1


def _worker_init(_: int) -> None:
    # one process per worker on small machines: no nested thread pools
    import cv2

    cv2.setNumThreads(0)
    torch.set_num_threads(1)


def make_step_loader(dataset: Dataset, sampler: StepBatchSampler, num_workers: int, pin_memory: bool = False,
                     persistent_workers: bool = False) -> DataLoader:
    """The DataLoader over ``sampler``'s batches (workers, pinning and persistence only change speed,
    never content)."""
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=num_workers,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        prefetch_factor=2 if num_workers > 0 else None,
        pin_memory=pin_memory, persistent_workers=persistent_workers and num_workers > 0,
    )


def split_batch(batch: dict, chunks: int) -> list[dict]:
    """Split a collated batch along the batch dimension into ``chunks`` equal parts."""
    if chunks == 1:
        return [batch]

    def part(value, i: int):
        if isinstance(value, torch.Tensor):
            return value.chunk(chunks)[i]
        if isinstance(value, (list, tuple)):
            return type(value)(part(v, i) for v in value)
        return value

    return [{k: part(v, i) for k, v in batch.items()} for i in range(chunks)]


def to_device(batch: dict, device: torch.device, memory_format: torch.memory_format) -> dict:
    def move(value):
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            return value.contiguous(memory_format=memory_format) if value.dim() == 4 else value
        if isinstance(value, (list, tuple)):
            return type(value)(move(v) for v in value)
        return value

    return {k: move(v) for k, v in batch.items()}
