"""Distributed ``predictor collect``: 2 gloo processes give the single-process table; kills resume.

The ranks run :func:`collect_evals` with a deterministic stand-in for the exact predictor (what is
tested is the sharing, the part files and the merge); one test runs the real command under
``torchrun`` on a tiny random supernet.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

from litepose_nas.predictors.collect import collect_evals, stratified_sample
from litepose_nas.predictors.shards import part_files, read_rows
from litepose_nas.space import SearchSpace

# small enough that each rank's stratified sample takes a fraction of a second
SPACE = SearchSpace.create("small", [64, 96, 128], [8, 16], [
    {"stride": 2, "widths": [8, 16], "depths": [1, 2], "kernels": [3], "expansions": [1]},
    {"stride": 2, "widths": [8, 16], "depths": [1], "kernels": [3], "expansions": [1]},
    {"stride": 2, "widths": [16, 24], "depths": [1], "kernels": [3], "expansions": [1]},
    {"stride": 1, "widths": [16, 24], "depths": [1], "kernels": [3], "expansions": [1]},
], [[8, 16], [8], [8]], stem_mid_channels=8)
N = 9


class LoggedFake:
    """AP = a fixed function of the architecture; every call is logged to ``log`` (one line per call);
    ``die_after`` calls into the run, the process dies (SIGKILL-like: no cleanup) after leaving a
    half-written row in its part file."""

    def __init__(self, log: Path, die_after: int = 0, part: Path | None = None) -> None:
        self.space, self.log, self.die_after, self.part, self.calls = SPACE, log, die_after, part, 0

    def evaluate_arch(self, arch):
        if self.die_after and self.calls == self.die_after:
            with open(self.part, "a") as f:
                f.write('5,small,0.1,0.2,0.3,0.1,0.0,"{""img_s')
            os._exit(9)
        self.calls += 1
        with open(self.log, "a") as f:
            f.write(arch.to_json() + "\n")
        enc = SPACE.encode(arch).astype(float)
        ap = float(np.round(0.3 + 0.01 * enc.sum() / len(enc), 6))
        return {"metrics": {"AP": ap, "AP50": ap + 0.2, "AP75": ap - 0.1}, "seconds": 0.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, out: str, log_dir: str, die_rank: int, die_after: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    import torch

    torch.set_num_threads(1)
    from litepose_nas.predictors.shards import part_path

    fake = LoggedFake(Path(log_dir) / f"calls{rank}.log", die_after if rank == die_rank else 0, part_path(out, rank))
    collect_evals(None, None, "coco", N, out, SPACE, predictor=fake, progress=False)


def _spawn(out: Path, log_dir: Path, die_rank: int = -1, die_after: int = 0) -> bool:
    """Run 2 ranks; True when they all finished, False when one died (the others are then stopped)."""
    import torch.multiprocessing as mp

    try:
        # fork: the ranks start in a moment (spawn would import torch again in each)
        mp.start_processes(_rank_main, args=(2, _free_port(), str(out), str(log_dir), die_rank, die_after),
                           nprocs=2, start_method="fork")
        return True
    except mp.ProcessExitedException:
        return False


def _calls(log_dir: Path) -> list[str]:
    return [line for p in sorted(log_dir.glob("calls*.log")) for line in p.read_text().splitlines()]


def _table(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_rows(path)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[dict]:
    d = tmp_path_factory.mktemp("single")
    out = d / "evals.csv"
    collect_evals(None, None, "coco", N, out, SPACE, predictor=LoggedFake(d / "calls.log"), progress=False)
    rows = _table(out)
    assert [r["arch"] for r in rows] == [a.to_json() for a in stratified_sample(SPACE, N, 0)]
    return rows


def test_two_gloo_ranks_merge_to_the_single_process_table(reference, tmp_path) -> None:
    out = tmp_path / "evals.csv"
    assert _spawn(out, tmp_path)
    assert _table(out) == reference  # same rows, same order, no duplicate, none missing
    calls = _calls(tmp_path)
    assert sorted(calls) == sorted(r["arch"] for r in reference)  # each arch evaluated once, by one rank
    assert len((tmp_path / "calls0.log").read_text().splitlines()) == (N + 1) // 2
    assert part_files(out) == [] and out.read_text().endswith("\n")
    # a rerun has nothing to do and leaves the table as it is
    before = out.read_text()
    assert _spawn(out, tmp_path)
    assert out.read_text() == before and len(_calls(tmp_path)) == N


def test_killed_rank_resumes_with_two_ranks_and_with_one(reference, tmp_path) -> None:
    out = tmp_path / "evals.csv"
    assert not _spawn(out, tmp_path, die_rank=1, die_after=2)  # rank 1 dies mid-row at its 3rd arch
    parts = part_files(out)
    assert parts and not out.exists()
    measured = {r["arch"] for p in parts for r in read_rows(p)}
    assert len(measured) >= 2

    # resume on 2 ranks: only the missing architectures are evaluated, the table is the single-process one
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    assert _spawn(out, resumed)
    assert _table(out) == reference and part_files(out) == []
    again = _calls(resumed)
    assert not measured & set(again) and len(again) == N - len(measured)

    # the same killed state (its parts were merged away above: rebuilt) finished by one process
    one = tmp_path / "one"
    one.mkdir()
    out1 = one / "evals.csv"
    rows = [r for r in reference if r["arch"] in measured]
    from litepose_nas.predictors.data import append_row
    from litepose_nas.predictors.shards import part_path

    for r in rows:
        append_row(part_path(out1, int(r["index"]) % 2), {**r, "seconds": "0.00"})
    with open(part_path(out1, 1), "a") as f:
        f.write('3,small,0.1,0.2,0.3,0.1,0.0,"{""img_s')
    fake = LoggedFake(one / "calls.log")
    s = collect_evals(None, None, "coco", N, out1, SPACE, predictor=fake, progress=False)
    assert _table(out1) == reference and part_files(out1) == []
    assert fake.calls == N - len(measured) and s["done"] == N


def _cli_rank(args: list) -> None:
    import torch

    from reliability_helpers import run_inproc

    torch.set_num_threads(1)
    r = run_inproc(*args)
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_predictor_collect_cli_under_torchrun(tmp_path) -> None:
    """The real command (tiny random supernet, 2 val images) under torchrun's launcher (its elastic
    agent, workers forked rather than fresh interpreters, for speed) equals a single process."""
    import uuid

    import torch
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from litepose_nas.checkpoints import save_checkpoint
    from litepose_nas.data import generate_synthetic
    from litepose_nas.supernet import SuperLitePose
    from reliability_helpers import TINY_SPACE_YAML, run_inproc

    # two kernel sizes: a supernet checkpoint (with kernel-transform maps), not a static network's
    (tmp_path / "tiny.yaml").write_text(TINY_SPACE_YAML.replace("kernels: [3]", "kernels: [3, 5]", 1))
    space = SearchSpace.from_yaml(tmp_path / "tiny.yaml")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "supernet.pt", SuperLitePose(space, 17), space=space.to_dict())
    generate_synthetic(tmp_path / "coco", 6, layout="coco", image_size=64, val_fraction=0.34, progress=False)
    args = [str(a) for a in ("predictor", "collect", "--supernet", tmp_path / "supernet.pt", "--data",
                             tmp_path / "coco", "--archs", "4", "--space", tmp_path / "tiny.yaml", "--calib-batches",
                             "1", "--batch-size", "2", "--val-images", "2", "-q")]
    torch.set_num_threads(1)
    r = run_inproc(*args, "--out", tmp_path / "single.csv")
    assert r.returncode == 0, r.stderr
    cfg = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=2, run_id=str(uuid.uuid4()), rdzv_backend="c10d",
                       rdzv_endpoint=f"127.0.0.1:{_free_port()}", start_method="fork", max_restarts=0,
                       monitor_interval=0.1)
    elastic_launch(cfg, _cli_rank)([*args, "--out", str(tmp_path / "dist.csv")])
    assert _table(tmp_path / "dist.csv") == _table(tmp_path / "single.csv")
    assert len(_table(tmp_path / "dist.csv")) == 4 and part_files(tmp_path / "dist.csv") == []


def test_a_table_without_arch_column_is_a_one_line_error(tmp_path) -> None:
    from litepose_nas.errors import DataError

    out = tmp_path / "evals.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="evals.csv: missing column 'arch'"):
        collect_evals(None, None, "coco", 2, out, SPACE, predictor=LoggedFake(tmp_path / "c.log"), progress=False)
    assert out.read_text() == "a,b\n1,2\n"
