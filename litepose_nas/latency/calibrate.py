"""Derive a table for a device we cannot reach from a measured table and whole-network timings.

Model (per device, two non-negative parameters): each layer row becomes
``device_ms = k * local_ms + o`` -- ``k`` rescales compute, ``o`` is a fixed per-layer cost (a kernel
launch on a GPU, a dispatch on a CPU runtime). A network's latency is then
``k * sum(local rows) + o * number_of_layers``. ``k`` and ``o`` are fitted to real end-to-end
latencies of published networks (relative least squares); the error of each point is also
reported *held out* (leave-one-out: refit without it, predict it). When the two-parameter fit is no
better held-out than ``k`` alone, ``k`` alone is kept.

Real data used: the Lite Pose paper's whole-model latencies of LitePose-Auto-XS/S/M (and L on
mobile), ``latency_tables/paper/whole_model_latency.csv`` (shipped; sources and license in its README).
"""
from __future__ import annotations

import csv
import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy.optimize import nnls

from ..errors import InputError, TableError
from ..resources import shipped_dir
from ..space.arch import Arch
from ..space.search_space import ArchArrays
from .layers import slot_keys
from .table import LatencyTable

PAPER_LATENCY_FILE = "paper/whole_model_latency.csv"
# paper column -> shipped device table name, and what the paper says about how it was measured
PAPER_DEVICES = {
    "nano_ms": ("jetson-nano", "NVIDIA Jetson Nano GPU, TVM auto-scheduler (paper Sec. 5.2), batch 1, precision not stated"),
    "mobile_ms": ("mobile", "Qualcomm Snapdragon 855 GPU (Adreno 640; paper Sec. 5.2), runtime not stated, batch 1"),
    "pi_ms": ("raspberry-pi-4", "Raspberry Pi 4B CPU, TVM auto-scheduler (paper Sec. 5.2), batch 1, precision not stated"),
}
# paper / README model name -> published architecture name in published_archs.json
PAPER_MODELS = {"LitePose-XS": "LitePose-Auto-XS", "LitePose-S": "LitePose-Auto-S",
                "LitePose-Auto-M": "LitePose-Auto-M", "LitePose-L": "LitePose-Auto-L"}


@dataclass
class CalibrationPoint:
    model: str
    arch: Arch
    measured_ms: float
    source: str = ""


def paper_points(csv_path: str | Path) -> dict[str, list[CalibrationPoint]]:
    """``{device table name: points}`` from the paper's whole-model latency CSV (deduplicated)."""
    from .fidelity import published_archs

    archs = published_archs()
    path = Path(csv_path)
    try:
        rows = list(csv.DictReader(path.open()))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the paper's latency table ({exc})") from None
    out: dict[str, list[CalibrationPoint]] = {dev: [] for dev, _ in PAPER_DEVICES.values()}
    for col, (dev, _) in PAPER_DEVICES.items():
        seen = set()
        for r in rows:
            name = PAPER_MODELS.get(r.get("model", ""))
            if name is None or not r.get(col) or name in seen:
                continue
            seen.add(name)
            out[dev].append(CalibrationPoint(name, archs[name], float(r[col]), f"{r['source']} {r['table']}"))
    return out


def _features(base: LatencyTable, archs: Sequence[Arch]) -> np.ndarray:
    """``[N, 2]``: sum of the base table's rows, number of layers."""
    a = ArchArrays.from_archs(list(archs))
    sums = base.layer_sums(a)
    _, _, active = slot_keys(a, base.num_joints, int(base.header.get("stem_mid_channels", 32)))
    return np.stack([sums, active.sum(axis=1).astype(float)], axis=1)


def _fit(X: np.ndarray, y: np.ndarray, cols: list[int]) -> np.ndarray:
    w = 1.0 / y
    coef = np.zeros(X.shape[1])
    coef[cols] = nnls(X[:, cols] * w[:, None], y * w)[0]
    return coef


