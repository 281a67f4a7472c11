"""Bad-input matrix: every CLI command x every file it reads x the ways a file can be malformed.

Each case builds one broken input in its own folder from a tiny valid world (space, arch, weights,
datasets, latency table, ONNX model, image) and checks the contract of the CLI: exit status 2
(bad input) or 1 (runtime failure), exactly one ``error: `` line on stderr that names the file (or
option) and the problem, no traceback, no "internal error", and no output file, temporary file or
output folder left behind. Cases run in-process (one import of torch for all of them); the cases
marked ``SUBPROCESS`` run again as a real ``litepose-nas`` process.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest

from cli_helpers import run_cli
from reliability_helpers import (
    TINY_ARCH, World, assert_clean_failure, build_world, files_under, junk_bytes, pickle_bomb, run_inproc,
    temp_leftovers, truncate, write_json,
)

Spec = tuple  # (argv, fragments) or (argv, fragments, status)
CASES: dict[str, Callable[[World, Path], Spec]] = {}
# one case per command (and per kind of file), run again in a real subprocess
SUBPROCESS = {
    "arch-validate/arch-truncated", "arch-info/arch-missing", "space-info/space-bad-yaml", "data-info/data-ann-truncated",
    "data-preview/data-image-corrupt", "checkpoint-info/ckpt-truncated", "latency-show/table-nan",
    "latency-predict/arch-outside-table", "profile/space-empty", "export/weights-wrong-shapes",
    "infer/image-binary", "evaluate/weights-wrong-joints", "train/init-from-bomb", "train-supernet/data-missing",
    "usage/bad-option-value", "predictor-info/pred-arrays-bomb", "predictor-fit/evals-ap-nan",
    "search/table-nan", "score/detection-no-score", "arch-validate/arch-unbounded-fifo",
    "data-info/ann-unbounded-deep-json", "evaluate/results-output-under-a-file", "usage/option-population-100000000",
}


def case(name: str):
    def register(fn: Callable[[World, Path], Spec]):
        assert name not in CASES, name
        CASES[name] = fn
        return fn
    return register


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


# ====================================================================== ways to break each kind of file
def arch_variant(kind: str, d: Path) -> Path:
    """A broken architecture JSON (or a missing path / a folder)."""
    p = d / f"arch-{kind}.json"
    a = json.loads(json.dumps(TINY_ARCH))
    s0 = a["backbone_setting"][0]
    if kind == "missing":
        return p
    if kind == "folder":
        p.mkdir()
        return p
    if kind == "empty":
        p.write_text("")
    elif kind == "binary":
        junk_bytes(p)
    elif kind == "truncated":
        p.write_text(json.dumps(a)[:70])
    else:
        if kind == "wrong-type":
            a = [a]
        elif kind == "missing-key":
            del a["img_size"]
        elif kind == "unknown-key":
            a["width_mult"] = 1.0
        elif kind == "string-value":
            a["img_size"] = "64"
        elif kind == "float-value":
            a["img_size"] = 64.5
        elif kind == "bool-value":
            a["input_channel"] = True
        elif kind == "negative":
            a["input_channel"] = -8
        elif kind == "zero":
            s0["channel"] = 0
        elif kind == "channel-not-8":
            s0["channel"] = 12
        elif kind == "stride-3":
            s0["stride"] = 3
        elif kind == "blocks-mismatch":
            s0["num_blocks"] = 2
        elif kind == "even-kernel":
            s0["block_setting"] = [[1, 4]]
        elif kind == "block-not-pair":
            s0["block_setting"] = [[1, 3, 5]]
        elif kind == "no-stages":
            a["backbone_setting"] = []
        elif kind == "head-5-layers":
            a["deconv_setting"] = [8] * 5
        elif kind == "stage-null":
            a["backbone_setting"][1] = None
        elif kind == "outside-space":
            s0["channel"] = 40
        elif kind == "huge-size":
            a["img_size"] = 1 << 20
        elif kind == "odd-size":
            a["img_size"] = 65
        else:
            raise AssertionError(kind)
        write_json(p, a)
    return p


ARCH_KINDS = ["missing", "folder", "empty", "binary", "truncated", "wrong-type", "missing-key", "unknown-key",
              "string-value", "float-value", "bool-value", "negative", "zero", "channel-not-8", "stride-3",
              "blocks-mismatch", "even-kernel", "block-not-pair", "no-stages", "head-5-layers", "stage-null"]
# what the parser reports for each kind (beside the file name)
ARCH_PROBLEM = {
    "missing": "not found", "folder": "folder", "empty": "empty", "binary": "not a text file",
    "truncated": "not valid JSON", "wrong-type": "expected a JSON object", "missing-key": "img_size",
    "unknown-key": "width_mult", "string-value": "img_size", "float-value": "img_size", "bool-value": "input_channel",
    "negative": "input_channel", "zero": "channel", "channel-not-8": "divisible by 8", "stride-3": "stride",
    "blocks-mismatch": "num_blocks", "even-kernel": "even", "block-not-pair": "expansion, kernel",
    "no-stages": "backbone_setting", "head-5-layers": "deconv_setting", "stage-null": "stage 1",
    "outside-space": "channel",
}


def space_variant(kind: str, d: Path, w: World) -> Path:
    p = d / f"space-{kind}.yaml"
    text = w.space.read_text()
    if kind == "missing":
        return p
    if kind == "folder":
        p.mkdir()
        return p
    edits = {
        "empty": "", "bad-yaml": text.replace("[64, 96]", "[64, 96"), "truncated": text[: len(text) * 2 // 3],
        "wrong-type": "- 1\n- 2\n", "missing-stages": text.split("stages:")[0] + "head:\n  widths: [[8], [8], [8]]\n",
        "stride-3": text.replace("{stride: 2, widths: [8]", "{stride: 3, widths: [8]", 1),
        "even-kernel": text.replace("kernels: [3]", "kernels: [4]", 1),
        "channel-not-8": text.replace("widths: [8, 16]", "widths: [8, 12]"),
        "empty-choices": text.replace("resolutions: [64, 96]", "resolutions: []"),
        "negative": text.replace("resolutions: [64, 96]", "resolutions: [-64]"),
        "repeated-choice": text.replace("resolutions: [64, 96]", "resolutions: [64, 64]"),
        "strides": text.replace("{stride: 1,", "{stride: 2,"),
        "string-choice": text.replace("resolutions: [64, 96]", "resolutions: [sixty-four]"),
        "five-head-layers": text.replace("widths: [[8], [8], [8]]", "widths: [[8], [8], [8], [8], [8]]"),
    }
    if kind == "binary":
        junk_bytes(p)
    else:
        p.write_text(edits[kind])
    return p


SPACE_KINDS = ["missing", "folder", "empty", "binary", "bad-yaml", "truncated", "wrong-type", "missing-stages",
               "stride-3", "even-kernel", "channel-not-8", "empty-choices", "negative", "repeated-choice", "strides",
               "string-choice", "five-head-layers"]


def table_variant(kind: str, d: Path, w: World) -> Path:
    """A broken latency table ``d/t-KIND.csv`` (+ its ``.json`` header)."""
    csv_path = d / f"t-{kind}.csv"
    head = json.loads(w.table.with_suffix(".json").read_text())
    digest = head.pop("csv_sha256")  # the kinds below are hand edits, accepted the documented way
    lines = w.table.read_text().splitlines()
    row1 = lines[1].split(",")

    def set_row(col: int, value: str) -> None:
        cells = list(row1)
        cells[col] = value
        lines[1] = ",".join(cells)

    if kind == "missing":
        return csv_path
    if kind == "no-header":
        csv_path.write_text("\n".join(lines) + "\n")
        return csv_path
    if kind == "empty":
        lines = []
    elif kind == "truncated":
        lines = lines[: len(lines) // 2]
    elif kind == "cut-line":
        lines[-1] = lines[-1][:12]
    elif kind == "wrong-columns":
        lines[0] = lines[0].replace("median_ms", "mean_ms")
    elif kind == "nan":
        set_row(8, "nan")
    elif kind == "inf":
        set_row(9, "inf")
    elif kind == "negative":
        set_row(8, "-0.5")
    elif kind == "non-numeric":
        set_row(8, "fast")
    elif kind == "bad-kind":
        set_row(1, "pool")
    elif kind == "key-mismatch":
        set_row(2, str(int(row1[2]) + 32))
    elif kind == "duplicate":
        lines.insert(2, lines[1])
        head["rows"] += 1
    elif kind == "half-saved":  # a new header over the old CSV: the digest tells them apart
        head["csv_sha256"] = digest
        set_row(8, str(float(row1[8]) * 2))
    elif kind == "header-not-json":
        head = None
    elif kind == "header-list":
        head = [head]
    elif kind == "header-missing-field":
        del head["correction"]
    elif kind == "header-version":
        head["format_version"] = 99
    elif kind == "header-nan-scale":
        head["correction"]["scale"] = float("nan")
    elif kind == "header-joints":
        head["num_joints"] = 0
    elif kind == "binary":
        junk_bytes(csv_path)
        write_json(csv_path.with_suffix(".json"), head)
        return csv_path
    else:
        raise AssertionError(kind)
    csv_path.write_text("\n".join(lines) + ("\n" if lines else ""))
    if head is None:
        csv_path.with_suffix(".json").write_text('{"format_version": 1, "name": ')
    else:
        csv_path.with_suffix(".json").write_text(json.dumps(head))
    return csv_path


TABLE_KINDS = ["missing", "no-header", "empty", "truncated", "cut-line", "wrong-columns", "nan", "inf", "negative",
               "non-numeric", "bad-kind", "key-mismatch", "duplicate", "half-saved", "header-not-json", "header-list",
               "header-missing-field", "header-version", "header-nan-scale", "header-joints", "binary"]


def ckpt_variant(kind: str, d: Path, w: World) -> Path:
    """A broken checkpoint (static weights of the tiny arch, 17 joints, when valid)."""
    import torch

    p = d / f"ckpt-{kind}.pth"
    state = torch.load(w.weights, weights_only=True)
    if kind == "missing":
        return p
    if kind == "folder":
        p.mkdir()
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        truncate(w.weights, p)
    elif kind == "binary":
        junk_bytes(p)
    elif kind == "text":
        p.write_text("these are not weights\n")
    elif kind == "bomb":
        pickle_bomb(p, d / "BOMB-RAN")
    elif kind == "bomb-raw-pickle":
        pickle_bomb(p, d / "BOMB-RAN", torch_format=False)
    elif kind == "wrong-type":
        torch.save([torch.zeros(3)], p)
    elif kind == "no-tensors":
        torch.save({"epoch": 3, "arch": "litepose"}, p)
    elif kind == "wrong-shapes":
        key = next(k for k, v in state.items() if v.dim() == 4)
        state[key] = torch.zeros(*[s + 1 for s in state[key].shape])
        torch.save(state, p)
    elif kind == "missing-key":
        del state[next(k for k, v in state.items() if v.dim() == 4 and k.startswith("stage"))]
        torch.save(state, p)
    elif kind == "extra-key":
        state["extra.weight"] = torch.zeros(3)
        torch.save(state, p)
    elif kind == "other-arch":
        from litepose_nas.export import random_init_model
        from litepose_nas.space import Arch

        a = json.loads(json.dumps(TINY_ARCH))
        a["backbone_setting"][2]["channel"] = 24
        torch.save(random_init_model(Arch.from_dict(a), 17).state_dict(), p)
    elif kind == "wrong-joints":
        shutil.copy(w.weights14, p)
    elif kind == "non-finite":
        key = next(k for k, v in state.items() if v.dim() == 4)
        state[key] = torch.full_like(state[key], float("nan"))
        torch.save(state, p)
    else:
        raise AssertionError(kind)
    return p


CKPT_KINDS = ["missing", "folder", "empty", "truncated", "binary", "text", "bomb", "bomb-raw-pickle", "wrong-type",
              "no-tensors", "wrong-shapes", "missing-key", "extra-key"]


def dataset_variant(kind: str, d: Path, w: World, layout: str = "coco", split: str = "val") -> Path:
    """A broken copy of the synthetic dataset (``coco`` or ``crowdpose`` layout), ``split`` broken."""
    root = d / f"data-{kind}"
    if kind == "missing":
        return root
    if kind == "file-not-folder":
        root.write_text("not a folder")
        return root
    if kind == "empty-folder":
        root.mkdir()
        return root
    shutil.copytree(w.coco if layout == "coco" else w.crowd, root)
    if layout == "coco":
        ann = root / "annotations" / f"person_keypoints_{split}2017.json"
        images = root / "images" / f"{split}2017"
    else:
        ann = root / "json" / f"crowdpose_{split}.json"
        images = root / "images"
    gt = json.loads(ann.read_text())
    image_ids = {i["id"] for i in gt["images"]}
    first = next(p for p in sorted(images.glob("*.jpg")) if int(p.stem) in image_ids)
    if kind == "ann-missing":
        ann.unlink()
    elif kind == "ann-empty":
        ann.write_text("")
    elif kind == "ann-truncated":
        truncate(ann, ann, 0.5)
    elif kind == "ann-binary":
        junk_bytes(ann)
    elif kind == "ann-wrong-type":
        write_json(ann, [gt])
    elif kind == "ann-no-images":
        del gt["images"]
        write_json(ann, gt)
    elif kind == "ann-keypoints-length":
        gt["annotations"][0]["keypoints"] = gt["annotations"][0]["keypoints"][:-3]
        write_json(ann, gt)
    elif kind == "ann-bbox-strings":
        gt["annotations"][0]["bbox"] = ["a", "b", "c", "d"]
        write_json(ann, gt)
    elif kind == "ann-unknown-image":
        gt["annotations"][0]["image_id"] = 987654
        write_json(ann, gt)
    elif kind == "ann-joint-count":
        # a CrowdPose-sized (14-joint) person category in a COCO file
        gt["categories"][0]["keypoints"] = gt["categories"][0]["keypoints"][:14]
        write_json(ann, gt)
    elif kind == "images-missing":
        shutil.rmtree(images)
    elif kind == "image-missing":
        first.unlink()
    elif kind == "image-corrupt":
        junk_bytes(first)
    elif kind == "image-empty":
        first.write_bytes(b"")
    else:
        raise AssertionError(kind)
    return root


DATA_KINDS = ["missing", "file-not-folder", "empty-folder", "ann-empty", "ann-truncated", "ann-binary",
              "ann-wrong-type", "ann-no-images", "ann-keypoints-length", "ann-bbox-strings", "ann-unknown-image",
              "ann-joint-count", "images-missing"]
IMAGE_KINDS = ["image-missing", "image-corrupt", "image-empty"]


def onnx_variant(kind: str, d: Path, w: World) -> Path:
    folder = d / f"model-{kind}"
    if kind == "missing":
        return folder / "model.onnx"
    shutil.copytree(w.onnx.parent, folder)
    p = folder / "model.onnx"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        truncate(p, p, 0.5)
    elif kind == "binary":
        junk_bytes(p)
    elif kind == "text":
        p.write_text("not a model")
    elif kind == "meta-truncated":
        truncate(folder / "metadata.json", folder / "metadata.json", 0.5)
    elif kind == "meta-wrong-joints":
        meta = json.loads((folder / "metadata.json").read_text())
        meta["num_joints"] = 14
        write_json(folder / "metadata.json", meta)
    elif kind == "folder":
        return folder
    else:
        raise AssertionError(kind)
    return p


ONNX_KINDS = ["missing", "empty", "truncated", "binary", "text", "meta-truncated", "meta-wrong-joints", "folder"]


def image_variant(kind: str, d: Path, w: World) -> Path:
    p = d / f"img-{kind}.jpg"
    if kind == "missing":
        return p
    if kind == "folder":
        p.mkdir()
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "binary":
        junk_bytes(p)
    elif kind == "text":
        p.write_text("hello")
    elif kind == "wrong-extension":
        p = d / "img.txt"
        shutil.copy(w.image, p)
    elif kind == "huge-header":
        # a PNG that claims 100000 x 100000 pixels (a decompression bomb): must be refused, not allocated
        import struct
        import zlib

        ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
        chunk = lambda t, b: struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))  # noqa: E731
        p = d / "huge.png"
        p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                      + chunk(b"IEND", b""))
    else:
        raise AssertionError(kind)
    return p


IMAGE_FILE_KINDS = ["missing", "folder", "empty", "binary", "text", "huge-header"]


def predictor_variant(kind: str, d: Path, w: World) -> Path:
    """A broken copy of the tiny predictor folder (``predictor.json`` + ``arrays.npz``)."""
    import io

    import numpy as np

    folder = d / f"pred-{kind}"
    if kind == "missing":
        return folder
    if kind == "empty-folder":
        folder.mkdir()
        return folder
    shutil.copytree(w.predictor, folder)
    meta_path, arrays_path = folder / "predictor.json", folder / "arrays.npz"
    meta = json.loads(meta_path.read_text())
    if kind.startswith("arrays-") and kind != "arrays-half-saved":
        # forged arrays under a meta without the digest: each check behind it must still refuse them
        del meta["arrays_sha256"]
        write_json(meta_path, meta)
    if kind == "meta-truncated":
        truncate(meta_path, meta_path, 0.5)
    elif kind == "meta-list":
        write_json(meta_path, [meta])
    elif kind == "meta-format":
        meta["format"] = "something-else/9"
        write_json(meta_path, meta)
    elif kind == "meta-no-model":
        del meta["model"]
        write_json(meta_path, meta)
    elif kind == "meta-space-edited":
        meta["space"]["definition"]["resolutions"] = [64]
        write_json(meta_path, meta)
    elif kind == "meta-bomb":
        pickle_bomb(meta_path, d / "BOMB-RAN", torch_format=False)
    elif kind == "arrays-missing":
        arrays_path.unlink()
    elif kind == "arrays-binary":
        junk_bytes(arrays_path)
    elif kind in ("arrays-bomb", "arrays-shape", "arrays-nan", "arrays-half-saved"):
        from reliability_helpers import _Bomb

        with np.load(arrays_path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        key = sorted(arrays)[0]
        if kind == "arrays-bomb":
            arrays[key] = np.array([_Bomb(d / "BOMB-RAN")], dtype=object)
        elif kind == "arrays-shape":
            arrays = {k: np.zeros(tuple(s + 3 for s in v.shape) or (3,)) for k, v in arrays.items()}
        elif kind == "arrays-nan":
            arrays = {k: np.full(v.shape, np.nan) for k, v in arrays.items()}
        else:  # other valid arrays under this meta: a save killed between its two files
            arrays = {k: v * 2 for k, v in arrays.items()}
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        arrays_path.write_bytes(buf.getvalue())
    else:
        raise AssertionError(kind)
    return folder


PREDICTOR_KINDS = ["missing", "empty-folder", "meta-truncated", "meta-list", "meta-format", "meta-no-model",
                   "meta-space-edited", "meta-bomb", "arrays-missing", "arrays-binary", "arrays-bomb", "arrays-shape",
                   "arrays-half-saved"]


def evals_variant(kind: str, d: Path, w: World) -> Path:
    p = d / f"evals-{kind}.csv"
    lines = w.evals.read_text().splitlines()
    header = lines[0].split(",")
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(w.evals.read_text())))

    def write(rs, fields=header):
        buf = io.StringIO()
        wr = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        wr.writeheader()
        for r in rs:
            wr.writerow({k: r.get(k, "") for k in fields})
        p.write_text(buf.getvalue())

    if kind == "missing":
        return p
    if kind == "empty":
        p.write_text("")
    elif kind == "binary":
        junk_bytes(p)
    elif kind == "no-ap-column":
        write(rows, [f for f in header if f != "ap"])
    elif kind == "arch-not-json":
        rows[1]["arch"] = "{not json"
        write(rows)
    elif kind == "arch-even-kernel":
        a = json.loads(rows[1]["arch"])
        a["backbone_setting"][0]["block_setting"][0] = [6, 4]
        rows[1]["arch"] = json.dumps(a)
        write(rows)
    elif kind == "arch-outside-space":
        rows[1]["arch"] = json.dumps(TINY_ARCH)
        write(rows)
    elif kind == "ap-nan":
        rows[2]["ap"] = "nan"
        write(rows)
    elif kind == "ap-text":
        rows[2]["ap"] = "good"
        write(rows)
    elif kind == "too-few-rows":
        write(rows[:2])
    else:
        raise AssertionError(kind)
    return p


EVALS_KINDS = ["missing", "empty", "binary", "no-ap-column", "arch-not-json", "arch-even-kernel", "arch-outside-space",
               "ap-nan", "ap-text", "too-few-rows"]


# ====================================================================== the cases, command by command
def _register_family(prefix: str, kinds: list[str], make: Callable[[str, World, Path], Spec]) -> None:
    for kind in kinds:
        case(f"{prefix}-{kind}")(lambda w, d, kind=kind: make(kind, w, d))


# --- arch validate / arch info
_register_family("arch-validate/arch", ARCH_KINDS + ["outside-space"], lambda k, w, d: (
    ["arch", "validate", arch_variant(k, d), "--space", w.space],
    [f"arch-{k}.json", ARCH_PROBLEM[k]]))
_register_family("arch-validate/space", SPACE_KINDS, lambda k, w, d: (
    ["arch", "validate", w.arch, "--space", space_variant(k, d, w)], [f"space-{k}.yaml"]))
_register_family("arch-info/arch", ["missing", "truncated", "wrong-type", "channel-not-8"], lambda k, w, d: (
    ["arch", "info", arch_variant(k, d)], [f"arch-{k}.json", ARCH_PROBLEM[k]]))


# --- space info
_register_family("space-info/space", SPACE_KINDS, lambda k, w, d: (["space", "info", space_variant(k, d, w)],
                                                                   [f"space-{k}.yaml"]))


# --- data info / data preview
_register_family("data-info/data", DATA_KINDS, lambda k, w, d: (["data", "info", dataset_variant(k, d, w)],
                                                                [f"data-{k}"]))


@case("data-info/crowdpose-as-coco")
def _(w, d):
    return ["data", "info", w.crowd, "--dataset", "coco"], [str(w.crowd), "coco"]


_register_family("data-preview/data", ["missing", "ann-truncated", "ann-keypoints-length", "images-missing"]
                 + IMAGE_KINDS, lambda k, w, d: (
    ["data", "preview", dataset_variant(k, d, w), "--split", "val", "--out", d / "out" / "grid.png", "--size", "64",
     "--count", "2"], [f"data-{k}"]))


@case("data-preview/unknown-split")
def _(w, d):
    return ["data", "preview", w.coco, "--split", "test", "--out", d / "grid.png"], ["split", "test", "train, val"]


# --- checkpoint info
_register_family("checkpoint-info/ckpt", CKPT_KINDS, lambda k, w, d: (["checkpoint", "info", ckpt_variant(k, d, w)],
                                                                      [f"ckpt-{k}.pth"]))
_register_family("checkpoint-info/arch", ["missing", "truncated"], lambda k, w, d: (
    ["checkpoint", "info", w.weights, "--arch", arch_variant(k, d)], [f"arch-{k}.json"]))


def _not_subnet(d: Path) -> Path:
    """The tiny arch with a stage wider than the supernet's widest choice."""
    a = json.loads(json.dumps(TINY_ARCH))
    a["backbone_setting"][2]["channel"] = 24
    return write_json(d / "arch-not-subnet.json", a)


