"""A custom search space built in code, through the whole path: train its supernet, collect
evaluations, fit a predictor, profile a latency table, search, extract + export (ONNX parity),
evaluate and run inference.

    python examples/custom_space.py --out runs/custom --quick     # tiny settings, synthetic data
    python examples/custom_space.py --out runs/custom --data coco/ --steps 20000 --archs 300

The space (``SearchSpace.create``) leaves the Lite Pose shape: strides 2, 1, 2, 1 (total stride 8),
2 head levels and a 16-channel stem. Every step is the CLI command a user would
run (``litepose-nas ...``), called in this process; the space goes to them as YAML.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def custom_space():
    from litepose_nas import SearchSpace

    # elastic widths meet in one layer (stage 3's first block reads stage 2's width and writes its
    # own; the head reads both): profile --quick times every layer, so the search finds every row
    return SearchSpace.create(
        name="custom-four-stage",
        description="strides 2, 1, 2, 1 (total stride 8), 2 head levels, 16-channel stem",
        resolutions=[64],
        stem_widths=[8],
        stages=[
            {"stride": 2, "widths": [8], "depths": [1], "kernels": [3, 5], "expansions": [3]},
            {"stride": 1, "widths": [16], "depths": [1, 2], "kernels": [3], "expansions": [3]},
            {"stride": 2, "widths": [16, 24], "depths": [1], "kernels": [3], "expansions": [2, 4]},
            {"stride": 1, "widths": [24, 32], "depths": [1], "kernels": [3], "expansions": [2]},
        ],
        head_widths=[[16], [8, 16]],
        stem_mid_channels=16,
    )


def run(*args) -> str:
    """One ``litepose-nas`` command in this process; its output, or SystemExit on failure."""
    from click.testing import CliRunner

    from litepose_nas.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exit_code != 0:
        raise SystemExit(f"litepose-nas {' '.join(map(str, args[:2]))} failed:\n{result.output}{result.stderr}")
    return result.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/custom-space")
    p.add_argument("--quick", action="store_true", help="tiny settings on synthetic data (well under a minute)")
    p.add_argument("--data", default=None, help="a COCO-layout dataset (default: a synthetic one)")
    p.add_argument("--steps", type=int, default=2000, help="supernet training steps (--quick: 2)")
    p.add_argument("--archs", type=int, default=100, help="subnets evaluated for the predictor (--quick: 8)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps, archs = (2, 8) if args.quick else (args.steps, args.archs)
    quiet = ["-q"]

    from litepose_nas import Arch, macs

    # 1. the space, in code; the CLI reads it as YAML
    space = custom_space()
    space_yaml = out / "space.yaml"
    space_yaml.write_text(space.to_yaml())
    print(f"space '{space.name}': {space.size():,} architectures, total stride {space.total_stride}")

    data = args.data
    if data is None:
        from litepose_nas.data import generate_synthetic

        data = generate_synthetic(out / "synthetic", 6 if args.quick else 200, layout="coco", image_size=64,
                                  val_fraction=0.34 if args.quick else 0.1, seed=args.seed)
    train = ["--steps", steps, "--batch-size", 2 if args.quick else 16, "--workers", 0 if args.quick else 2]
    # 2. supernet, 3. evaluations of sampled subnets, 4. accuracy predictor
    run("train-supernet", "--space", space_yaml, "--data", data, *train, "--val-every", -1, "--out", out / "run",
        "--device", "cpu" if args.quick else "auto", *quiet)
    run("predictor", "collect", "--supernet", out / "run" / "supernet.pt", "--data", data, "--archs", archs,
        "--out", out / "evals.csv", "--space", space_yaml, "--calib-batches", 1, "--batch-size", 2,
        "--val-images", 2 if args.quick else 50, *quiet)
    run("predictor", "fit", out / "evals.csv", "--out", out / "predictor", "--space", space_yaml,
        "--model", "ridge" if args.quick else "auto", "--folds", 2 if args.quick else 5, *quiet)
    # 5. latency table of this machine
    run("profile", "--space", space_yaml, "--device-name", "this-machine", "--out", out / "latency.csv",
        *(["--quick", "--calibration-nets", 2, "--no-contention-check"] if args.quick else []), *quiet)
    # 6. search under a latency budget
    run("search", "--space", space_yaml, "--device", out / "latency.csv", "--max-latency-ms", 1000,
        "--predictor", out / "predictor", "--population", 8 if args.quick else 40,
        "--generations", 2 if args.quick else 40, "--seed", args.seed, "--out", out / "search", *quiet)
    best = Arch.from_json(out / "search" / "best.json")
    print(f"best: {best.describe()}  {macs(best, convention='paper') / 1e9:.4f} GMACs")
    # 7. extract its weights from the supernet and export (ONNX output checked against PyTorch)
    summary = json.loads(run("export", "--arch", out / "search" / "best.json", "--supernet",
                             out / "run" / "supernet.pt", "--space", space_yaml, "--out", out / "export", "--json"))
    print(f"exported {out / 'export' / 'model.onnx'} (ONNX vs PyTorch max difference {summary['parity']:.1e})")
    # 8. evaluate, 9. inference on images
    run("evaluate", "--arch", out / "export" / "arch.json", "--weights", out / "export" / "weights.pth",
        "--data", data, "--dataset", "coco", "--json", out / "metrics.json", *quiet)
    images = sorted((Path(data) / "images" / "val2017").glob("*.jpg"))[:2]
    run("infer", "--model", out / "export" / "model.onnx", *images, "--out", out / "infer", *quiet)
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    print(f"AP {metrics['AP']:.3f} on {data}; detections in {out / 'infer' / 'people.json'}")


if __name__ == "__main__":
    main()
