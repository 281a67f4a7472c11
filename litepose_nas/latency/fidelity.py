"""How well a table predicts whole networks: predicted vs measured end to end.

For a table measured on this machine: N random subnets of its space plus the published
LitePose-Auto architectures are built as ONNX graphs (or torch models for a torch table), timed end
to end with the table's runtime and thread count, and compared with ``table.predict``.
For a derived table (a device we cannot reach), the comparison uses the real measurements it was
calibrated on, each predicted by a fit that left that point out (leave-one-out).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..resources import shipped_dir
from ..space.arch import Arch
from ..space.search_space import SearchSpace
from .profiler import contention_summary, guarded
from .runners import TimingPolicy, make_runner
from .speed import SpeedGuard
from .table import LatencyTable

PUBLISHED_FILE = "published_archs.json"


@dataclass
class FidelityReport:
    table: str
    device: str
    runtime: str
    mode: str  # "measured-end-to-end" | "calibration-leave-one-out"
    n: int
    mape: float
    within_10pct: float
    spearman: float
    max_ape: float
    points: list[dict[str, Any]] = field(default_factory=list)
    contention: dict[str, Any] = field(default_factory=dict)
    speed_guard: dict[str, Any] = field(default_factory=dict)
    plot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def metrics(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """MAPE (%), share within +-10 % (0..1), Spearman rank correlation, max APE (%)."""
    from scipy.stats import spearmanr

    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    ape = np.abs(p - m) / m * 100
    rho = float(spearmanr(p, m).statistic) if len(p) > 2 else float("nan")
    return {"mape": float(ape.mean()), "within_10pct": float((ape <= 10).mean()), "spearman": rho,
            "max_ape": float(ape.max())}


def published_archs() -> dict[str, Arch]:
    """LitePose-Auto-XS/S/M/L (mit-han-lab/litepose ``mobile_configs``, MIT), shipped with the tables."""
    data = json.loads((shipped_dir("latency_tables") / PUBLISHED_FILE).read_text())
    return {name: Arch.from_dict(d, source=f"{PUBLISHED_FILE}:{name}") for name, d in data["archs"].items()}


def validate_measured(table: LatencyTable, space: SearchSpace, n: int, seed: int = 1234,
                      include_published: bool = True, progress: bool = True,
                      policy: TimingPolicy | None = None, detect_contention: bool = True,
                      speed_guard: bool = True, passes: int = 2) -> FidelityReport:
    """Time ``n`` random subnets (+ the published ones) end to end, in ``passes`` whole passes,
    and compare each network's fastest pass with the table."""
    from tqdm import tqdm

    if table.provenance != "measured":
        raise InputError(f"table '{table.name}' is {table.provenance}, not measured here: nothing to time")
    if space.name != table.space_name:
        raise InputError(f"table '{table.name}' is for space '{table.space_name}', got space '{space.name}'")
    threads = int(table.header.get("threads", 1))
    runner = make_runner(table.runtime, threads)
    policy = policy or TimingPolicy(warmup=3, min_repeats=7, max_repeats=30, budget_s=1.5, max_wait_s=60.0)
    named: list[tuple[str, Arch]] = []
    if include_published:
        named += [(k, a) for k, a in published_archs().items() if space.contains(a)]
    enc = space.sample_encoded(np.random.default_rng(seed), n)
    named += [(f"random-{i}", a) for i, a in enumerate(space.decode(enc))] if n else []
    predicted = table.predict([a for _, a in named], space=space)
    policy = guarded(policy, runner, detect_contention)
    guard = SpeedGuard(runner.reference_probe()) if speed_guard else None
    passes = max(1, passes)
    runs: list[list[tuple[float, Any]]] = [[] for _ in named]  # per network: (raw median ms, speed check) per pass
    recs, checks = [], []
    # whole passes over the networks, minutes apart: a network slowed by a burst that the speed
    # guard did not see is fast in another pass, and its fastest pass is kept (noise only slows)
    work = [(i, arch) for _ in range(passes) for i, (_, arch) in enumerate(named)]
    for i, arch in tqdm(work, disable=not progress, desc="validate", unit="net"):
        def timed():
            return runner.time_network(arch, table.num_joints, space.stem_mid_channels, policy)

        check = None
        if guard is None:
            timing = timed()
        else:
            timing, check = guard.run(timed)
            checks.append(check)
        recs.append({"samples": len(timing.samples), "clean": timing.clean, "total": timing.total})
        runs[i].append((float(np.median(timing.samples)), check))
    nominal = None
    if guard is not None:
        # to the speed the table was profiled at (its own nominal reference time), when it says
        nominal = table.header.get("speed_guard", {}).get("nominal_reference_ms") or min(
            c.fastest_ms for c in checks)
    points = []
    for (name, arch), pred, timed_runs in zip(named, predicted, runs):
        scaled = [ms * (c.factor(nominal) if c is not None else 1.0) for ms, c in timed_runs]
        best = int(np.argmin(scaled))
        point = {"name": name, "img_size": arch.img_size, "predicted_ms": float(pred), "measured_ms": scaled[best],
                 "passes_ms": scaled}
        if guard is not None:
            point["raw_measured_ms"] = min(ms for ms, _ in timed_runs)
            point["speed_factor"] = timed_runs[best][1].factor(nominal)
        points.append(point)
    random_pts = [p for p in points if p["name"].startswith("random-")] or points
    m = metrics([p["predicted_ms"] for p in random_pts], [p["measured_ms"] for p in random_pts])
    for p in points:
        p["ape_pct"] = abs(p["predicted_ms"] - p["measured_ms"]) / p["measured_ms"] * 100
    return FidelityReport(
        table=table.name, device=table.device, runtime=table.runtime, mode="measured-end-to-end",
        n=len(random_pts), points=points,
        contention=contention_summary([], recs, policy.min_cpu_share, detect_contention),
        speed_guard=guard.summary([c.reference_ms for c in checks], nominal) | {
            "raw": metrics([p["predicted_ms"] for p in random_pts], [p["raw_measured_ms"] for p in random_pts])}
        if guard is not None else {"enabled": False},
        **m,
    )