_register_family("checkpoint-info/supernet-space", ["missing", "bad-yaml"], lambda k, w, d: (
    ["checkpoint", "info", w.supernet, "--space", space_variant(k, d, w)], [f"space-{k}.yaml"]))


@case("checkpoint-info/supernet-wrong-space")
def _(w, d):
    return ["checkpoint", "info", w.supernet, "--space", "litepose"], ["supernet.pt", "litepose"]


# --- latency show / predict / validate / calibrate
def _table_fragment(k: str) -> str:
    if k == "half-saved":
        return "t-half-saved.csv: does not match its header t-half-saved.json (field csv_sha256)"
    return f"t-{k}.json" if k.startswith(("header", "no-header")) else f"t-{k}"


_register_family("latency-show/table", TABLE_KINDS, lambda k, w, d: (
    ["latency", "show", "--table", table_variant(k, d, w)], [_table_fragment(k)]))
_register_family("latency-predict/table", ["missing", "truncated", "nan", "header-not-json"], lambda k, w, d: (
    ["latency", "predict", "--table", table_variant(k, d, w), w.arch], [_table_fragment(k)]))
_register_family("latency-predict/arch", ["missing", "truncated", "wrong-type"], lambda k, w, d: (
    ["latency", "predict", "--table", w.table, arch_variant(k, d)], [f"arch-{k}.json"]))
