"""Decoding: grouping on oracle maps, agreement with the loop-and-Hungarian port, test-time transforms."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from litepose_nas.decode import (
    decode_outputs, fuse_outputs, group, map_ops, nms, people_from_maps, resize_bilinear, resize_for_test,
    resize_info, to_image_coords, top_candidates,
)
from litepose_nas.keypoints import keypoint_spec
from litepose_nas.metrics import keypoint_metrics, people_to_results
from litepose_nas._testing.reference import dense_top_candidates, hungarian, reference_group
from litepose_nas._testing.oracle import flip_keypoints, oracle_outputs, random_people, render_maps, scenes_to_coco


def _oracle_ap(dataset: str, people: int, scenes: int, seed: int, size: int = 128, tag_noise: float = 0.0,
               heat_noise: float = 0.0, **kwargs) -> tuple[float, int]:
    spec = keypoint_spec(dataset)
    rng = np.random.default_rng(seed)
    truth = [random_people(people, size, size, spec, rng) for _ in range(scenes)]
    gt = scenes_to_coco(truth, size, size, spec)
    results, found = [], 0
    for i, scene in enumerate(truth):
        heat, tags = render_maps(scene, size, size)
        if tag_noise:
            tags = tags + rng.normal(0, tag_noise, tags.shape).astype(np.float32)
        if heat_noise:
            heat = heat + rng.normal(0, heat_noise, heat.shape).astype(np.float32)
        found_people, scores = group(heat, tags, **kwargs)
        found += len(found_people)
        results += people_to_results(gt["images"][i]["id"], found_people, scores)
    return keypoint_metrics(gt, results, dataset, max_dets=100)["AP"], found


@pytest.mark.parametrize("dataset", ["coco", "crowdpose"])
@pytest.mark.parametrize("people", [1, 30])
def test_oracle_decoding_ap_on_crowded_scenes(dataset, people):
    ap, found = _oracle_ap(dataset, people, scenes=4, seed=people)
    assert ap >= 0.99
    assert found == 4 * people   # no duplicates, nobody lost


@pytest.mark.parametrize("people", [1, 30])
def test_tied_neighbouring_peaks_start_no_person(people):
    """Joints on a pixel border give two neighbouring pixels of exactly equal value: one person
    each, not two, and the kept pixel does not depend on anything but the map."""
    spec = keypoint_spec("coco")
    rng = np.random.default_rng(people)
    truth = [random_people(people, 128, 128, spec, rng) for _ in range(2)]
    for scene in truth:
        scene[:, :, 0] = np.round(scene[:, :, 0])
    gt = scenes_to_coco(truth, 128, 128, spec)
    results = []
    for i, scene in enumerate(truth):
        heat, tags = render_maps(scene, 128, 128)
        # the maps really have ties: more NMS survivors than visible joints
        assert np.count_nonzero(nms(heat) > 0.1) > np.count_nonzero(scene[:, :, 2] > 0)
        found, scores = group(heat, tags)
        np.testing.assert_array_equal(found, group(heat.copy(), tags.copy())[0])
        assert len(found) == people
        results += people_to_results(gt["images"][i]["id"], found, scores)
    assert keypoint_metrics(gt, results, "coco", max_dets=100)["AP"] >= 0.99


def test_default_grouping_beats_the_original_on_noisy_tags():
    """The measured reason for the default's departures (integer people, no forced pairs)."""
    default, n_default = _oracle_ap("coco", 30, scenes=4, seed=11, tag_noise=0.2, heat_noise=0.02)
    exact, n_exact = _oracle_ap("coco", 30, scenes=4, seed=11, tag_noise=0.2, heat_noise=0.02, exact=True)
    assert default > exact + 0.01
    assert n_default < n_exact   # the original splits people into duplicates


def _random_maps(rng, joints=6, h=24, w=20, tag_dim=1, tag_scale=1.5):
    heat = rng.normal(0.0, 0.25, (joints, h, w)).astype(np.float32)
    tags = (rng.normal(0, tag_scale, (joints, h, w, tag_dim))).astype(np.float32)
    return heat, tags


