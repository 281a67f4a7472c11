"""Training throughput: images/s of forward + backward + optimiser step (CPU or CUDA).

    python benchmarks/bench_train.py                       # 256 px, batch 8, 2 threads
    python benchmarks/bench_train.py --threads 1 2 --json bench_train.json

For the largest and the smallest subnet of a search space (default: the original ``litepose``
space, 17 joints), each run two ways — as the static network (``litepose-nas train``) and through
the supernet (one subnet forward of ``train-supernet``'s sandwich step) — in channels-first
(``torch.contiguous_format``) and channels-last memory formats. One step: forward on a random
batch, the Lite Pose loss on random targets, backward, Adam step. Median over ``--runs`` steps
after ``--warmup``. The winner per case is marked; ``litepose_nas.train.config.DEFAULT_MEMORY_FORMAT``
holds the format chosen from these figures. Other processes on the machine affect the numbers:
run it on an idle machine and report the load.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time


def _batch(n: int, size: int, joints: int, device, memory_format):
    import torch

    out = [size // 4, size // 2]
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(n, 3, size, size, generator=g).to(device).contiguous(memory_format=memory_format),
        "heatmaps": [torch.rand(n, joints, s, s, generator=g).to(device) for s in out],
        "masks": [torch.ones(n, s, s).to(device) for s in out],
        "joints": torch.zeros(n, 30, joints, 2, dtype=torch.int64).to(device),
    }


def _step_fn(model, arch, batch, loss_fn, device):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        outputs = model(batch["image"], arch) if arch is not None else model(batch["image"])
        loss = loss_fn(outputs, batch)["total"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def _amp_step_fn(step_module, batch, device, dtype):
    """One training step of a ``StepModule`` (``step_module(batch) -> (loss, stats)``) under autocast
    ``dtype`` (None: fp32), with a GradScaler for fp16, Adam; synchronised on CUDA."""
    import torch

    from litepose_nas.train import accel

    opt = torch.optim.Adam(step_module.parameters(), lr=1e-4)
    scaler = accel.make_scaler(dtype, device)

    def step() -> None:
        with accel.autocast(device, dtype):
            loss, _ = step_module(batch)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="litepose")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--num-joints", type=int, default=17)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--modes", nargs="+", default=["static", "supernet"], choices=("static", "supernet"))
    parser.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    import torch

    from litepose_nas.losses import PoseLoss
    from litepose_nas.space import SearchSpace
    from litepose_nas.supernet import SuperLitePose

    device = torch.device(args.device)
    space = SearchSpace.from_yaml(args.space)
    archs = {name: dataclasses.replace(a, img_size=args.size) for name, a in (("largest", space.largest()), ("smallest", space.smallest()))}
    loss_fn = PoseLoss(args.num_joints)
    formats = {"channels_first": torch.contiguous_format, "channels_last": torch.channels_last}
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, arch in archs.items():
            for mode in args.modes:
                speeds = {}
                for fmt_name, fmt in formats.items():
                    torch.manual_seed(0)
                    if mode == "supernet":
                        model = SuperLitePose(space, args.num_joints)
                        run_arch = arch
                    else:
                        model = SuperLitePose(space, args.num_joints).extract(arch)
                        run_arch = None
                    model = model.to(device).to(memory_format=fmt).train()
                    batch = _batch(args.batch, args.size, args.num_joints, device, fmt)
                    step = _step_fn(model, run_arch, batch, loss_fn, device)
                    for _ in range(args.warmup):
                        step()
                    times = []
                    for _ in range(args.runs):
                        t0 = time.perf_counter()
                        step()
                        times.append(time.perf_counter() - t0)
                    sec = statistics.median(times)
                    speeds[fmt_name] = args.batch / sec
                    rows.append({"subnet": name, "mode": mode, "format": fmt_name, "threads": threads,
                                 "device": args.device, "size": args.size, "batch": args.batch,
                                 "step_s": round(sec, 4), "images_per_s": round(args.batch / sec, 3)})
                best = max(speeds, key=speeds.get)
                for r in rows[-len(formats):]:
                    r["best"] = r["format"] == best
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    header = f"{'subnet':9} {'mode':9} {'format':15} {'thr':>3} {'step s':>8} {'img/s':>8}"
    print(f"training step (fwd + bwd + Adam), {args.size} px, batch {args.batch}, {args.device}, "
          f"space {space.name}; load average before the end {load[0]:.2f}")
    print(header)
    print("-" * len(header))
    for r in rows:
        mark = " *" if r["best"] else ""
        print(f"{r['subnet']:9} {r['mode']:9} {r['format']:15} {r['threads']:>3} {r['step_s']:>8.3f} {r['images_per_s']:>8.2f}{mark}")
    print("* = faster memory format for that subnet / mode / thread count")
    if args.json_out:
        from litepose_nas.io import write_json_atomic

        write_json_atomic(args.json_out, {"rows": rows, "load_average": list(load), "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