_register_family("latency-validate/table", ["missing", "cut-line", "inf", "header-missing-field"], lambda k, w, d: (
    ["latency", "validate", "--table", table_variant(k, d, w), "--archs", "1", "--report", d / "out" / "r.json",
     "-q"], [_table_fragment(k)]))


@case("latency-predict/arch-outside-table")
def _(w, d):
    # an architecture of another space: the table has no rows for its layers
    other = json.loads(json.dumps(TINY_ARCH))
    other["backbone_setting"][0]["channel"] = 40
    return ["latency", "predict", "--table", w.table, write_json(d / "other.json", other)], ["no row for layer"]


@case("latency-validate/space-mismatch")
def _(w, d):
    return ["latency", "validate", "--table", w.table, "--space", "litepose", "--archs", "1", "-q",
            "--report", d / "r.json"], ["tiny", "litepose"]


def _points(d: Path, w: World, rows: list[str] | None, name: str = "points.csv") -> Path:
    p = d / name
    if rows is not None:
        p.write_text("\n".join(rows) + "\n")
    return p


POINT_CASES = {
    "missing": None, "empty": [], "header-only": ["arch,ms"], "wrong-columns": ["file,latency", "{arch},3.0"],
    "nan": ["arch,ms", "{arch},nan", "{arch},4.0"], "negative": ["arch,ms", "{arch},-3", "{arch},4.0"],
    "not-number": ["arch,ms", "{arch},fast"], "arch-missing": ["arch,ms", "{d}/none.json,3.0"],
}
_register_family("latency-calibrate/points", list(POINT_CASES), lambda k, w, d: (
    ["latency", "calibrate", "--base", w.table, "--device-name", "dev", "--out", d / "out" / "derived.csv",
     "--points", _points(d, w, None if POINT_CASES[k] is None else
                         [r.format(arch=w.arch, d=d) for r in POINT_CASES[k]])],
    ["none.json" if k == "arch-missing" else "points.csv"]))
