"""Runs that could interfere with each other or leave things behind: a second profile into the same
--out, --resume with another network, a failed new training run, Optuna storages and dead workers."""
from __future__ import annotations

import fcntl
import json
import os

import pytest

from cli_helpers import assert_one_line_error
from reliability_helpers import TINY_ARCH, TINY_SPACE_YAML, run_inproc, write_json


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from litepose_nas.data import generate_synthetic

    root = tmp_path_factory.mktemp("tiny")
    (root / "tiny.yaml").write_text(TINY_SPACE_YAML)
    write_json(root / "arch.json", TINY_ARCH)
    other = json.loads(json.dumps(TINY_ARCH))
    other["deconv_setting"] = [16, 16, 16] if other["deconv_setting"] != [16, 16, 16] else [8, 8, 8]
    write_json(root / "other.json", other)
    generate_synthetic(root / "data", 4, layout="coco", image_size=64, val_fraction=0.5, progress=False)
    return root


def _train(tiny, out, arch="arch.json", *extra):
    return ["train", "--arch", tiny / arch, "--data", tiny / "data", "--steps", "1", "--batch-size", "2",
            "--resolutions", "64", "--workers", "0", "--val-every", "-1", "--out", out, "-q", "--device", "cpu",
            *extra]


def test_profile_refuses_a_second_run_into_the_same_out(tiny, tmp_path):
    out = tmp_path / "t.csv"
    fd = os.open(tmp_path / ".t.partial.jsonl.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # a first run holds the table
    try:
        r = run_inproc("profile", "--space", tiny / "tiny.yaml", "--device-name", "x", "--quick", "--out", out, "-q")
    finally:
        os.close(fd)
    assert_one_line_error(r, 2, "t.partial.jsonl", "another profile run")
    assert not out.exists() and not (tmp_path / "t.partial.jsonl").exists()


def test_resume_refuses_another_arch(tiny, tmp_path):
    out = tmp_path / "run"
    assert run_inproc(*_train(tiny, out)).returncode == 0
    r = run_inproc(*_train(tiny, out, "other.json", "--resume"))
    assert_one_line_error(r, 2, "--resume", "--arch", "differs")
    # the same arch resumes (a finished run: nothing to do)
    assert run_inproc(*_train(tiny, out, "arch.json", "--resume")).returncode == 0


def test_failed_new_run_leaves_no_config(tiny, tmp_path):
    from litepose_nas.space import Arch
    from litepose_nas.train.config import default_config
    from litepose_nas.train.trainer import Trainer

    class Killed(Exception):
        pass

    def die(step, stats):
        raise Killed

    cfg = default_config("subnet", arch=Arch.from_json(tiny / "arch.json").to_dict(), data=str(tiny / "data"),
                         steps=3, batch_size=2, resolutions=(64,), num_workers=0, val_every=-1, checkpoint_every=100)
    for out in (tmp_path / "fresh", tmp_path / "existing"):
        if out.name == "existing":
            out.mkdir()
            (out / "notes.txt").write_text("mine")
        with pytest.raises(Killed):
            Trainer(cfg, out, quiet=True, device="cpu", on_step=die).run()
        left = sorted(p.name for p in out.iterdir()) if out.exists() else None
        assert left == (None if out.name == "fresh" else ["notes.txt"])


@pytest.mark.parametrize("storage", ["sqlite://///:::", "sqlite:///", "journal:/", "sqlite:////name-at-root.db"])
def test_garbage_storage_urls_create_nothing(storage, tmp_path):
    from litepose_nas.errors import InputError
    from litepose_nas.search.optuna_search import open_storage, resolve_storage

    before = set(os.listdir("/"))
    with pytest.raises(InputError, match="storage"):
        open_storage(resolve_storage(storage))
    assert set(os.listdir("/")) == before


def test_journal_trials_of_dead_workers_are_failed(tmp_path):
    import socket
    import subprocess
    import sys

    import optuna
    from optuna.trial import TrialState

    from litepose_nas.search.optuna_search import fail_dead_workers, open_storage

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = optuna.create_study(storage=open_storage(f"journal:{tmp_path / 'j.log'}"), study_name="s")
    for worker in (f"{socket.gethostname()}:{dead.pid}", f"{socket.gethostname()}:{os.getpid()}", "elsewhere:1"):
        study.ask().set_user_attr("worker", worker)
    assert fail_dead_workers(study) == 1
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
