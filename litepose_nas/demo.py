"""The embedded default: the whole pipeline, end to end, on a freshly generated synthetic dataset.

``run_demo(out_dir)`` (CLI: ``litepose-nas demo --out DIR``) generates data, trains a small
supernet of the original ``litepose`` space, collects exact subnet evaluations, fits the accuracy
predictor, profiles a quick local latency table, searches under three latency budgets, fine-tunes
the chosen subnet, evaluates it, exports it to ONNX, runs it on a held-out image and writes
``report.md`` + ``summary.json``.

**Proxy resolution.** Training and evaluating subnets at their real 256-512 px is far beyond a
2-core CPU in minutes, so the supernet is trained at small inputs and every architecture is
evaluated at ``img_size x resolution_scale`` (1/4: 64-128 px). The predictor it fits ranks
architectures by that proxy AP; the latency constraint still uses the architectures' real input
sizes. Both facts are written into the predictor's provenance and the report.

Each stage records its outputs in ``DIR/state.json``; a rerun into the same folder skips the stages
already done (resume after an interruption).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import InputError, JobError
from .io import write_json_atomic, write_text_atomic

SPACE_NAME = "litepose"
FULL_TABLE = "x86-cpu-ort-2t"
DATASET = "coco"
STATE_FILE = "state.json"


@dataclass(frozen=True)
class DemoSettings:
    """How big each stage is. :meth:`full` targets < 10 min on 2 cores, :meth:`fast` < 2 min."""

    mode: str
    images: int
    image_size: int
    train_resolutions: tuple[int, ...]
    supernet_steps: int
    supernet_minutes: float
    batch_size: int
    archs: int
    calib_batches: int
    val_images: int
    predictor_model: str
    search_population: int
    search_generations: int
    finetune_steps: int
    finetune_minutes: float
    profile_budget_s: float
    profile_repeats: int
    latency_runs: int
    resolution_scale: float = 0.25
    threads: int = 2

    @classmethod
    def full(cls) -> "DemoSettings":
        return cls("full", images=300, image_size=128, train_resolutions=(64, 96, 128), supernet_steps=400,
                   supernet_minutes=5.0, batch_size=8, archs=20, calib_batches=1, val_images=16,
                   predictor_model="auto", search_population=40, search_generations=30, finetune_steps=200,
                   finetune_minutes=1.0, profile_budget_s=0.05, profile_repeats=5, latency_runs=20)

    @classmethod
    def fast(cls) -> "DemoSettings":
        return cls("fast", images=30, image_size=96, train_resolutions=(64,), supernet_steps=2,
                   supernet_minutes=0.5, batch_size=4, archs=6, calib_batches=1, val_images=2,
                   predictor_model="ridge", search_population=16, search_generations=6, finetune_steps=2,
                   finetune_minutes=0.25, profile_budget_s=0.01, profile_repeats=2, latency_runs=3)


def proxy_size(img_size: int, scale: float) -> int:
    """The proxy input size of an architecture (a multiple of 16, at least 64)."""
    return max(64, int(round(img_size * scale / 16)) * 16)


class _Stages:
    """Runs named stages once; their results persist in ``state.json`` so a rerun skips them."""

    def __init__(self, out: Path, quiet: bool, settings: DemoSettings, seed: int) -> None:
        self.out, self.quiet = out, quiet
        self.path = out / STATE_FILE
        identity = {"settings": dataclasses.asdict(settings), "seed": seed}
        self.state: dict[str, Any] = {"identity": identity, "stages": {}}
        if self.path.is_file():
            saved = json.loads(self.path.read_text())
            if saved.get("identity") != json.loads(json.dumps(identity)):
                raise InputError(f"{out} holds a demo run with other settings (mode / seed); choose another --out")
            self.state = saved

    def run(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        done = self.state["stages"].get(name)
        if done is not None:
            self.say(f"[{name}] done already ({done['seconds']:.1f} s), skipped")
            return done
        self.say(f"[{name}] ...")
        start = time.perf_counter()
        result = fn()
        result["seconds"] = round(time.perf_counter() - start, 2)
        self.state["stages"][name] = result
        write_json_atomic(self.path, self.state)
        self.say(f"[{name}] {result['seconds']:.1f} s")
        return result

    def say(self, msg: str) -> None:
        if not self.quiet:
            import click

            click.echo(msg, err=True)


def _load_avg() -> list[float] | None:
    try:
        import os

        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _time_onnx(path: Path, size: int, runs: int, threads: int) -> float:
    """Median onnxruntime latency (ms) of the exported model on a 1 x 3 x size x size input."""
    from .export import ort_session

    sess = ort_session(path, threads=threads)
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    for _ in range(2):
        sess.run(None, {name: x})
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def run_demo(out_dir: str | Path, *, fast: bool = False, seed: int = 0, quiet: bool = False,
             ship: str | None = None, settings: DemoSettings | None = None) -> dict[str, Any]:
    """Run the whole pipeline into ``out_dir``; returns the summary (also ``summary.json``).

    ``ship``: also copy the fitted predictor into the package's shipped ``predictors/<ship>``.
    """
    import torch

    settings = settings or (DemoSettings.fast() if fast else DemoSettings.full())
    if ship is not None:
        _check_ship_name(ship)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder (--out takes a folder)")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    stages = _Stages(out, quiet, settings, seed)
    t_total = time.perf_counter()
    # the load when the run began (kept across resumed sessions)
    load_start = stages.state.setdefault("load_average_start", _load_avg())
    progress = not quiet

    from .space import Arch, SearchSpace

    space = SearchSpace.from_yaml(SPACE_NAME)
    data_dir = out / "data"

    # ------------------------------------------------------------------ 1. data
    def data_stage() -> dict[str, Any]:
        from .data import generate_synthetic

        if data_dir.exists():  # a half-written set from a killed run: generate_synthetic refuses it
            shutil.rmtree(data_dir)
        generate_synthetic(data_dir, settings.images, layout=DATASET, preset="easy", seed=seed,
                           image_size=settings.image_size, progress=progress)
        return {"path": str(data_dir), "images": settings.images, "image_size": settings.image_size,
                "layout": DATASET, "preset": "easy"}

    data_info = stages.run("data", data_stage)

    # ------------------------------------------------------------------ 2. supernet
    sup_dir = out / "supernet"

    def supernet_stage() -> dict[str, Any]:
        from .train import Trainer, default_config

        if sup_dir.exists():  # an interrupted run: start over (it is short)
            shutil.rmtree(sup_dir)
        cfg = default_config("supernet", dataset=DATASET, data=str(data_dir), space=space.to_dict(),
                             resolutions=settings.train_resolutions, steps=settings.supernet_steps,
                             batch_size=settings.batch_size, num_workers=0, val_every=-1, seed=seed,
                             checkpoint_every=max(50, settings.supernet_steps), log_every=5)
        res = Trainer(cfg, sup_dir, quiet=quiet, time_limit_s=settings.supernet_minutes * 60).run()
        loss = [h["loss"] for h in res.history]
        return {"path": str(res.weights), "steps": res.step, "stopped_early": res.stopped_early,
                "resolutions": list(settings.train_resolutions), "batch_size": settings.batch_size,
                "first_loss": loss[0] if loss else None, "last_loss": float(np.mean(loss[-5:])) if loss else None}

    sup_info = stages.run("supernet", supernet_stage)
    supernet_path = Path(sup_info["path"])

    # ------------------------------------------------------------------ 3. predictor data + fit
    evals_csv = out / "predictor_data" / "evals.csv"
    pred_dir = out / "predictor"

    def collect_stage() -> dict[str, Any]:
        from .predictors import collect_evals

        evals_csv.parent.mkdir(parents=True, exist_ok=True)
        info = collect_evals(supernet_path, data_dir, DATASET, settings.archs, evals_csv, space,
                             calib_batches=settings.calib_batches, batch_size=settings.batch_size,
                             val_images=settings.val_images, seed=seed, progress=progress,
                             resolution_scale=settings.resolution_scale)
        return {"path": str(evals_csv), **info}

    stages.run("collect", collect_stage)

    def fit_stage() -> dict[str, Any]:
        from .predictors import fit_predictor, read_evals

        table = read_evals(evals_csv)
        folds = min(5, len(table) // 2)
        pred = fit_predictor(space, table.encoded(space), table.targets, model=settings.predictor_model,
                             folds=folds, seed=seed, compare=None if settings.predictor_model == "auto" else
                             [settings.predictor_model], progress=False)
        pred.provenance.update({
            "name": ship or "demo",
            "description": "fitted by `litepose-nas demo` on synthetic data (NOT COCO): ranks subnets by a "
                           "proxy AP, see proxy",
            "dataset": {"kind": "synthetic", "layout": DATASET, "preset": "easy", "images": settings.images,
                        "image_size": settings.image_size, "seed": seed},
            "supernet": {"space": space.name, "steps": sup_info["steps"], "resolutions": sup_info["resolutions"],
                         "batch_size": settings.batch_size},
            "archs": len(table),
            "evaluation": {"calib_batches": settings.calib_batches, "val_images": settings.val_images,
                           "metric": "AP (pycocotools, COCO keypoints)"},
            "proxy": {"resolution_scale": settings.resolution_scale,
                      "note": "each arch evaluated at max(64, round(img_size * scale / 16) * 16) px, not its "
                              "img_size; the test resize rounds the short side up to a multiple of 64"},
            "cv": pred.cv_report,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": f"litepose-nas demo --out {out}" + (" --fast" if settings.mode == "fast" else "")
                       + f" --seed {seed} --supernet-minutes {settings.supernet_minutes:g} --archs {settings.archs}"
                       + (f" --ship {ship}" if ship else ""),
            "settings": dataclasses.asdict(settings),
        })
        pred.save(pred_dir)
        best = next(s for s in pred.cv_report["scores"] if s["model"] == pred.cv_report["best"])
        return {"path": str(pred_dir), "model": pred.kind,
                "rows": len(table), "cv_best": pred.cv_report["best"], "cv_kendall_tau": best["kendall_tau"],
                "cv_rmse": best["rmse"], "ap_min": float(table.targets.min()), "ap_max": float(table.targets.max())}

    fit_info = stages.run("fit", fit_stage)
    if ship:
        _ship_predictor(pred_dir, ship)

    # ------------------------------------------------------------------ 4. latency
    quick_csv = out / "latency" / "local-quick.csv"

    def latency_stage() -> dict[str, Any]:
        from .latency.profiler import ProfileSettings, profile_space
        from .latency.runners import TimingPolicy

        quick_csv.parent.mkdir(parents=True, exist_ok=True)
        policy = TimingPolicy(warmup=1, min_repeats=settings.profile_repeats, max_repeats=3 * settings.profile_repeats,
                              budget_s=settings.profile_budget_s, max_wait_s=1.0)
        net_policy = TimingPolicy(warmup=1, min_repeats=settings.profile_repeats,
                                  max_repeats=3 * settings.profile_repeats, budget_s=5 * settings.profile_budget_s,
                                  max_wait_s=2.0)
        ps = ProfileSettings(device_name="demo-local-quick", threads=settings.threads, quick=True, seed=seed,
                             networks_only=True, policy=policy, net_policy=net_policy, speed_guard=False, passes=1)
        # no waiting for uncontended samples or nominal speed: the demo must finish in minutes on a shared machine
        table = profile_space(space, quick_csv, ps, progress=progress, detect_contention=False)
        return {"path": str(quick_csv), "layers": int(len(table.median_ms)),
                "correction": {k: table.header["correction"][k] for k in ("scale", "offset_ms")}}

    lat_info = stages.run("latency", latency_stage)

    # ------------------------------------------------------------------ 5. search
    search_dir = out / "search"

    def search_stage() -> dict[str, Any]:
        from .latency import load_table
        from .predictors import load_predictor
        from .search import SearchBudget, latency_constraint, predictor_objective, search

        table = load_table(FULL_TABLE, space)
        pool = space.sample_encoded(np.random.default_rng(seed), 20000)
        ms = table.predict(pool, space=space)
        limits = [round(float(q), 1) for q in np.quantile(ms, [0.25, 0.5, 0.75])]
        pred = load_predictor(pred_dir, space)
        budget = SearchBudget(population=settings.search_population, generations=settings.search_generations)
        result = search(space, predictor_objective(pred, space), latency_constraint(table, space, limits[-1]),
                        budget, seed, algo="evolution", limits=limits, progress=progress)
        paths = result.save(search_dir)
        chosen = [{"limit_ms": c.limit, "arch": c.arch.to_dict() if c.arch else None, "predicted_ap": c.score,
                   "latency_ms": c.cost} for c in result.best]
        return {"table": FULL_TABLE, "limits_ms": limits, "space_latency_ms": [float(ms.min()), float(ms.max())],
                "evaluations": result.evaluations, "paths": {k: str(v) for k, v in paths.items()}, "chosen": chosen}

    search_info = stages.run("search", search_stage)

    # ------------------------------------------------------------------ 6. exact check of the chosen archs
    chosen_archs = [Arch.from_dict(c["arch"]) for c in search_info["chosen"] if c["arch"] is not None]
    if not chosen_archs:
        raise JobError("the search found no architecture under any budget")
    # the middle budget's winner is deployed (the tightest when fewer were found)
    target = chosen_archs[len(chosen_archs) // 2] if len(chosen_archs) == 3 else chosen_archs[0]
    proxy = proxy_size(target.img_size, settings.resolution_scale)

    def check_stage() -> dict[str, Any]:
        from .cost import macs
        from .latency import load_table
        from .predictors import ExactPredictor

        exact = ExactPredictor.from_files(supernet_path, data_dir, DATASET, space, calib_batches=settings.calib_batches,
                                          batch_size=settings.batch_size, val_images=settings.val_images, seed=seed,
                                          resolution_scale=settings.resolution_scale)
        quick = load_table(quick_csv, space)
        rows = []
        for c in search_info["chosen"]:
            if c["arch"] is None:
                rows.append({"limit_ms": c["limit_ms"], "arch": None})
                continue
            arch = Arch.from_dict(c["arch"])
            try:
                quick_ms: float | None = float(quick.predict_archs([arch])[0])
            except Exception:  # noqa: BLE001 - a quick table covers only some layers (TableError)
                quick_ms = None
            rows.append({"limit_ms": c["limit_ms"], "arch": c["arch"], "img_size": arch.img_size,
                         "proxy_size": proxy_size(arch.img_size, settings.resolution_scale),
                         "gmacs": float(macs(arch, convention="paper") / 1e9),
                         "predicted_ap": c["predicted_ap"], "supernet_ap": exact.evaluate_arch(arch)["metrics"]["AP"],
                         "full_table_ms": c["latency_ms"], "quick_table_ms": quick_ms})
        # the quick table's own networks: where it can be compared with the full table
        from .latency.profiler import quick_archs

        qa = quick_archs(space, seed)
        compare = [{"img_size": a.img_size, "quick_ms": float(q), "full_ms": float(f)} for a, q, f in
                   zip(qa, quick.predict_archs(qa), load_table(FULL_TABLE, space).predict_archs(qa))]
        return {"rows": rows, "quick_vs_full": compare}

    check_info = stages.run("check", check_stage)

    # ------------------------------------------------------------------ 7. fine-tune the chosen subnet
    ft_dir = out / "finetune"
    train_res = max(64, int(round(proxy / 32)) * 32)

    def finetune_stage() -> dict[str, Any]:
        from .train import Trainer, default_config

        if ft_dir.exists():
            shutil.rmtree(ft_dir)
        cfg = default_config("subnet", dataset=DATASET, data=str(data_dir), arch=target.to_dict(),
                             init_from=str(supernet_path), resolutions=(train_res,), steps=settings.finetune_steps,
                             batch_size=settings.batch_size, num_workers=0, val_every=-1, seed=seed,
                             checkpoint_every=max(50, settings.finetune_steps), log_every=5)
        res = Trainer(cfg, ft_dir, quiet=quiet, time_limit_s=settings.finetune_minutes * 60).run()
        return {"path": str(res.weights), "steps": res.step, "resolution": train_res, "arch": target.to_dict()}

    ft_info = stages.run("finetune", finetune_stage)

    # ------------------------------------------------------------------ 8. evaluate, export, infer
    def evaluate_stage() -> dict[str, Any]:
        from .data import open_dataset
        from .evaluate import evaluate_model
        from .export import model_from_weights

        model = model_from_weights(target, ft_info["path"])
        val = open_dataset(data_dir, DATASET, "val")
        res = evaluate_model(model, val, input_size=proxy, progress=progress,
                             results_file=out / "evaluate" / "results.json")
        return {"metrics": {k: float(v) for k, v in res.metrics.items()}, "num_images": res.num_images,
                "input_size": proxy, "results_file": str(out / "evaluate" / "results.json")}

    eval_info = stages.run("evaluate", evaluate_stage)
    export_dir = out / "export"

    def export_stage() -> dict[str, Any]:
        from .export import export_model, model_from_weights

        # deployed at the proxy size it was trained at: a bottom-up network is not scale invariant
        deployed = dataclasses.replace(target, img_size=proxy)
        model = model_from_weights(deployed, ft_info["path"])
        if export_dir.exists():
            shutil.rmtree(export_dir)
        res = export_model(model, export_dir, source=str(ft_info["path"]))
        onnx_path = res.files["onnx"]
        measured = {"proxy_ms": _time_onnx(onnx_path, proxy, settings.latency_runs, settings.threads),
                    "real_ms": _time_onnx(onnx_path, target.img_size, settings.latency_runs, settings.threads)}
        return {"files": {k: str(v) for k, v in res.files.items()}, "parity": res.parity.max_abs_diff,
                "img_size": proxy, "measured_latency": measured}

    export_info = stages.run("export", export_stage)

    def infer_stage() -> dict[str, Any]:
        from .data import open_dataset
        from .export import run_inference

        val = open_dataset(data_dir, DATASET, "val")
        image_id = val.image_ids[0]
        truth = sum(1 for a in val.annotations(image_id) if a.get("num_keypoints", 1) > 0 and not a.get("iscrowd"))
        rep = run_inference(export_info["files"]["onnx"], [val.image_path(image_id)], out / "infer",
                            threads=settings.threads)
        return {"image": str(val.image_path(image_id)), "people_found": rep.num_people, "people_true": truth,
                "json": str(rep.json_path), "drawing": rep.images[0]["drawing"]}

    infer_info = stages.run("infer", infer_stage)

    # ------------------------------------------------------------------ 9. report
    times = {name: s["seconds"] for name, s in stages.state["stages"].items()}
    summary = {
        "mode": settings.mode, "seed": seed, "settings": dataclasses.asdict(settings),
        "machine": {"host": platform.node(), "processor": platform.processor() or platform.machine(),
                    "torch_threads": settings.threads, "load_average_start": load_start,
                    "load_average_end": _load_avg()},
        "stage_seconds": times, "total_seconds": round(sum(times.values()), 2),
        "wall_seconds_this_session": round(time.perf_counter() - t_total, 2),
        "data": data_info, "supernet": sup_info, "predictor": fit_info, "latency": lat_info,
        "search": search_info, "chosen": check_info["rows"], "quick_vs_full": check_info["quick_vs_full"],
        "deployed": {
            "arch": target.to_dict(), "img_size": target.img_size, "proxy_size": proxy,
            "finetune": ft_info, "evaluation": eval_info, "export": export_info, "inference": infer_info},
        "shipped_predictor": ship,
    }
    summary["artefacts"] = {
        "data": str(data_dir), "supernet": str(supernet_path), "evals": str(evals_csv), "predictor": str(pred_dir),
        "quick_latency_table": str(quick_csv), "search_result": search_info["paths"].get("result"),
        "pareto_png": search_info["paths"].get("pareto"), "best_arch": search_info["paths"].get("best"),
        "finetuned_weights": ft_info["path"], "eval_results": eval_info["results_file"],
        **{f"export_{k}": v for k, v in export_info["files"].items()},
        "people_json": infer_info["json"], "inference_image": infer_info["drawing"],
        "report": str(out / "report.md"), "summary": str(out / "summary.json"),
    }
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "report.md", render_report(summary, out))
    stages.say(f"report: {out / 'report.md'}")
    return summary


def _ship_predictor(pred_dir: Path, name: str) -> Path:
    """Copy the fitted predictor into the package's shipped ``predictors/<name>``."""
    from .resources import shipped_dir

    _check_ship_name(name)
    dest = shipped_dir("predictors") / name
    tmp = dest.with_name(f".{name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(pred_dir, tmp)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


def _check_ship_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise InputError(f"--ship {name!r}: a plain folder name is expected (letters, digits, '.', '_', '-')")


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def render_report(s: dict[str, Any], out: Path) -> str:
    """The one-page Markdown report (paths relative to ``out``)."""

    def rel(p: str | None) -> str:
        if not p:
            return ""
        try:
            return str(Path(p).resolve().relative_to(out.resolve()))
        except ValueError:
            return str(p)

    st, sett = s["stage_seconds"], s["settings"]
    dep = s["deployed"]
    # the first line says what the run can show: --fast trains for seconds, its AP means nothing
    title = ("# litepose-nas demo (fast): a plumbing check, not a measure of accuracy (AP near 0 is expected)"
             if s["mode"] == "fast" else f"# litepose-nas demo ({s['mode']})")
    lines = [
        title,
        "",
        f"Seed {s['seed']}, {sett['threads']} threads, load average at start {s['machine']['load_average_start']}, "
        f"at end {s['machine']['load_average_end']} (other jobs may share the cores). "
        f"Total {s['total_seconds']:.0f} s.",
        "",
        "**Everything here is fitted on synthetic data** (easy preset, COCO layout), not on COCO. "
        f"**Proxy resolution:** the supernet trained at {sett['train_resolutions']} px and every architecture "
        f"was evaluated at img_size x {sett['resolution_scale']:g} (64-128 px) instead of its real 256-512 px; "
        f"predicted / measured AP are proxy APs. Latencies are for the real img_size.",
        "",
        "## Stages",
        "",
        "| stage | seconds | what |",
        "| --- | ---: | --- |",
        f"| data | {st.get('data', 0):.1f} | {s['data']['images']} synthetic images of {s['data']['image_size']} px |",
        f"| supernet | {st.get('supernet', 0):.1f} | {s['supernet']['steps']} sandwich steps, batch "
        f"{s['supernet']['batch_size']}, loss {_fmt(s['supernet']['first_loss'], '.4g')} -> "
        f"{_fmt(s['supernet']['last_loss'], '.4g')} |",
        f"| collect | {st.get('collect', 0):.1f} | {s['predictor']['rows']} stratified subnets evaluated exactly "
        f"(BN recalibrated, {sett['val_images']} val images) |",
        f"| fit | {st.get('fit', 0):.1f} | predictor `{s['predictor']['cv_best']}`, CV Kendall tau "
        f"{s['predictor']['cv_kendall_tau']:.3f}, RMSE {s['predictor']['cv_rmse']:.4f} |",
        f"| latency | {st.get('latency', 0):.1f} | quick local table ({rel(s['latency']['path'])}) |",
        f"| search | {st.get('search', 0):.1f} | evolution, {s['search']['evaluations']} evaluations, budgets "
        f"{s['search']['limits_ms']} ms on `{s['search']['table']}` |",
        f"| check | {st.get('check', 0):.1f} | chosen archs evaluated exactly on the supernet |",
        f"| finetune | {st.get('finetune', 0):.1f} | {dep['finetune']['steps']} steps at {dep['finetune']['resolution']} px |",
        f"| evaluate | {st.get('evaluate', 0):.1f} | {dep['evaluation']['num_images']} val images at {dep['proxy_size']} px |",
        f"| export | {st.get('export', 0):.1f} | ONNX, parity {dep['export']['parity']:.2g} |",
        f"| infer | {st.get('infer', 0):.1f} | held-out image: {dep['inference']['people_found']} people found, "
        f"{dep['inference']['people_true']} annotated |",
        "",
        "## Search",
        "",
        f"The search used the shipped full table `{s['search']['table']}` (measured on this machine kind); the "
        "quick local table covers only the layers of a few networks, so it predicts only archs made of those "
        "layers (n/a otherwise).",
        "",
        "Quick local table vs the shipped full table on the quick table's own networks (ms): "
        + ", ".join(f"{c['img_size']} px {c['quick_ms']:.1f} vs {c['full_ms']:.1f}" for c in s["quick_vs_full"]) + ".",
        "",
        f"![Pareto front]({rel(s['search']['paths'].get('pareto'))})",
        "",
        "| budget ms | img | GMACs | predicted AP | supernet AP | full-table ms | quick-table ms | widths |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in s["chosen"]:
        if r.get("arch") is None:
            lines.append(f"| {r['limit_ms']:g} | none found | | | | | | |")
            continue
        widths = "/".join(str(st_["channel"]) for st_ in _stages_of(r["arch"]))
        lines.append(f"| {r['limit_ms']:g} | {r['img_size']} ({r['proxy_size']}) | {r['gmacs']:.2f} | "
                     f"{_fmt(r['predicted_ap'])} | {_fmt(r['supernet_ap'])} | {_fmt(r['full_table_ms'], '.1f')} | "
                     f"{_fmt(r['quick_table_ms'], '.1f')} | {widths} |")
    m = dep["evaluation"]["metrics"]
    lat = dep["export"]["measured_latency"]
    lines += [
        "",
        "## Deployed subnet",
        "",
        f"img_size {dep['img_size']} (deployed at the proxy {dep['proxy_size']} px it was trained at), fine-tuned "
        f"from the supernet for {dep['finetune']['steps']} steps. Files: {rel(dep['export']['files'].get('onnx'))}, "
        f"{rel(dep['export']['files'].get('metadata'))}, {rel(dep['export']['files'].get('weights'))}.",
        "",
        "| AP | AP50 | AP75 | AR | onnxruntime ms at " + f"{dep['proxy_size']} px | at {dep['img_size']} px |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {_fmt(m.get('AP'))} | {_fmt(m.get('AP50', m.get('AP .5')))} | {_fmt(m.get('AP75', m.get('AP .75')))} | "
        f"{_fmt(m.get('AR'))} | {lat['proxy_ms']:.1f} | {lat['real_ms']:.1f} |",
        "",
        f"Inference on a held-out image ({dep['inference']['people_found']} found, "
        f"{dep['inference']['people_true']} annotated):",
        "",
        f"![inference]({rel(dep['inference']['drawing'])})",
        "",
        "Machine-readable: `summary.json`. Predictor: `predictor/` (ship it with `litepose-nas demo --ship NAME`).",
        "",
    ]
    return "\n".join(lines)


def _stages_of(arch: dict[str, Any]) -> list[dict[str, Any]]:
    from .space import Arch

    return [{"channel": st.channel} for st in Arch.from_dict(arch).stages]