@pytest.mark.parametrize("tag_dim", [1, 2])
def test_exact_mode_equals_the_reference_port(tag_dim):
    rng = np.random.default_rng(tag_dim)
    spec = keypoint_spec("crowdpose")
    for trial in range(6):
        if trial % 2:
            heat, tags = _random_maps(rng, joints=14, tag_dim=tag_dim)
        else:
            scene = random_people(8, 64, 64, spec, rng)
            heat, tags1 = render_maps(scene, 64, 64)
            tags = np.repeat(tags1[..., None], tag_dim, axis=3) + rng.normal(0, 0.3, (14, 64, 64, tag_dim)).astype(np.float32)
        for kwargs in ({}, {"adjust": False}, {"refine": False}, {"max_people": 5, "detection_threshold": 0.3}):
            ours, our_scores = group(heat, tags, exact=True, **kwargs)
            ref, ref_scores = reference_group(heat, tags, solver="scipy", **kwargs)
            assert ours.shape == ref.shape
            np.testing.assert_array_equal(ours, ref)
            np.testing.assert_array_equal(our_scores, ref_scores)


def test_refine_shortcut_equals_dense_search():
    """Refine scores few pixels; it must pick what the dense search picks, even on awkward maps."""
    rng = np.random.default_rng(5)
    for trial in range(8):
        heat, tags = _random_maps(rng, joints=5, h=16, w=16, tag_dim=1 + trial % 2, tag_scale=[0.2, 3.0, 40.0][trial % 3])
        heat[:, ::3] = 0.0           # flat regions: ties broken by pixel order
        if trial % 4 == 3:
            heat -= 0.5              # mostly negative maps
        ours, _ = group(heat, tags, exact=True, detection_threshold=0.05)
        ref, _ = reference_group(heat, tags, detection_threshold=0.05, solver="scipy")
        np.testing.assert_array_equal(ours, ref)


def _scipy_max_pool(heat: np.ndarray, kernel: int) -> np.ndarray:
    """The original's max-pool, independently: scipy's max filter with a -inf border."""
    from scipy.ndimage import maximum_filter

    return maximum_filter(heat, size=(1, kernel, kernel), mode="constant", cval=-np.inf)


@pytest.mark.parametrize("people", [1, 5, 30])
def test_nms_shortcuts_equal_max_pool(people):
    """Few hits take the gathered-window path, many the stacked dilation: both equal the max-pool,
    also for peaks on map edges, plateaus, and maps whose neighbour in the stack is larger."""
    from litepose_nas.decode.grouping import _nms_survivors, _survivors_dense, max_pool

    rng = np.random.default_rng(people)
    spec = keypoint_spec("coco")
    heat, _ = render_maps(random_people(people, 64, 64, spec, rng), 64, 64)
    heat[2, 0, 5] = 0.7              # peak on a map's top row ...
    heat[1, -1, 5] = 0.9             # ... under a larger pixel at the bottom of the map above it
    heat[3, 10:12, 10:13] = 0.95     # plateau: every pixel of it survives
    heat[4, 30, -1] = heat[4, -1, 0] = 0.8   # right edge, bottom-left corner
    quantized = np.round(heat * 4) / 4       # many ties
    noisy = heat + rng.normal(0, 0.05, heat.shape).astype(np.float32)   # many isolated maxima
    for maps in (heat, quantized, noisy):
        for kernel in (1, 3, 5):
            pooled = _scipy_max_pool(maps, kernel)
            np.testing.assert_array_equal(max_pool(maps, kernel), pooled)
            for threshold in (0.1, 0.0):
                expected = np.flatnonzero((pooled == maps) & (maps > threshold))
                np.testing.assert_array_equal(_nms_survivors(maps, threshold, kernel)[0], expected)
                np.testing.assert_array_equal(_survivors_dense(maps, maps > threshold, kernel), expected)


def test_match_shortcut_equals_the_solver(monkeypatch):
    """Disjoint acceptable pairs skip the assignment solver; the people are the same as with it,
    and the solver still runs where pairs compete (noisy tags)."""
    from litepose_nas.decode import grouping

    calls = []
    real = grouping.linear_sum_assignment
    monkeypatch.setattr(grouping, "linear_sum_assignment", lambda cost: calls.append(cost.shape) or real(cost))
    rng = np.random.default_rng(3)
    spec = keypoint_spec("coco")
    solved = {True: 0, False: 0}
    for people, noise, tag_dim in [(1, 0.0, 1), (5, 0.0, 1), (15, 0.3, 1), (30, 0.3, 1), (30, 0.3, 2), (8, 1.0, 1)]:
        heat, tags = render_maps(random_people(people, 96, 96, spec, rng), 96, 96)
        tags = np.repeat(tags[..., None], tag_dim, axis=3) + rng.normal(0, noise, tags.shape + (tag_dim,)).astype(np.float32)
        heat = heat + rng.normal(0, noise / 10, heat.shape).astype(np.float32)
        cand = top_candidates(heat, tags, 30, threshold=0.1)
        order = grouping.original_joint_order(17)
        for kwargs in ({"tag_threshold": 1.0, "use_detection_val": True}, {"tag_threshold": 2.5, "use_detection_val": False}):
            out = {}
            for shortcut in (True, False):
                calls.clear()
                out[shortcut] = grouping._match(cand, order, 0.1, max_people=30, shortcut=shortcut, **kwargs)
                solved[shortcut] += len(calls)
            np.testing.assert_array_equal(out[True], out[False])
    assert 0 < solved[True] < solved[False]