_register_family("latency-calibrate/base", ["missing", "nan"], lambda k, w, d: (
    ["latency", "calibrate", "--base", table_variant(k, d, w), "--device-name", "dev", "--out", d / "out" / "x.csv",
     "--points", _points(d, w, ["arch,ms", f"{w.arch},3.0"])], [f"t-{k}"]))


# --- profile
_register_family("profile/space", ["missing", "empty", "bad-yaml", "stride-3"], lambda k, w, d: (
    ["profile", "--space", space_variant(k, d, w), "--device-name", "x", "--quick", "--out", d / "out" / "t.csv",
     "-q"], [f"space-{k}.yaml"]))


@case("profile/out-is-folder")
def _(w, d):
    (d / "t.csv").mkdir()
    return ["profile", "--space", w.space, "--device-name", "x", "--out", d / "t.csv", "-q"], ["--out", "folder"]


@case("profile/out-not-csv")
def _(w, d):
    return ["profile", "--space", w.space, "--device-name", "x", "--out", d / "t.txt", "-q"], ["--out", ".csv"]


@case("profile/threads-zero")
def _(w, d):
    return ["profile", "--space", w.space, "--device-name", "x", "--threads", "0", "--out", d / "out" / "t.csv",
            "-q"], ["--threads"]


@case("profile/joints-zero")
def _(w, d):
    return ["profile", "--space", w.space, "--device-name", "x", "--num-joints", "0", "--out", d / "out" / "t.csv",
            "-q"], ["--num-joints"]


@case("profile/partial-other-settings")
def _(w, d):
    # progress of an interrupted run with other settings must not be mixed into this one
    (d / "t.partial.jsonl").write_text(json.dumps({"type": "settings", "identity": {"device": "other"}}) + "\n")
    return ["profile", "--space", w.space, "--device-name", "x", "--quick", "--out", d / "t.csv", "-q"], \
        ["t.partial.jsonl", "other settings"]


@case("profile/partial-junk")
def _(w, d):
    junk_bytes(d / "t.partial.jsonl")
    return ["profile", "--space", w.space, "--device-name", "x", "--quick", "--out", d / "t.csv", "-q"], \
        ["t.partial.jsonl"]


# --- export
_register_family("export/arch", ["missing", "truncated", "wrong-type", "odd-size", "huge-size"], lambda k, w, d: (
    ["export", "--arch", arch_variant(k, d), "--random-init", "--out", d / "out"], [f"arch-{k}.json"]))
_register_family("export/weights", CKPT_KINDS + ["other-arch", "wrong-joints", "non-finite"], lambda k, w, d: (
    ["export", "--arch", w.arch, "--weights", ckpt_variant(k, d, w), "--out", d / "out"]
    + (["--num-joints", "17"] if k == "wrong-joints" else []), [f"ckpt-{k}.pth"],
    1 if k == "non-finite" else 2))
_register_family("export/supernet", ["missing", "truncated", "bomb", "wrong-type"], lambda k, w, d: (
    ["export", "--arch", w.arch, "--supernet", ckpt_variant(k, d, w), "--out", d / "out"], [f"ckpt-{k}.pth"]))


@case("export/supernet-wrong-space")
def _(w, d):
    return ["export", "--arch", w.arch, "--supernet", w.supernet, "--space", "litepose", "--out", d / "out"], \
        ["supernet.pt", "litepose"]


@case("export/supernet-arch-not-subnet")
def _(w, d):
    return ["export", "--arch", _not_subnet(d), "--supernet", w.supernet, "--out", d / "out"], \
        ["arch-not-subnet.json", "stage 2 channel 24"]


@case("export/no-weight-source")
def _(w, d):
    return ["export", "--arch", w.arch, "--out", d / "out"], ["--supernet", "--weights", "--random-init"]


