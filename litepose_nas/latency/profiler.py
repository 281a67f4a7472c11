"""Profile every layer configuration of a search space on this machine into a latency table.

Steps: time the runtime's per-call overhead; time each distinct layer (warm-up + repeats, median
and p90); time a few whole networks end to end and fit the table's ``scale`` / ``offset_ms``
correction on them. Every result is appended to ``NAME.partial.jsonl`` as soon as it exists, so a
killed run resumes where it stopped; the final ``NAME.csv`` + ``NAME.json`` are written
atomically at the end and the partial file is removed.

Shared machines: each timed call also measures the CPU time the process got. onnxruntime's
threads spin while they wait, so an uncontended call gets ~all the CPU of its threads; a call that
got less than ``min_cpu_share`` of it was preempted by another process and its sample is dropped.
Timing continues until enough clean samples exist (or ``max_wait_s`` passes, then the fastest
samples are kept and the layer is counted as contended in the header). A machine that slows down
without preempting the process is handled by :mod:`.speed` (time at nominal speed, scale to it),
and bursts that neither check sees by timing everything in ``passes`` whole passes and keeping
each item's fastest.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError, TableError
from ..space.arch import Arch
from ..space.search_space import SearchSpace
from .layers import LayerConfig, arch_layers, enumerate_layers
from .runners import Timing, TimingPolicy, host_description, make_runner
from .speed import SpeedCheck, SpeedGuard
from .table import LatencyTable

@dataclass
class ProfileSettings:
    device_name: str
    threads: int = 2
    runtime: str = "onnxruntime"
    num_joints: int = 17
    quick: bool = False  # light timing: one pass, 3 calibration networks (the CLI's --quick also sets few repeats)
    # only the layers of the quick networks (the demo's local table, compared on those networks alone);
    # a search needs every layer, which every other table has
    networks_only: bool = False
    calibration_nets: int = 8
    seed: int = 0
    speed_guard: bool = True
    passes: int = 2
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    net_policy: TimingPolicy = field(default_factory=lambda: TimingPolicy(warmup=3, min_repeats=7, max_repeats=30, budget_s=1.5))

    def identity(self, space: SearchSpace) -> dict[str, Any]:
        """What a resumed run must share with the interrupted one."""
        return {"device": self.device_name, "threads": self.threads, "runtime": self.runtime,
                "num_joints": self.num_joints, "quick": self.quick, "space": space.name,
                "space_digest": space_digest(space), "seed": self.seed, "calibration_nets": self.calibration_nets,
                "passes": self.passes, **({"networks_only": True} if self.networks_only else {})}


def space_digest(space: SearchSpace) -> str:
    return hashlib.sha256(json.dumps(space.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _stats(timing: Timing, overhead: float) -> dict[str, float]:
    arr = np.asarray(timing.samples)
    return {"median": max(float(np.median(arr)) - overhead, 0.0),
            "p90": max(float(np.percentile(arr, 90)) - overhead, 0.0), "samples": len(arr),
            "clean": timing.clean, "total": timing.total}


def quick_archs(space: SearchSpace, seed: int, n: int = 6) -> list[Arch]:
    return [space.smallest(), space.largest()] + list(space.decode(space.sample_encoded(seed + 1, n)))


def calibration_archs(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    """Networks timed end to end to fit the correction: the extremes and random ones."""
    archs = [space.smallest(), space.largest()]
    if n > 2:
        archs += list(space.decode(space.sample_encoded(np.random.default_rng([seed, 7]), n - 2)))
    return archs[:max(n, 1)]


def guarded(policy: TimingPolicy, runner, detect_contention: bool) -> TimingPolicy:
    """``policy`` with the runner's clean-sample CPU-share threshold (or none)."""
    return replace(policy, min_cpu_share=runner.cpu_share_threshold if detect_contention else 0.0)


