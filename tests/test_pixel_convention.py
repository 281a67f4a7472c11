"""One pixel convention end to end: training warps and targets, test-time resize, flip test and the
mapping back to the image agree, so an ideal network's keypoints come back where they were annotated.

The ideal network is what training teaches: a keypoint drawn in the image (a blob) goes through the
test-time resize; where it lands in the input (its centroid, measured in the convention the
training warp is checked to follow below) the network outputs the trainer's targets.

The decoder quantises a peak to a quarter of an input pixel (the original's adjust step) and the
original recipe's integer targets to an output pixel, so single keypoints cannot come back within
0.05 image px; the check is on the mean signed error over a sub-pixel grid of positions spanning
whole output pixels (4 input px), which a convention mismatch shifts by 0.5 (1/f - 1) image px.
"""
from __future__ import annotations

import numpy as np
import pytest

from litepose_nas.data.recipe import RECIPES
from litepose_nas.data.targets import heatmaps
from litepose_nas.data.transforms import crop_matrix, transform_joints, transform_points, warp
from litepose_nas.decode import decode_outputs, resize_for_test, resize_info
from litepose_nas.keypoints import keypoint_spec

SPEC = keypoint_spec("coco")
J = SPEC.num_joints
GRID = 17  # sub-pixel positions per axis, spread over 4 input px (one 1/4-scale pixel); one person


def _trainer_outputs(joints_in: np.ndarray, size: tuple[int, int], kind: str, sigma: float = 2.0) -> list[np.ndarray]:
    """What a network that learnt the trainer's targets perfectly outputs on an input of ``(w, h)``
    holding ``joints_in``: the trainer's heatmaps at 1/4 (with one tag map per joint) and 1/2."""
    w, h = size
    outs = []
    for stride in (4, 2):
        jt = joints_in.astype(np.float32).copy()
        jt[..., :2] /= stride   # the trainer's scale_matrix: input -> map is a pure scaling
        # the trainer's maps are square; the target at a pixel depends on the joints only, so crop
        outs.append(heatmaps(jt, max(w, h) // stride, sigma, kind)[:, :h // stride, :w // stride])
    return [np.concatenate([outs[0], np.zeros_like(outs[0])])[None], outs[1][None]]


def _grid_people(info) -> tuple[np.ndarray, np.ndarray]:
    """People [P, J, 3] in image pixels whose input positions cover a GRID x GRID sub-pixel grid
    (x and y offsets paired by a fixed permutation), and the same on the input."""
    m = info.matrix()
    inv = info.matrix(inverse=True)
    w, h = info.size
    offsets = (np.arange(GRID) + 0.5) * 4.0 / GRID
    perm = np.random.default_rng(0).permutation(GRID)
    xs, ys = offsets, offsets[perm]
    n = -(-GRID // J)
    on_input = np.zeros((n, J, 3))
    on_input[..., 2] = 2
    k = np.arange(n * J) % GRID
    # spread the joints over the middle of the input, each on a different output pixel
    base_x = 4.0 * np.floor(np.linspace(0.2, 0.8, n * J) * w / 4.0)
    base_y = 4.0 * np.floor(np.linspace(0.8, 0.2, n * J) * h / 4.0)
    on_input[..., 0] = (base_x + xs[k]).reshape(n, J)
    on_input[..., 1] = (base_y + ys[k]).reshape(n, J)
    truth = transform_joints(inv, on_input)
    assert np.allclose(transform_joints(m, truth)[..., :2], on_input[..., :2])
    return truth, on_input


def _centroid(img: np.ndarray) -> np.ndarray:
    """Intensity centroid of a 2-D image in the training convention (pixel i's centre at i + 0.5)."""
    ys, xs = np.mgrid[:img.shape[0], :img.shape[1]]
    w = img.astype(np.float64)
    return np.array([(w * (xs + 0.5)).sum(), (w * (ys + 0.5)).sum()]) / w.sum()


def _blob(h: int, w: int, at: tuple[float, float], sigma: float = 6.0) -> np.ndarray:
    ys, xs = np.mgrid[:h, :w] + 0.5
    return np.exp(-((xs - at[0]) ** 2 + (ys - at[1]) ** 2) / (2 * sigma ** 2)).astype(np.float32)


@pytest.mark.parametrize("recipe", ["default", "original"])
@pytest.mark.parametrize("hw", [(480, 640), (500, 333), (256, 256)])
def test_ideal_output_decodes_to_the_annotated_keypoint(recipe, hw):
    kind = RECIPES[recipe].targets
    tolerance = 0.05 if kind == "subpixel" else 0.15  # integer targets: output-pixel quantisation
    for input_size in (256, 384, 512):
        info = resize_info(*hw, input_size)
        truth, _ = _grid_people(info)
        errors, errors_flip = [], []
        for person in truth:
            # the ideal network finds each keypoint where the resize put it
            person_in = person.copy()
            for j in range(J):
                resized, _ = resize_for_test(_blob(*hw, person[j, :2]), input_size)
                person_in[j, :2] = _centroid(resized)
            outputs = _trainer_outputs(person_in[None], info.size, kind)
            # the mirrored input (flip test): the trainer's flip is x -> W - x with the flip index
            mirrored = person_in[None].copy()
            mirrored[..., 0] = info.size[0] - mirrored[..., 0]
            flip_outputs = _trainer_outputs(mirrored[:, SPEC.flip_index], info.size, kind)
            for flip, errs in ((None, errors), (flip_outputs, errors_flip)):
                people, scores = decode_outputs(outputs, info, J, flip, SPEC.flip_index if flip else None)
                # a joint exactly between two pixels gives two equal maxima, whose twin may start a
                # weak second person: the person is the best-scoring one
                best = people[int(np.argmax(scores))]
                assert np.all(best[:, 2] > 0.5)
                errs.append(best[:, :2] - person[:, :2])
        scale = 1.0 / info.factor()   # image px per input px
        for err in (np.concatenate(errors), np.concatenate(errors_flip)):
            bias = err.mean(0)
            assert np.all(np.abs(bias) < tolerance), (recipe, hw, input_size, bias)
            # single points: the quantisation only (a quarter input px, or an output px for integer targets)
            limit = (0.3 if kind == "subpixel" else 1.3) * scale
            assert np.abs(err).max() < limit, (recipe, hw, input_size, np.abs(err).max(), limit)


@pytest.mark.parametrize("hw", [(480, 640), (333, 500)])
def test_test_resize_and_training_warp_put_image_content_where_their_matrices_say(hw):
    """A blob at a sub-pixel image position lands, in the resized test input and in a training crop,
    where the matrix sends its centre (the warps and the joints share one convention)."""
    h, w = hw
    at = (0.41 * w + 0.37, 0.53 * h + 0.81)
    image = _blob(h, w, at)
    for input_size in (256, 512):
        resized, info = resize_for_test(image, input_size)
        expect = transform_points(info.matrix(), np.array(at))
        assert np.abs(_centroid(resized) - expect).max() < 0.02, (input_size, _centroid(resized), expect)
        mat = crop_matrix(h, w, input_size, scale=1.3, rotation=17.0, shift=(5.5, -3.25), flip=True,
                          scale_type="short", center_shift=(7.0, -4.0))
        crop = warp(image, mat, input_size)
        expect = transform_points(mat, np.array(at))
        assert np.abs(_centroid(crop) - expect).max() < 0.02, (input_size, _centroid(crop), expect)
