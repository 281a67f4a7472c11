"""The processes of one ``predictor collect``: alone, or the ranks of a ``torchrun`` job.

Alone, rows go straight into ``evals.csv`` (or, when a killed distributed run left part files,
into a part file merged with those at the end). Under ``torchrun --nproc_per_node N [--nnodes M ...]`` (env:// rendezvous, gloo on CPUs,
NCCL with ``--device cuda``) rank ``r`` evaluates entries ``i % N == r`` of the stratified list into
its part file; what is already done is exchanged with collectives, and the rows themselves travel
to rank 0 with ``gather_object``, so the ranks need no shared filesystem (each rank's part file
stays where it ran, and resuming with the same node layout finds it again).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypeVar

from ..train.distributed import DistInfo
from .shards import merge_rows, part_files, part_path, read_rows, remove_parts

T = TypeVar("T")

# Ranks wait for the slowest one at the merge; one evaluation can take many minutes on a big val set.
COLLECT_TIMEOUT_S = 24 * 3600


@dataclass
class CollectGroup:
    """This process's place in the collection and the files it writes."""

    out: Path
    device: str
    info: DistInfo = field(default_factory=DistInfo)
    _new_total: int | None = field(default=None, repr=False)
    _parts_mode: bool | None = field(default=None, repr=False)

    @classmethod
    def join(cls, out: Path, device: str) -> "CollectGroup":
        """Join the torchrun process group if there is one; ``device`` 'cpu' (gloo) or 'cuda...' (NCCL,
        one GPU per local rank)."""
        from ..train.distributed import init_distributed, launched_by_torchrun

        if not launched_by_torchrun():
            return cls(out, device)
        info = init_distributed("cuda" if str(device).startswith("cuda") else "cpu", timeout_s=COLLECT_TIMEOUT_S)
        return cls(out, str(info.device), info)

    # ------------------------------------------------------------------ shares and files
    rank = property(lambda self: self.info.rank)
    world_size = property(lambda self: self.info.world_size)
    distributed = property(lambda self: self.info.distributed)
    is_main = property(lambda self: self.info.is_main)

    @property
    def uses_parts(self) -> bool:
        """Rows go to a part file: under torchrun, or alone when a killed distributed run left parts
        (merged at the end so that the table keeps the stratified order a single run writes)."""
        if self._parts_mode is None:
            self._parts_mode = self.distributed or bool(part_files(self.out))
        return self._parts_mode

    @property
    def write_path(self) -> Path:
        return part_path(self.out, self.rank) if self.uses_parts else self.out

    @property
    def progress_label(self) -> str:
        return f"collect (rank 0 of {self.world_size})" if self.distributed else "collect"

    def share(self, items: Sequence[T]) -> list[tuple[int, T]]:
        """``(index, item)`` of this rank's share: every ``world_size``-th item from ``rank``."""
        return [(i, a) for i, a in enumerate(items) if i % self.world_size == self.rank]

    def done_archs(self) -> set[str]:
        """Architectures (JSON) already measured anywhere: ``evals.csv`` (read by rank 0) and every
        part file any rank can see."""
        from .data import trim_partial_row

        trim_partial_row(self.write_path)  # appending after a row cut by the kill must stay valid CSV
        local = {r["arch"] for p in part_files(self.out) for r in read_rows(p)}
        if self.is_main:
            trim_partial_row(self.out)
            local |= {r["arch"] for r in read_rows(self.out)}
        if not self.distributed:
            return local
        everyone: list[set[str] | None] = [None] * self.world_size
        self._dist().all_gather_object(everyone, local)
        return set().union(*everyone)

    def finish(self) -> None:
        """Bring every visible part's rows to rank 0, which merges them into ``evals.csv``; the parts
        are removed once the table is written."""
        if not self.uses_parts:
            return
        mine = part_files(self.out) if self.is_main else [self.write_path]
        rows = [r for p in mine for r in read_rows(p)]
        if self.distributed:
            dist = self._dist()
            gathered: list = [None] * self.world_size if self.is_main else []
            dist.gather_object(rows, gathered if self.is_main else None, dst=0)
            rows = [r for part in gathered for r in part] if self.is_main else []
        self._new_total = merge_rows(self.out, rows) if self.is_main else 0
        if self.distributed:
            self._dist().barrier()  # the merged table is on disk before any part file goes
        remove_parts(mine)

    def count_new(self, local_new: int) -> int:
        """Rows evaluated by this run: the merged count on rank 0 of a distributed run, else ``local_new``."""
        return self._new_total if self._new_total is not None and self.is_main else local_new

    def close(self) -> None:
        from ..train.distributed import shutdown

        shutdown(self.info)

    @staticmethod
    def _dist():
        import torch.distributed as dist

        return dist
