"""Export: BN folding, ONNX parity, metadata, weights, the ``export`` CLI and the example."""
from __future__ import annotations

import dataclasses
import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cli_helpers import assert_one_line_error, run_cli
from litepose_nas.errors import ArchError, CheckpointError, JobError
from litepose_nas.export import (
    INPUT_NAME, OUTPUT_NAMES, ExportMetadata, export_model, fold_batchnorm, metadata_for_model, model_from_weights,
    ort_session, random_init_model,
)
from litepose_nas.models import build_model
from litepose_nas.space import Arch, SearchSpace

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "search_spaces" / "published"


# Two torch threads on a shared 2-core machine can be 10x slower than one: pin it for these tests.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give a model BN statistics and output weights like a trained one, so folding and parity
    are tested on outputs of order one rather than on the near-zero outputs of a fresh init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.6 - 0.3)
        for sep in (*model.final_refined, *model.final_raw):
            sep.conv[3].weight.normal_(0.0, 0.1, generator=gen)
    return model.eval()


def small_xs(img_size: int = 64) -> Arch:
    return dataclasses.replace(Arch.from_json(PUBLISHED / "search-XS.json"), img_size=img_size)


# ---------------------------------------------------------------------------- folding
def test_fold_batchnorm_matches_and_leaves_original_alone():
    model = trained_like(build_model(small_xs(), 14))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    # every depthwise / pointwise conv and one deconv per head layer now carry the BN shift as bias
    assert folded.stage[0][0].depth_conv[0].bias is not None
    assert folded.stage[0][0].point_conv[0].bias is not None
    assert folded.first[2].bias is not None
    assert folded.deconv_refined[0].bias is not None and folded.deconv_raw[0].bias is None
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        for a, b in zip(model(x), folded(x)):
            assert a.abs().max() > 0.05  # non-trivial outputs
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


# ---------------------------------------------------------------------------- ONNX parity
def _random_archs(space_name: str, n: int, seed: int) -> list[Arch]:
    space = SearchSpace.from_yaml(space_name)
    rng = np.random.default_rng(seed)
    sizes = (64, 96, 128)
    return [dataclasses.replace(space.sample(rng), img_size=sizes[i % len(sizes)]) for i in range(n)]


@pytest.mark.parametrize("space_name", ["litepose", "litepose-elastic"])
def test_onnx_parity_random_archs(space_name, tmp_path):
    for i, arch in enumerate(_random_archs(space_name, 2, seed=7)):
        joints = (17, 14)[i % 2]
        model = trained_like(build_model(arch, joints), seed=i)
        result = export_model(model, tmp_path / f"{space_name}-{i}")
        assert result.parity.ok and result.parity.max_abs_diff <= 1e-4, result.parity
        assert result.parity.max_abs_reference > 0.05
        assert result.parity.input_shape == (2, 3, arch.img_size, arch.img_size)
        assert result.opset == 17
        import onnx

        graph = onnx.load(str(result.files["onnx"]))
        onnx.checker.check_model(graph)
        ops = {node.op_type for node in graph.graph.node}
        assert "BatchNormalization" not in ops and "ConvTranspose" in ops


def test_batch_and_size_dynamic(tmp_path):
    model = trained_like(build_model(small_xs(64), 17))
    result = export_model(model, tmp_path / "out")
    session = ort_session(result.files["onnx"], threads=1)
    (inp,) = session.get_inputs()
    assert inp.name == INPUT_NAME and isinstance(inp.shape[0], str)
    for shape in ((1, 3, 64, 64), (3, 3, 64, 64), (1, 3, 64, 128)):
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = [t.numpy() for t in model(x)]
        got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})
        for e, g in zip(expected, got):
            assert e.shape == g.shape
            assert np.abs(e - g).max() <= 1e-4
    assert got[0].shape == (1, 34, 16, 32) and got[1].shape == (1, 17, 32, 64)