def fit_correction(sums: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Least-squares ``measured ~ scale * sum + offset`` (relative errors weighted equally)."""
    sums, measured = np.asarray(sums, float), np.asarray(measured, float)
    if len(sums) >= 3 and np.ptp(sums) > 0:
        w = 1.0 / measured
        A = np.stack([sums * w, w], axis=1)
        scale, offset = np.linalg.lstsq(A, measured * w, rcond=None)[0]
        if scale <= 0:
            scale, offset = float(np.sum(measured * sums) / np.sum(sums * sums)), 0.0
    elif len(sums):
        scale, offset = float(np.median(measured / sums)), 0.0
    else:
        scale, offset = 1.0, 0.0
    pred = scale * sums + offset
    mape = float(np.mean(np.abs(pred - measured) / measured) * 100) if len(sums) else float("nan")
    return {"scale": float(scale), "offset_ms": float(offset), "fitted_on": int(len(sums)), "fit_mape_pct": mape}


class _Partial:
    """The append-only progress file of a run."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        self._lock_path = path.with_name(f".{path.name}.lock")
        self._lock = _take_lock(self._lock_path, path)
        try:
            self._open(path, identity)
        except BaseException:
            self._release()
            raise

    def _open(self, path: Path, identity: dict[str, Any]) -> None:
        if path.exists():
            not_progress = (f"{path}: not a profiler progress file; delete it to start again "
                            "or choose another --out")
            from ..io import read_bytes_bounded

            try:
                lines = read_bytes_bounded(path, "progress file", TableError).decode("utf-8").splitlines()
            except UnicodeDecodeError:
                raise TableError(not_progress) from None
            parsed = []
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut by the kill: drop it and what follows
                if not isinstance(record, dict):
                    break
                parsed.append(record)
            if not parsed or parsed[0].get("type") != "settings" or not isinstance(parsed[0].get("identity"), dict):
                raise TableError(not_progress)
            if parsed[0]["identity"] != identity:
                diff = sorted(k for k in identity if parsed[0]["identity"].get(k) != identity[k])
                raise TableError(
                    f"{path}: an interrupted run with other settings ({', '.join(diff)}) is here; "
                    f"resume it with the same options or delete the file"
                )
            self.records = parsed[1:]
            # rewrite without a possibly truncated last line
            path.write_text("".join(json.dumps(r) + "\n" for r in parsed))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"type": "settings", "identity": identity}) + "\n")
        self._fh = open(path, "a")

    def append(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records.append(record)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("type") == kind]

    def close(self) -> None:
        self._fh.close()
        self._release()

    def _release(self) -> None:
        # remove the lock file while holding the lock: a waiting run then makes a fresh one
        self._lock_path.unlink(missing_ok=True)
        os.close(self._lock)


def _take_lock(lock_path: Path, partial: Path) -> int:
    """An exclusive lock on ``lock_path`` (released by the kernel if the process dies), so that a
    second run into the same ``--out`` stops with one line instead of interleaving the progress file."""
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise TableError(f"{partial}: another profile run is writing this table now; wait for it to finish "
                         "or choose another --out") from None
    return fd


