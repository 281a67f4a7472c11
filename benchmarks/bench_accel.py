"""The measurements behind the speed flags' defaults (``--amp``, ``--gpu-resize``, ``--compile``).

    python benchmarks/bench_accel.py --json bench_accel.json            # CPU, 2 threads
    python benchmarks/bench_accel.py --device cuda --json bench_accel.json
    python benchmarks/bench_accel.py --compile                          # + first compiled step (minutes)

1. AMP: training-step images/s (forward, loss, backward, Adam; random batch) of the largest and the
   smallest subnet of ``--space`` at ``--size`` in full precision and under autocast (bf16; on CUDA
   also fp16 with a GradScaler), channels-last.
2. gpu-resize: the data side. ms per sample prepared by a worker at each training size (what the
   default does; the mean over sizes is the cost of a step at a drawn size) against a sample prepared
   at the largest size without heatmaps (``--gpu-resize``), plus the device-side resize and target
   rendering per sample.
3. ``--compile`` (optional): seconds of the first compiled training step and of later steps against
   eager, static largest subnet.

Other processes on the machine affect the numbers: run it idle and report the load (printed).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _median_time(fn, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_amp(args, space, device) -> list[dict]:
    import torch

    from bench_train import _amp_step_fn, _batch
    from litepose_nas.losses import PoseLoss
    from litepose_nas.supernet import SuperLitePose
    from litepose_nas.train.sandwich import SubnetStep

    modes = {"fp32": None, "bf16": torch.bfloat16}
    if device.type == "cuda":
        modes["fp16"] = torch.float16
    rows = []
    for name in ("largest", "smallest"):
        arch = dataclasses.replace(getattr(space, name)(), img_size=args.size)
        for mode, dtype in modes.items():
            torch.manual_seed(0)
            model = SuperLitePose(space, 17).extract(arch).to(device).to(memory_format=torch.channels_last).train()
            batch = _batch(args.batch, args.size, 17, device, torch.channels_last)
            step = _amp_step_fn(SubnetStep(model, PoseLoss(17)), batch, device, dtype)
            sec = _median_time(step, args.runs, 1)
            rows.append({"subnet": name, "amp": mode, "step_s": round(sec, 4), "images_per_s": round(args.batch / sec, 2)})
    return rows


def bench_resize(args, device, sizes: list[int]) -> dict:
    import torch
    from torch.utils.data import default_collate

    from litepose_nas.data import PoseDataset, generate_synthetic, open_dataset
    from litepose_nas.train.device_targets import DeviceTargetDataset, resize_batch

    with tempfile.TemporaryDirectory() as tmp:
        root = generate_synthetic(Path(tmp) / "d", args.images, layout="coco", image_size=args.image_size,
                                  val_fraction=0.1, progress=False, seed=0)
        source = open_dataset(root, "coco", "train")
        n = len(source.image_ids)
        per_size = {}
        for s in sizes:
            ds = PoseDataset(source, s, seed=0)
            per_size[s] = _median_time(lambda: [ds[(i, 7 + i)] for i in range(n)], 3, 1) / n * 1e3
        big = DeviceTargetDataset(PoseDataset(source, max(sizes), seed=0))
        prep = _median_time(lambda: [big[(min(sizes), i, 7 + i)] for i in range(n)], 3, 1) / n * 1e3
        batch = default_collate([big[(min(sizes), i, 7 + i)] for i in range(min(n, args.batch))])
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else [t.to(device) for t in v]) for k, v in batch.items()}

        def on_device() -> None:
            resize_batch(batch, 2.0, torch.channels_last)
            if device.type == "cuda":
                torch.cuda.synchronize()

        dev_ms = _median_time(on_device, 5, 1) / len(batch["image"]) * 1e3
    return {"worker_ms_per_sample": {str(k): round(v, 2) for k, v in per_size.items()},
            "worker_ms_mean_over_sizes": round(statistics.mean(per_size.values()), 2),
            "gpu_resize_worker_ms_per_sample": round(prep, 2), "gpu_resize_device_ms_per_sample": round(dev_ms, 3),
            "image_size": args.image_size, "sizes": sizes}


def bench_compile(args, space, device) -> dict:
    import torch

    from bench_train import _batch, _step_fn
    from litepose_nas.losses import PoseLoss
    from litepose_nas.supernet import SuperLitePose

    arch = dataclasses.replace(space.largest(), img_size=args.size)
    out = {}
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        model = SuperLitePose(space, 17).extract(arch).to(device).to(memory_format=torch.channels_last).train()
        if mode == "compiled":
            model.compile()
        batch = _batch(args.batch, args.size, 17, device, torch.channels_last)
        step = _step_fn(model, None, batch, PoseLoss(17), device)
        t0 = time.perf_counter()
        step()
        first = time.perf_counter() - t0
        out[mode] = {"first_step_s": round(first, 2), "step_s": round(_median_time(step, args.runs, 0), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="litepose")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--images", type=int, default=24, help="synthetic images for the data-side figures")
    parser.add_argument("--image-size", type=int, default=480)
    parser.add_argument("--resize-sizes", default="", help="training sizes [default: the space's]")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes on a CPU)")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args(argv)

    import torch

    from litepose_nas.space import SearchSpace

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    space = SearchSpace.from_yaml(args.space)
    sizes = [int(s) for s in args.resize_sizes.split(",")] if args.resize_sizes else list(space.resolutions)
    report = {"device": args.device, "threads": args.threads, "space": space.name, "size": args.size,
              "batch": args.batch, "torch": torch.__version__}
    report["amp"] = bench_amp(args, space, device)
    print(f"training step, {args.size} px, batch {args.batch}, {args.device}, channels-last:")
    for r in report["amp"]:
        print(f"  {r['subnet']:9} {r['amp']:5} {r['step_s']:8.3f} s  {r['images_per_s']:8.2f} img/s")
    report["gpu_resize"] = g = bench_resize(args, device, sizes)
    print(f"data per sample ({args.image_size} px source images): workers at each size {g['worker_ms_per_sample']} ms "
          f"(mean {g['worker_ms_mean_over_sizes']}); --gpu-resize: workers {g['gpu_resize_worker_ms_per_sample']} ms "
          f"+ device {g['gpu_resize_device_ms_per_sample']} ms")
    if args.compile:
        report["compile"] = c = bench_compile(args, space, device)
        print(f"torch.compile, largest static subnet: {c}")
    report["load_average"] = list(os.getloadavg())
    print(f"load average at the end: {report['load_average'][0]:.2f}")
    if args.json_out:
        from litepose_nas.io import write_json_atomic

        write_json_atomic(args.json_out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