@case("export/out-is-file")
def _(w, d):
    (d / "out").write_text("a file")
    return ["export", "--arch", w.arch, "--random-init", "--out", d / "out"], ["out", "not a folder"]


# --- infer
_register_family("infer/model", ONNX_KINDS, lambda k, w, d: (
    ["infer", "--model", onnx_variant(k, d, w), w.image, "--out", d / "out", "-q"], [f"model-{k}"]))
_register_family("infer/image", IMAGE_FILE_KINDS, lambda k, w, d: (
    ["infer", "--model", w.onnx, w.image, image_variant(k, d, w), "--out", d / "out", "-q"],
    ["huge.png" if k == "huge-header" else f"img-{k}.jpg"]))


@case("infer/threshold-out-of-range")
def _(w, d):
    return ["infer", "--model", w.onnx, w.image, "--threshold", "1.5", "--out", d / "out", "-q"], ["--threshold"]


@case("infer/threshold-nan")
def _(w, d):
    return ["infer", "--model", w.onnx, w.image, "--threshold", "nan", "--out", d / "out", "-q"], ["--threshold"]


# --- evaluate
def _eval(w: World, d: Path, *, arch=None, weights=None, data=None, dataset="coco", extra=()) -> list:
    args = ["evaluate", "--arch", arch or w.arch, "--data", data or w.coco, "--dataset", dataset, "-q",
            "--results", d / "out" / "results.json", "--json", d / "out" / "metrics.json", *extra]
    return args + (["--weights", weights] if weights is not None else [])


_register_family("evaluate/arch", ["missing", "truncated", "stride-3"], lambda k, w, d: (
    _eval(w, d, arch=arch_variant(k, d), weights=w.weights), [f"arch-{k}.json"]))
_register_family("evaluate/weights", ["missing", "truncated", "bomb", "wrong-shapes", "other-arch", "no-tensors"],
                 lambda k, w, d: (_eval(w, d, weights=ckpt_variant(k, d, w)), [f"ckpt-{k}.pth"]))
_register_family("evaluate/data", ["missing", "empty-folder", "ann-missing", "ann-truncated", "ann-keypoints-length",
                                   "ann-unknown-image", "images-missing"] + IMAGE_KINDS, lambda k, w, d: (
    _eval(w, d, weights=w.weights, data=dataset_variant(k, d, w)), [f"data-{k}"]))


@case("evaluate/weights-supernet")
def _(w, d):
    return _eval(w, d, weights=w.supernet), ["supernet.pt"]


@case("evaluate/weights-wrong-joints")
def _(w, d):
    # CrowdPose weights (14 joints) on a COCO split
    return _eval(w, d, weights=w.weights14), ["weights14.pth", "final_refined"]


@case("evaluate/unknown-split")
def _(w, d):
    return _eval(w, d, weights=w.weights14, data=w.crowd, dataset="crowdpose", extra=("--split", "minival")), \
        ["split", "minival", "val"]


@case("evaluate/crowdpose-as-coco")
def _(w, d):
    return _eval(w, d, weights=w.weights, data=w.crowd), [str(w.crowd)]


# --- train / train-supernet (failures before the first step)
def _train(w: World, d: Path, *, cmd="train", arch=None, init=None, data=None, space=None, extra=()) -> list:
    args = [cmd] + (["--arch", arch or w.arch] if cmd == "train" else ["--space", space or w.space])
    args += ["--data", data or w.coco, "--steps", "1", "--batch-size", "2", "--resolutions", "64", "--workers", "0",
             "--val-every", "-1", "--out", d / "run", "-q", "--device", "cpu", *extra]
    return args + (["--init-from", init] if init is not None else [])


_register_family("train/arch", ["missing", "truncated", "even-kernel"], lambda k, w, d: (
    _train(w, d, arch=arch_variant(k, d)), [f"arch-{k}.json"]))
_register_family("train/init-from", ["missing", "truncated", "bomb", "wrong-shapes", "other-arch", "text"],
                 lambda k, w, d: (_train(w, d, init=ckpt_variant(k, d, w)), [f"ckpt-{k}.pth"]))
_register_family("train/data", ["missing", "empty-folder", "ann-truncated", "ann-joint-count", "ann-bbox-strings"],
                 lambda k, w, d: (_train(w, d, data=dataset_variant(k, d, w, split="train")), [f"data-{k}"]))
_register_family("train-supernet/space", ["missing", "bad-yaml", "even-kernel"], lambda k, w, d: (
    _train(w, d, cmd="train-supernet", space=space_variant(k, d, w)), [f"space-{k}.yaml"]))
_register_family("train-supernet/init-from", ["missing", "bomb", "wrong-type"], lambda k, w, d: (
    _train(w, d, cmd="train-supernet", init=ckpt_variant(k, d, w)), [f"ckpt-{k}.pth"]))


@case("train/init-from-supernet-arch-not-subnet")
def _(w, d):
    return _train(w, d, arch=_not_subnet(d), init=w.supernet), ["arch-not-subnet.json", "stage 2 channel 24"]


@case("train-supernet/data-missing")
def _(w, d):
    return _train(w, d, cmd="train-supernet", data=d / "nowhere"), ["nowhere"]


@case("train/batch-larger-than-split")
def _(w, d):
    return _train(w, d, extra=("--batch-size", "64")), ["64"]


@case("train/bad-resolutions")
def _(w, d):
    return _train(w, d, extra=("--resolutions", "64,abc")), ["--resolutions"]


@case("train/resolution-not-multiple-of-stride")
def _(w, d):
    return _train(w, d, extra=("--resolutions", "100")), ["resolution 100", "multiple of 16"]


@case("train/resume-without-run")
def _(w, d):
    return _train(w, d, extra=("--resume",)), ["--resume", "not found"]


@case("train/resume-corrupt-checkpoint")
def _(w, d):
    from litepose_nas.train.trainer import CHECKPOINT_NAME

    (d / "run").mkdir()
    junk_bytes(d / "run" / CHECKPOINT_NAME)
    return _train(w, d, extra=("--resume",)), [CHECKPOINT_NAME]


@case("train/resume-bomb-checkpoint")
def _(w, d):
    from litepose_nas.train.trainer import CHECKPOINT_NAME

    (d / "run").mkdir()
    pickle_bomb(d / "run" / CHECKPOINT_NAME, d / "BOMB-RAN")
    return _train(w, d, extra=("--resume",)), [CHECKPOINT_NAME, "refused"]


# --- predictor info / fit / collect
_register_family("predictor-info/pred", PREDICTOR_KINDS, lambda k, w, d: (
    ["predictor", "info", predictor_variant(k, d, w)], [f"pred-{k}"]))


@case("predictor-info/bomb-file-as-predictor")
def _(w, d):
    return ["predictor", "info", pickle_bomb(d / "evil.pkl", d / "BOMB-RAN", torch_format=False)], ["evil.pkl"]


_register_family("predictor-fit/evals", EVALS_KINDS, lambda k, w, d: (
    ["predictor", "fit", evals_variant(k, d, w), "--out", d / "out" / "pred", "--compare", "ridge", "--model", "ridge",
     "--folds", "2", "-q"], ["2 rows", "at least 4"] if k == "too-few-rows" else [f"evals-{k}.csv"]))


@case("predictor-fit/space-bad-yaml")
def _(w, d):
    return ["predictor", "fit", w.evals, "--out", d / "out" / "pred", "--space", space_variant("bad-yaml", d, w),
            "--compare", "ridge", "--folds", "2", "-q"], ["space-bad-yaml.yaml"]