# ---------------------------------------------------------------------------- artefacts
def test_metadata_and_weights_round_trip(tmp_path):
    arch = small_xs(96)
    model = trained_like(build_model(arch, 14))
    result = export_model(model, tmp_path / "out", source="test")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["arch.json", "metadata.json", "model.onnx", "weights.pth"]

    meta = ExportMetadata.load(result.files["metadata"])
    assert meta.arch == arch and meta.num_joints == 14 and meta.dataset == "crowdpose"
    assert meta.joint_names[-2:] == ("head", "neck") and meta.flip_index[:2] == (1, 0)
    assert meta.input_name == INPUT_NAME and meta.output_names == OUTPUT_NAMES and meta.opset == 17
    assert meta.mean == (0.485, 0.456, 0.406) and meta.std == (0.229, 0.224, 0.225)
    raw = json.loads(result.files["metadata"].read_text())
    assert raw["preprocessing"]["color"] == "RGB"
    assert raw["preprocessing"]["resize"]["long_side_multiple"] == 64
    assert raw["outputs"][0]["shape_at_img_size"] == [1, 28, 24, 24]
    assert raw["export"]["parity"]["max_abs_diff"] == result.parity.max_abs_diff
    # the copy embedded in the ONNX file says the same
    result.files["metadata"].unlink()
    assert metadata_for_model(result.files["onnx"]).to_dict() == meta.to_dict()

    custom = ExportMetadata.create(arch, 5, 17)  # a joint count of no known dataset
    assert custom.dataset == "custom" and ExportMetadata.from_dict(custom.to_dict()) == custom
    assert Arch.from_json(result.files["arch"]) == arch
    assert result.files["arch"].read_text() == arch.to_json()
    state = torch.load(result.files["weights"], weights_only=True)
    assert type(state) is dict and list(state) == list(model.state_dict())
    reloaded = model_from_weights(arch, result.files["weights"])
    assert reloaded.num_joints == 14
    assert all(torch.equal(state[k], v) for k, v in reloaded.state_dict().items())


def test_weights_wrapped_and_mismatched(tmp_path):
    arch = small_xs(64)
    model = trained_like(build_model(arch, 17))
    wrapped = tmp_path / "ckpt.pth.tar"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, wrapped)
    loaded = model_from_weights(arch, wrapped)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    with pytest.raises(CheckpointError, match="17 joints but 14"):
        model_from_weights(arch, wrapped, num_joints=14)
    other = dataclasses.replace(Arch.from_json(PUBLISHED / "search-M.json"), img_size=64)
    with pytest.raises(CheckpointError, match="stage.0.0.point_conv.0.weight"):
        model_from_weights(other, wrapped)


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    import litepose_nas.export.artifacts as artifacts

    def broken(*args, **kwargs):
        raise JobError("simulated failure")

    monkeypatch.setattr(artifacts, "measure_parity", broken)
    out = tmp_path / "out"
    with pytest.raises(JobError):
        export_model(random_init_model(small_xs(64), 17), out)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ArchError, match="multiples of 16"):
        export_model(random_init_model(dataclasses.replace(small_xs(), img_size=72), 17), out)
    assert list(tmp_path.iterdir()) == []