def profile_space(
    space: SearchSpace,
    out: str | os.PathLike,
    settings: ProfileSettings,
    progress: bool = True,
    callback: Callable[[int, int], None] | None = None,
    detect_contention: bool = True,
) -> LatencyTable:
    """Profile ``space`` into ``out`` (``NAME.csv`` + ``NAME.json``); resumes an interrupted run.

    ``callback(done, total)`` is called after each timed item (tests use it to interrupt).
    """
    from tqdm import tqdm

    if settings.threads <= 0:
        raise InputError(f"--threads must be positive, got {settings.threads}")
    out = Path(out).with_suffix(".csv")
    runner = make_runner(settings.runtime, settings.threads)
    started = time.perf_counter()
    stem_mid = space.stem_mid_channels

    if settings.networks_only:
        qa = quick_archs(space, settings.seed)
        qarrays = space.arrays(space.encode(qa))
        layers = sorted({cfg for i in range(len(qa)) for _, cfg in arch_layers(qarrays, settings.num_joints, stem_mid, i)})
    else:
        # every layer any architecture of the space contains, --quick too: a search looks rows up for
        # architectures no short list of networks covers (elastic choices meeting in one layer)
        layers = enumerate_layers(space, settings.num_joints)
    nets = quick_archs(space, settings.seed)[:3] if settings.quick else \
        calibration_archs(space, settings.calibration_nets, settings.seed)

    partial = _Partial(out.with_name(out.stem + ".partial.jsonl"), settings.identity(space))
    try:
        done_layers = latest_layers(partial)
        done_nets = latest_nets(partial)
        overhead_rec = partial.of_type("overhead")
        # profiling time accumulates over interrupted sessions
        base_s = max([r.get("elapsed_s", 0.0) for r in partial.records] + [0.0])
        passes = max(1, settings.passes)
        total = passes * (len(layers) + len(nets))
        layer_policy = guarded(settings.policy, runner, detect_contention)
        net_policy = guarded(settings.net_policy, runner, detect_contention)
        bar = tqdm(total=total, disable=not progress, unit="item", desc=f"profile {space.name}", dynamic_ncols=True)
        bar.update(len(done_layers) + len(done_nets))
        done = len(done_layers) + len(done_nets)

        if overhead_rec:
            overhead = overhead_rec[0]["ms"]
        else:
            timing = runner.call_overhead(guarded(TimingPolicy(warmup=5, min_repeats=50, max_repeats=200, budget_s=0.2),
                                                  runner, detect_contention))
            overhead = float(np.median(timing.samples))
            partial.append({"type": "overhead", "ms": overhead})

        guard = SpeedGuard(runner.reference_probe()) if settings.speed_guard else None

        def guard_run(timed):
            if guard is None:
                return timed(), {}
            result, check = guard.run(timed)
            return result, {"speed": check.to_dict()}

        def advance() -> None:
            nonlocal done
            done += 1
            bar.update(1)
            if callback is not None:
                callback(done, total)

        def time_layer(cfg: LayerConfig, p: int) -> None:
            timing, check = guard_run(lambda: runner.time_layer(cfg, layer_policy))
            st = _stats(timing, overhead)
            partial.append({"type": "layer", "key": cfg.key, "pass": p, "fields": list(cfg.as_ints()), **st, **check,
                            "elapsed_s": base_s + time.perf_counter() - started})
            if st["clean"] < st["samples"]:
                bar.set_postfix_str(f"contended: {cfg.key}")

        def time_net(k: int, arch: Arch, p: int) -> None:
            timing, check = guard_run(lambda: runner.time_network(arch, settings.num_joints, stem_mid, net_policy))
            partial.append({"type": "net", "index": k, "pass": p, "arch": arch.to_dict(), "median": float(np.median(timing.samples)),
                            "p90": float(np.percentile(timing.samples, 90)), "samples": len(timing.samples),
                            "clean": timing.clean, "total": timing.total, **check,
                            "elapsed_s": base_s + time.perf_counter() - started})

        # whole passes over everything, minutes apart: a layer slowed by a burst the speed guard
        # did not see (memory traffic of a neighbour, say) is fast in another pass
        for p in range(passes):
            for cfg in layers:
                if (cfg.key, p) not in done_layers:
                    time_layer(cfg, p)
                    advance()
            for k, arch in enumerate(nets):
                if (k, p) not in done_nets:
                    time_net(k, arch, p)
                    advance()
        bar.close()

        if guard is not None:
            # items timed before the machine showed its nominal speed (or during a slow stretch
            # the guard gave up waiting on) are timed once more, newest record wins
            layer_recs, net_recs = latest_layers(partial), latest_nets(partial)
            nominal = min(_nominal_ms(r) for r in [*layer_recs.values(), *net_recs.values()])
            redo = [(key, p) for (key, p), r in layer_recs.items() if not guard.is_nominal(_reference_ms(r), nominal)]
            redo += [(k, p) for (k, p), r in net_recs.items() if not guard.is_nominal(_reference_ms(r), nominal)]
            if redo:
                guard.nominal_ms = nominal
                by_key = {c.key: c for c in layers}
                for item, p in tqdm(redo, disable=not progress, unit="item", desc="re-time slow items", dynamic_ncols=True):
                    if isinstance(item, str):
                        time_layer(by_key[item], p)
                    else:
                        time_net(item, nets[item], p)

        all_layers, all_nets = latest_layers(partial), latest_nets(partial)
        nominal = min([_nominal_ms(r) for r in [*all_layers.values(), *all_nets.values()]] + [math.inf])
        rows = _fastest_pass(all_layers, nominal)
        nets_best = _fastest_pass(all_nets, nominal)
        net_recs = [nets_best[k] for k in sorted(nets_best)]
        factors = {c.key: _factor(rows[c.key], nominal) for c in layers}
        configs = [LayerConfig.from_ints(rows[c.key]["fields"]) for c in layers]
        elapsed = base_s + time.perf_counter() - started
        header = {
            "format_version": 1,
            "name": out.stem,
            "device": settings.device_name,
            "runtime": runner.name,
            "runtime_version": runner.version,
            "threads": settings.threads,
            "precision": "fp32",
            "batch": 1,
            "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "space": space.name,
            "space_digest": space_digest(space),
            "stem_mid_channels": stem_mid,
            "num_joints": settings.num_joints,
            "complete": not settings.networks_only,
            "provenance": {
                "kind": "measured",
                "details": (f"profiled on this device ({host_description()}, {platform.system()}) with "
                            f"litepose-nas profile, {runner.name} {runner.version}, {settings.threads} threads"
                            + (", --quick (few repeats, one pass)" if settings.quick else "")
                            + (", layers of a few networks only" if settings.networks_only else "")),
            },
            "call_overhead_ms": overhead,
            "timing": {"statistic": ("median of repeats minus call_overhead_ms"
                                     + (", scaled to the nominal speed (speed_guard)" if guard is not None else "")
                                     + f", the fastest of {passes} pass(es)"),
                       "passes": passes, **asdict(settings.policy),
                       "network": asdict(settings.net_policy)},
            "contention": contention_summary(list(all_layers.values()), list(all_nets.values()),
                                             layer_policy.min_cpu_share, detect_contention),
            "speed_guard": (guard.summary([_reference_ms(r) for r in [*all_layers.values(), *all_nets.values()]], nominal)
                            | {"factor_range": _range(list(factors.values()))}
                            if guard is not None else {"enabled": False}),
            "profile_seconds": round(elapsed, 1),
            "scheduling": scheduling_note(),
        }
        table = LatencyTable(header | {"correction": {"scale": 1.0, "offset_ms": 0.0}}, configs,
                             [rows[c.key]["median"] * factors[c.key] for c in layers],
                             [rows[c.key]["p90"] * factors[c.key] for c in layers],
                             [rows[c.key]["samples"] for c in layers])
        sums = table.layer_sums([Arch.from_dict(r["arch"]) for r in net_recs])
        measured = np.array([r["median"] * _factor(r, nominal) for r in net_recs])
        table.header["correction"] = fit_correction(sums, measured) | {
            "networks": [{"img_size": r["arch"]["img_size"], "layer_sum_ms": float(s), "measured_ms": float(m)}
                         for r, s, m in zip(net_recs, sums, measured)],
        }
        table.save(out)
    except BaseException:
        partial.close()
        raise
    partial.path.unlink()
    partial.close()
    return table


