"""torchrun / DistributedDataParallel plumbing (no parallelism of our own).

The same command runs alone or under ``torchrun --nproc_per_node N [--nnodes M ...]``: torchrun
sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; we join the process group (NCCL on GPUs, gloo on
CPU), pin each process to its GPU, wrap the step module in ``DistributedDataParallel`` and shard
every global batch by rank (:class:`~litepose_nas.train.data.StepBatchSampler`). Rank 0 alone
writes logs, checkpoints and runs validation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = ""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str = "auto", timeout_s: float | None = None) -> DistInfo:
    """Join the process group when launched by torchrun with several processes; pick the device.

    ``device``: 'auto' (CUDA when present), 'cpu' or 'cuda'. ``timeout_s``: how long a collective
    waits for the slowest rank (default: torch's).
    """
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        from ..errors import InputError

        raise InputError("--device cuda: no CUDA device is available (allowed here: auto, cpu)")
    if not launched_by_torchrun():
        return DistInfo(device=torch.device("cuda" if use_cuda else "cpu"))
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        kwargs: dict = {"device_id": dev} if use_cuda else {}
        if timeout_s:
            from datetime import timedelta

            kwargs["timeout"] = timedelta(seconds=timeout_s)
        dist.init_process_group(backend=backend, **kwargs)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev, backend=backend)


def wrap(module: nn.Module, info: DistInfo, find_unused_parameters: bool) -> nn.Module:
    """``DistributedDataParallel(module)`` in a distributed run, ``module`` itself otherwise.

    Supernet steps leave some parameters unused (the kernel-transform maps when no sampled block
    uses a small kernel), hence ``find_unused_parameters``.
    """
    if not info.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    kwargs = {"device_ids": [info.local_rank]} if info.device.type == "cuda" else {}
    return DDP(module, find_unused_parameters=find_unused_parameters, **kwargs)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if hasattr(module, "module") and isinstance(module, nn.parallel.DistributedDataParallel) else module


def mean_across_ranks(values: dict[str, Tensor], info: DistInfo) -> dict[str, float]:
    """Average scalar tensors over the ranks (for logging); one collective for all of them."""
    if not values:
        return {}
    keys = sorted(values)
    stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys])
    if info.distributed:
        stacked = stacked.to(info.device)
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        stacked = stacked / info.world_size
    return dict(zip(keys, stacked.cpu().tolist()))


@torch.no_grad()
def average_buffers(model: nn.Module, info: DistInfo) -> None:
    """Average floating-point buffers (BN running statistics) over the ranks.

    Each rank's BN statistics follow its own shard of the batch; averaging them before a
    checkpoint gives every rank the same complete state (parameters already agree: DDP
    all-reduces their gradients).
    """
    if not info.distributed:
        return
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(info.world_size)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """Rank 0's value of ``flag`` on every rank (e.g. 'stop now')."""
    if not info.distributed:
        return flag
    t = torch.tensor([1 if flag else 0], device=info.device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def shutdown(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
