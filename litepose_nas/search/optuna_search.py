"""Optuna search: one categorical parameter per dimension of the space.

- single objective (default): TPE maximizing the objective, one study per budget limit, each
  constraint reported with ``trial.set_constraint`` (Optuna >= 5; feasible when <= 0);
- multi-objective: NSGA-II (requested explicitly: Optuna's multi-objective default is TPE)
  maximizing the objective and minimizing the primary cost, one study for all limits.

Every dimension with more than one choice is a parameter, block slots past the sampled depth
included (they are ignored when decoding): the search space is static, which NSGA-II's
crossover and multivariate TPE need.

Storage: any Optuna storage URL (``sqlite:///f.db``, ``postgresql://...``, ``mysql://...``),
``journal:PATH`` for a journal file, ``memory`` for none. A search resumes from its storage: the
study name is derived from the problem and seed, each study runs until it holds the requested
number of COMPLETE trials, so trials of a killed run are kept and only the rest are run, and
several workers (processes, or machines sharing a database) split one study between them. RDB
storages get a heartbeat so trials of a killed worker are marked failed (and not counted).
The result is rebuilt from all complete trials of the studies, whichever worker ran them.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from .problem import Problem, SearchBudget
from .result import SearchResult

HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 30


# ---------------------------------------------------------------------- storage
def resolve_storage(storage: str | None) -> str | None:
    """Normalize a storage spec: ``None``/``memory`` -> None, a ``.db`` path -> sqlite URL."""
    if storage is None or storage in ("memory", ":memory:"):
        return None
    s = str(storage)
    if s.startswith("journal:"):
        return s
    if "://" in s:
        return s
    path = Path(s)
    if path.suffix in (".log", ".jsonl", ".journal"):
        return f"journal:{path.resolve()}"
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{path.resolve()}"
    raise InputError(f"storage {storage!r} not understood (allowed: an Optuna URL like sqlite:///study.db, "
                     "a .db/.sqlite file, journal:PATH or a .log file, memory)")


def open_storage(url: str | None):
    import optuna

    if url is None:
        return optuna.storages.InMemoryStorage()
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = _storage_file(url, url[len("journal:"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        if not url.startswith("sqlite:///"):
            raise InputError(f"storage {url!r}: a sqlite URL is sqlite:///relative.db or sqlite:////absolute.db")
        _storage_file(url, url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # several processes write one file: wait for the lock instead of failing at once
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    try:
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_INTERVAL_S,
                                          grace_period=GRACE_PERIOD_S, **kwargs)
    except ImportError as exc:
        raise InputError(f"storage {mask_url(url)}: database driver missing ({exc})") from None
    except Exception as exc:  # sqlalchemy errors: bad URL, unreachable server
        raise InputError(f"storage {mask_url(url)}: cannot open ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def _storage_file(url: str, text: str) -> Path:
    """The file of a sqlite or journal storage, checked before anything is created: a sane name
    (not empty, no ':' as in ``sqlite://///:::``, not at the filesystem root) in a writable place."""
    from ..io import check_output_path

    path = Path(text)
    if not path.name or ":" in text or (path.is_absolute() and path.parent == Path(path.anchor)):
        raise InputError(f"storage {url!r}: {text!r} is not a usable database file path "
                         "(allowed: e.g. sqlite:///runs/study.db or journal:runs/study.log)")
    return check_output_path(path, "storage file", InputError)


def fail_dead_workers(study) -> int:
    """Mark FAIL the RUNNING trials of workers of this machine that no longer exist; returns how many.

    RDB storages do this with Optuna's heartbeat (``fail_stale_trials``); a journal file has no
    heartbeat, so a killed worker's trial would stay RUNNING forever. Trials of other machines are
    left alone (their processes cannot be checked from here).
    """
    from optuna.storages import RDBStorage
    from optuna.trial import TrialState

    from ..io import pid_alive

    if isinstance(study._storage, RDBStorage):
        from optuna.storages import fail_stale_trials

        fail_stale_trials(study)
        return 0
    host = socket.gethostname()
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        name, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if name == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            failed += 1
    return failed


def mask_url(url: str | None) -> str:
    return "memory" if url is None else re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


# ---------------------------------------------------------------------- study naming and parameters
def default_study_name(problem: Problem, mode: str, seed: int, budget: SearchBudget) -> str:
    """Same problem + seed -> same name, so rerunning a command resumes its study."""
    key = json.dumps({
        "space": problem.space.to_dict(), "objective": problem.objective.describe(),
        "constraints": [{k: v for k, v in c.describe().items() if k != "limit"} for c in problem.constraints[1:]],
        "other_limits": [c.limit for c in problem.constraints[1:]], "primary": problem.primary.name,
        "seed": seed, "population": budget.population,
    }, sort_keys=True, default=str)
    return f"litepose-nas-{problem.space.name}-{mode}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _params(space) -> list[tuple[int, Any]]:
    return [(d, dim) for d, dim in enumerate(space.dimensions) if len(dim.choices) > 1]


def _rows_from_params(space, params_list: Sequence[dict[str, Any]]) -> np.ndarray:
    enc = np.zeros((len(params_list), space.num_dimensions), dtype=np.int64)
    for d, dim in _params(space):
        index = {c: i for i, c in enumerate(dim.choices)}
        enc[:, d] = [index[p[dim.name]] for p in params_list]
    return space.canonicalize(enc, 0) if len(enc) else enc


def _derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


# ---------------------------------------------------------------------- one worker on one study
def run_study(problem: Problem, storage_url: str | None, study_name: str, n_trials: int, seed: int,
              limit: float, multi_objective: bool, population: int, worker: int = 0, progress: bool = False,
              storage=None, sampler=None):
    """Add trials to ``study_name`` until it holds ``n_trials`` COMPLETE trials (all workers)."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    storage = storage if storage is not None else open_storage(storage_url)
    directions = ["maximize", "minimize"] if multi_objective else ["maximize"]
    probe = optuna.create_study(storage=storage, study_name=study_name, directions=directions, load_if_exists=True)
    if list(probe.directions) != [optuna.study.StudyDirection.MAXIMIZE] + (
            [optuna.study.StudyDirection.MINIMIZE] if multi_objective else []):
        raise InputError(f"study {study_name!r} in {mask_url(storage_url)} has other objectives; pick another --study-name")
    fail_dead_workers(probe)
    existing = len(probe.get_trials(deepcopy=False))
    done = len(probe.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    remaining = n_trials - done
    if remaining <= 0:
        return probe
    # a fresh study with one worker uses the seed itself (deterministic); resumed runs and extra
    # workers get derived seeds so they do not replay the first run's proposals
    sampler_seed = seed if existing == 0 and worker == 0 else _derived_seed(seed, existing, worker)
    if sampler is not None:
        pass  # the caller's sampler (OptunaSearcher(sampler=...)) as given
    elif multi_objective:
        sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=sampler_seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=sampler_seed, multivariate=True, n_startup_trials=min(20, max(5, n_trials // 10)))
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    space = problem.space
    params = _params(space)
    limits = problem.limits(limit)
    names = [c.name for c in problem.constraints]

    def objective(trial):
        # first: a worker that dies during this trial is then known by host and pid
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        values = {dim.name: trial.suggest_categorical(dim.name, list(dim.choices)) for _, dim in params}
        enc = _rows_from_params(space, [values])
        costs = problem.costs(enc)[0]
        for name, value, lim in zip(names, costs, limits):
            trial.set_constraint(name, float(value - lim))
        score = float(problem.objective(enc)[0])
        return (score, float(costs[0])) if multi_objective else score

    callbacks = [optuna.study.MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,))]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_trials, initial=done, desc=f"optuna {'nsga2' if multi_objective else 'tpe'}", unit="trial")
        callbacks.append(lambda s, t: bar.update(1))
    try:
        study.optimize(objective, n_trials=remaining, callbacks=callbacks)
    finally:
        if bar:
            bar.close()
    return study


def _worker_entry(problem, storage_url, study_name, n_trials, seed, limit, multi_objective, population, worker,
                  sampler=None):
    run_study(problem, storage_url, study_name, n_trials, seed, limit, multi_objective, population, worker,
              sampler=sampler)


def _run_workers(workers: int, problem: Problem, storage_url: str | None, study_name: str, n_trials: int, seed: int,
                 limit: float, multi_objective: bool, population: int, progress: bool, sampler=None) -> None:
    if workers <= 1:
        run_study(problem, storage_url, study_name, n_trials, seed, limit, multi_objective, population, 0, progress,
                  sampler=sampler)
        return
    import multiprocessing as mp

    # create the study once before forking, so the workers do not race to create it
    run_study(problem, storage_url, study_name, 0, seed, limit, multi_objective, population)
    ctx = mp.get_context("fork")  # the problem holds closures (not picklable): fork shares them
    procs = [ctx.Process(target=_worker_entry, args=(problem, storage_url, study_name, n_trials, seed, limit,
                                                      multi_objective, population, w, sampler))
             for w in range(1, workers)]
    for p in procs:
        p.start()
    try:
        run_study(problem, storage_url, study_name, n_trials, seed, limit, multi_objective, population, 0, progress,
                  sampler=sampler)
    finally:
        for p in procs:
            p.join()
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        from ..errors import JobError

        raise JobError(f"{len(failed)} optuna worker process(es) failed (exit codes {failed})")


# ---------------------------------------------------------------------- the searcher
def optuna_search(problem: Problem, limits: Sequence[float], budget: SearchBudget, seed: int, *,
                  storage: str | None = None, study_name: str | None = None, multi_objective: bool = False,
                  workers: int = 1, progress: bool = False, sampler: Any = None) -> SearchResult:
    """TPE per limit (or NSGA-II over all limits; or the given optuna ``sampler``); trials =
    ``budget.n_evaluations`` per limit."""
    import optuna
    from optuna.trial import TrialState

    start = time.perf_counter()
    url = resolve_storage(storage)
    if workers > 1 and url is None:
        raise InputError("several optuna workers need a shared storage (e.g. --storage sqlite:///study.db), not memory")
    shared = open_storage(url) if url is None else None  # one in-memory storage for every study of this call
    limits = sorted(float(x) for x in limits)
    mode = "nsga2" if multi_objective else "tpe"
    base = study_name or default_study_name(problem, mode, seed, budget)
    rng = np.random.default_rng(seed)
    if multi_objective:
        problem.check_possible(max(limits), rng)
        plan = [(base, max(limits), budget.n_evaluations * len(limits))]
    else:
        for limit in limits:
            problem.check_possible(limit, rng)
        plan = [(base if len(limits) == 1 else f"{base}-limit{limit:g}", limit, budget.n_evaluations) for limit in limits]
    studies = []
    for name, limit, n_trials in plan:
        if shared is not None:
            run_study(problem, None, name, n_trials, seed, limit, multi_objective, budget.population, 0, progress,
                      storage=shared, sampler=sampler)
        else:
            _run_workers(workers, problem, url, name, n_trials, seed, limit, multi_objective, budget.population,
                         progress, sampler)
        store = shared if shared is not None else open_storage(url)
        studies.append(optuna.load_study(study_name=name, storage=store))

    history = []
    for (name, limit, _), study in zip(plan, studies):
        trials = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)
        enc = _rows_from_params(problem.space, [t.params for t in trials])
        if not len(enc):
            continue
        # scores and costs recomputed in one batch: deterministic functions of the params, and
        # this way trials of every worker (and of killed runs) are included
        costs = problem.costs(enc)
        scores = problem.score(enc, costs)
        feasible = np.all(costs <= problem.limits(limit), axis=1)
        best = np.maximum.accumulate(np.where(feasible, scores, -np.inf))
        step = max(1, len(trials) // 50)
        history.extend({"study": name, "limit": limit, "trial": int(i + 1), "best": float(best[i])}
                       for i in range(step - 1, len(trials), step) if np.isfinite(best[i]))
    info = {"storage": mask_url(url), "studies": [p[0] for p in plan], "workers": workers,
            "sampler": type(sampler).__name__ if sampler is not None
            else "NSGAIISampler" if multi_objective else "TPESampler(multivariate)",
            "trials": [len(s.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) for s in studies]}
    return problem.result(f"optuna-{mode}", limits, seed, budget, history, time.perf_counter() - start, info)