def test_match_resolves_competing_candidates():
    """Two candidates acceptable to the same person (and one candidate acceptable to two people):
    the cheaper pair wins, the other candidate starts a person."""
    from litepose_nas.decode.grouping import Candidates, _match

    inf = -np.inf
    cand = Candidates(   # strongest first, as top_candidates gives them
        xy=np.array([[[1, 1], [0, 0]], [[3, 3], [2, 2]], [[4, 4], [0, 0]]]),
        val=np.array([[0.875, inf], [0.75, 0.5], [0.625, inf]], dtype=np.float32),
        tag=np.array([[[0.0], [0.0]], [[0.6], [0.1]], [[-0.05], [0.0]]], dtype=np.float32),
    )
    for shortcut in (True, False):
        people = _match(cand, (0, 1, 2), 0.1, 1.0, 30, True, shortcut=shortcut)
        # joint 1: both tags are within 1 of person 0's, but 0.1 rounds to distance 0 and wins
        # (0.6 rounds to 1); joint 2: -0.05 is within 1 of both people, at rounded distance 0 of
        # person 0 (mean 0.05) and 1 of person 1 (0.6)
        np.testing.assert_array_equal(people[:, :, 2], [[0.875, 0.5, 0.625], [0.0, 0.75, 0.0]])
        np.testing.assert_array_equal(people[1, 1, :2], [3, 3])


def test_refine_shortcuts_equal_dense_search_on_oracle_maps(monkeypatch):
    """Oracle-like maps (flat zero background, integer tags) where people lack joints: refine must
    settle most pairs on few pixels, and also score the pixels of a map whose tag is close to a
    person's (a zero pixel with the person's tag beats every real candidate), as the dense search
    does."""
    from litepose_nas.decode import refine as refine_module

    scored = []
    real = refine_module._scores
    monkeypatch.setattr(refine_module, "_scores", lambda det, tag, ref: scored.append(len(det)) or real(det, tag, ref))
    rng = np.random.default_rng(7)
    spec = keypoint_spec("crowdpose")
    for trial in range(6):
        scene = random_people(6, 48, 48, spec, rng, invisible=0.3)
        heat, tags = render_maps(scene, 48, 48)
        if trial % 2:
            # the tag of a person lacking joint j appears on map j away from any peak
            for j in range(spec.num_joints):
                lacking = np.flatnonzero(scene[:, j, 2] == 0)
                if len(lacking):
                    tags[j, :6, :6] = lacking[0] + rng.choice([0.0, 0.49, -0.51])
        tag_sets = [tags, np.stack([tags, tags + rng.normal(0, 0.3, tags.shape).astype(np.float32)], axis=3)]
        for tag_maps in tag_sets:
            ours, our_scores = group(heat, tag_maps, exact=True)
            ref, ref_scores = reference_group(heat, tag_maps, solver="scipy")
            np.testing.assert_array_equal(ours, ref)
            np.testing.assert_array_equal(our_scores, ref_scores)
    assert scored, "no pair needed its close pixels scored"


def test_sparse_candidates_equal_dense_top_k():
    rng = np.random.default_rng(0)
    heat, tags = _random_maps(rng, joints=4, h=30, w=30, tag_dim=2)
    heat[1, 10:12, 10:12] = 0.9      # a plateau: every pixel of it survives NMS
    sparse = top_candidates(heat, tags, 7, threshold=0.1)
    dense = dense_top_candidates(heat, tags, 7)
    for j in range(4):
        keep = dense.val[j] > 0.1
        n = keep.sum()
        np.testing.assert_array_equal(sparse.val[j][:n], dense.val[j][keep])
        np.testing.assert_array_equal(sparse.xy[j][:n], dense.xy[j][keep])
        np.testing.assert_array_equal(sparse.tag[j][:n], dense.tag[j][keep])
        assert np.all(np.isneginf(sparse.val[j][n:]))


