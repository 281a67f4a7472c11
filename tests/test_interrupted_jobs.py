"""Interrupted long jobs: SIGKILL at a random point, then resume; nothing finished is lost or repeated.

Each job runs as a real process, is killed with SIGKILL (no handler runs) at a random moment after
it has finished some work, and is then resumed:

* ``train-supernet``: the resumed run's final weights and per-step losses equal an uninterrupted
  run's (training is deterministic on the CPU), every step is logged exactly once, and the
  checkpoint is readable at every moment (atomic replace);
* ``profile``: every layer timed before the kill keeps its timing in the final table, every layer of
  the space is there exactly once, and no half-written table or temporary file is left;
* ``search --algo optuna`` (its study in ``OUT/optuna.db``): the trials finished before the kill
  are kept as they were, the study ends with exactly the requested number of complete trials;
* ``predictor collect``: the rows written before the kill stay as they were, every architecture
  is evaluated exactly once, and the table equals an uninterrupted run's (evaluation is
  deterministic).

The random kill point is drawn from ``$RELIABILITY_SEED`` (printed on failure) to replay a failure.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from cli_helpers import run_cli
from reliability_helpers import TINY_SPACE_YAML, temp_leftovers

SEED = int(os.environ.get("RELIABILITY_SEED", random.SystemRandom().randrange(10**6)))
RNG = random.Random(SEED)


def kill_at_random_point(cmd: list[str], ready: Callable[[], bool], max_delay: float, cwd: Path,
                         during: Callable[[], None] | None = None, timeout: float = 240) -> bool:
    """Start ``cmd``; once ``ready()`` holds, wait a random time in [0, max_delay) and SIGKILL it.

    ``during()`` is called while waiting (to check files mid-run). Returns True if the process was
    killed, False if it finished first.
    """
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                raise AssertionError(f"job ended before it was ready (status {proc.returncode}): "
                                     f"{proc.stderr.read().decode()[-2000:]}")
            if during:
                during()
            assert time.monotonic() < deadline, "job never got ready"
            time.sleep(0.02)
        stop = time.monotonic() + RNG.uniform(0, max_delay)
        while time.monotonic() < stop and proc.poll() is None:
            if during:
                during()
            time.sleep(0.01)
        if proc.poll() is not None:
            return False
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return True
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()


def kill_until_landed(start_over: Callable[[], None], cmd: list[str], ready: Callable[[], bool], max_delay: float,
                      cwd: Path, landed: Callable[[], bool] = lambda: True, attempts: int = 3) -> None:
    """Kill ``cmd`` mid-job, retrying from scratch with shorter delays (the last one kills as soon
    as ``ready()`` holds) until a kill lands where ``landed()`` says the job was unfinished."""
    for attempt in range(attempts):
        start_over()
        delay = max_delay / (attempt + 1) if attempt < attempts - 1 else 0.0
        if kill_at_random_point(cmd, ready, delay, cwd) and landed():
            return
    raise AssertionError(f"the kill never landed mid-job in {attempts} attempts (seed {SEED})")


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "litepose_nas.cli", *map(str, args)]


# ====================================================================== supernet training
@pytest.fixture(scope="module")
def train_data(tmp_path_factory) -> Path:
    from litepose_nas.data import generate_synthetic

    root = tmp_path_factory.mktemp("train")
    (root / "tiny.yaml").write_text(TINY_SPACE_YAML)
    generate_synthetic(root / "coco", 10, layout="coco", image_size=64, val_fraction=0.2, progress=False)
    return root


STEPS = 10


def _train_args(root: Path, out: Path) -> list:
    return ["train-supernet", "--space", root / "tiny.yaml", "--data", root / "coco", "--steps", STEPS,
            "--batch-size", "2", "--resolutions", "64", "--workers", "0", "--val-every", "-1",
            "--checkpoint-every", "1", "--log-every", "1", "--out", out, "--device", "cpu", "--threads", "1", "-q",
            "--num-random", "1"]


def _losses(run: Path) -> list[tuple[int, dict]]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        # timing fields differ between runs; every loss must match
        out.append((rec["step"], {k: v for k, v in rec.items() if k not in ("images_per_s", "seconds", "time")}))
    return out


@pytest.fixture(scope="module")
def reference_run(train_data) -> Path:
    out = train_data / "reference"
    r = run_cli(*_train_args(train_data, out), cwd=train_data)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.slow
def test_supernet_training_resumes_exactly(train_data, reference_run, tmp_path) -> None:
    import torch

    from litepose_nas.checkpoints import read_checkpoint

    run = tmp_path / "run"
    ckpt = run / "checkpoint.pt"
    reads = {"n": 0}

    def checkpoint_always_readable() -> None:
        if ckpt.exists():
            state = read_checkpoint(ckpt)  # raises if a reader ever saw a half-written file
            assert 1 <= state["step"] <= STEPS
            reads["n"] += 1

    killed = False
    for attempt in range(3):  # the kill must land before the end; retry with less delay if it did not
        shutil.rmtree(run, ignore_errors=True)
        killed = kill_at_random_point(_cli(*_train_args(train_data, run)), ckpt.exists, 1.5 / (attempt + 1),
                                      tmp_path, during=checkpoint_always_readable)
        if killed:
            break
    assert killed, f"the job always finished before the kill (seed {SEED})"
    assert reads["n"] > 0
    step_at_kill = read_checkpoint(ckpt)["step"]

    r = run_cli(*_train_args(train_data, run), "--resume", cwd=tmp_path)
    assert r.returncode == 0, (SEED, r.stderr)

    ours, ref = _losses(run), _losses(reference_run)
    assert [s for s, _ in ours] == list(range(1, STEPS + 1)), f"steps lost or repeated (seed {SEED})"
    assert ours == ref, f"resumed losses differ from an uninterrupted run (seed {SEED}, killed after step {step_at_kill})"
    a = torch.load(run / "supernet.pt", weights_only=True)
    b = torch.load(reference_run / "supernet.pt", weights_only=True)
    sa = a.get("state_dict", a)
    sb = b.get("state_dict", b)
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), f"final weights differ (seed {SEED})"
    assert temp_leftovers(run) == []


@pytest.mark.slow
def test_killed_before_first_checkpoint_starts_again(train_data, tmp_path) -> None:
    """A run killed before its first checkpoint has nothing to resume: --resume says so, a rerun works."""
    run = tmp_path / "run"
    args = _train_args(train_data, run)
    args[args.index("--checkpoint-every") + 1] = str(STEPS)
    kill_until_landed(lambda: shutil.rmtree(run, ignore_errors=True), _cli(*args),
                      lambda: (run / "config.json").exists(), 0.05, tmp_path,
                      landed=lambda: not (run / "checkpoint.pt").exists())
    r = run_cli(*args, "--resume", cwd=tmp_path)
    assert r.returncode == 2 and "not found" in r.stderr
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [s for s, _ in _losses(run)] == list(range(1, STEPS + 1))


# ====================================================================== profiling
def _profile_args(space: Path, out: Path) -> list:
    return ["profile", "--space", space, "--device-name", "test", "--threads", "1", "--calibration-nets", "3",
            "--no-contention-check", "--no-speed-guard", "--passes", "1", "--out", out, "-q"]


def _complete_records(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def test_profiling_resumes_without_losing_rows(tmp_path) -> None:
    from litepose_nas.latency.layers import enumerate_layers
    from litepose_nas.latency.table import LatencyTable
    from litepose_nas.space import SearchSpace

    space_path = tmp_path / "tiny.yaml"
    space_path.write_text(TINY_SPACE_YAML)
    out = tmp_path / "tables" / "dev.csv"
    partial = out.with_name("dev.partial.jsonl")

    def some_layers_done() -> bool:
        return partial.exists() and sum(r.get("type") == "layer" for r in _complete_records(partial)) >= 3

    def table_unwritten() -> bool:
        if out.exists():
            # killed after the table was written (the last moments of the job): it must be whole (its
            # CSV lands last; a header alone, killed between the two renames, is no table yet)
            assert len(LatencyTable.load(out)) == len(enumerate_layers(SearchSpace.from_yaml(space_path), 17))
            return False
        return True

    kill_until_landed(lambda: shutil.rmtree(out.parent, ignore_errors=True), _cli(*_profile_args(space_path, out)),
                      some_layers_done, 0.4, tmp_path, landed=table_unwritten)
    before = {r["key"]: r for r in _complete_records(partial) if r.get("type") == "layer"}
    assert before

    r = run_cli(*_profile_args(space_path, out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = LatencyTable.load(out)  # loads: complete, no duplicate rows (the reader refuses them)
    keys = [c.key for c in table.configs]
    expected = {c.key for c in enumerate_layers(SearchSpace.from_yaml(space_path), 17)}
    assert set(keys) == expected and len(keys) == len(expected), f"rows lost or repeated (seed {SEED})"
    by_key = dict(zip(keys, zip(table.median_ms, table.samples)))
    for key, rec in before.items():
        median, samples = by_key[key]
        assert abs(median - rec["median"]) < 1e-6 and samples == rec["samples"], \
            f"row {key} timed before the kill was re-timed (seed {SEED})"
    assert not partial.exists() and temp_leftovers(out.parent) == []
    assert table.header["correction"]["fitted_on"] == 3


# ====================================================================== Optuna search
N_TRIALS = 40


def _search_args(out: Path) -> list:
    # no predictor for the shipped space: MACs is the (deterministic, fast) objective
    return ["search", "--space", "litepose", "--max-macs", "2.0", "--algo", "optuna", "--trials", N_TRIALS,
            "--seed", "3", "--out", out, "-q"]


def _trials(db: Path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert len(names) == 1, names
    return optuna.load_study(study_name=names[0], storage=storage).get_trials(deepcopy=False)


def test_optuna_search_resumes_without_losing_trials(tmp_path) -> None:
    from optuna.trial import TrialState

    out = tmp_path / "search"
    db = out / "optuna.db"

    def some_trials_done() -> bool:
        # plain read-only SQL: opening an Optuna storage here would race the job creating its schema
        import sqlite3

        if not db.exists():
            return False
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as con:
                return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0] >= 5
        except sqlite3.Error:  # the tables may not exist yet
            return False

    # a kill while the finished search writes its files did not land mid-search
    kill_until_landed(lambda: shutil.rmtree(out, ignore_errors=True), _cli(*_search_args(out)), some_trials_done,
                      0.5, tmp_path, landed=lambda: not any((out / f).exists() for f in ("result.json", "best.json")))
    before = {t.number: (t.params, t.values) for t in _trials(db) if t.state == TrialState.COMPLETE}

    r = run_cli(*_search_args(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    trials = _trials(db)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == N_TRIALS, f"{len(complete)} complete trials, expected {N_TRIALS} (seed {SEED})"
    assert len({t.number for t in trials}) == len(trials)
    after = {t.number: (t.params, t.values) for t in complete}
    assert all(after.get(k) == v for k, v in before.items()), f"finished trials changed or lost (seed {SEED})"
    result = json.loads((out / "result.json").read_text())
    assert result, "no result written after the resumed search"
    assert temp_leftovers(out) == []


# ====================================================================== predictor collection
N_ARCHS = 5


def _collect_args(root: Path, out: Path) -> list:
    return ["predictor", "collect", "--supernet", root / "supernet.pt", "--data", root / "coco", "--archs", N_ARCHS,
            "--out", out, "--space", root / "tiny-elastic.yaml", "--calib-batches", "1", "--batch-size", "2",
            "--val-images", "2", "-q"]


@pytest.fixture(scope="module")
def collect_setup(train_data) -> Path:
    from litepose_nas.checkpoints import save_checkpoint
    from litepose_nas.space import SearchSpace
    from litepose_nas.supernet import SuperLitePose

    elastic = train_data / "tiny-elastic.yaml"
    elastic.write_text(TINY_SPACE_YAML.replace("kernels: [3]", "kernels: [3, 5]", 1)
                       .replace("name: tiny", "name: tiny-elastic"))
    space = SearchSpace.from_yaml(elastic)
    import torch

    torch.manual_seed(0)
    save_checkpoint(train_data / "supernet.pt", SuperLitePose(space, 17), space=space.to_dict())
    return train_data


def _rows(path: Path) -> list[dict]:
    import csv

    text = path.read_text()
    text = text[: text.rfind("\n") + 1]  # a row cut by the kill is not a finished row
    return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(text.splitlines())]


@pytest.mark.slow
def test_predictor_collection_resumes_without_losing_rows(collect_setup, tmp_path) -> None:
    root = collect_setup
    reference = tmp_path / "reference.csv"
    r = run_cli(*_collect_args(root, reference), cwd=tmp_path)
    assert r.returncode == 0, r.stderr

    out = tmp_path / "evals.csv"
    kill_until_landed(lambda: out.unlink(missing_ok=True), _cli(*_collect_args(root, out)),
                      lambda: out.exists() and len(_rows(out)) >= 1, 2.0, tmp_path)
    before = _rows(out)
    assert 1 <= len(before) <= N_ARCHS

    r = run_cli(*_collect_args(root, out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    after = _rows(out)
    assert after[: len(before)] == before, f"rows written before the kill changed (seed {SEED})"
    archs = [row["arch"] for row in after]
    assert len(archs) == N_ARCHS and len(set(archs)) == N_ARCHS, f"rows lost or repeated (seed {SEED})"
    # evaluation is deterministic: the same rows as an uninterrupted run, in the same order
    assert after == _rows(reference), f"resumed collection differs from an uninterrupted one (seed {SEED})"
    assert out.read_text().endswith("\n")

