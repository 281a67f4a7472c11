"""Load a published LitePose architecture, build it, export it to ONNX and check parity.

    python examples/export_published.py                    # search-XS at its own 256 px
    python examples/export_published.py --arch search-M --img-size 128 --out exported-M

The published architectures ship in ``search_spaces/published/`` in the original repository's
JSON format. The network gets random weights here (use ``--weights`` of ``litepose-nas export``
for trained ones); the point is the deployment path: BN folded, batch-dynamic ONNX, checked with
onnx.checker, and onnxruntime's outputs compared with PyTorch's.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from litepose_nas.export import ExportMetadata, export_model, ort_session, random_init_model
from litepose_nas.resources import shipped_dir
from litepose_nas.space import Arch, SearchSpace


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="search-XS", help="name of a file in search_spaces/published/")
    parser.add_argument("--img-size", type=int, default=None, help="override the resolution (multiple of 16)")
    parser.add_argument("--num-joints", type=int, default=17, choices=(14, 17))
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    args = parser.parse_args(argv)

    # 1. the published architecture, checked against the original search space
    arch = Arch.from_json(shipped_dir("search_spaces") / "published" / f"{args.arch}.json")
    SearchSpace.from_yaml("litepose").validate(arch, source=args.arch)
    if args.img_size:
        arch = dataclasses.replace(arch, img_size=args.img_size)
    print(f"{args.arch}: {arch.describe()}")

    # 2. build and export (random init), which also measures onnxruntime-vs-PyTorch parity
    model = random_init_model(arch, args.num_joints, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / args.arch
        result = export_model(model, out, source=f"random-init ({args.arch})")
        for key, path in result.files.items():
            print(f"  {key:<9} {path}")
        print(f"  parity    max abs diff {result.parity.max_abs_diff:.3g} (tolerance {result.parity.tolerance:g})")

        # 3. what a deployment runtime reads: the metadata, then one batch of 2 through onnxruntime
        meta = ExportMetadata.load(result.files["metadata"])
        session = ort_session(result.files["onnx"])
        x = np.zeros((2, 3, meta.img_size, meta.img_size), dtype=np.float32)
        outputs = session.run(list(meta.output_names), {meta.input_name: x})
        shapes = {name: list(o.shape) for name, o in zip(meta.output_names, outputs)}
        print(f"  outputs   {shapes}")
        return {"arch": arch.to_dict(), "parity": result.parity.max_abs_diff, "shapes": shapes,
                "files": sorted(p.name for p in result.files.values())}


if __name__ == "__main__":
    main()