def fit_device(base: LatencyTable, points: Sequence[CalibrationPoint]) -> dict[str, Any]:
    """Fit ``k`` (and ``o``), with leave-one-out predictions for each point."""
    if len(points) < 2:
        raise InputError(f"calibration needs at least 2 measured networks, got {len(points)}")
    X = _features(base, [p.arch for p in points])
    y = np.array([p.measured_ms for p in points])
    candidates = {"scale": [0], "scale+per-layer": [0, 1]}
    results = {}
    for name, cols in candidates.items():
        coef = _fit(X, y, cols)
        loo = np.array([
            X[i] @ _fit(np.delete(X, i, 0), np.delete(y, i), cols) if len(y) > len(cols) else np.nan
            for i in range(len(y))
        ])
        pred = X @ coef
        results[name] = {
            "k": float(coef[0]), "o_ms_per_layer": float(coef[1]), "predicted": pred, "loo": loo,
            "fit_mape_pct": float(np.mean(np.abs(pred - y) / y) * 100),
            "loo_mape_pct": float(np.nanmean(np.abs(loo - y) / y) * 100) if np.isfinite(loo).any() else float("nan"),
        }
    # keep the richer model only when it predicts held-out points better
    rich, simple = results["scale+per-layer"], results["scale"]
    chosen = "scale+per-layer" if np.isfinite(rich["loo_mape_pct"]) and rich["loo_mape_pct"] < simple["loo_mape_pct"] else "scale"
    return {"chosen": chosen, "results": results, "features": X, "measured": y}


def derive_table(base: LatencyTable, device: str, points: Sequence[CalibrationPoint], runtime: str,
                 device_description: str, name: str | None = None) -> LatencyTable:
    """A table for ``device``: every row of ``base`` rescaled by the fitted ``k`` and ``o``."""
    if base.provenance != "measured":
        raise TableError(f"base table '{base.name}' is {base.provenance}; derive from a measured table")
    fit = fit_device(base, points)
    best = fit["results"][fit["chosen"]]
    k, o = best["k"], best["o_ms_per_layer"]
    median = k * base.median_ms + o
    p90 = k * base.p90_ms + o
    cal_points = [
        {"model": p.model, "img_size": p.arch.img_size, "source": p.source, "measured_ms": p.measured_ms,
         "base_layer_sum_ms": float(fit["features"][i, 0]), "layers": int(fit["features"][i, 1]),
         "predicted_ms": float(best["predicted"][i]), "loo_predicted_ms": float(best["loo"][i])}
        for i, p in enumerate(points)
    ]
    alternatives = {n: {kk: v for kk, v in r.items() if kk not in ("predicted", "loo")} for n, r in fit["results"].items()}
    pts_text = ", ".join(f"{p.model.replace('LitePose-Auto-', '')} {p.measured_ms:g} ms" for p in points)
    details = (
        f"derived, not measured on the device: every row of the measured table '{base.name}' "
        f"({base.header.get('runtime')} {base.header.get('runtime_version', '')}, {base.header.get('threads')} threads, "
        f"{base.header.get('provenance', {}).get('details', '')}) rescaled as device_ms = {k:.4f} * local_ms + {o:.4f} ms "
        f"(model '{fit['chosen']}'), fitted by relative least squares to the Lite Pose paper's end-to-end latencies on "
        f"{device_description}: {pts_text} (LitePose-Auto architectures of mit-han-lab/litepose). "
        f"Leave-one-out MAPE {best['loo_mape_pct']:.1f} %, in-fit MAPE {best['fit_mape_pct']:.1f} %. "
        f"Replace it by running litepose-nas profile on the real device."
    )
    header = {
        "format_version": 1,
        "name": name or device,
        "device": device,
        "runtime": runtime,
        "runtime_version": "",
        "threads": None,
        "precision": "fp32 (assumed; the paper does not state it)",
        "batch": 1,
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "space": base.space_name,
        "space_digest": base.header.get("space_digest"),
        "stem_mid_channels": base.header.get("stem_mid_channels", 32),
        "num_joints": base.num_joints,
        "complete": bool(base.header.get("complete", True)),
        "provenance": {"kind": "derived", "details": details, "base_table": base.name,
                       "base_table_date": base.header.get("date")},
        "correction": {"scale": 1.0, "offset_ms": 0.0, "note": "the device fit is folded into the rows"},
        "calibration": {
            "model": fit["chosen"], "k": k, "o_ms_per_layer": o,
            "loo_mape_pct": best["loo_mape_pct"], "fit_mape_pct": best["fit_mape_pct"],
            "points": cal_points, "alternatives": alternatives,
            "not_used": (
                "device-data/hw-nas-bench-fbnet-cifar100 (Raspberry Pi 4 / Pixel 3, 32 px FBNet blocks, other runtime) and "
                "device-data/paddle-lite-sd855-blazeface (Snapdragon 855 CPU, Paddle-Lite, 3x3 kernels only): different "
                "runtimes, shapes and processors than the paper's measurements; in the original space every block is k7 e6, "
                "so their per-block-type ratios (k3 vs k5, e3 vs e6) cannot change these tables"
            ),
        },
    }
    return LatencyTable(header, list(base.configs), median, p90, base.samples.copy())


