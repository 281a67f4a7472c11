"""Keypoint sets other than COCO's and CrowdPose's (issue 16): declared in a search space or read
from a dataset's annotation file, checked with one-line errors, and carried through training,
evaluation, export and inference. The end-to-end test also uses a space with one head level (one
output at 1/4 of the input)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from litepose_nas.errors import DataError, SpaceError
from litepose_nas.keypoints import COCO, CROWDPOSE, UNIFORM_SIGMA, keypoint_set
from reliability_helpers import run_inproc

FIVE = ["nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip"]

SPACE_YAML = """\
name: five-joints
description: 3 stages, 1 head level (one output at 1/4), a 5-joint keypoint set
resolutions: [64]
stem:
  mid_channels: 8
  widths: [8]
stages:
  - {stride: 2, widths: [8], depths: [1], kernels: [3, 5], expansions: [2]}
  - {stride: 2, widths: [16], depths: [1], kernels: [3], expansions: [2]}
  - {stride: 1, widths: [16, 24], depths: [1], kernels: [3], expansions: [2]}
head:
  widths: [[16]]
keypoints:
  name: upper-body-5
  joints: [nose, left_shoulder, right_shoulder, left_hip, right_hip]
  flip_pairs: [[1, 2], [3, 4]]
"""


def test_keypoint_set_rules():
    five = keypoint_set({"num_joints": 5, "flip_pairs": [[1, 2], [3, 4]]})
    assert five.flip_index == (0, 2, 1, 4, 3) and five.sigmas == (UNIFORM_SIGMA,) * 5
    assert five.flip_pairs == ((1, 2), (3, 4))
    by_name = keypoint_set({"joints": FIVE})  # no pairs: the left/right naming rule
    assert by_name.flip_index == (0, 2, 1, 4, 3)
    assert keypoint_set(COCO.to_dict()) is COCO and keypoint_set(CROWDPOSE.to_dict()) is CROWDPOSE
    # 17 and 14 joints without sigmas score with COCO's and CrowdPose's
    assert keypoint_set({"num_joints": 17, "flip_pairs": []}).sigmas == COCO.sigmas
    assert keypoint_set({"num_joints": 14, "flip_pairs": []}).sigmas == CROWDPOSE.sigmas
    for bad, message in (
        ({"num_joints": 5, "flip_pairs": [[1, 5]]}, "flip_pairs: joint index 5 out of range"),
        ({"num_joints": 5, "flip_pairs": [[1, 2], [2, 3]]}, "joint 2 is paired twice"),
        ({"num_joints": 4, "joints": FIVE}, "num_joints: 4 but joints lists 5 names"),
        ({"num_joints": 5, "sigmas": [0.1] * 4}, "sigmas: expected 5 positive numbers"),
    ):
        with pytest.raises(SpaceError, match=message):
            keypoint_set(bad, "space.yaml: keypoints", SpaceError)


def test_bad_keypoint_set_in_a_space_names_the_file_and_field(tmp_path: Path):
    from litepose_nas.space import SearchSpace

    path = tmp_path / "space.yaml"
    path.write_text(SPACE_YAML.replace("[[1, 2], [3, 4]]", "[[1, 2], [3, 7]]"))
    with pytest.raises(SpaceError, match=r"space\.yaml: keypoints\.flip_pairs: joint index 7 out of range"):
        SearchSpace.from_yaml(path)
    r = run_inproc("space", "info", path)
    assert r.returncode == 2 and "keypoints.flip_pairs" in r.stderr and "Traceback" not in r.stderr


def test_space_and_dataset_must_agree_on_the_joint_count(tmp_path: Path):
    from litepose_nas.data import generate_synthetic, open_dataset
    from litepose_nas.space import SearchSpace

    path = tmp_path / "space.yaml"
    path.write_text(SPACE_YAML)
    space = SearchSpace.from_yaml(path)
    assert space.keypoints.num_joints == 5 and space.to_dict()["keypoints"]["flip_pairs"] == [[1, 2], [3, 4]]
    assert SearchSpace.from_dict(space.to_dict()) == space
    data = generate_synthetic(tmp_path / "coco17", 2, layout="coco", image_size=64, val_fraction=0.5)
    with pytest.raises(DataError, match=r"person_keypoints_train2017\.json: categories\[0\]\.keypoints lists 17 "
                                        r"joints, the keypoint set 'upper-body-5'"):
        open_dataset(data, "coco", "train", space.keypoints)


def test_five_joint_set_trains_evaluates_exports_and_infers(tmp_path: Path, one_torch_thread):
    """A 5-joint synthetic set (flip pairs by the naming rule in the file, explicit in the space) and
    a one-head-level space: train-supernet -> export -> evaluate (flip test) -> infer."""
    from litepose_nas.data import generate_synthetic, open_dataset

    space = tmp_path / "space.yaml"
    space.write_text(SPACE_YAML)
    data = generate_synthetic(tmp_path / "five", 6, layout="coco", image_size=64, val_fraction=0.34, joints=FIVE)
    source = open_dataset(data, "coco", "val")
    assert source.num_joints == 5 and source.spec.flip_index == (0, 2, 1, 4, 3)
    run = tmp_path / "run"
    r = run_inproc("train-supernet", "--space", space, "--data", data, "--steps", "2", "--batch-size", "2",
                   "--workers", "0", "--val-every", "-1", "--out", run, "-q", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    config = json.loads((run / "config.json").read_text())
    assert config["keypoints"]["name"] == "upper-body-5" and config["keypoints"]["num_joints"] == 5
    arch = tmp_path / "arch.json"
    from litepose_nas.space import SearchSpace

    SearchSpace.from_yaml(space).largest().to_json(arch)
    export = tmp_path / "export"
    r = run_inproc("export", "--arch", arch, "--supernet", run / "supernet.pt", "--space", space, "--out", export,
                   "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((export / "metadata.json").read_text())
    assert meta["num_joints"] == 5 and meta["dataset"] == "upper-body-5" and meta["keypoints"] == FIVE
    assert meta["flip_index"] == [0, 2, 1, 4, 3] and meta["sigmas"] == [UNIFORM_SIGMA] * 5
    assert [(o["name"], o["stride"], o["shape_at_img_size"][1]) for o in meta["outputs"]] == [("heatmaps_tags", 4, 10)]
    metrics = tmp_path / "metrics.json"
    r = run_inproc("evaluate", "--arch", export / "arch.json", "--weights", export / "weights.pth", "--data", data,
                   "--dataset", "coco", "--flip-test", "-q", "--json", metrics)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(metrics.read_text())["num_images"] == 2
    images = sorted((Path(data) / "images" / "val2017").glob("*.jpg"))
    r = run_inproc("infer", "--model", export / "model.onnx", *images, "--out", tmp_path / "infer", "-q")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads((tmp_path / "infer" / "people.json").read_text())
    assert out["categories"][0]["keypoints"] == FIVE and out["categories"][0]["flip_pairs"] == [[1, 2], [3, 4]]
    assert all(len(a["keypoints"]) == 15 for a in out["annotations"])


def test_outputs_at_strides_16_and_8_train_and_evaluate(tmp_path: Path, one_torch_thread):
    """A five-stage network (total stride 32, two head levels: outputs at 1/16 and 1/8 of the input):
    targets, loss, validation and evaluation follow the plan's output strides."""
    from litepose_nas.data import generate_synthetic
    from litepose_nas.space import SearchSpace

    stage = {"depths": [1], "kernels": [3], "expansions": [2]}
    space = SearchSpace.create("deep", [64], [8], [{"stride": s, "widths": [8], **stage} for s in (2, 2, 2, 2, 1)],
                               [[8], [8]])
    arch = space.largest()
    assert arch.wiring.output_strides == (16, 8)
    arch.to_json(tmp_path / "arch.json")
    data = generate_synthetic(tmp_path / "coco", 4, layout="coco", image_size=64, val_fraction=0.5)
    run = tmp_path / "run"
    r = run_inproc("train", "--arch", tmp_path / "arch.json", "--data", data, "--dataset", "coco", "--steps", "2",
                   "--batch-size", "2", "--workers", "0", "--val-images", "2", "--out", run, "-q", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val" in json.dumps(rec) for rec in records)  # validated at the end
    metrics = tmp_path / "metrics.json"
    r = run_inproc("evaluate", "--arch", tmp_path / "arch.json", "--weights", run / "model.pt", "--data", data,
                   "--dataset", "coco", "-q", "--json", metrics)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(metrics.read_text())["num_images"] == 2
