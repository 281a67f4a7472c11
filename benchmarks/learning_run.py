"""Does the pipeline learn? A time-boxed supernet run and a static net trained alone, with curves.

    python benchmarks/learning_run.py --out runs/learning --minutes 15
    python benchmarks/learning_run.py --out runs/learning --minutes 15 --space litepose-elastic \\
        --resolution 128 --images 800 --json runs/learning/result.json
    # the static-subnet target of docs/training.md (20 min, one thread, AP every 100 steps)
    python benchmarks/learning_run.py --out runs/static20 --minutes 20 --threads 1 --skip-supernet \\
        --val-every 100 --png docs/figures/learning-static-easy.png --json runs/static20/result.json
    # the original recipe, for comparison
    python benchmarks/learning_run.py ... --push-loss exp --ae-weight 0.001 --tag-cost original

1. Generates the synthetic ``easy`` COCO-layout set (``litepose-nas data synth``) unless present.
2. Calibrates: a 4-step run of each job measures seconds per step, so the lr schedule (x0.1 at
   70% and 96% of the steps) is laid over the time budget.
3. Trains the supernet (``litepose-nas train-supernet``: sandwich rule, in-place distillation) and
   the space's smallest architecture alone (``litepose-nas train``), each for ``--minutes`` of
   wall time (``--time-limit``), one after the other by default, or side by side with
   ``--parallel`` (then each gets one thread, and both suffer the same machine load).
4. Reports AP on the held-out val images: the supernet's largest and smallest subnets (each
   extracted and BN-recalibrated) and the static smallest network; with ``--val-every`` also the
   learning curve (AP against minutes of training), as a table, in the JSON and as ``--png``.

Resumable: rerun the same command after an interruption and each unfinished job continues from its
last checkpoint (``--resume``) with the minutes it has left (training time summed from its
``metrics.jsonl``). The time limit counts in-run validations too, so the training itself gets less.
All commands are printed, so each step can be rerun by hand. Wall time on a shared machine
depends on what else runs: the script records the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "litepose_nas.cli", *map(str, args)]


def _run(cmd: list[str], env: dict | None = None, quiet: bool = False) -> subprocess.CompletedProcess:
    print("$", " ".join(cmd[2:] if cmd[1:3] == ["-m", "litepose_nas.cli"] else cmd), flush=True)
    proc = subprocess.run(cmd, env=env, text=True, capture_output=quiet)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr or "")
        raise SystemExit(f"command failed with status {proc.returncode}")
    return proc


def _seconds_per_step(run_dir: Path, batch: int) -> float:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["images_per_s"] for r in rows if "images_per_s" in r][1:]  # the first step warms up
    return batch / statistics.median(speeds)


def _rows(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _training_seconds(run_dir: Path, batch: int, until: int | None = None) -> float:
    """Training time of a run (validation excluded), from its per-step log rows (--log-every 1)."""
    return sum(batch / r["images_per_s"] for r in _rows(run_dir)
               if r.get("images_per_s") and (until is None or r["step"] <= until))


def _curve(run_dir: Path, batch: int) -> list[dict]:
    """AP of each validation of a run against its training minutes so far."""
    return [{"step": r["step"], "minutes": round(_training_seconds(run_dir, batch, r["step"]) / 60.0, 3),
             "AP": {net: round(m["AP"], 4) for net, m in r["validation"].items()}}
            for r in _rows(run_dir) if "validation" in r]


def _plot(curves: dict[str, list[dict]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, points in curves.items():
        for net in (points[0]["AP"] if points else {}):
            ax.plot([p["minutes"] for p in points], [p["AP"][net] for p in points], marker="o", label=f"{name}: {net}")
    ax.set_xlabel("training minutes")
    ax.set_ylabel("AP (held-out synthetic val)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def data_preset(data: Path) -> str | None:
    """The preset an existing synthetic set was generated with (its ``synth.json``), else None."""
    try:
        return json.loads((Path(data) / "synth.json").read_text()).get("preset")
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/learning")
    p.add_argument("--data", default=None, help="existing dataset folder (default: OUT/data, generated)")
    p.add_argument("--images", type=int, default=800, help="synthetic images (10%% become val)")
    p.add_argument("--preset", choices=("easy", "medium", "hard"), default="easy", help="synthetic data preset")
    p.add_argument("--space", default="litepose-elastic")
    p.add_argument("--resolution", default="128",
                   help="training input size, or sizes drawn per step (64,80,96,112,128: the litepose space's "
                        "elastic resolution at 1/4 scale, what `predictor collect --resolution-scale 0.25` evaluates)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--steps", type=int, default=0,
                   help="planned steps (the lr schedule's length) instead of the calibrated estimate: on a loaded "
                        "machine the 4-step calibration is optimistic and the schedule's decays never come")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--val-images", type=int, default=80)
    p.add_argument("--ae-weight", type=float, default=None,
                   help="push and pull factors (default: the recipe's; original: 0.001)")
    p.add_argument("--push-loss", choices=("exp", "max"), default=None, help="default: the recipe's")
    p.add_argument("--tag-cost", choices=("original", "distance"), default=None, help="default: the recipe's")
    p.add_argument("--val-every", type=int, default=0, help="validate every N steps: the learning curve (0: end only)")
    p.add_argument("--png", default=None, help="write the learning curves here (needs --val-every)")
    p.add_argument("--parallel", action="store_true", help="run both jobs at once, one thread each")
    p.add_argument("--skip-static", action="store_true")
    p.add_argument("--skip-supernet", action="store_true")
    p.add_argument("--json", dest="json_out", default=None)
    args = p.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else out / "data"
    if not data.exists():
        _run(_cli("data", "synth", "--out", data, "--images", args.images, "--layout", "coco", "--preset", args.preset,
                  "--seed", "0", "--quiet"))
    from litepose_nas.space import SearchSpace

    space = SearchSpace.from_yaml(args.space)
    smallest = out / "smallest.json"
    space.smallest().to_json(smallest)
    threads = 1 if args.parallel else args.threads
    common = ["--data", data, "--dataset", "coco", "--resolutions", args.resolution, "--batch-size", args.batch_size,
              "--lr", args.lr, "--threads", threads, "--workers", args.workers, "--val-images", args.val_images,
              "--log-every", "1", "--quiet"]
    if args.ae_weight is not None:
        common += ["--push-weight", args.ae_weight, "--pull-weight", args.ae_weight]
    if args.push_loss:
        common += ["--push-loss", args.push_loss]
    if args.tag_cost:
        common += ["--tag-cost", args.tag_cost]
    jobs = {"supernet": ["train-supernet", "--space", args.space], "static": ["train", "--arch", smallest]}
    if args.skip_static:
        del jobs["static"]
    if args.skip_supernet:
        del jobs["supernet"]
    if not jobs:
        raise SystemExit("--skip-static and --skip-supernet leave nothing to run")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}

    # 1. calibration: seconds per step of each job on this machine, now (kept for a resumed run)
    plan_path = out / "plan.json"
    plan = json.loads(plan_path.read_text()) if plan_path.is_file() else {}
    per_step = {k: v for k, v in plan.get("seconds_per_step", {}).items() if k in jobs}
    for name, head in jobs.items():
        if name in per_step:
            continue
        cal = out / f"calibrate-{name}"
        if cal.exists():
            import shutil

            shutil.rmtree(cal)
        _run(_cli(*head, *common, "--out", cal, "--steps", "4", "--val-every", "-1"), env)
        per_step[name] = _seconds_per_step(cal, args.batch_size)
    budget = args.minutes * 60.0
    steps = {name: args.steps or max(10, int(budget / s)) for name, s in per_step.items()}
    steps.update({k: v for k, v in plan.get("planned_steps", {}).items() if k in jobs})
    from litepose_nas.io import write_json_atomic

    write_json_atomic(plan_path, {"seconds_per_step": per_step, "planned_steps": steps})
    print("seconds per step:", {k: round(v, 3) for k, v in per_step.items()}, "-> steps:", steps, flush=True)

    # 2. the time-boxed runs (validation and weights are written after the limit)
    load_before = os.getloadavg()
    cmds = {}
    for name, head in jobs.items():
        run_dir = out / name
        minutes = args.minutes
        extra: list = ["--val-every", args.val_every] if args.val_every else []
        if (run_dir / "checkpoint.pt").is_file():
            minutes = args.minutes - _training_seconds(run_dir, args.batch_size) / 60.0
            extra.append("--resume")
            print(f"{name}: resuming with {minutes:.1f} of {args.minutes:g} minutes left", flush=True)
        elif run_dir.exists():
            raise SystemExit(f"{run_dir} exists without a checkpoint: remove it or choose another --out")
        cmds[name] = _cli(*head, *common, "--out", run_dir, "--steps", steps[name],
                          "--time-limit", max(minutes, 0.01), "--checkpoint-every", "50", "--json", *extra)
    t0 = time.time()
    results = {}
    if args.parallel:
        procs = {}
        for name, cmd in cmds.items():
            print("$", " ".join(map(str, cmd[2:])), flush=True)
            procs[name] = subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE)
        for name, proc in procs.items():
            stdout, _ = proc.communicate()
            if proc.returncode:
                raise SystemExit(f"{name} failed with status {proc.returncode}")
            results[name] = json.loads(stdout)
    else:
        for name, cmd in cmds.items():
            results[name] = json.loads(_run(cmd, env, quiet=True).stdout)
    wall = time.time() - t0
    load_after = os.getloadavg()

    report = {
        "space": args.space, "preset": data_preset(data) if args.data else args.preset, "resolution": args.resolution, "batch_size": args.batch_size, "lr": args.lr,
        "minutes": args.minutes, "ae_weight": args.ae_weight, "push_loss": args.push_loss, "tag_cost": args.tag_cost, "threads_per_job": threads, "parallel": args.parallel, "data": str(data),
        "train_images": args.images - max(1, round(args.images * 0.1)), "val_images": args.val_images,
        "seconds_per_step": per_step, "planned_steps": steps, "wall_s": round(wall, 1),
        "load_average_before": load_before, "load_average_after": load_after,
        "supernet": results.get("supernet"), "static": results.get("static"),
    }
    curves = {name: _curve(out / name, args.batch_size) for name in jobs}
    report["curves"] = curves
    rows = []
    if "supernet" in results:
        v = results["supernet"]["validation"]
        rows += [("supernet: largest subnet", results["supernet"]["steps"], v["largest"]),
                 ("supernet: smallest subnet (BN recalibrated)", results["supernet"]["steps"], v["smallest"])]
    if "static" in results:
        rows.append(("static smallest, trained alone", results["static"]["steps"], results["static"]["validation"]["model"]))
    print(f"\n{args.space} @ {args.resolution} px, {args.minutes:g} min each, batch {args.batch_size}, lr {args.lr:g}, "
          f"{threads} thread(s) per job; load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(f"{'network':46} {'steps':>6} {'AP':>6} {'AP50':>6}")
    for name, n, m in rows:
        print(f"{name:46} {n:>6} {m['AP']:>6.3f} {m['AP50']:>6.3f}")
    for name, points in curves.items():
        if len(points) > 1:
            print(f"\nlearning curve, {name}:")
            print(f"{'step':>6} {'train min':>9} " + " ".join(f"{k + ' AP':>14}" for k in points[0]["AP"]))
            for pt in points:
                print(f"{pt['step']:>6} {pt['minutes']:>9.2f} " + " ".join(f"{v:>14.3f}" for v in pt["AP"].values()))
    if args.png:
        _plot(curves, args.png, f"{args.space} @ {args.resolution} px, {args.preset if not args.data else args.data}, "
                                f"load {load_before[0]:.1f}")
        print(f"curves: {args.png}")
    if args.json_out:
        from litepose_nas.io import write_json_atomic

        write_json_atomic(args.json_out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
