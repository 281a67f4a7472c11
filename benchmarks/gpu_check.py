"""One script to run on a GPU machine: does the CUDA path of litepose-nas work, and how fast is it?

    python benchmarks/gpu_check.py --json gpu_check.json        # < 8 min on one modern GPU
    python benchmarks/gpu_check.py --cpu --json cpu_check.json  # the tiny CPU version (what the test runs)

Steps (each reported ok / FAILED with its figures; the exit status is 1 if any failed):

1. ``step_agreement``: one training step (forward, loss, backward) of the same network on the same
   batch from the same weights, in fp32 (TF32 off), channels-last, on the CPU and on CUDA: loss and gradients
   agree within the stated tolerance (relative, on the whole gradient vector). Without CUDA the
   CPU in channels-first is compared with the CPU in channels-last.
2. ``train_supernet_amp``: ``litepose-nas train-supernet`` for N steps on synthetic data with
   ``--amp auto`` (bf16 or fp16 + scaler; ``--amp bf16`` on the CPU) and ``--gpu-resize``.
3. ``torchrun``: the same command under ``torchrun`` on every visible GPU (NCCL); without CUDA
   2 processes with gloo (started by torchrun's launcher API, forked for speed).
4. ``predictor_collect``: ``litepose-nas predictor collect`` of 2 architectures from that supernet.
5. ``onnx_export``: ``litepose-nas export`` of a subnet from that supernet; onnxruntime vs PyTorch.
6. ``throughput``: training images/s of the Lite Pose original recipe (fp32, channels-first) and
   ours (``--amp auto``, channels-last), same batches, one run, for a static network (``train``)
   and a sandwich step (``train-supernet``).

Settings: ``CUDA_SETTINGS`` (litepose-elastic, 192/256 px, batch 16) and ``CPU_SETTINGS`` (a
4-block space, 64 px, batch 2, fp32).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_train's batch and step helpers

# The stated tolerance of step_agreement: fp32 CPU vs CUDA kernels sum in different orders.
LOSS_RTOL = 1e-4
GRAD_RTOL = 1e-3

TINY_SPACE = """\
name: gpu-check-tiny
resolutions: [64]
stem: {mid_channels: 8, widths: [8, 16]}
stages:
  - {stride: 2, widths: [8], depths: [1], kernels: [3, 5], expansions: [1]}
  - {stride: 2, widths: [8], depths: [1], kernels: [3], expansions: [1]}
  - {stride: 2, widths: [16], depths: [1], kernels: [3], expansions: [1]}
  - {stride: 1, widths: [16], depths: [1], kernels: [3], expansions: [1]}
