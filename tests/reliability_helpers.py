"""Tiny valid inputs for the reliability tests, ways to break them, and an in-process CLI runner.

The bad-input matrix runs most of its cases in-process (one torch import for hundreds of cases)
and a sample of them through :func:`cli_helpers.run_cli` in a real subprocess; both give the same
:class:`cli_helpers.Result`, checked by :func:`assert_clean_failure`.
"""
from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

from cli_helpers import Result, assert_one_line_error

TINY_SPACE_YAML = """\
name: tiny
description: a 4-architecture space for fast tests
resolutions: [64, 96]
stem:
  mid_channels: 8
  widths: [8, 16]
stages:
  - {stride: 2, widths: [8], depths: [1], kernels: [3], expansions: [1]}
  - {stride: 2, widths: [8], depths: [1], kernels: [3], expansions: [1]}
  - {stride: 2, widths: [16], depths: [1], kernels: [3], expansions: [1]}
  - {stride: 1, widths: [16], depths: [1], kernels: [3], expansions: [1]}
head:
  widths: [[8], [8], [8]]
"""

# the smallest architecture of the tiny space, at 64 px
TINY_ARCH = {
    "img_size": 64, "input_channel": 8, "stem_mid_channels": 8, "deconv_setting": [8, 8, 8],
    "backbone_setting": [
        {"num_blocks": 1, "stride": 2, "channel": 8, "block_setting": [[1, 3]]},
        {"num_blocks": 1, "stride": 2, "channel": 8, "block_setting": [[1, 3]]},
        {"num_blocks": 1, "stride": 2, "channel": 16, "block_setting": [[1, 3]]},
        {"num_blocks": 1, "stride": 1, "channel": 16, "block_setting": [[1, 3]]},
    ],
}


def run_inproc(*args: str | Path) -> Result:
    """The CLI in this process (click's runner), warnings off as :func:`run_cli` sets them."""
    from click.testing import CliRunner

    from litepose_nas.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # the CLI must never let an exception out; show it as the traceback a user would see
        import traceback

        tb = "".join(traceback.format_exception(type(result.exception), result.exception,
                                                result.exception.__traceback__))
        return Result(99, result.stdout, result.stderr + "\nTraceback (escaped the CLI)\n" + tb)
    return Result(result.exit_code, result.stdout, result.stderr)


def assert_clean_failure(result: Result, status: int, *fragments: str) -> None:
    """Exit ``status``, one ``error: `` line naming ``fragments``, no traceback, no internal error."""
    assert_one_line_error(result, status, *fragments)
    assert "internal error" not in result.stderr, result.stderr


def files_under(*roots: Path) -> set[Path]:
    """Every file and folder under ``roots`` (to prove a failed command left nothing behind)."""
    out: set[Path] = set()
    for root in roots:
        if root.exists():
            out.add(root)
            out.update(root.rglob("*"))
    return out


def temp_leftovers(*roots: Path) -> list[Path]:
    """Temporary files of :mod:`litepose_nas.io` (``.NAME.XXXX.tmp``) or staging folders left behind."""
    return sorted(p for p in files_under(*roots) if p.name.endswith(".tmp") or ".export-" in p.name)


# ---------------------------------------------------------------------- ways to break a file
def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: max(1, int(len(data) * fraction))])
    return dst


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def junk_bytes(path: Path, n: int = 600) -> Path:
    """Bytes that are no known format (not UTF-8 either)."""
    path.write_bytes(bytes((i * 97 + 13) % 256 for i in range(n)) + b"\xff\xfe\x00\x80")
    return path