def latest_layers(partial: _Partial) -> dict[tuple[str, int], dict[str, Any]]:
    """Layer records by (key, pass); a re-timed layer's newest record wins."""
    return {(r["key"], r.get("pass", 0)): r for r in partial.of_type("layer")}


def latest_nets(partial: _Partial) -> dict[tuple[int, int], dict[str, Any]]:
    """Calibration-network records by (index, pass); a re-timed network's newest record wins."""
    return {(r.get("index", i), r.get("pass", 0)): r for i, r in enumerate(partial.of_type("net"))}


def _fastest_pass(records: dict[tuple[Any, int], dict[str, Any]], nominal_ms: float) -> dict[Any, dict[str, Any]]:
    """Per item, the record of the pass with the lowest median at nominal speed (noise only slows)."""
    best: dict[Any, dict[str, Any]] = {}
    for (item, _), r in records.items():
        if item not in best or r["median"] * _factor(r, nominal_ms) < best[item]["median"] * _factor(best[item], nominal_ms):
            best[item] = r
    return best


def _check(record: dict[str, Any]) -> SpeedCheck | None:
    """The speed guard's check stored with a record (None: timed without the guard)."""
    return SpeedCheck(**record["speed"]) if record.get("speed") else None


def _reference_ms(record: dict[str, Any]) -> float:
    check = _check(record)
    return check.reference_ms if check else math.inf


def _nominal_ms(record: dict[str, Any]) -> float:
    check = _check(record)
    return check.fastest_ms if check else math.inf


def _factor(record: dict[str, Any], nominal_ms: float) -> float:
    check = _check(record)
    return check.factor(nominal_ms) if check and math.isfinite(nominal_ms) else 1.0


def _range(values: list[float]) -> list[float] | None:
    return [round(min(values), 4), round(max(values), 4)] if values else None


def contention_summary(layer_recs: list[dict[str, Any]], net_recs: list[dict[str, Any]], threshold: float,
                       enabled: bool) -> dict[str, Any]:
    """How much of the timing had to be thrown away because other processes took the cores."""
    def share(recs):
        total = sum(r.get("total", r["samples"]) for r in recs)
        return round(sum(r.get("clean", r["samples"]) for r in recs) / total, 4) if total else None

    return {
        "detection": "cpu-share per sample" if enabled else "off",
        "min_cpu_share": threshold,
        "clean_sample_share_layers": share(layer_recs),
        "clean_sample_share_networks": share(net_recs),
        # items that never got enough clean samples: their figures are the fastest samples seen
        "contended_layers": sum(1 for r in layer_recs if r.get("clean", r["samples"]) < r["samples"]),
        "contended_networks": sum(1 for r in net_recs if r.get("clean", r["samples"]) < r["samples"]),
    }


def scheduling_note() -> str:
    """The process's nice value (and Linux autogroup), recorded because it changes timings on a shared host."""
    note = f"nice {os.nice(0)}"
    try:
        note += f", {Path('/proc/self/autogroup').read_text().strip()}"
    except OSError:
        pass
    return note


def check_out_path(out: str | os.PathLike) -> Path:
    path = Path(out)
    if path.suffix not in ("", ".csv"):
        raise InputError(f"--out {out}: expected a .csv path (the header goes beside it as .json)")
    if path.is_dir():
        raise InputError(f"--out {out}: is a folder, expected NAME.csv")
    return path.with_suffix(".csv")


def elapsed_note(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


__all__ = ["ProfileSettings", "profile_space", "fit_correction", "calibration_archs", "guarded", "contention_summary"]