def test_python_hungarian_is_optimal():
    rng = np.random.default_rng(1)
    for n, m in [(1, 1), (3, 5), (6, 6), (9, 12)]:
        cost = np.round(rng.random((n, m)) * 5) * 100 - rng.random((n, m))
        pairs = hungarian(cost)
        assert len(pairs) == n and len({c for _, c in pairs}) == n
        r, c = linear_sum_assignment(cost)
        assert sum(cost[i, j] for i, j in pairs) == pytest.approx(cost[r, c].sum())


def test_group_outputs_and_input_checks():
    heat = np.zeros((17, 32, 32), np.float32)
    people, scores = group(heat, np.zeros_like(heat))
    assert people.shape == (0, 17, 3) and scores.shape == (0,)
    heat[3, 10, 20] = 0.8
    people, scores = group(heat, np.zeros_like(heat))
    # one person with one joint, at the pixel centre (adjust: ties step -0.25)
    assert people.shape == (1, 17, 3)
    np.testing.assert_allclose(people[0, 3], [20.25, 10.25, 0.8])
    assert scores[0] == pytest.approx(0.8 / 17)
    with pytest.raises(ValueError, match="tags"):
        group(heat, np.zeros((17, 16, 16)))
    with pytest.raises(ValueError, match="threshold"):
        group(heat, np.zeros_like(heat), detection_threshold=-0.1)
    with pytest.raises(ValueError, match="joint_order"):
        group(heat, np.zeros_like(heat), joint_order=(0, 1))


def test_importing_group_does_not_import_torch():
    code = "import sys, litepose_nas; litepose_nas.group; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_resize_info_and_affine_round_trip():
    info = resize_info(425, 640, 256)      # landscape: short side -> 256, long side up to a multiple of 64
    assert info.size == (448, 256) and info.center == (320.0, 213.0)
    assert info.scale == pytest.approx((448 / 256 * 425 / 200, 425 / 200))
    portrait = resize_info(500, 333, 256)
    # (256 / 333 * 500 + 63) // 64 * 64: the original's "round up" floors the fraction away (384.4 -> 384)
    assert portrait.size == (256, 384)
    pts = np.array([[[0.0, 0.0, 1.0], [639.0, 424.0, 1.0], [100.5, 300.25, 0.3]]])
    m = info.matrix()
    mapped = pts.copy()
    mapped[..., :2] = pts[..., :2] @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(to_image_coords(mapped, info), pts, atol=1e-9)
    # the warped image shows image point (x, y) at matrix @ (x, y), pixel i covering [i, i + 1) on both
    # (the training convention; tests/test_pixel_convention.py checks it to sub-pixel accuracy)
    image = np.zeros((425, 640, 3), np.uint8)
    image[200:203, 400:403] = 255
    warped, info2 = resize_for_test(image, 256)
    assert warped.shape == (256, 448, 3) and info2 == info
    weight = warped[..., 0].astype(float)
    ys, xs = np.mgrid[:256, :448] + 0.5
    centroid = np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()
    # (a sharp 3-px box resampled bilinearly: its centroid moves by up to ~0.1 px; the old pixel-centre
    # resize put it 0.5 (1 - f) = 0.2 px further)
    np.testing.assert_allclose(centroid, m @ np.array([401.5, 201.5, 1.0]), atol=0.15)


def _people_of(gt: dict, image_id: int, num_joints: int) -> np.ndarray:
    anns = [a for a in gt["annotations"] if a["image_id"] == image_id and a["num_keypoints"] > 0]
    return np.array([a["keypoints"] for a in anns], float).reshape(len(anns), num_joints, 3)