# ---------------------------------------------------------------------- pickle bombs
class _Bomb:
    """Unpickling it calls ``open(marker, 'w')``: the marker file appears if any code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_bomb(path: Path, marker: Path, torch_format: bool = True) -> Path:
    """A checkpoint-looking file whose loading with plain pickle would create ``marker``.

    ``torch_format``: a ``torch.save`` zip archive (what checkpoints are); else a raw pickle.
    The bomb sits inside a state_dict-like mapping beside a real tensor.
    """
    import torch

    payload = {"state_dict": {"conv.weight": torch.zeros(2, 2), "conv.bias": _Bomb(marker)}}
    if torch_format:
        torch.save(payload, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(payload, fh)
    return path


def bomb_is_live(path: Path, marker: Path) -> bool:
    """Load the bomb unsafely in a child process and report whether the marker appeared (then remove it)."""
    import subprocess
    import sys

    code = ("import sys, torch, pickle\n"
            "p = sys.argv[1]\n"
            "try:\n    torch.load(p, weights_only=False)\n"
            "except Exception:\n    pickle.load(open(p, 'rb'))\n")
    subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120)
    live = marker.exists()
    if live:
        marker.unlink()
    return live


# ---------------------------------------------------------------------- the tiny world
@dataclass
class World:
    """Valid tiny inputs of every kind, made once per test session."""

    root: Path
    space: Path
    arch: Path
    weights: Path          # static state_dict of TINY_ARCH, 17 joints
    weights14: Path        # the same net with 14 joints (CrowdPose)
    coco: Path             # synthetic dataset, COCO layout (train 2, val 2 images)
    crowd: Path            # synthetic dataset, CrowdPose layout
    table: Path            # latency table NAME.csv (NAME.json beside it) of the tiny space
    onnx: Path             # exported model.onnx of TINY_ARCH (metadata beside it)
    image: Path            # a valid JPEG
    supernet: Path         # untrained supernet checkpoint of the tiny space (space stored inside)
    predictor: Path        # ridge predictor folder fitted on the tiny space
    evals: Path            # evals.csv of 12 architectures of the shipped 'litepose' space


def build_world(root: Path) -> World:
    import shutil

    import torch

    from litepose_nas.data import generate_synthetic
    from litepose_nas.export import export_model, random_init_model
    from litepose_nas.space import Arch

    root.mkdir(parents=True, exist_ok=True)
    space = root / "tiny.yaml"
    space.write_text(TINY_SPACE_YAML)
    arch_path = write_json(root / "arch.json", TINY_ARCH)
    arch = Arch.from_json(arch_path)
    torch.manual_seed(0)
    weights = root / "weights.pth"
    torch.save(random_init_model(arch, 17).state_dict(), weights)
    weights14 = root / "weights14.pth"
    torch.save(random_init_model(arch, 14).state_dict(), weights14)
    coco = generate_synthetic(root / "coco", 4, layout="coco", image_size=64, val_fraction=0.5, progress=False)
    crowd = generate_synthetic(root / "crowd", 4, layout="crowdpose", image_size=64, val_fraction=0.25,
                               progress=False)
    table = make_table(root / "tiny-table.csv", space)
    export_model(random_init_model(arch, 17), root / "export")
    image = Path(shutil.copy(next((Path(coco) / "images" / "val2017").glob("*.jpg")), root / "person.jpg"))
    from litepose_nas.checkpoints import save_checkpoint
    from litepose_nas.space import SearchSpace
    from litepose_nas.supernet import SuperLitePose

    # kernels 3 or 5 in the first stage: the supernet then has kernel-transform keys (its layout's mark)
    elastic = root / "tiny-elastic.yaml"
    elastic.write_text(TINY_SPACE_YAML.replace("kernels: [3]", "kernels: [3, 5]", 1).replace("name: tiny", "name: tiny-elastic"))
    tiny = SearchSpace.from_yaml(elastic)
    supernet = save_checkpoint(root / "supernet.pt", SuperLitePose(tiny, 17), space=tiny.to_dict())
    import numpy as np

    from litepose_nas.predictors import Predictor
    from litepose_nas.predictors.data import write_evals

    small = SearchSpace.from_yaml(space)
    enc = small.enumerate_encoded()
    predictor = Predictor(small, "ridge").fit(enc, np.linspace(0.1, 0.4, len(enc))).save(root / "predictor")
    litepose = SearchSpace.from_yaml("litepose")
    evals = root / "evals.csv"
    write_evals(evals, litepose.decode(litepose.sample_encoded(0, 12)), np.linspace(0.2, 0.5, 12), space_name="litepose")
    return World(root, space, arch_path, weights, weights14, Path(coco), Path(crowd), table,
                 root / "export" / "model.onnx", image, supernet, Path(predictor), evals)


def make_table(path: Path, space_path: Path) -> Path:
    """A complete latency table of ``space_path`` with made-up (deterministic) timings."""
    import numpy as np

    from litepose_nas.latency.layers import enumerate_layers
    from litepose_nas.latency.table import LatencyTable
    from litepose_nas.space import SearchSpace

    space = SearchSpace.from_yaml(space_path)
    configs = list(enumerate_layers(space, 17))
    med = np.linspace(0.01, 0.5, len(configs))
    header = {"format_version": 1, "name": path.stem, "device": "test-device", "runtime": "onnxruntime",
              "space": space.name, "num_joints": 17, "stem_mid_channels": space.stem_mid_channels,
              "provenance": {"kind": "measured", "details": "made up for tests"},
              "correction": {"scale": 1.0, "offset_ms": 0.1}}
    return LatencyTable(header, configs, med, med * 1.1, np.full(len(configs), 5)).save(path)


