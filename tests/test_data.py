"""Pose data: readers on the real layouts, the synthetic generator, augmentation, targets, loaders."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from litepose_nas.cli import main
from litepose_nas.data import MEAN, STD, PoseDataset, crowd_index, generate_synthetic, make_loader, open_dataset
from litepose_nas.data.synth import PRESETS, render_image
from litepose_nas.data.targets import ae_joints, heatmaps
from litepose_nas.data.transforms import crop_matrix, flip_joints, transform_joints, transform_points, warp
from litepose_nas.errors import DataError
from litepose_nas.keypoints import keypoint_spec

from data_paths import REAL

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _coco_layout(tmp_path: Path, split: str = "val", gt: dict | None = None) -> Path:
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "images" / f"{split}2017").mkdir(parents=True)
    for f in (REAL / "coco").glob("*.jpg"):
        shutil.copy(f, root / "images" / f"{split}2017" / f.name)
    gt = gt if gt is not None else json.loads((REAL / "coco" / "test_coco.json").read_text())
    (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(json.dumps(gt))
    return root


def _crowdpose_layout(tmp_path: Path, split: str = "test") -> Path:
    root = tmp_path / "crowdpose"
    (root / "json").mkdir(parents=True)
    (root / "images").mkdir(parents=True)
    for f in (REAL / "crowdpose").glob("*.jpg"):
        shutil.copy(f, root / "images" / f.name)
    shutil.copy(REAL / "crowdpose" / "test_crowdpose.json", root / "json" / f"crowdpose_{split}.json")
    return root


# -- readers on the real samples ------------------------------------------------------------------
def test_coco_reader_real_samples(tmp_path):
    root = _coco_layout(tmp_path, "val")
    src = open_dataset(root, "coco", "val")
    assert src.dataset == "coco" and src.num_joints == 17 and src.spec == keypoint_spec("coco")
    assert src.image_ids == [785, 40083, 196141, 197388]
    assert src.annotation_file == root / "annotations" / "person_keypoints_val2017.json"
    assert src.image_dir == root / "images" / "val2017"
    assert sum(len(src.annotations(i)) for i in src.image_ids) == 14
    img = src.load_image(785)
    assert img.shape == (425, 640, 3) and img.dtype == np.uint8
    assert src.image_path(785).name == "000000000785.jpg"
    assert src.crowd_index(785) is None
    assert src.people(40083).shape == (2, 17, 3)  # the third person has no keypoints
    assert src.gt_dict()["categories"][0]["name"] == "person"
    # the image-less train split keeps only images with people that have keypoints
    gt = json.loads((REAL / "coco" / "test_coco.json").read_text())
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] != 785]
    train = open_dataset(_coco_layout(tmp_path / "t", "train", gt), "coco", "train")
    assert 785 not in train.image_ids and len(train.image_ids) == 3


def test_coco_reader_accepts_unzipped_layout(tmp_path):
    root = _coco_layout(tmp_path, "val")
    (root / "images" / "val2017").rename(root / "val2017")
    (root / "images").rmdir()
    src = open_dataset(root, "coco", "val")
    assert src.load_image(40083).shape == (333, 500, 3)


def test_crowdpose_reader_real_samples(tmp_path):
    root = _crowdpose_layout(tmp_path)
    src = open_dataset(root, "crowdpose", "test")
    assert src.num_joints == 14 and sorted(src.image_ids) == [103319, 106848]
    assert src.crowd_index(106848) == pytest.approx(0.33)
    for image_id in src.image_ids:
        anns = src.annotations(image_id)
        kp = np.asarray([a["keypoints"] for a in anns], float).reshape(len(anns), 14, 3)
        boxes = np.asarray([a["bbox"] for a in anns], float)
        assert crowd_index(kp, boxes) == pytest.approx(src.crowd_index(image_id), abs=0.005)
    # CrowdPose has no segmentation: the box of the person without keypoints is ignored
    mask = src.ignore_mask(106848)
    empty = [a for a in src.annotations(106848) if a["num_keypoints"] == 0][0]
    x, y, w, h = (int(v) for v in empty["bbox"])
    assert mask[y + h // 2, x + w // 2] == 1 and mask.sum() <= (w + 2) * (h + 2)


def test_dataset_on_real_samples_masks_cover_unannotated_people(tmp_path):
    from pycocotools import mask as mask_utils

    src = open_dataset(_coco_layout(tmp_path, "val"), "coco", "val")
    ds = PoseDataset(src, input_size=128, train=False)
    index = src.image_ids.index(196141)
    s = ds[index]
    assert s["image"].shape == (3, 128, 128)
    assert [h.shape for h in s["heatmaps"]] == [(17, 32, 32), (17, 64, 64)]
    assert [m.shape for m in s["masks"]] == [(32, 32), (64, 64)]
    assert s["joints"].shape == (30, 17, 2) and s["joints"].dtype == torch.int64
    assert int(s["joints"][..., 1].sum()) > 30
    info = src.image_info(196141)
    empty = [a for a in src.annotations(196141) if a["num_keypoints"] == 0][0]
    seg = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(empty["segmentation"], info["height"], info["width"])))
    mat, _ = ds.transform(index)
    ys, xs = np.nonzero(seg)
    pts = transform_points(mat * 0.5, np.stack([xs + 0.5, ys + 0.5], 1))  # onto the 64-px map
    inside = np.floor(pts).astype(int)
    hit = s["masks"][1].numpy()[inside[:, 1], inside[:, 0]]
    assert (hit == 0).mean() > 0.8  # the region is ignored (edges blur under resampling)
    assert s["masks"][1].mean() > 0.5  # and the rest is not


def test_crowd_region_masked_in_training_sample(tmp_path):
    """An iscrowd annotation (COCO RLE) is ignored by the loss after a random transform."""
    import cv2
    from pycocotools import mask as mask_utils

    root = tmp_path / "c"
    (root / "annotations").mkdir(parents=True)
    (root / "images" / "train2017").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "train2017" / "1.jpg"), np.full((80, 100, 3), 128, np.uint8))
    crowd = np.zeros((80, 100), np.uint8)
    crowd[10:40, 50:90] = 1
    rle = mask_utils.encode(np.asfortranarray(crowd))
    person = [0.0] * 51
    person[15:18] = [20.5, 50.5, 2]
    gt = {"images": [{"id": 1, "file_name": "1.jpg", "height": 80, "width": 100}], "categories": [{"id": 1, "name": "person"}],
          "annotations": [
              {"id": 1, "image_id": 1, "iscrowd": 0, "num_keypoints": 1, "keypoints": person, "bbox": [10, 40, 20, 20]},
              {"id": 2, "image_id": 1, "iscrowd": 1, "num_keypoints": 0, "keypoints": [0] * 51, "bbox": [50, 10, 40, 30],
               "segmentation": {"size": [80, 100], "counts": rle["counts"].decode()}}]}
    (root / "annotations" / "person_keypoints_train2017.json").write_text(json.dumps(gt))
    src = open_dataset(root, "coco", "train")
    ds = PoseDataset(src, input_size=64, train=True, seed=3)
    for i in range(3):
        s = ds[(0, i)]
        mat, _ = ds.transform(0, i)
        centre = transform_points(mat * 0.5, np.array([70.0, 25.0]))  # crowd centre on the 32-px map
        cx, cy = np.floor(centre).astype(int)
        if 0 <= cx < 32 and 0 <= cy < 32:
            assert s["masks"][1][cy, cx] == 0
        assert s["masks"][1].sum() > 0


# -- errors ---------------------------------------------------------------------------------------
def test_missing_files_and_malformed_annotations(tmp_path):
    with pytest.raises(DataError, match="not found"):
        open_dataset(tmp_path / "absent", "coco", "val")
    root = _coco_layout(tmp_path, "val")
    with pytest.raises(DataError, match="person_keypoints_train2017.json"):
        open_dataset(root, "coco", "train")
    with pytest.raises(DataError, match="allowed: train, val"):
        open_dataset(root, "coco", "test")
    src = open_dataset(root, "coco", "val")
    src.image_path(785).unlink()
    with pytest.raises(DataError, match="000000000785.jpg"):
        src.load_image(785)
    src.image_path(40083).write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="000000040083.jpg.*decoded"):
        src.load_image(40083)
    ann_file = root / "annotations" / "person_keypoints_val2017.json"
    gt = json.loads(ann_file.read_text())
    gt["annotations"][3]["keypoints"] = gt["annotations"][3]["keypoints"][:-3]
    ann_file.write_text(json.dumps(gt))
    with pytest.raises(DataError, match=r"annotations\[3\].*'keypoints'.*51"):
        open_dataset(root, "coco", "val")
    ann_file.write_text("{ not json")
    with pytest.raises(DataError, match="not valid JSON"):
        open_dataset(root, "coco", "val")
    shutil.rmtree(root / "images")
    with pytest.raises(DataError, match="image folder"):
        open_dataset(root, "coco", "val")


def test_crowdpose_json_read_as_coco_is_refused(tmp_path):
    root = tmp_path / "x"
    (root / "annotations").mkdir(parents=True)
    (root / "images" / "val2017").mkdir(parents=True)
    shutil.copy(REAL / "crowdpose" / "test_crowdpose.json", root / "annotations" / "person_keypoints_val2017.json")
    with pytest.raises(DataError, match="14 keypoints"):
        open_dataset(root, "coco", "val")


# -- synthetic generator -----------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synthetic_deterministic_and_pycocotools_valid(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    a = generate_synthetic(tmp_path / "a", 8, layout="coco", preset="hard", seed=5, val_fraction=0.25, image_size=96)
    b = generate_synthetic(tmp_path / "b", 8, layout="coco", preset="hard", seed=5, val_fraction=0.25, image_size=96, workers=2)
    c = generate_synthetic(tmp_path / "c", 8, layout="coco", preset="hard", seed=6, val_fraction=0.25, image_size=96)
    assert _tree(a) == _tree(b)
    assert _tree(a) != _tree(c)
    assert not list(tmp_path.glob(".*partial*"))
    assert (a / "images" / "train2017").is_dir() and len(list((a / "images" / "val2017").glob("*.jpg"))) == 2
    gt = COCO(str(a / "annotations" / "person_keypoints_train2017.json"))
    people = [x for x in gt.dataset["annotations"] if x["num_keypoints"] > 0]
    assert people
    for x in gt.dataset["annotations"]:
        kp = np.asarray(x["keypoints"]).reshape(17, 3)
        assert x["num_keypoints"] == int((kp[:, 2] > 0).sum())
        assert x["area"] > 0 and x["segmentation"] and len(x["bbox"]) == 4
        inside = kp[kp[:, 2] > 0]
        im = gt.imgs[x["image_id"]]
        assert ((inside[:, 0] >= 0) & (inside[:, 0] < im["width"]) & (inside[:, 1] >= 0) & (inside[:, 1] < im["height"])).all()
        assert gt.annToMask(x).shape == (im["height"], im["width"])
    # the ground truth fed back as detections scores AP 1
    dets = [{"image_id": x["image_id"], "category_id": 1, "keypoints": x["keypoints"], "score": 1.0} for x in people]
    ev = COCOeval(gt, gt.loadRes(dets), "keypoints")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_synthetic_crowdpose_layout_and_crowd_index(tmp_path):
    root = generate_synthetic(tmp_path / "cp", 10, layout="crowdpose", preset="medium", seed=1, val_fraction=0.2, image_size=96)
    for split, n in (("train", 6), ("val", 2), ("test", 2), ("trainval", 8)):
        gt = json.loads((root / "json" / f"crowdpose_{split}.json").read_text())
        assert len(gt["images"]) == n
    src = open_dataset(root, "crowdpose", "trainval")
    for image_id in src.image_ids:
        anns = [a for a in src.annotations(image_id) if a["num_keypoints"] > 0 and not a["iscrowd"]]
        assert "area" not in anns[0]
        kp = np.asarray([a["keypoints"] for a in anns]).reshape(len(anns), 14, 3)
        ci = crowd_index(kp, np.asarray([a["bbox"] for a in anns]))
        assert src.crowd_index(image_id) == pytest.approx(ci, abs=0.006)
        assert src.load_image(image_id).shape[:2] == src.image_size(image_id)
    with pytest.raises(DataError, match="not empty"):
        generate_synthetic(root, 2, layout="crowdpose")


def test_hard_preset_crowd_index_spread_like_crowdpose():
    # crowdIndex depends on the layout only, so small images suffice
    ci = np.array([render_image(i, 0, "hard", "crowdpose", 64)[2] for i in range(160)])
    assert 0.38 <= np.median(ci) <= 0.6
    assert 0.75 <= np.percentile(ci, 90) <= 1.05
    easy = np.array([render_image(i, 0, "easy", "crowdpose", 64)[2] for i in range(40)])
    assert np.median(easy) < 0.1


def test_easy_preset_people_are_large_and_whole():
    for i in range(20):
        img, anns, _ = render_image(i, 3, "easy", "coco", 128)
        people = [a for a in anns if a["num_keypoints"] > 0]
        assert 1 <= len(people) <= PRESETS["easy"].people[1]
        assert max(a["bbox"][3] for a in people) >= 0.35 * min(img.shape[:2])
        assert img.std() > 5  # something is drawn on the plain background


# -- augmentation and targets -------------------------------------------------------------------------
def test_image_warp_and_joint_transform_agree():
    """A single bright pixel lands where the joint transform says, under flip and rotation."""
    for flip, rot, scale in ((False, 0.0, 1.0), (True, 0.0, 1.0), (True, 25.0, 1.3), (False, -30.0, 0.8)):
        img = np.zeros((60, 80), np.float32)
        img[22, 51] = 1.0
        mat = crop_matrix(60, 80, 64, scale=scale, rotation=rot, shift=(3.0, -2.0), flip=flip, scale_type="short")
        out = warp(img, mat, 64)
        ys, xs = np.nonzero(out)
        centroid = np.array([(xs * out[ys, xs]).sum(), (ys * out[ys, xs]).sum()]) / out[ys, xs].sum() + 0.5
        expected = transform_points(mat, np.array([51.5, 22.5]))
        assert np.abs(centroid - expected).max() < 0.35


def test_flip_twice_gives_original_joints():
    rng = np.random.default_rng(0)
    for name in ("coco", "crowdpose"):
        spec = keypoint_spec(name)
        joints = np.concatenate([rng.uniform(0, 100, (3, spec.num_joints, 2)), rng.integers(0, 3, (3, spec.num_joints, 1))], -1)
        once = flip_joints(joints, 100.0, spec.flip_index)
        assert not np.allclose(once, joints)
        np.testing.assert_allclose(flip_joints(once, 100.0, spec.flip_index), joints)
        mat = crop_matrix(100, 100, 100, flip=True, scale_type="long")  # a pure mirror
        twice = transform_joints(mat, transform_joints(mat, joints, np.asarray(spec.flip_index)), np.asarray(spec.flip_index))
        np.testing.assert_allclose(twice, joints, atol=1e-9)


def test_heatmap_peak_within_half_pixel():
    rng = np.random.default_rng(1)
    joints = np.concatenate([rng.uniform(2, 30, (4, 5, 2)), np.full((4, 5, 1), 2.0)], -1)
    joints[0, 0] = (10.0, 10.0, 2)
    joints[1:, 0, :2] = 100.0  # outside: nothing
    hm = heatmaps(joints[:1], 32, 2.0)
    for j in range(5):
        y, x = np.unravel_index(np.argmax(hm[j]), hm[j].shape)
        assert abs(x + 0.5 - joints[0, j, 0]) <= 0.5 and abs(y + 0.5 - joints[0, j, 1]) <= 0.5
        assert hm[j].max() > 0.93
    assert hm.shape == (5, 32, 32) and hm.max() <= 1.0
    assert heatmaps(np.zeros((0, 5, 3)), 8).sum() == 0


def test_augmented_targets_centred_on_transformed_joints(tmp_path):
    root = generate_synthetic(tmp_path / "e", 4, layout="crowdpose", preset="easy", seed=2, val_fraction=0.0, test_fraction=0.0,
                              image_size=128)
    src = open_dataset(root, "crowdpose", "train")
    ds = PoseDataset(src, input_size=64, train=True, seed=0)
    flips = set()
    for index in range(len(ds)):
        for aug in range(3):
            s = ds[(index, aug)]
            mat, flipped = ds.transform(index, aug)
            flips.add(flipped)
            people = transform_joints(mat, src.people(src.image_ids[index]), np.asarray(src.spec.flip_index) if flipped else None)
            for scale, size in ((0, 16), (1, 32)):
                hm = s["heatmaps"][scale].numpy()
                pts = people.copy()
                pts[..., :2] *= size / 64
                for p in pts:
                    for j, (x, y, v) in enumerate(p):
                        if v > 0 and 0 <= x < size and 0 <= y < size:
                            # the pixel holding the joint is the local peak of its channel
                            xi, yi = int(x), int(y)
                            win = hm[j, max(yi - 1, 0):yi + 2, max(xi - 1, 0):xi + 2]
                            assert hm[j, yi, xi] == pytest.approx(win.max()) and hm[j, yi, xi] > 0.9
            # AE joint lists point at the same pixels of the 1/4 map
            jl = s["joints"].numpy()
            for pi, p in enumerate(people[:30]):
                for j, (x, y, v) in enumerate(p):
                    x4, y4 = x * 16 / 64, y * 16 / 64
                    if v > 0 and 0 <= x4 < 16 and 0 <= y4 < 16:
                        assert jl[pi, j, 1] == 1 and jl[pi, j, 0] == j * 256 + int(y4) * 16 + int(x4)
    assert flips == {True, False}


def test_ae_joints_layout():
    joints = np.array([[[1.2, 2.7, 2], [5.0, 5.0, 0], [-1.0, 3.0, 2]], [[3.9, 0.1, 1], [7.99, 7.99, 2], [8.0, 1.0, 2]]])
    out = ae_joints(joints, 8, max_people=3)
    assert out.shape == (3, 3, 2)
    assert out[0, 0].tolist() == [0 * 64 + 2 * 8 + 1, 1]
    assert out[0, 1, 1] == 0 and out[0, 2, 1] == 0 and out[1, 2, 1] == 0
    assert out[1, 0].tolist() == [3, 1] and out[1, 1].tolist() == [64 + 7 * 8 + 7, 1]
    assert out[2].sum() == 0


def test_loader_deterministic_and_normalised(tmp_path):
    root = generate_synthetic(tmp_path / "l", 6, layout="coco", preset="easy", seed=0, val_fraction=0.0, image_size=96)
    ds = PoseDataset(open_dataset(root, "coco", "train"), input_size=64, train=True, seed=0)
    first = [b["image_id"].tolist() for b in make_loader(ds, 2, shuffle=True, num_workers=0, seed=7)]
    again = make_loader(ds, 2, shuffle=True, num_workers=0, seed=7)
    e0 = list(again)
    e1 = list(again)
    assert [b["image_id"].tolist() for b in e0] == first
    assert [b["image_id"].tolist() for b in e1] != first or not torch.equal(e0[0]["image"], e1[0]["image"])
    workers = list(make_loader(ds, 2, shuffle=True, num_workers=2, seed=7))
    assert all(torch.equal(a["image"], b["image"]) and torch.equal(a["heatmaps"][1], b["heatmaps"][1])
               for a, b in zip(e0, workers))
    img = e0[0]["image"]
    assert img.shape == (2, 3, 64, 64)
    raw = img * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
    assert sorted(sum(first, [])) == sorted(ds.ids)
    val = PoseDataset(open_dataset(root, "coco", "train"), input_size=64, train=False)
    assert torch.equal(val[0]["image"], val[0]["image"])


# -- CLI ------------------------------------------------------------------------------------------------
def test_cli_synth_info_preview(tmp_path):
    runner = CliRunner()
    out = tmp_path / "set"
    r = runner.invoke(main, ["data", "synth", "--out", str(out), "--images", "5", "--layout", "crowdpose",
                             "--preset", "hard", "--size", "64", "--val-fraction", "0.2", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["splits"]["train"]["images"] == 3
    r = runner.invoke(main, ["data", "info", str(out), "--dataset", "crowdpose"])
    assert r.exit_code == 0 and "trainval" in r.output
    r = runner.invoke(main, ["data", "preview", str(out), "--dataset", "crowdpose", "--split", "train",
                             "--out", str(tmp_path / "p.png"), "--augment", "--size", "64", "--count", "2"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p.png").stat().st_size > 100
    r = runner.invoke(main, ["data", "synth", "--out", str(out), "--images", "2"])
    assert r.exit_code == 2 and "not empty" in r.output
    r = runner.invoke(main, ["data", "info", str(tmp_path / "missing")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "not found" in r.output