@pytest.mark.parametrize("dataset", ["coco", "crowdpose"])
def test_full_pipeline_on_oracle_outputs_of_real_images(real_samples, dataset):
    """Resize, oracle network outputs at 1/4 and 1/2, fusion, projection, grouping, inverse affine:
    the real annotations come back (AP 1.0), with and without flip test, and flip changes nothing."""
    gt, spec = real_samples[dataset], keypoint_spec(dataset)
    plain, flipped = [], []
    for img in gt["images"]:
        info = resize_info(img["height"], img["width"], 256)
        m = info.matrix()
        truth = _people_of(gt, img["id"], spec.num_joints)
        on_input = truth.copy()
        on_input[..., :2] = truth[..., :2] @ m[:, :2].T + m[:, 2]
        outputs = oracle_outputs(on_input, info.size)
        # what a perfect network sees in the mirrored input
        outputs_flip = oracle_outputs(flip_keypoints(on_input, info.size[0], spec.flip_index), info.size)
        people, scores = decode_outputs(outputs, info, spec.num_joints)
        people_f, scores_f = decode_outputs(outputs, info, spec.num_joints, outputs_flip, spec.flip_index)
        np.testing.assert_allclose(people_f, people, atol=1e-6)
        np.testing.assert_allclose(scores_f, scores, atol=1e-6)
        plain += people_to_results(img["id"], people, scores)
        flipped += people_to_results(img["id"], people_f, scores_f)
    for results in (plain, flipped):
        metrics = keypoint_metrics(gt, results, dataset)
        assert metrics["AP"] == pytest.approx(1.0) and metrics["AR"] == pytest.approx(1.0)


def test_fuse_outputs_shapes_and_flip_permutation():
    spec = keypoint_spec("crowdpose")
    rng = np.random.default_rng(0)
    out1 = rng.normal(size=(1, 28, 16, 24)).astype(np.float32)
    out2 = rng.normal(size=(1, 14, 32, 48)).astype(np.float32)
    heat, tags = fuse_outputs([out1, out2], 14, project_size=(96, 64))
    assert heat.shape == (14, 64, 96) and tags.shape == (14, 64, 96, 1)
    # the outputs of a mirrored input, flipped back and permuted, are the originals: flip test is a no-op
    fi = list(spec.flip_index)
    mirror = [np.ascontiguousarray(out1[:, fi + [14 + i for i in fi], :, ::-1]),
              np.ascontiguousarray(out2[:, fi, :, ::-1])]
    heat_f, tags_f = fuse_outputs([out1, out2], 14, mirror, spec.flip_index, project_size=(96, 64))
    np.testing.assert_allclose(heat_f, heat, atol=1e-6)
    assert tags_f.shape == (14, 64, 96, 2)
    np.testing.assert_allclose(tags_f[..., 1], tags_f[..., 0], atol=1e-6)
    with pytest.raises(ValueError, match="flip_index"):
        fuse_outputs([out1, out2], 14, mirror)


@pytest.mark.parametrize("shape, size", [((3, 16, 24), (64, 96)), ((2, 13, 22), (26, 44)), ((1, 7, 5), (1, 5)),
                                         ((2, 33, 51), (42, 65)), ((1, 40, 30), (17, 9)), ((1, 1, 6), (5, 1))])
def test_numpy_resize_samples_as_torch_does(shape, size):
    """Up, down, odd ratios, one-pixel sides: the same taps as torch's bilinear, a few ulps apart."""
    import torch
    import torch.nn.functional as F

    x = np.random.default_rng(sum(shape)).normal(size=(1, *shape)).astype(np.float32) * 4
    want = F.interpolate(torch.from_numpy(x), size=size, mode="bilinear", align_corners=False).numpy()
    got = resize_bilinear(x, size)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * np.finfo(np.float32).eps * np.abs(x).max())


def test_decoding_without_torch_finds_the_same_people(real_samples):
    """The numpy path a base install decodes with: on oracle outputs of real images (flip test, two
    stages, projection) the same people within 1e-4 px, and the same scores."""
    gt, spec = real_samples["coco"], keypoint_spec("coco")
    found = 0
    for img in gt["images"]:
        info = resize_info(img["height"], img["width"], 256)
        m = info.matrix()
        on_input = _people_of(gt, img["id"], spec.num_joints)
        on_input[..., :2] = on_input[..., :2] @ m[:, :2].T + m[:, 2]
        outputs = oracle_outputs(on_input, info.size)
        flipped = oracle_outputs(flip_keypoints(on_input, info.size[0], spec.flip_index), info.size)
        maps = {use_torch: fuse_outputs(outputs, spec.num_joints, flipped, spec.flip_index, info.size,
                                        ops=map_ops(use_torch)) for use_torch in (True, False)}
        np.testing.assert_allclose(maps[False][0], maps[True][0], atol=1e-6)
        np.testing.assert_allclose(maps[False][1], maps[True][1], atol=1e-6)
        (p_np, s_np), (p_t, s_t) = (people_from_maps(*maps[k], info) for k in (False, True))
        assert p_np.shape == p_t.shape
        np.testing.assert_allclose(p_np, p_t, atol=1e-4)
        np.testing.assert_allclose(s_np, s_t, atol=1e-6)
        found += len(p_t)
    assert found >= 3
