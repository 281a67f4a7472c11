"""Speed of the data path: synthetic generation, one training sample, the AE loss.

    python benchmarks/bench_data.py [--threads 1] [--json OUT]

Prints a table; numbers are medians of repeated runs on this machine (other jobs may share it).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return 1e3 * times[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--images", type=int, default=60, help="images rendered per preset")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from litepose_nas.data import PoseDataset, generate_synthetic, open_dataset
    from litepose_nas.data.synth import render_image
    from litepose_nas.losses import ae_loss, reference_ae_loss

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        for preset in ("easy", "medium", "hard"):
            t = time.perf_counter()
            for i in range(args.images):
                render_image(i, 0, preset, "crowdpose", 256)
            rows.append((f"render 256px image, {preset}", 1e3 * (time.perf_counter() - t) / args.images))
        t = time.perf_counter()
        root = generate_synthetic(tmp / "set", args.images, layout="coco", preset="hard", seed=0, image_size=256)
        rows.append(("generate_synthetic per image (hard, jpeg + json)", 1e3 * (time.perf_counter() - t) / args.images))
        ds = PoseDataset(open_dataset(root, "coco", "train"), input_size=256, train=True)
        for i in range(3):
            ds[i]
        rows.append(("PoseDataset sample, 256 px input, 17 joints", _median_ms(lambda: [ds[(i, i)] for i in range(10)], 5) / 10))

        g = torch.Generator().manual_seed(0)
        n, p, j, hw = 16, 30, 14, 64
        tags = torch.randn(n, j, hw, hw, generator=g, requires_grad=True)
        idx = torch.randint(0, hw * hw, (n, p, j), generator=g) + torch.arange(j) * hw * hw
        vis = (torch.rand(n, p, j, generator=g) < 0.7).long()
        vis[:, 8:] = 0  # 8 people per image
        joints = torch.stack([idx * vis, vis], -1)

        def vec():
            push, pull = ae_loss(tags, joints)
            (push.mean() + pull.mean()).backward()

        def ref():
            push, pull = reference_ae_loss(tags, joints)
            (push + pull).backward()

        rows.append(("AE loss fwd+bwd, batch 16, 8 people, 64x64 (vectorised)", _median_ms(vec, 10)))
        rows.append(("AE loss fwd+bwd, same, original per-person loop", _median_ms(ref, 3)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  ms")
    print(f"{'-' * width}  -------")
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:7.2f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"threads": args.threads, "ms": dict(rows)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