def validate_derived(table: LatencyTable) -> FidelityReport:
    """Held-out error of a derived table: each real calibration point predicted by a fit without it."""
    cal = table.header.get("calibration", {})
    pts = cal.get("points", [])
    if not pts or any("loo_predicted_ms" not in p for p in pts):
        raise InputError(f"table '{table.name}' is {table.provenance} and records no held-out calibration points")
    m = metrics([p["loo_predicted_ms"] for p in pts], [p["measured_ms"] for p in pts])
    points = [{"name": p["model"], "predicted_ms": p["loo_predicted_ms"], "measured_ms": p["measured_ms"],
               "ape_pct": abs(p["loo_predicted_ms"] - p["measured_ms"]) / p["measured_ms"] * 100} for p in pts]
    return FidelityReport(table=table.name, device=table.device, runtime=table.runtime,
                          mode="calibration-leave-one-out", n=len(pts), points=points, **m)


def scatter_plot(report: FidelityReport, path: str | Path) -> Path:
    """Predicted vs measured, log-log, with the +-10 % band; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    pred = np.array([p["predicted_ms"] for p in report.points])
    meas = np.array([p["measured_ms"] for p in report.points])
    pub = np.array([not p["name"].startswith("random-") for p in report.points])
    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    lo, hi = min(pred.min(), meas.min()) * 0.8, max(pred.max(), meas.max()) * 1.2
    xs = np.array([lo, hi])
    ax.plot(xs, xs, "k-", lw=1)
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="0.85", label="+-10 %")
    ax.scatter(meas[~pub], pred[~pub], s=18, label="random subnets")
    if pub.any():
        ax.scatter(meas[pub], pred[pub], s=40, marker="*", c="C3", label="published")
        for p in np.nonzero(pub)[0]:
            ax.annotate(report.points[p]["name"], (meas[p], pred[p]), fontsize=7, xytext=(3, -8), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter

    # minor-tick labels of a log axis spanning one decade overlap each other: keep the major ones
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured end to end (ms)")
    ax.set_ylabel("predicted by table (ms)")
    ax.set_title(f"{report.table}: MAPE {report.mape:.1f} %, Spearman {report.spearman:.3f} (n={report.n})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