def _collect(w: World, d: Path, *, supernet=None, data=None, space=None, out=None) -> list:
    return ["predictor", "collect", "--supernet", supernet or w.supernet, "--data", data or w.coco, "--archs", "2",
            "--out", out or d / "out" / "evals.csv", "--space", space or w.supernet.with_name("tiny-elastic.yaml"),
            "--calib-batches", "1", "--batch-size", "2", "--val-images", "1", "-q"]


_register_family("predictor-collect/supernet", ["missing", "truncated", "bomb", "wrong-type"], lambda k, w, d: (
    _collect(w, d, supernet=ckpt_variant(k, d, w)), [f"ckpt-{k}.pth"]))
_register_family("predictor-collect/data", ["missing", "ann-truncated"], lambda k, w, d: (
    _collect(w, d, data=dataset_variant(k, d, w)), [f"data-{k}"]))


@case("predictor-collect/static-weights-as-supernet")
def _(w, d):
    return _collect(w, d, supernet=w.weights), ["weights.pth"]


@case("predictor-collect/supernet-wrong-space")
def _(w, d):
    return _collect(w, d, space="litepose"), ["supernet.pt", "litepose"]


# --- search
def _search(w: World, d: Path, *, device=None, predictor=None, space=None, extra=()) -> list:
    return ["search", "--space", space or w.space, "--device", device or w.table, "--max-latency-ms", "20",
            "--algo", "random", "--trials", "5", "--predictor", predictor or w.predictor, "-q", "--out", d / "out",
            *extra]


_register_family("search/table", ["missing", "truncated", "nan", "header-nan-scale", "header-not-json"],
                 lambda k, w, d: (_search(w, d, device=table_variant(k, d, w)), [_table_fragment(k)]))
_register_family("search/predictor", ["missing", "meta-truncated", "arrays-bomb", "arrays-shape"], lambda k, w, d: (
    _search(w, d, predictor=predictor_variant(k, d, w)), [f"pred-{k}"]))
_register_family("search/space", ["missing", "bad-yaml"], lambda k, w, d: (
    _search(w, d, space=space_variant(k, d, w)), [f"space-{k}.yaml"]))


@case("search/table-of-another-space")
def _(w, d):
    return _search(w, d, space="litepose", predictor=None, extra=()), ["tiny", "litepose"]


@case("search/predictor-of-another-space")
def _(w, d):
    return ["search", "--space", "litepose", "--max-macs", "1", "--algo", "random", "--trials", "5",
            "--predictor", w.predictor, "-q", "--out", d / "out"], ["predictor", "tiny", "litepose"]


@case("search/unknown-device")
def _(w, d):
    return _search(w, d, device="no-such-device"), ["no-such-device", "not found"]


@case("search/impossible-budget")
def _(w, d):
    return _search(w, d, extra=("--max-latency-ms", "0.001")), ["impossible", "0.001"]


@case("search/bad-budgets")
def _(w, d):
    return _search(w, d, extra=("--budgets", "10,fast")), ["--budgets"]


@case("search/bad-storage")
def _(w, d):
    args = _search(w, d, extra=("--storage", "ftp://host/db"))
    args[args.index("random")] = "optuna"
    return args, ["ftp://host/db"]


@case("search/out-is-file")
def _(w, d):
    (d / "out").write_text("a file")
    return _search(w, d), ["--out", "is a file"]


# --- demo (reads no user file; its --out must be a folder)
@case("demo/out-is-file")
def _(w, d):
    (d / "out").write_text("a file")
    return ["demo", "--out", d / "out", "--fast", "-q"], ["out", "not a folder"]


# --- click's own usage errors are one line too
@case("usage/bad-option-value")
def _(w, d):
    return ["data", "synth", "--out", d / "out", "--images", "0"], ["--images"]


@case("usage/missing-option")
def _(w, d):
    return ["export", "--arch", w.arch], ["--out"]


@case("usage/bad-choice")
def _(w, d):
    return ["arch", "info", w.arch, "--num-joints", "15"], ["--num-joints", "14", "17"]


@case("usage/path-is-folder")
def _(w, d):
    return _train(w, d, arch=d), ["--arch", "directory"]


# ====================================================================== classes of bad input, generated
# Each class below is a generator of ways to break one kind of input, crossed with every reader of
# that kind: a new reader joins a class with one row of its table, and a new way reaches every reader.

# --- unbounded reads: inputs that a reader without a bound would never finish, or read whole
UNBOUNDED_PROBLEM = {"dev-zero": "not a regular file", "fifo": "not a regular file", "oversize": "MiB allowed",
                     "deep-json": "nested", "long-csv-field": "longer than"}


def unbounded_file(way: str, p: Path, kind: str, csv_header: str = "") -> Path:
    """Put at ``p`` an endless, huge or deeply nested input of ``kind`` (see ``litepose_nas.io.LIMITS``)."""
    import os

    from litepose_nas.io import LIMITS

    if p.is_symlink() or p.exists():
        p.unlink()
    if way == "dev-zero":
        p.symlink_to("/dev/zero")
    elif way == "fifo":
        os.mkfifo(p)
    elif way == "oversize":
        with open(p, "wb") as f:       # sparse: no disk used, but stat says one byte too many
            f.truncate(LIMITS[kind] + 1)
    elif way == "deep-json":
        p.write_text("[" * 50_000 + "]" * 50_000)
    elif way == "long-csv-field":
        p.write_text(csv_header + "\n" + '"' + "x" * 200_000 + '"\n')
    else:
        raise AssertionError(way)
    return p


def _copy_table(w: World, d: Path) -> Path:
    """A copy whose CSV may be edited by hand: the header drops its digest, as docs/latency.md says."""
    header = json.loads(w.table.with_suffix(".json").read_text())
    header.pop("csv_sha256", None)
    write_json(d / "t.json", header)
    return Path(shutil.copy(w.table, d / "t.csv"))


def _score_files(w: World, d: Path) -> tuple[Path, Path]:
    from litepose_nas.metrics import gt_as_results

    gt_path, preds_path = d / "gt.json", d / "preds.json"
    if not gt_path.exists():     # written once per case: a case breaks them after
        gt = json.loads((w.coco / "annotations" / "person_keypoints_val2017.json").read_text())
        write_json(gt_path, gt), write_json(preds_path, gt_as_results(gt))
    return gt_path, preds_path


def _score(w: World, d: Path, results=None, ann=None, extra=()) -> list:
    gt, preds = _score_files(w, d)
    return ["score", "--results", results or preds, "--ann", ann or gt, "--dataset", "coco", *extra]