def test_export_from_supernet(tmp_path):
    from litepose_nas.checkpoints import save_checkpoint
    from litepose_nas.export.supernet_source import model_from_supernet
    from litepose_nas.supernet import SuperLitePose

    space = SearchSpace.from_yaml("litepose-elastic")
    supernet = trained_like(SuperLitePose(space, 14))
    save_checkpoint(tmp_path / "super.pth", supernet)
    arch = _random_archs("litepose-elastic", 1, seed=3)[0]
    sub = model_from_supernet(arch, tmp_path / "super.pth")
    x = torch.randn(1, 3, arch.img_size, arch.img_size)
    with torch.no_grad():
        for a, b in zip(supernet(x, arch), sub(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert export_model(sub, tmp_path / "out").parity.ok
    with pytest.raises(CheckpointError, match="14 joints but 17"):
        model_from_supernet(arch, tmp_path / "super.pth", num_joints=17)
    with pytest.raises(CheckpointError, match="supernet checkpoint.*--supernet"):
        model_from_weights(arch, tmp_path / "super.pth")
    with pytest.raises(CheckpointError, match="not a supernet.*--weights"):
        torch.save(sub.state_dict(), tmp_path / "sub.pth")
        model_from_supernet(arch, tmp_path / "sub.pth")


# ---------------------------------------------------------------------------- CLI
def test_export_cli_json_contract(tmp_path):
    arch_file = tmp_path / "xs.json"
    small_xs(64).to_json(arch_file)
    out = tmp_path / "out"
    result = run_cli("export", "--arch", arch_file, "--random-init", "--num-joints", "14", "--out", out, "--json", env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["files"]) == {"arch", "weights", "onnx", "metadata"}
    assert all(Path(p).is_file() and Path(p).parent == out for p in report["files"].values())
    assert isinstance(report["parity"], float) and report["parity"] <= 1e-4
    assert report["num_joints"] == 14 and report["opset"] == 17

    # the weights it wrote export again through --weights (joints follow the weights)
    again = run_cli("export", "--arch", arch_file, "--weights", report["files"]["weights"], "--out", tmp_path / "again", env=ONE_THREAD)
    assert again.returncode == 0, again.stderr
    assert "parity" in again.stdout and "14 joints" in again.stdout


def test_export_cli_errors(tmp_path):
    xs = tmp_path / "xs.json"
    small_xs(64).to_json(xs)
    out = tmp_path / "out"
    assert_one_line_error(run_cli("export", "--arch", tmp_path / "missing.json", "--random-init", "--out", out),
                          2, "missing.json", "not found")
    assert_one_line_error(run_cli("export", "--arch", xs, "--out", out), 2, "exactly one of")
    # weights of another architecture: named key, nothing written (an existing folder keeps its contents)
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    m_weights = tmp_path / "m.pth"
    torch.save(build_model(dataclasses.replace(Arch.from_json(PUBLISHED / "search-M.json"), img_size=64), 17).state_dict(),
               m_weights)
    assert_one_line_error(run_cli("export", "--arch", xs, "--weights", m_weights, "--out", out, env=ONE_THREAD), 2,
                          str(m_weights), "stage.0.0.point_conv.0.weight", "has shape")
    not_weights = tmp_path / "w.pth"
    not_weights.write_text("nope")
    assert_one_line_error(run_cli("export", "--arch", xs, "--weights", not_weights, "--out", tmp_path / "new"), 2,
                          str(not_weights))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth", "out", "w.pth", "xs.json"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# ---------------------------------------------------------------------------- example
def test_example_export_published(capsys):
    module = runpy.run_path(str(REPO / "examples" / "export_published.py"))
    summary = module["main"](["--img-size", "64"])
    assert summary["parity"] <= 1e-4
    assert summary["files"] == ["arch.json", "metadata.json", "model.onnx", "weights.pth"]
    assert summary["shapes"] == {"heatmaps_tags": [2, 34, 16, 16], "heatmaps": [2, 17, 32, 32]}
    assert "search-XS" in capsys.readouterr().out


# ---------------------------------------------------------------------------- infer
@pytest.fixture(scope="module")
def exported_xs(tmp_path_factory) -> Path:
    """A random-init search-XS (17 joints) exported at 128 px."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("exported") / "xs"
    export_model(random_init_model(small_xs(128), 17), out)
    return out / "model.onnx"


def _gaussians(points: np.ndarray, height: int, width: int, sigma: float = 1.0) -> np.ndarray:
    """[P, J, 2] map positions -> per-person heatmaps [P, J, H, W]."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    dx = xs[None, None] - points[..., 0, None, None]
    dy = ys[None, None] - points[..., 1, None, None]
    return np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2)).astype(np.float32)


