"""The original recipe (``--recipe original``) against HigherHRNet's formulas, re-written here from its
``transforms.py`` / ``target_generators.py``: fixed parameters give the same matrices, targets and
tag joints; sampled parameters have the original's distribution (mean, std, range); masks and the
image filter follow the original; our default differs where docs/training.md says it does."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from litepose_nas.data import PoseDataset, open_dataset
from litepose_nas.data.recipe import DEFAULT, ORIGINAL, RECIPES, Recipe, get_recipe
from litepose_nas.space import SearchSpace, resolve_space_path
from litepose_nas.data.targets import ae_joints, heatmaps
from litepose_nas.data.transforms import crop_matrix, sample_params, scale_matrix
from litepose_nas.errors import InputError
from litepose_nas.train.config import TrainConfig


# -- the original's formulas (HigherHRNet lib/dataset/transforms, target_generators) -------------------
def original_affine(center, scale, res, rot):
    """HigherHRNet ``RandomAffineTransform._get_affine_matrix`` (scale in units of 200 px)."""
    h = 200 * scale
    t = np.zeros((3, 3))
    t[0, 0] = float(res) / h
    t[1, 1] = float(res) / h
    t[0, 2] = res * (-float(center[0]) / h + .5)
    t[1, 2] = res * (-float(center[1]) / h + .5)
    t[2, 2] = 1
    if rot != 0:
        rot = -rot
        sn, cs = np.sin(rot * np.pi / 180), np.cos(rot * np.pi / 180)
        rot_mat = np.array([[cs, -sn, 0], [sn, cs, 0], [0, 0, 1]])
        t_mat = np.eye(3)
        t_mat[0, 2] = -res / 2
        t_mat[1, 2] = -res / 2
        t_inv = t_mat.copy()
        t_inv[:2, 2] *= -1
        t = t_inv @ rot_mat @ t_mat @ t
    return t[:2]


def original_draw(rng: np.random.RandomState, height: int, width: int, min_scale=0.75, max_scale=1.5,
                  max_rotation=30.0, max_translate=40.0):
    """One draw of ``RandomAffineTransform.__call__`` (scale_type 'short'): (center, scale, rot)."""
    center = np.array((width / 2, height / 2))
    scale = min(height, width) / 200
    scale *= rng.random_sample() * (max_scale - min_scale) + min_scale
    rot = (rng.random_sample() * 2 - 1) * max_rotation
    dx = rng.randint(int(-max_translate * scale), int(max_translate * scale))
    dy = rng.randint(int(-max_translate * scale), int(max_translate * scale))
    return center + (dx, dy), scale, rot


def original_heatmaps(joints, res, sigma=2):
    """``HeatmapGenerator.__call__``."""
    size = 6 * sigma + 3
    x = np.arange(0, size, 1, np.float32)
    y = x[:, None]
    x0 = y0 = 3 * sigma + 1
    g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
    hms = np.zeros((joints.shape[1], res, res), np.float32)
    for p in joints:
        for idx, pt in enumerate(p):
            if pt[2] > 0:
                x, y = int(pt[0]), int(pt[1])
                if x < 0 or y < 0 or x >= res or y >= res:
                    continue
                ul = int(np.round(x - 3 * sigma - 1)), int(np.round(y - 3 * sigma - 1))
                br = int(np.round(x + 3 * sigma + 2)), int(np.round(y + 3 * sigma + 2))
                c, d = max(0, -ul[0]), min(br[0], res) - ul[0]
                a, b = max(0, -ul[1]), min(br[1], res) - ul[1]
                cc, dd = max(0, ul[0]), min(br[0], res)
                aa, bb = max(0, ul[1]), min(br[1], res)
                hms[idx, aa:bb, cc:dd] = np.maximum(hms[idx, aa:bb, cc:dd], g[a:b, c:d])
    return hms


def original_joint_sets(joints, res):
    """``JointsGenerator.__call__`` (tag per joint), as one set of flat indices per person."""
    out = []
    for person in joints:
        nodes = set()
        for idx, pt in enumerate(person):
            x, y = int(pt[0]), int(pt[1])
            if pt[2] > 0 and 0 <= x < res and 0 <= y < res:
                nodes.add(idx * res * res + y * res + x)
        out.append(nodes)
    return out


# -- fixed parameters ----------------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(480, 640), (427, 333)])
@pytest.mark.parametrize("s, rot, shift", [(1.0, 0.0, (0, 0)), (0.8, 23.0, (17, -40)), (1.43, -29.0, (-96, 5))])
def test_original_matrix_for_fixed_parameters(hw, s, rot, shift):
    h, w = hw
    center = (w / 2 + shift[0], h / 2 + shift[1])
    for res in (512, 128, 256):   # the input and both output sizes: one formula, scaled
        ours = crop_matrix(h, w, res, scale=1.0 / s, rotation=rot, center_shift=shift, scale_type="short")
        np.testing.assert_allclose(ours, original_affine(center, min(h, w) * s / 200, res, rot), atol=1e-9)
        big = crop_matrix(h, w, 512, scale=1.0 / s, rotation=rot, center_shift=shift, scale_type="short")
        np.testing.assert_allclose(scale_matrix(big, res / 512), ours, atol=1e-9)
    # the original flips after the affine (x -> res - 1 - x between pixel centres, i.e. res - x here);
    # ours mirrors first, which is the same map with the opposite angle (the angle is symmetric)
    flipped = crop_matrix(h, w, 512, scale=1.0 / s, rotation=rot, center_shift=shift, scale_type="short", flip=True)
    after = original_affine(center, min(h, w) * s / 200, 512, -rot)
    after = np.array([[-1.0, 0, 512], [0, 1, 0]]) @ np.vstack([after, [0, 0, 1]])
    np.testing.assert_allclose(flipped, after, atol=1e-9)


def test_original_targets_and_tag_joints_for_fixed_joints():
    rng = np.random.default_rng(0)
    res = 32
    joints = np.zeros((4, 14, 3), np.float32)
    joints[..., :2] = rng.uniform(-3, res + 3, (4, 14, 2))
    joints[..., 2] = rng.integers(0, 3, (4, 14))
    joints[0, :4, :2] = [[-0.5, 3.2], [4.7, -0.99], [res - 0.01, 7.5], [0.0, 0.0]]   # (-1, 0) -> pixel 0
    joints[0, :4, 2] = 2
    ours_hm, theirs = heatmaps(joints, res, 2.0, "integer"), original_heatmaps(joints, res)
    np.testing.assert_array_equal(ours_hm > 0, theirs > 0)     # the same support (window)
    np.testing.assert_allclose(ours_hm, theirs, atol=1e-6)     # separable exp: float32 rounding only
    ours = ae_joints(joints, res, 30, "integer")
    for p, expect in enumerate(original_joint_sets(joints, res)):
        assert {int(i) for i, v in ours[p] if v} == expect
    assert ours[0, 0, 1] == 1 and ours[0, 1, 1] == 1          # kept, on pixel 0, like the original's
    assert ae_joints(joints, res, 30)[0, 0, 1] == 0           # our default drops them (off the map)
    # the window is 15 x 15 at sigma 2; the default's is cut at 6.5 px from the joint: 13 or 14 px a side
    one = np.array([[[16.0, 16.0, 2]]], np.float32)
    assert (heatmaps(one, res, 2.0, "integer")[0] > 0).sum() == 15 * 15
    assert (heatmaps(one, res, 2.0)[0] > 0).sum() == 14 * 14
    assert (heatmaps(one + [[[0.5, 0.5, 0]]], res, 2.0)[0] > 0).sum() == 13 * 13
    # integer-centred vs sub-pixel: the same peak pixel; values differ by up to 0.21 (joint on a pixel
    # corner, half a pixel from the integer centre per axis), by almost nothing at the pixel centre
    for x, lo, hi in ((16.0, 0.2, 0.215), (16.49, 0.0, 0.01)):
        at = np.array([[[x, x, 2]]], np.float32)
        diff = np.abs(heatmaps(at, res, 2.0, "integer") - heatmaps(at, res, 2.0)).max()
        assert lo < diff < hi, (x, diff)


# -- sampled distributions -------------------------------------------------------------------------------
N = 20000


def _ours(recipe: Recipe, h: int, w: int, res: int, n: int = N):
    rng = np.random.default_rng(1)
    zoom, rot, tx, ty, flips = [], [], [], [], []
    short = min(h, w)
    for _ in range(n):
        p = sample_params(rng, recipe.augment, res, image_hw=(h, w))
        zoom.append(p["scale"])    # input px per (short side / res) image px: > 1 zooms in
        rot.append(p["rotation"])
        # translation of the crop, in image pixels of the window centre
        if "center_shift" in p:
            tx.append(p["center_shift"][0]), ty.append(p["center_shift"][1])
        else:
            f = res * p["scale"] / short
            tx.append(p["shift"][0] / f), ty.append(p["shift"][1] / f)
        flips.append(p["flip"])
    return {k: np.asarray(v, float) for k, v in dict(zoom=zoom, rot=rot, tx=tx, ty=ty, flip=flips).items()}


def _original(h: int, w: int, n: int = N):
    rng = np.random.RandomState(2)
    zoom, rot, tx, ty, flips = [], [], [], [], []
    for _ in range(n):
        center, scale, r = original_draw(rng, h, w)
        zoom.append(min(h, w) / (200 * scale))
        rot.append(r)
        tx.append(center[0] - w / 2), ty.append(center[1] - h / 2)
        flips.append(rng.random_sample() < 0.5)    # RandomHorizontalFlip(0.5)
    return {k: np.asarray(v, float) for k, v in dict(zoom=zoom, rot=rot, tx=tx, ty=ty, flip=flips).items()}


def test_original_recipe_samples_the_original_distribution():
    h, w, res = 480, 640, 512
    ours, ref = _ours(ORIGINAL, h, w, res), _original(h, w)
    for key in ("zoom", "rot", "tx", "ty", "flip"):
        a, b = ours[key], ref[key]
        spread = max(b.std(), 1e-9)
        assert abs(a.mean() - b.mean()) < 0.03 * spread + 1e-9, (key, a.mean(), b.mean())
        assert abs(a.std() - b.std()) < 0.03 * spread + 1e-9, (key, a.std(), b.std())
        assert abs(a.min() - b.min()) <= 0.02 * spread + 1.0 * (key in ("tx", "ty")), (key, a.min(), b.min())
        assert abs(a.max() - b.max()) <= 0.02 * spread + 1.0 * (key in ("tx", "ty")), (key, a.max(), b.max())
    # the figures of docs/training.md: mean zoom 0.924 in (0.667, 1.333]; shift integers up to 0.2 L
    assert ours["zoom"].mean() == pytest.approx(np.log(2) / 0.75, abs=0.005)
    assert ours["zoom"].min() > 1 / 1.5 - 1e-9 and ours["zoom"].max() <= 1 / 0.75 + 1e-9
    assert np.all(ours["tx"] == np.round(ours["tx"]))
    assert np.abs(ours["tx"]).max() == pytest.approx(0.2 * 480 * 1.5, abs=1.0)
    # our default: zoom in on average (1.125), +-40/512 of the input, continuous
    d = _ours(DEFAULT, h, w, res, 5000)
    assert d["zoom"].mean() == pytest.approx(1.125, abs=0.01)
    assert (np.abs(d["tx"]) * res * d["zoom"] / 480).max() == pytest.approx(40.0, abs=0.5)


# -- masks and the image filter -----------------------------------------------------------------------------
def _crowdpose_set(tmp_path: Path) -> Path:
    import cv2

    root = tmp_path / "cp"
    (root / "json").mkdir(parents=True)
    (root / "images").mkdir()
    images, anns = [], []
    for i in (1, 2):
        cv2.imwrite(str(root / "images" / f"{i}.jpg"), np.full((96, 128, 3), 90, np.uint8))
        images.append({"id": i, "file_name": f"{i}.jpg", "height": 96, "width": 128, "crowdIndex": 0.0})
    kp = [0.0] * 42
    kp[0:3] = [40.0, 40.0, 2]
    kp[3:6] = [70.0, 50.0, 2]
    anns.append({"id": 1, "image_id": 1, "keypoints": kp, "num_keypoints": 2, "iscrowd": 0, "bbox": [30, 30, 50, 30]})
    # a person without labelled joints, in both images; image 2 has nothing else
    for k, i in ((2, 1), (3, 2)):
        anns.append({"id": k, "image_id": i, "keypoints": [0] * 42, "num_keypoints": 0, "iscrowd": 0,
                     "bbox": [90, 20, 30, 60]})
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    (root / "json" / "crowdpose_train.json").write_text(json.dumps(gt))
    return root


def test_masks_and_image_filter_of_the_recipes(tmp_path):
    src = open_dataset(_crowdpose_set(tmp_path), "crowdpose", "train")
    assert src.image_ids == [1] and src.training_ids("any") == [1, 2]
    zoom_out = ORIGINAL.replace(augment=dict(min_scale=1.5, max_scale=1.5, max_rotation=0.0, max_translate=0.0,
                                             flip_prob=0.0))
    default_out = DEFAULT.replace(augment=dict(min_scale=1 / 1.5, max_scale=1 / 1.5, max_rotation=0.0,
                                               max_translate=0.0, flip_prob=0.0))
    orig = PoseDataset(src, 128, recipe=zoom_out)
    ours = PoseDataset(src, 128, recipe=default_out)
    assert len(orig) == 2 and len(ours) == 1     # the original keeps the image with only an unlabelled person
    a, b = orig[0], ours[0]
    for m_orig, m_ours, size in zip(a["masks"], b["masks"], (32, 64)):
        m_orig, m_ours = m_orig.numpy(), m_ours.numpy()
        # zoomed out 1.5x: the image covers the middle 1/1.5 of the map (the short side), padding around
        assert m_orig[0].sum() == 0 and m_orig[:, 0].sum() == 0 and m_orig[size // 2].max() == 1
        # the original masks the padding and nothing of CrowdPose's people; ours the reverse
        assert m_ours[0].min() == 1 and m_ours[:, 0].min() == 1
        inside = m_orig == 1
        assert abs(inside.mean() - (128 / 144) * (96 / 144)) < 0.03   # image area / window area
        assert (m_ours[inside] == 0).any()                        # the unlabelled person's box, ours only
        assert m_ours.min() == 0 and set(np.unique(m_orig[inside])) == {1.0}
    # the other switches alone
    padded = PoseDataset(src, 128, recipe=default_out.replace(mask_padding=True))[0]["masks"][-1].numpy()
    assert padded[0].sum() == 0 and (padded[inside] == 0).any()
    nomask = PoseDataset(src, 128, recipe=default_out.replace(mask_unlabelled_crowdpose=False))[0]["masks"][-1]
    assert nomask.min() == 1


# -- configuration and CLI --------------------------------------------------------------------------------------
def test_recipe_registry_config_and_cli(tmp_path):
    assert set(RECIPES) == {"default", "original"} and get_recipe(None) is DEFAULT
    assert get_recipe(ORIGINAL.to_dict()) == ORIGINAL
    variant = DEFAULT.replace(name="v", targets="integer", augment=dict(scale_mode="window"))
    arch = json.loads((Path(__file__).parents[1] / "search_spaces" / "published" / "search-XS.json").read_text())
    space = SearchSpace.from_yaml(resolve_space_path("litepose")).to_dict()
    cfg = TrainConfig(arch=arch, kind="subnet", recipe=variant.to_dict())
    back = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert back.training_recipe() == variant
    original = TrainConfig(recipe="original", space=space).validate()
    assert original.training_recipe() is ORIGINAL
    # the recipe also sets the AE loss and grouping, unless the config gives them
    assert (original.push_loss, original.push_weight, original.pull_weight, original.tag_cost) == \
        ("exp", 0.001, 0.001, "original")
    ours = TrainConfig(space=space).validate()
    assert (ours.push_loss, ours.push_weight, ours.pull_weight, ours.tag_cost) == ("max", 0.01, 0.01, "distance")
    assert TrainConfig(recipe="original", push_loss="max", space=space).validate().push_loss == "max"
    assert TrainConfig.from_dict(json.loads(original.to_json())) == original
    with pytest.raises(InputError, match="recipe 'exact' not allowed .*default, original"):
        TrainConfig(recipe="exact", space=space).validate()
    with pytest.raises(InputError, match="targets 'round' not allowed"):
        TrainConfig(recipe={**DEFAULT.to_dict(), "targets": "round"}, space=space).validate()
    with pytest.raises(InputError, match="unknown augment field"):
        TrainConfig(recipe={**DEFAULT.to_dict(), "augment": {"zoom": 2}}, space=space).validate()
    from litepose_nas.cli import main

    for command in (["train", "--arch", "a.json"], ["train-supernet"]):
        res = CliRunner().invoke(main, [*command, "--data", str(tmp_path), "--recipe", "exact"])
        assert res.exit_code == 2 and "'exact' is not one of 'default', 'original'" in res.output