JSON_WAYS = ["dev-zero", "fifo", "oversize", "deep-json"]
FILE_WAYS = ["dev-zero", "fifo", "oversize"]
CSV_WAYS = FILE_WAYS + ["long-csv-field"]
# reader -> (ways, build(way, w, d) -> argv with the broken file named `bad.*`)
UNBOUNDED_READERS: dict[str, tuple[list[str], Callable[[str, World, Path], list]]] = {
    "arch-validate/arch": (JSON_WAYS, lambda k, w, d: [
        "arch", "validate", unbounded_file(k, d / "bad.json", "architecture JSON"), "--space", w.space]),
    "space-info/space": (FILE_WAYS, lambda k, w, d: ["space", "info", unbounded_file(k, d / "bad.yaml", "search space")]),
    "latency-show/header": (JSON_WAYS, lambda k, w, d: [
        "latency", "show", "--table", unbounded_file(k, _copy_table(w, d).with_suffix(".json"),
                                                     "latency table header").with_suffix(".csv")]),
    "latency-show/csv": (CSV_WAYS, lambda k, w, d: [
        "latency", "show", "--table", unbounded_file(k, _copy_table(w, d), "latency table", "key,kind")]),
    "predictor-info/meta": (JSON_WAYS, lambda k, w, d: [
        "predictor", "info", unbounded_file(k, Path(shutil.copytree(w.predictor, d / "pred")) / "predictor.json",
                                            "predictor").parent]),
    "predictor-fit/evals": (CSV_WAYS, lambda k, w, d: [
        "predictor", "fit", unbounded_file(k, d / "bad.csv", "evaluations table", "arch,ap"), "--out", d / "out",
        "--compare", "ridge", "--folds", "2", "-q"]),
    "score/results": (JSON_WAYS, lambda k, w, d: _score(w, d, results=unbounded_file(k, d / "bad.json", "results file"))),
    "score/ann": (JSON_WAYS, lambda k, w, d: _score(w, d, ann=unbounded_file(k, d / "bad.json", "annotation file"))),
    "data-info/ann": (JSON_WAYS, lambda k, w, d: [
        "data", "info", _dataset_with(w, d, lambda ann: unbounded_file(k, ann, "annotation file"))]),
    "infer/image": (FILE_WAYS, lambda k, w, d: [
        "infer", "--model", w.onnx, unbounded_file(k, d / "bad.jpg", "image"), "--out", d / "out", "-q"]),
    "checkpoint-info/ckpt": (FILE_WAYS, lambda k, w, d: [
        "checkpoint", "info", unbounded_file(k, d / "bad.pth", "checkpoint")]),
    "infer/model": (FILE_WAYS, lambda k, w, d: [
        "infer", "--model", unbounded_file(k, Path(shutil.copytree(w.onnx.parent, d / "m")) / w.onnx.name,
                                           "ONNX model"), w.image, "--out", d / "out", "-q"]),
    "profile/progress": (FILE_WAYS, lambda k, w, d: [
        "profile", "--space", w.space, "--device-name", "x", "--quick", "--out",
        unbounded_file(k, d / "t.partial.jsonl", "progress file").with_name("t.csv"), "-q"]),
}


def _dataset_with(w: World, d: Path, breaker: Callable[[Path], object]) -> Path:
    root = Path(shutil.copytree(w.coco, d / "data"))
    for split in ("train", "val"):
        breaker(root / "annotations" / f"person_keypoints_{split}2017.json")
    return root


for _reader, (_ways, _build) in UNBOUNDED_READERS.items():
    for _way in _ways:
        case(f"{_reader}-unbounded-{_way}")(lambda w, d, b=_build, k=_way: (b(k, w, d), [UNBOUNDED_PROBLEM[k]]))


# --- artefacts trusted without validation: every numeric field of every artefact gets every bad number
BAD_NUMBERS = {"nan": float("nan"), "inf": float("inf"), "negative": -1, "zero": 0, "string": "1"}


def _table_with_scale(value, w: World, d: Path) -> Path:
    csv_path = _copy_table(w, d)
    head = json.loads(csv_path.with_suffix(".json").read_text())
    head["correction"]["scale"] = value
    write_json(csv_path.with_suffix(".json"), head)
    return csv_path


def _predictor_with(w: World, d: Path, edit_meta=None, arrays=None) -> Path:
    import numpy as np

    folder = Path(shutil.copytree(w.predictor, d / "pred"))
    if edit_meta is not None:
        meta = json.loads((folder / "predictor.json").read_text())
        edit_meta(meta)
        write_json(folder / "predictor.json", meta)
    if arrays is not None:
        meta = json.loads((folder / "predictor.json").read_text())
        meta.pop("arrays_sha256", None)  # forged arrays: the checks behind the digest must refuse them
        write_json(folder / "predictor.json", meta)
        with np.load(folder / "arrays.npz") as npz:
            data = {k: npz[k] for k in npz.files}
        arrays(data, folder / "arrays.npz")
    return folder


def _npz_save(data: dict, path: Path) -> None:
    import numpy as np

    with open(path, "wb") as f:
        np.savez(f, **data)


def _first_array_as(data: dict, path: Path, fn) -> None:
    first = sorted(data)[0]
    data[first] = fn(data[first])
    _npz_save(data, path)


def _huge_member(data: dict, path: Path) -> None:
    """An npz whose member header claims 4 GB of float64 (the member itself holds a few bytes)."""
    import io as _io
    import zipfile

    import numpy as np

    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (1 << 29,)})
    with zipfile.ZipFile(path, "w") as zf:
        for name, array in data.items():
            member = _io.BytesIO()
            np.save(member, array)
            zf.writestr(name + ".npy", member.getvalue())
        zf.writestr("huge.npy", buf.getvalue() + b"\0" * 64)


def _truncated_npz(fraction: float):
    def make(data: dict, path: Path) -> None:
        _npz_save(data, path)
        truncate(path, path, fraction)
    return make


PREDICTOR_ARRAYS = {
    "nan-weight": lambda data, p: _first_array_as(data, p, lambda a: a * float("nan")),
    "inf-weight": lambda data, p: _first_array_as(data, p, lambda a: a + float("inf")),
    "complex": lambda data, p: _first_array_as(data, p, lambda a: a.astype("complex128")),
    "huge-member": _huge_member,
    **{f"truncated-{int(f * 100)}": _truncated_npz(f) for f in (0.1, 0.5, 0.95)},
}
for _name, _value in BAD_NUMBERS.items():
    case(f"latency-show/table-scale-{_name}")(lambda w, d, v=_value: (
        ["latency", "show", "--table", _table_with_scale(v, w, d)], ["t.json", "scale"]))
    case(f"search/table-scale-{_name}")(lambda w, d, v=_value: (
        _search(w, d, device=_table_with_scale(v, w, d)), ["t.json", "scale"]))
    case(f"predictor-info/target-std-{_name}")(lambda w, d, v=_value: (
        ["predictor", "info", _predictor_with(w, d, edit_meta=lambda m: m["target"].update(std=v))],
        ["predictor.json", "target.std"]))
for _name, _make in PREDICTOR_ARRAYS.items():
    case(f"predictor-info/arrays-{_name}")(lambda w, d, m=_make: (
        ["predictor", "info", _predictor_with(w, d, arrays=m)], ["arrays.npz"]))
    case(f"search/predictor-arrays-{_name}")(lambda w, d, m=_make: (
        _search(w, d, predictor=_predictor_with(w, d, arrays=m)), ["arrays.npz"]))

# annotation fields: (field, index in the list, bad values) -> what the error names
ANNOTATION_BREAKS = {
    "keypoint-x": ("keypoints", 0, ["nan", "inf", "string"], "keypoints"),
    "visibility": ("keypoints", 2, [7, -1, 0.5], "visibility"),
    "bbox-width": ("bbox", 2, [0, -5, "nan"], "bbox"),
    "bbox-height": ("bbox", 3, [0, -5, "inf"], "bbox"),
}


def _annotation_broken(field_name: str, index: int, value, ann_path: Path) -> Path:
    gt = json.loads(ann_path.read_text())
    gt["annotations"][0][field_name][index] = BAD_NUMBERS[value] if isinstance(value, str) else value
    return write_json(ann_path, gt)


def _score_broken_gt(w: World, d: Path, field_name: str, index: int, value) -> list:
    gt, preds = _score_files(w, d)
    return _score(w, d, results=preds, ann=_annotation_broken(field_name, index, value, gt))


for _kind, (_field, _index, _values, _fragment) in ANNOTATION_BREAKS.items():
    for _value in _values:
        _label = f"{_kind}-{_value}"
        case(f"data-info/ann-{_label}")(lambda w, d, f=_field, i=_index, v=_value, g=_fragment: (
            ["data", "info", _dataset_with(w, d, lambda ann: _annotation_broken(f, i, v, ann))],
            ["person_keypoints_", "annotations[0]", g]))
        case(f"score/ann-{_label}")(lambda w, d, f=_field, i=_index, v=_value, g=_fragment: (
            _score_broken_gt(w, d, f, i, v), ["gt.json", "annotations[0]", g]))