def paper_latency_csv() -> Path:
    """The paper's whole-model latencies, shipped in ``latency_tables/paper/``."""
    return shipped_dir("latency_tables") / PAPER_LATENCY_FILE


def derive_paper_tables(base: LatencyTable, out_dir: str | Path, suffix: str = "",
                        paper_csv: str | Path | None = None) -> list[LatencyTable]:
    """The shipped ``jetson-nano``, ``mobile`` and ``raspberry-pi-4`` tables from ``base``."""
    pts = paper_points(paper_csv if paper_csv is not None else paper_latency_csv())
    tables = []
    for col, (dev, desc) in PAPER_DEVICES.items():
        runtime = "tvm-auto-scheduler" if col != "mobile_ms" else "unknown (paper: Snapdragon 855 GPU)"
        t = derive_table(base, dev, pts[dev], runtime, desc, name=dev + suffix)
        t.save(Path(out_dir) / f"{dev}{suffix}.csv")
        tables.append(t)
    return tables


def read_points_csv(path: str | Path) -> list[CalibrationPoint]:
    """User measurements: a CSV with columns ``arch`` (architecture JSON path) and ``ms``."""
    path = Path(path)
    try:
        rows = list(csv.DictReader(path.open()))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not rows or not {"arch", "ms"} <= set(rows[0]):
        raise InputError(f"{path}: expected a CSV with columns arch,ms (architecture JSON path, measured ms)")
    out = []
    for i, r in enumerate(rows, start=2):
        arch_path = Path(r["arch"]) if Path(r["arch"]).is_absolute() else path.parent / r["arch"]
        try:
            ms = float(r["ms"])
        except ValueError:
            raise InputError(f"{path}: line {i}: ms {r['ms']!r} is not a number") from None
        if not ms > 0:
            raise InputError(f"{path}: line {i}: ms must be > 0, got {ms}")
        out.append(CalibrationPoint(arch_path.stem, Arch.from_json(arch_path), ms, str(path.name)))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Rebuild the shipped derived tables: ``python -m litepose_nas.latency.calibrate``."""
    import argparse

    from .table import load_table

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--base", default="x86-cpu-ort-2t")
    ap.add_argument("--paper-csv", default=None, help="whole-model latencies (default: the shipped paper table)")
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parents[2] / "latency_tables"))
    ap.add_argument("--suffix", default="")
    args = ap.parse_args(argv)
    for t in derive_paper_tables(load_table(args.base), args.out_dir, args.suffix, args.paper_csv):
        c = t.header["calibration"]
        print(f"{t.name}: model {c['model']}, k={c['k']:.4f}, o={c['o_ms_per_layer']:.4f} ms/layer, "
              f"LOO MAPE {c['loo_mape_pct']:.1f} %, fit MAPE {c['fit_mape_pct']:.1f} %")
        for p in c["points"]:
            print(f"   {p['model']:18s} measured {p['measured_ms']:7.1f}  fit {p['predicted_ms']:7.1f}  held-out {p['loo_predicted_ms']:7.1f}")


if __name__ == "__main__":
    main()