head: {widths: [[8], [8], [8]]}
"""


@dataclass(frozen=True)
class Settings:
    space: str          # shipped space name, or '' for the tiny space above
    resolutions: str    # training sizes (comma-separated)
    images: int         # synthetic images (train + val)
    image_size: int
    batch: int
    steps: int          # train-supernet steps (single process and torchrun)
    workers: int
    collect_val_images: int
    warmup_steps: int   # throughput: untimed steps first (cuDNN autotuning, allocator)
    timed_steps: int
    amp: str


CUDA_SETTINGS = Settings("litepose-elastic", "192,256", 96, 320, 16, 40, 4, 16, 3, 20, "auto")
# bf16 autocast on a CPU is many times slower than fp32 (docs/training.md), so the CPU version trains in fp32
CPU_SETTINGS = Settings("", "64", 6, 64, 2, 2, 0, 1, 1, 1, "off")


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    figures: dict
    error: str = ""


def _cli(*args) -> str:
    """Run the litepose-nas CLI in this process; its stdout, or RuntimeError with its message."""
    from litepose_nas.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main.main(args=[str(a) for a in args], standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                raise RuntimeError(f"litepose-nas {args[0]} exited {exc.code}: {err.getvalue().strip()[-500:]}") from None
    return out.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------- the steps
def step_agreement(ctx: dict) -> dict:
    import torch

    from bench_train import _batch
    from litepose_nas.losses import PoseLoss
    from litepose_nas.supernet import SuperLitePose

    space, device, size = ctx["space"], ctx["device"], ctx["size"]
    torch.manual_seed(0)
    net = SuperLitePose(space, 17).extract(dataclasses.replace(space.largest(), img_size=size))
    cpu, cl = torch.device("cpu"), torch.channels_last
    # like for like: our channels-last on both devices; without CUDA, the two layouts on the CPU
    pair = (("cpu", cpu, cl), ("cuda", device, cl)) if device.type == "cuda" else \
        (("cpu_channels_first", cpu, torch.contiguous_format), ("cpu_channels_last", cpu, cl))
    runs = {}
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # true fp32 on the GPU
    try:
        for name, dev, fmt in pair:
            model = copy.deepcopy(net).to(dev).to(memory_format=fmt).train()
            batch = _batch(ctx["batch"], size, 17, dev, fmt)
            loss = PoseLoss(17).to(dev)(model(batch["image"]), batch)["total"]
            loss.backward()
            grad = torch.cat([p.grad.detach().flatten().double().cpu() for p in model.parameters() if p.grad is not None])
            runs[name] = (float(loss.detach()), grad)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    (la, ga), (lb, gb) = runs.values()
    loss_rel = abs(la - lb) / max(abs(la), 1e-12)
    grad_rel = float((ga - gb).norm() / ga.norm().clamp(min=1e-12))
    ok = loss_rel <= LOSS_RTOL and grad_rel <= GRAD_RTOL
    return {"ok": ok, "compared": list(runs), "loss": la, "loss_rel_diff": loss_rel, "grad_rel_diff": grad_rel,
            "tolerance": {"loss_rel": LOSS_RTOL, "grad_rel": GRAD_RTOL}}


def _train_args(ctx: dict, out: Path, device: str) -> list:
    s: Settings = ctx["settings"]
    return ["train-supernet", "--space", ctx["space_arg"], "--data", ctx["data"], "--steps", s.steps,
            "--batch-size", s.batch, "--resolutions", s.resolutions, "--workers", s.workers, "--val-every", "-1",
            "--log-every", 1, "--checkpoint-every", s.steps, "--device", device, "--out", out, "-q"]


def _train_figures(out: Path) -> dict:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    ips = [r["images_per_s"] for r in steps[1:]] or [r["images_per_s"] for r in steps]
    import math

    return {"steps": len(steps), "final_loss": steps[-1]["loss"], "images_per_s_median": statistics.median(ips),
            "finite": all(math.isfinite(r["loss"]) for r in steps)}


def train_supernet_amp(ctx: dict) -> dict:
    from litepose_nas.train import accel

    s: Settings = ctx["settings"]
    out = ctx["work"] / "supernet"
    t0 = time.perf_counter()
    _cli(*_train_args(ctx, out, ctx["device"].type), "--amp", s.amp, "--gpu-resize")
    figures = _train_figures(out)
    ctx["supernet"] = out / "supernet.pt"
    dtype = accel.amp_dtype(s.amp, ctx["device"])
    return {"ok": figures["finite"] and figures["steps"] == s.steps, "amp": s.amp, "amp_dtype": str(dtype),
            "wall_s": round(time.perf_counter() - t0, 2), **figures}


def _torchrun_entry(args: list) -> None:
    import torch

    torch.set_num_threads(1)
    _cli(*args)


def torchrun(ctx: dict) -> dict:
    import torch

    out = ctx["work"] / "supernet-ddp"
    cuda = ctx["device"].type == "cuda"
    n = torch.cuda.device_count() if cuda else 2
    args = [str(a) for a in _train_args(ctx, out, "cuda" if cuda else "cpu")] + ["--amp", ctx["settings"].amp]
    if cuda:  # the command users run
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--master_port",
               str(_free_port()), "-m", "litepose_nas.cli", *args]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if p.returncode:
            raise RuntimeError(f"torchrun exited {p.returncode}: {p.stderr.strip()[-800:]}")
    else:  # torchrun's own launcher, workers forked (a fresh interpreter per rank costs seconds on a CPU)
        import uuid

        from torch.distributed.launcher.api import LaunchConfig, elastic_launch

        cfg = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=n, run_id=str(uuid.uuid4()), rdzv_backend="c10d",
                           rdzv_endpoint="127.0.0.1:0", start_method="fork", max_restarts=0, monitor_interval=0.1)
        elastic_launch(cfg, _torchrun_entry)(args)
    figures = _train_figures(out)
    return {"ok": figures["finite"] and figures["steps"] == ctx["settings"].steps, "processes": n,
            "backend": "nccl" if cuda else "gloo", **figures}


def predictor_collect(ctx: dict) -> dict:
    from litepose_nas.predictors import read_evals

    s: Settings = ctx["settings"]
    out = ctx["work"] / "evals.csv"
    _cli("predictor", "collect", "--supernet", ctx["supernet"], "--data", ctx["data"], "--archs", 2, "--out", out,
         "--space", ctx["space_arg"], "--calib-batches", 1, "--batch-size", s.batch, "--val-images",
         s.collect_val_images, "--device", ctx["device"].type, "-q")
    table = read_evals(out)
    seconds = [float(r["seconds"]) for r in table.rows]
    return {"ok": len(table) == 2, "archs": len(table), "ap": [float(a) for a in table.targets], "seconds": seconds}


def onnx_export(ctx: dict) -> dict:
    arch = dataclasses.replace(ctx["space"].smallest(), img_size=ctx["size"])
    path = ctx["work"] / "arch.json"
    arch.to_json(path)
    result = json.loads(_cli("export", "--arch", path, "--supernet", ctx["supernet"], "--space", ctx["space_arg"],
                             "--out", ctx["work"] / "export", "--json"))
    parity = result["parity_detail"]
    return {"ok": parity["max_abs_diff"] <= parity["tolerance"], **parity}


def throughput(ctx: dict) -> dict:
    """img/s of one training step (forward, loss, backward, Adam) on fixed batches already on the device."""
    import torch

    from bench_train import _amp_step_fn, _batch
    from litepose_nas.losses import PoseLoss
    from litepose_nas.supernet import SuperLitePose
    from litepose_nas.train import accel
    from litepose_nas.train.sandwich import SandwichStep, SubnetStep, sandwich_archs

    s: Settings = ctx["settings"]
    space, device, size = ctx["space"], ctx["device"], ctx["size"]
    recipes = {"original (fp32, channels-first)": (None, torch.contiguous_format),
               "ours (--amp auto, channels-last)": (accel.amp_dtype("auto", device), torch.channels_last)}
    rows = []
    for mode in ("static", "supernet"):
        for recipe, (dtype, fmt) in recipes.items():
            torch.manual_seed(0)
            sup = SuperLitePose(space, 17)
            if mode == "static":
                step_module = SubnetStep(sup.extract(dataclasses.replace(space.largest(), img_size=size)), PoseLoss(17))
            else:
                step_module = SandwichStep(sup, PoseLoss(17))
                step_module.set_archs(sandwich_archs(space, 0, 0, size))
            step_module = step_module.to(device).to(memory_format=fmt).train()
            one_step = _amp_step_fn(step_module, _batch(s.batch, size, 17, device, fmt), device, dtype)
            for _ in range(s.warmup_steps):
                one_step()
            t0 = time.perf_counter()
            for _ in range(s.timed_steps):
                one_step()
            sec = (time.perf_counter() - t0) / s.timed_steps
            rows.append({"mode": mode, "recipe": recipe, "step_s": round(sec, 4),
                         "images_per_s": round(s.batch / sec, 2)})
    speedup = {m: round(rows[2 * i + 1]["images_per_s"] / rows[2 * i]["images_per_s"], 3)
               for i, m in enumerate(("static", "supernet"))}
    return {"ok": all(r["images_per_s"] > 0 for r in rows), "size": size, "batch": s.batch, "rows": rows,
            "speedup_ours_vs_original": speedup}


STEPS = (step_agreement, train_supernet_amp, torchrun, predictor_collect, onnx_export, throughput)


# ---------------------------------------------------------------------- driver
def run_checks(work: Path, use_cuda: bool, settings: Settings | None = None, quiet: bool = False) -> dict:
    import torch

    from litepose_nas.data import generate_synthetic
    from litepose_nas.space import SearchSpace

    s = settings or (CUDA_SETTINGS if use_cuda else CPU_SETTINGS)
    if use_cuda:  # torchrun needs one global batch (batch x GPUs) in the 3/4 of the images that train
        s = dataclasses.replace(s, images=max(s.images, (s.batch * torch.cuda.device_count() * 4 + 2) // 3 + 8))
        torch.backends.cudnn.benchmark = True  # as the trainer does on CUDA
    work.mkdir(parents=True, exist_ok=True)
    if s.space:
        space_arg = s.space
    else:
        space_arg = work / "tiny.yaml"
        space_arg.write_text(TINY_SPACE)
    space = SearchSpace.from_yaml(space_arg)
    data = generate_synthetic(work / "data", s.images, layout="coco", image_size=s.image_size, val_fraction=0.25,
                              progress=False, seed=0)
    ctx = {"settings": s, "work": work, "space": space, "space_arg": space_arg, "data": data,
           "device": torch.device("cuda" if use_cuda else "cpu"),
           "size": max(int(r) for r in s.resolutions.split(",")), "batch": s.batch}
    checks = []
    for fn in STEPS:
        t0 = time.perf_counter()
        try:
            figures = fn(ctx)
            check = Check(fn.__name__, bool(figures.pop("ok")), round(time.perf_counter() - t0, 2), figures)
        except Exception as exc:  # a failed step is reported; the others still run
            check = Check(fn.__name__, False, round(time.perf_counter() - t0, 2), {},
                          f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
            if not quiet:
                traceback.print_exc()
        checks.append(check)
        if not quiet:
            print(f"{'ok' if check.ok else 'FAILED':6} {check.name:20} {check.seconds:8.1f} s  "
                  f"{check.error or json.dumps(check.figures)[:300]}", flush=True)
    load = os.getloadavg()
    return {
        "device": torch.cuda.get_device_name(0) if use_cuda else "cpu",
        "cuda_devices": torch.cuda.device_count() if use_cuda else 0,
        "torch": torch.__version__, "settings": asdict(s), "load_average": list(load),
        "ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks],
        "total_s": round(sum(c.seconds for c in checks), 1),
    }


def print_throughput(report: dict) -> None:
    t = next((c for c in report["checks"] if c["name"] == "throughput" and c["ok"]), None)
    if not t:
        return
    f = t["figures"]
    print(f"\ntraining images/s on {report['device']}, {f['size']} px, batch {f['batch']} (one run):")
    print(f"{'mode':9} {'recipe':34} {'step s':>8} {'img/s':>9}")
    for r in f["rows"]:
        print(f"{r['mode']:9} {r['recipe']:34} {r['step_s']:>8.4f} {r['images_per_s']:>9.2f}")
    print("speed-up, ours vs original: " + ", ".join(f"{k} {v:.2f}x" for k, v in f["speedup_ours_vs_original"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", dest="json_out", default=None, help="write the report to this JSON file")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--cpu", action="store_true", help="the tiny CPU version even when CUDA is present")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (pinned; default 2)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    import tempfile

    import torch

    use_cuda = torch.cuda.is_available() and not args.cpu
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        report = run_checks(Path(args.work or tmp), use_cuda, quiet=args.quiet)
    if not args.quiet:
        print_throughput(report)
        print(f"\n{'all checks passed' if report['ok'] else 'SOME CHECKS FAILED'} in {report['total_s']} s "
              f"on {report['device']} (load average {report['load_average'][0]:.2f})")
    if args.json_out:
        from litepose_nas.io import write_json_atomic

        write_json_atomic(args.json_out, report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