class FakeNetwork:
    """Stands in for the onnxruntime session: outputs with a gaussian per joint of known people
    (tags = person index), placed where the decoder's resize maps their image positions."""

    def __init__(self, people_xy: np.ndarray, info, flip_index):
        self.people_xy, self.info, self.flip_index = people_xy, info, list(flip_index)

    def outputs(self, stride: int, with_tags: bool) -> np.ndarray:
        w, h = self.info.size
        m = self.info.matrix()  # image -> resized input
        xy = self.people_xy @ m[:, :2].T + m[:, 2]
        heat = _gaussians((xy - (stride - 1) / 2) / stride, h // stride, w // stride)
        maps = heat.max(axis=0)
        if with_tags:
            tags = np.argmax(heat, axis=0).astype(np.float32) * 3.0
            maps = np.concatenate([maps, tags], axis=0)
        return maps

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        outs = []
        for stride, tags in ((4, True), (2, False)):
            plain = self.outputs(stride, tags)
            j = len(self.flip_index)
            order = self.flip_index + ([j + i for i in self.flip_index] if tags else [])
            flipped = plain[order][..., ::-1]
            outs.append(np.stack([plain, flipped][: batch.shape[0]]))
        return outs


@pytest.mark.parametrize("flip", [False, True])
def test_predict_maps_people_back_to_the_image(exported_xs, flip):
    from litepose_nas.decode import resize_info
    from litepose_nas.export.infer import PoseEstimator

    estimator = PoseEstimator(exported_xs, threads=1)
    height, width = 300, 420
    rng = np.random.default_rng(0)
    people = np.stack([
        np.column_stack([rng.uniform(40, 180, 17), rng.uniform(30, 270, 17)]),
        np.column_stack([rng.uniform(250, 390, 17), rng.uniform(30, 270, 17)]),
    ])
    fake = FakeNetwork(people, resize_info(height, width, 128), estimator.metadata.flip_index)
    estimator.run = fake
    prediction = estimator.predict(np.zeros((height, width, 3), np.uint8), flip=flip)
    assert len(prediction) == 2
    found = prediction.people[np.argsort(prediction.people[:, 0, 0])]
    # one map pixel at stride 2 is about 4.7 image pixels here
    assert np.abs(found[..., :2] - people).max() < 3.0
    assert (found[..., 2] > 0.5).all()


def test_infer_cli_end_to_end(exported_xs, tmp_path):
    from pycocotools.coco import COCO

    import cv2

    rng = np.random.default_rng(1)
    image = tmp_path / "street.png"
    cv2.imwrite(str(image), (rng.random((96, 160, 3)) * 255).astype(np.uint8))
    out = tmp_path / "out"
    result = run_cli("infer", "--model", exported_xs, image, "--out", out, "--threshold", "0.0001", "--json",
                     env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["images"][0]["people"] == report["people"]
    drawing = cv2.imread(report["images"][0]["drawing"])
    assert drawing is not None and drawing.shape == (96, 160, 3)
    coco = COCO(report["json"])  # valid COCO format (images, annotations, categories)
    (category,) = coco.loadCats(coco.getCatIds())
    assert category["name"] == "person" and len(category["keypoints"]) == 17
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == report["people"]
    for ann in anns:
        assert len(ann["keypoints"]) == 3 * 17 and ann["image_id"] == 1 and "score" in ann
    assert coco.loadImgs(1)[0]["width"] == 160
    if anns:  # also loads as detection results
        coco.loadRes(anns)


def test_infer_runs_on_a_base_install_and_finds_what_torch_finds(exported_xs, tmp_path):
    """A device without torch (pyproject's base install) runs an exported model through `infer`;
    its numpy decoding finds the people the torch path finds."""
    import cv2

    image = tmp_path / "street.png"
    cv2.imwrite(str(image), (np.random.default_rng(2).random((120, 200, 3)) * 255).astype(np.uint8))
    found = {}
    for without_torch in (False, True):
        out = tmp_path / f"out-{without_torch}"
        r = run_cli("infer", "--model", exported_xs, image, "--out", out, "--threshold", "0.0001", "--json",
                    env=ONE_THREAD, without_torch=without_torch)
        assert r.returncode == 0, r.stderr
        found[without_torch] = json.loads((out / "people.json").read_text())["annotations"]
    assert len(found[True]) == len(found[False]) > 0
    for a, b in zip(found[True], found[False]):
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=1e-3)
        assert a["score"] == pytest.approx(b["score"], abs=1e-5)


def test_infer_cli_errors(exported_xs, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    out = tmp_path / "out"
    assert_one_line_error(run_cli("infer", "--model", exported_xs, bad, "--out", out, env=ONE_THREAD), 2,
                          str(bad), "cannot read the image")
    assert_one_line_error(run_cli("infer", "--model", tmp_path / "none.onnx", bad, "--out", out), 2,
                          "none.onnx", "not found")
    assert not out.exists()