# detections: a field missing or holding a bad value
DETECTION_BREAKS = {
    "no-score": lambda det: det.pop("score"), "no-image-id": lambda det: det.pop("image_id"),
    "no-keypoints": lambda det: det.pop("keypoints"), "no-category": lambda det: det.pop("category_id"),
    **{f"score-{n}": (lambda det, v=v: det.update(score=v)) for n, v in BAD_NUMBERS.items() if n in ("nan", "inf", "string")},
    **{f"keypoints-{n}": (lambda det, v=v: det["keypoints"].__setitem__(1, v)) for n, v in BAD_NUMBERS.items()
       if n in ("nan", "inf", "string")},
    "all-nan": lambda det: det.update(keypoints=[float("nan")] * len(det["keypoints"])),
}


def _broken_results(w: World, d: Path, breaker) -> Path:
    _, preds = _score_files(w, d)
    results = json.loads(preds.read_text())
    breaker(results[-1])
    return write_json(preds, results)


for _name, _breaker in DETECTION_BREAKS.items():
    case(f"score/detection-{_name}")(lambda w, d, b=_breaker: (
        _score(w, d, results=_broken_results(w, d, b)), ["preds.json", "detection"]))


@case("export/weights-complex")
def _(w, d):
    import torch

    state = torch.load(w.weights, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first].to(torch.complex64)
    torch.save(state, d / "complex.pth")
    return ["export", "--arch", w.arch, "--weights", d / "complex.pth", "--out", d / "out"], ["complex.pth", "complex"]


# --- raw messages: every output option x every way an output path can be unusable
def _under_a_file(d: Path) -> Path:
    (d / "plain").write_text("x")
    return d / "plain" / "out"


def _with_out(args: list, out: Path) -> list:
    """``args`` with the value of their ``--out`` replaced."""
    i = args.index("--out")
    return args[:i + 1] + [out] + args[i + 2:]


OUTPUT_WAYS = {"under-a-file": _under_a_file, "name-too-long": lambda d: d / ("n" * 300)}
OUTPUT_PROBLEM = {"under-a-file": "Not a directory", "name-too-long": "too long"}
OUTPUT_OPTIONS: dict[str, Callable[[World, Path, Path], list]] = {
    "evaluate/results": lambda w, d, o: ["evaluate", "--arch", w.arch, "--data", w.coco, "--dataset", "coco",
                                         "--results", o, "-q"],
    "evaluate/json": lambda w, d, o: ["evaluate", "--arch", w.arch, "--data", w.coco, "--dataset", "coco",
                                      "--json", o, "-q"],
    "score/json": lambda w, d, o: _score(w, d, extra=("--json", o)),
    "search/out": lambda w, d, o: _with_out(_search(w, d), o),
    "profile/out": lambda w, d, o: ["profile", "--space", w.space, "--device-name", "x", "--quick", "--out", o, "-q"],
    "export/out": lambda w, d, o: ["export", "--arch", w.arch, "--random-init", "--out", o],
    "data-synth/out": lambda w, d, o: ["data", "synth", "--out", o, "--images", "2", "--size", "64"],
    "train/out": lambda w, d, o: _with_out(_train(w, d), o),
    "predictor-fit/out": lambda w, d, o: ["predictor", "fit", w.evals, "--out", o, "--compare", "ridge", "-q"],
    "infer/out": lambda w, d, o: ["infer", "--model", w.onnx, w.image, "--out", o, "-q"],
}
for _option, _build in OUTPUT_OPTIONS.items():
    for _way, _make in OUTPUT_WAYS.items():
        case(f"{_option}-output-{_way}")(lambda w, d, b=_build, m=_make, k=_way: (b(w, d, m(d)), [OUTPUT_PROBLEM[k]]))

# --- option bounds: numbers too large to allocate, NaN and infinite budgets name their option
OPTION_BOUNDS: dict[str, tuple[Callable[[World, Path], list], list[str]]] = {
    "--population": (lambda w, d: _search(w, d), ["100000000"]),
    "--generations": (lambda w, d: _search(w, d), ["100000000"]),
    "--trials": (lambda w, d: _search(w, d), ["100000000000"]),
    "--max-latency-ms": (lambda w, d: _search(w, d), ["nan", "inf", "-inf", "-1"]),
    "--max-macs": (lambda w, d: _search(w, d), ["nan", "inf"]),
    "--size": (lambda w, d: ["data", "synth", "--out", d / "out", "--images", "2"], ["100000"]),
    "--images": (lambda w, d: ["data", "synth", "--out", d / "out", "--size", "64"], ["100000000"]),
    "--threads": (lambda w, d: ["profile", "--space", w.space, "--device-name", "x", "--quick", "--out",
                                d / "t.csv", "-q"], ["1000"]),
}
for _option, (_build, _values) in OPTION_BOUNDS.items():
    for _value in _values:
        case(f"usage/option-{_option.strip('-')}-{_value}")(lambda w, d, b=_build, o=_option, v=_value: (
            b(w, d) + [o, v], [o]))


# ====================================================================== known defects
# Cases that fail today, in code owned by other areas; strict xfail so a fix shows up as XPASS.
KNOWN_DEFECTS: dict[str, str] = {}


# ====================================================================== running them
def _spec(w: World, d: Path, name: str) -> tuple[list[str], list[str], int]:
    spec = CASES[name](w, d)
    args, fragments, status = (*spec, 2) if len(spec) == 2 else spec
    return [str(a) for a in args], [str(f) for f in fragments], status


def _check(name: str, world: World, d: Path, runner) -> None:
    d.mkdir(parents=True, exist_ok=True)
    args, fragments, status = _spec(world, d, name)
    before = files_under(d)
    result = runner(*args)
    assert_clean_failure(result, status, *fragments)
    # nothing new: no output file, no run folder, no temporary file, and no pickle payload ran
    assert files_under(d) == before, sorted(map(str, files_under(d) - before))
    assert not (d / "BOMB-RAN").exists()


def _params(names):
    return [pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_DEFECTS[n], strict=True)) if n in KNOWN_DEFECTS
            else n for n in sorted(names)]


@pytest.mark.parametrize("name", _params(CASES))
def test_bad_input(name: str, world: World, tmp_path: Path) -> None:
    _check(name, world, tmp_path / "case", run_inproc)


@pytest.mark.parametrize("name", _params(SUBPROCESS))
def test_bad_input_subprocess(name: str, world: World, tmp_path: Path) -> None:
    """The same contract in a real process: exit status, stderr and files as a user sees them."""
    _check(name, world, tmp_path / "case", lambda *a: run_cli(*a, cwd=tmp_path))


def test_world_untouched(world: World) -> None:
    """Failed commands wrote nothing beside their inputs (no temporary files, no stray outputs)."""
    assert temp_leftovers(world.root) == []
    assert not (world.root / "BOMB-RAN").exists()


def test_matrix_size() -> None:
    """Every command of the CLI is in the matrix."""
    assert SUBPROCESS <= set(CASES) and set(KNOWN_DEFECTS) <= set(CASES)
    from litepose_nas.cli import COMMANDS

    covered = {name.split("/")[0].split("-")[0] if not name.startswith("train-supernet") else "train-supernet"
               for name in CASES}
    missing = [c for c in COMMANDS if c not in covered and c.split("-")[0] not in covered]
    assert not missing, f"commands without bad-input cases: {missing}"
    assert len(CASES) >= 150
