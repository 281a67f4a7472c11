"""Accuracy predictors: features, models, CV, safe save/load, space checks, collect, exact evaluation."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from litepose_nas import PredictorError, SearchSpace
from litepose_nas.cost import macs
from litepose_nas.predictors import (
    Featurizer, Predictor, cross_validate, fit_predictor, load_predictor, read_evals, write_evals,
)
from litepose_nas.predictors.collect import collect_evals, stratified_sample
from litepose_nas.predictors.data import append_row

from cli_helpers import assert_one_line_error, run_cli

ORIGINAL = SearchSpace.from_yaml("litepose")
ELASTIC = SearchSpace.from_yaml("litepose-elastic")
SMALL_HPARAMS = {"mlp": {"hidden": [32, 32], "max_iter": 200}, "gbdt": {"n_estimators": 40, "max_depth": 3}}


def synthetic_ap(space: SearchSpace, enc: np.ndarray, seed: int = 0, noise: float = 0.003) -> np.ndarray:
    """A smooth made-up AP: saturating in MACs, a bonus for resolution, plus noise (tests only)."""
    g = macs(enc, convention="paper", space=space) / 1e9
    res = space.arrays(enc).resolution
    rng = np.random.default_rng(seed)
    return 0.62 - 0.4 * np.exp(-g / 3.0) + 0.03 * (res - 256) / 256 + noise * rng.standard_normal(len(g))


@pytest.fixture(scope="module")
def data():
    enc = ORIGINAL.sample_encoded(0, 120)
    return enc, synthetic_ap(ORIGINAL, enc)


def test_features_one_hot_skip_constant_and_inactive_zero():
    f = Featurizer(ORIGINAL)
    # only resolution, stem, 4 widths and 3 head widths vary in the original space
    assert f.num_features == 5 + 3 + 4 * 4 + 4 * 3
    X = f.transform(ORIGINAL.sample_encoded(1, 7))
    assert X.shape == (7, 36) and set(np.unique(X)) == {0.0, 1.0}
    assert np.all(X.sum(axis=1) == 9)
    fe = Featurizer(ELASTIC)
    enc = ELASTIC.encode([ELASTIC.smallest(), ELASTIC.largest()])
    Xe = fe.transform(enc)
    active = (enc >= 0) & (ELASTIC.choice_counts() > 1)
    assert np.array_equal(Xe.sum(axis=1), active.sum(axis=1))  # inactive slots add nothing
    assert Xe[0].sum() < Xe[1].sum()


@pytest.mark.parametrize("kind", ["ridge", "gbdt", "mlp", "gp"])
def test_save_load_round_trip_identical(kind, data, tmp_path):
    enc, y = data
    pred = Predictor(ORIGINAL, kind, seed=3, **SMALL_HPARAMS.get(kind, {})).fit(enc, y)
    test = ORIGINAL.sample_encoded(9, 50)
    before = pred.predict(test)
    folder = pred.save(tmp_path / f"pred-{kind}")
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "predictor.json"]
    loaded = load_predictor(folder, ORIGINAL)
    assert np.array_equal(loaded.predict(test), before)
    assert loaded.kind == kind and loaded.provenance["name"] == f"pred-{kind}"
    # single Arch in, float out; Arch list equals encoded rows
    archs = ORIGINAL.decode(test[:3])
    assert loaded.predict(archs[0]) == pytest.approx(before[0])
    assert np.allclose(loaded.predict(archs), before[:3])
    meta = json.loads((folder / "predictor.json").read_text())
    assert meta["space"]["name"] == "litepose" and meta["model"]["kind"] == kind


def test_predictions_track_targets(data):
    enc, y = data
    pred = Predictor(ORIGINAL, "ridge").fit(enc, y)
    test = ORIGINAL.sample_encoded(5, 200)
    from scipy.stats import kendalltau

    assert kendalltau(pred.predict(test), synthetic_ap(ORIGINAL, test, noise=0)).statistic > 0.7


def test_predictor_for_another_space_is_rejected(data, tmp_path):
    enc, y = data
    folder = Predictor(ORIGINAL, "ridge").fit(enc, y).save(tmp_path / "orig")
    with pytest.raises(PredictorError, match="litepose"):
        load_predictor(folder, ELASTIC)  # elastic depths / kernels do not exist in the original space
    other = SearchSpace.create("other", [128, 192], [16], [
        {"stride": 2, "widths": [16], "depths": [2], "kernels": [3], "expansions": [4]},
        {"stride": 2, "widths": [24], "depths": [2], "kernels": [3], "expansions": [4]},
        {"stride": 2, "widths": [32], "depths": [2], "kernels": [3], "expansions": [4]},
        {"stride": 1, "widths": [48], "depths": [2], "kernels": [3], "expansions": [4]},
    ], [[16], [16], [8]])
    with pytest.raises(PredictorError, match="refit the predictor for 'other'"):
        load_predictor(folder, other)
    pred = load_predictor(folder)
    with pytest.raises(PredictorError):
        pred.predict(other.sample_encoded(0, 2), space=other)


def test_subspace_is_translated(tmp_path):
    enc = ELASTIC.sample_encoded(0, 80)
    pred = Predictor(ELASTIC, "ridge").fit(enc, synthetic_ap(ELASTIC, enc))
    sub = ORIGINAL.sample_encoded(2, 20)
    via_arch = pred.predict(ORIGINAL.decode(sub))  # archs encoded in the elastic space
    assert np.allclose(pred.predict(sub, space=ORIGINAL), via_arch)


def test_tampered_files_are_rejected(data, tmp_path):
    enc, y = data
    folder = Predictor(ORIGINAL, "ridge").fit(enc, y).save(tmp_path / "p")
    meta = json.loads((folder / "predictor.json").read_text())
    bad = tmp_path / "edited"
    shutil.copytree(folder, bad)
    meta["space"]["definition"]["resolutions"] = [256]
    (bad / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(PredictorError, match="fingerprint"):
        load_predictor(bad)
    pickled = tmp_path / "pickled"
    shutil.copytree(folder, pickled)
    np.savez(pickled / "arrays.npz", coef=np.array([object()], dtype=object), intercept=np.zeros(1))
    with pytest.raises(PredictorError, match="arrays.npz: does not match predictor.json .field arrays_sha256"):
        load_predictor(pickled)
    meta.pop("arrays_sha256")  # a forged file without the digest is still never unpickled
    meta["space"]["definition"]["resolutions"] = ORIGINAL.resolutions
    (pickled / "predictor.json").write_text(json.dumps(meta))
    with pytest.raises(PredictorError, match="safe numpy"):
        load_predictor(pickled)
    with pytest.raises(PredictorError, match="not found"):
        load_predictor(tmp_path / "nowhere")


def test_a_save_killed_between_its_two_files_is_refused(data, tmp_path, monkeypatch):
    import litepose_nas.io as io_module

    enc, y = data
    folder = Predictor(ORIGINAL, "ridge").fit(enc, y).save(tmp_path / "p")
    real_write = io_module.write_json_atomic

    def killed(path, obj, indent=2):
        raise KeyboardInterrupt  # the new arrays have landed, the new predictor.json has not

    monkeypatch.setattr(io_module, "write_json_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        Predictor(ORIGINAL, "ridge").fit(enc, y[::-1].copy()).save(folder)
    with pytest.raises(PredictorError, match="arrays.npz: does not match predictor.json .*fit it again"):
        load_predictor(folder)
    monkeypatch.setattr(io_module, "write_json_atomic", real_write)
    Predictor(ORIGINAL, "ridge").fit(enc, y[::-1].copy()).save(folder)
    assert load_predictor(folder).predict(enc[:5]).shape == (5,)


def test_cross_validation_report_and_auto(data):
    enc, y = data
    report = cross_validate(ORIGINAL, enc, y, ["ridge", "gbdt"], folds=3, hparams=SMALL_HPARAMS)
    assert [s.model for s in report.scores] == ["ridge", "gbdt"]
    for s in report.scores:
        assert s.rmse > 0 and -1 <= s.kendall_tau <= 1 and -1 <= s.spearman <= 1
        assert set(s.pooled) == {"rmse", "kendall_tau", "spearman"}
    assert report.best == max(report.scores, key=lambda s: s.kendall_tau).model
    pred = fit_predictor(ORIGINAL, enc, y, model="auto", folds=3, compare=["ridge", "gbdt"], hparams=SMALL_HPARAMS)
    assert pred.kind == report.best and pred.cv_report["best"] == report.best


def test_cli_fit_writes_predictor_and_report(data, tmp_path):
    enc, y = data
    csv = tmp_path / "evals.csv"
    write_evals(csv, ORIGINAL.decode(enc), y, space_name="litepose")
    out = tmp_path / "predictors" / "synthetic"
    r = run_cli("predictor", "fit", csv, "--model", "ridge", "--compare", "ridge,gbdt", "--folds", "3", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "Kendall tau" in r.stdout and "gbdt" in r.stdout and "saved 'ridge'" in r.stdout
    pred = load_predictor(out, ORIGINAL)
    assert pred.provenance["rows"] == len(y) and len(pred.provenance["training_data_sha256"]) == 64
    r = run_cli("predictor", "info", out, "--json")
    info = json.loads(r.stdout)
    assert r.returncode == 0 and info["model"]["kind"] == "ridge"
    assert (info["rows"], info["heldout_kendall_tau"], info["heldout_rmse"]) == (len(y), None, None)
    # heldout.csv beside the predictor: architectures never fitted, scored by info
    from litepose_nas.predictors.heldout import write_heldout

    h_enc = ORIGINAL.sample_encoded(77, 30)
    h_ap = synthetic_ap(ORIGINAL, h_enc, seed=5)
    write_heldout(out / "heldout.csv", ORIGINAL.decode(h_enc), h_ap)
    info = json.loads(run_cli("predictor", "info", out, "--json").stdout)
    h_pred = pred.predict(ORIGINAL.decode(h_enc))
    assert info["heldout_rows"] == 30 and info["heldout_kendall_tau"] > 0.5
    assert info["heldout_rmse"] == pytest.approx(float(np.sqrt(np.mean((h_pred - h_ap) ** 2))), rel=1e-4)
    assert "heldout.csv (30 architectures" in run_cli("predictor", "info", out).stdout
    # fit --heldout: the same check written by fit itself, and held-out rows that were fitted are refused
    h_csv = tmp_path / "heldout-evals.csv"
    write_evals(h_csv, ORIGINAL.decode(h_enc), h_ap, space_name="litepose")
    out2 = tmp_path / "predictors" / "with-heldout"
    r = run_cli("predictor", "fit", csv, "--model", "ridge", "--compare", "ridge", "--folds", "3", "--out", out2,
                "--heldout", h_csv, "--json")
    fitted = json.loads(r.stdout)
    assert r.returncode == 0 and fitted["rows"] == len(y) and fitted["heldout_rows"] == 30
    assert fitted["heldout_kendall_tau"] == pytest.approx(info["heldout_kendall_tau"])
    assert (out2 / "heldout.csv").read_text() == (out / "heldout.csv").read_text()
    overlap = tmp_path / "overlap.csv"
    write_evals(overlap, ORIGINAL.decode(np.concatenate([h_enc, enc[:3]])), np.concatenate([h_ap, y[:3]]))
    assert_one_line_error(run_cli("predictor", "fit", csv, "--compare", "ridge", "--out", tmp_path / "z",
                                  "--heldout", overlap), 2, "3 of its 33 architectures are also in")
    assert not (tmp_path / "z").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,accuracy\n{},1\n")
    assert_one_line_error(run_cli("predictor", "fit", bad, "--out", tmp_path / "x"), 2, "missing column 'ap'")
    assert not (tmp_path / "x").exists()
    elastic_csv = tmp_path / "elastic.csv"
    e_enc = ELASTIC.sample_encoded(0, 20)
    write_evals(elastic_csv, ELASTIC.decode(e_enc), synthetic_ap(ELASTIC, e_enc))
    assert_one_line_error(run_cli("predictor", "fit", elastic_csv, "--compare", "ridge", "--out", tmp_path / "y"), 2,
                          "outside space 'litepose'")
    assert not (tmp_path / "y").exists()


class FakeExact:
    """Stands in for ExactPredictor in the resume test: deterministic metrics, counts calls."""

    def __init__(self, space):
        self.space = space
        self.calls = 0

    def evaluate_arch(self, arch):
        self.calls += 1
        ap = float(synthetic_ap(self.space, self.space.encode([arch]), noise=0)[0])
        return {"metrics": {"AP": ap, "AP50": ap + 0.2, "AP75": ap - 0.05}, "seconds": 0.0}


def test_stratified_sample_spans_macs():
    archs = stratified_sample(ORIGINAL, 12, seed=1)
    g = np.array([macs(a, convention="paper") for a in archs]) / 1e9
    assert len({a.to_json() for a in archs}) == 12
    assert g.max() == pytest.approx(macs(ORIGINAL.largest(), convention="paper") / 1e9)
    assert np.histogram(g, bins=3, range=(g.min(), g.max()))[0].min() >= 1
    assert [a.to_json() for a in stratified_sample(ORIGINAL, 12, seed=1)] == [a.to_json() for a in archs]


def test_collect_appends_and_resumes(tmp_path):
    out = tmp_path / "evals.csv"
    fake = FakeExact(ORIGINAL)
    s = collect_evals(None, None, "coco", 4, out, ORIGINAL, predictor=fake, progress=False)
    assert s == {"requested": 4, "done": 4, "new": 4, "skipped": 0}
    # a kill mid-row leaves a partial line: it is dropped, the finished rows are kept
    with open(out, "a") as f:
        f.write('9,litepose,1.0,0.5,0.6,0.4,0.1,"{""img_size"": 25')
    s = collect_evals(None, None, "coco", 7, out, ORIGINAL, predictor=fake, progress=False)
    assert s["skipped"] == 4 and s["new"] == 3 and fake.calls == 7
    table = read_evals(out)
    assert len(table) == 7 and len({a.to_json() for a in table.archs}) == 7
    assert np.allclose(table.targets, synthetic_ap(ORIGINAL, table.encoded(ORIGINAL), noise=0))


def test_collect_records_its_settings_and_refuses_to_mix_them(tmp_path):
    """evals.provenance.json: how the rows were measured; fit copies it; other settings are refused."""
    from cli_helpers import run_cli

    from litepose_nas.errors import DataError
    from litepose_nas.predictors.collect import provenance_path

    supernet = tmp_path / "supernet.pt"
    supernet.write_bytes(b"weights v1")
    fake = FakeExact(ORIGINAL)
    fake.calib_batches, fake.batch_size, fake.val_images, fake.resolution_scale, fake.metric = 5, 8, 80, 0.25, "AP"
    out = tmp_path / "evals.csv"
    collect_evals(supernet, tmp_path, "coco", 12, out, ORIGINAL, predictor=fake, progress=False, seed=3)
    recorded = json.loads(provenance_path(out).read_text())
    assert provenance_path(out).name == "evals.provenance.json"
    assert (recorded["val_images"], recorded["resolution_scale"], recorded["seed"]) == (80, 0.25, 3)
    assert recorded["supernet_sha256"] == hashlib.sha256(b"weights v1").hexdigest()
    collect_evals(supernet, tmp_path, "coco", 14, out, ORIGINAL, predictor=fake, progress=False, seed=3)  # resumes
    assert len(read_evals(out)) == 14
    fake.resolution_scale = 0.5
    with pytest.raises(DataError, match=r"other settings \(resolution_scale"):
        collect_evals(supernet, tmp_path, "coco", 16, out, ORIGINAL, predictor=fake, progress=False, seed=3)
    fake.resolution_scale = 0.25
    supernet.write_bytes(b"weights v2")  # a retrained supernet measures other APs
    with pytest.raises(DataError, match="supernet_sha256"):
        collect_evals(supernet, tmp_path, "coco", 16, out, ORIGINAL, predictor=fake, progress=False, seed=3)
    assert len(read_evals(out)) == 14
    r = run_cli("predictor", "fit", out, "--compare", "ridge", "--folds", "2", "--out", tmp_path / "pred", "-q")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "pred" / "predictor.json").read_text())
    assert meta["provenance"]["collection"] == recorded


def test_append_row_creates_header(tmp_path):
    p = tmp_path / "e.csv"
    append_row(p, {"ap": 0.5, "arch": ORIGINAL.smallest().to_dict()})
    append_row(p, {"ap": 0.6, "arch": ORIGINAL.largest().to_dict()})
    t = read_evals(p)
    assert list(t.targets) == [0.5, 0.6] and t.archs[1] == ORIGINAL.largest()


@pytest.mark.slow
def test_exact_predictor_on_tiny_supernet(tmp_path):
    """Extract + BN recalibration + official AP on a random tiny supernet and synthetic data."""
    import torch

    from litepose_nas.data import generate_synthetic, open_dataset
    from litepose_nas.predictors import ExactPredictor
    from litepose_nas.supernet import SuperLitePose

    torch.manual_seed(0)
    space = SearchSpace.create("tiny", [64], [8], [
        {"stride": 2, "widths": [8], "depths": [1, 2], "kernels": [3], "expansions": [2]},
        {"stride": 2, "widths": [16], "depths": [1], "kernels": [3], "expansions": [2]},
        {"stride": 2, "widths": [16], "depths": [1], "kernels": [3], "expansions": [2]},
        {"stride": 1, "widths": [24, 16], "depths": [1], "kernels": [3], "expansions": [2]},
    ], [[16], [16], [8]], stem_mid_channels=8)
    root = generate_synthetic(tmp_path / "data", 8, image_size=64, seed=0, val_fraction=0.5)
    train, val = open_dataset(root, "coco", "train"), open_dataset(root, "coco", "val")
    exact = ExactPredictor(SuperLitePose(space, 17), train, val, calib_batches=1, batch_size=2, val_images=2)
    enc = space.enumerate_encoded()
    ap = exact.predict(enc, space=space)
    assert ap.shape == (len(enc),) and np.all((ap >= 0) & (ap <= 1))
    assert len(exact.cache) == len(enc)
    exact.predict(enc[:1], space=space)
    assert len(exact.cache) == len(enc)  # cached


def test_collect_resolution_scale_option_is_checked(tmp_path):
    from cli_helpers import assert_one_line_error, run_cli

    for bad in ("0", "1.5"):
        r = run_cli("predictor", "collect", "--supernet", tmp_path / "s.pt", "--data", tmp_path, "--archs", "2",
                    "--out", tmp_path / "e.csv", "--resolution-scale", bad)
        assert_one_line_error(r, 2, "--resolution-scale")
    assert not (tmp_path / "e.csv").exists()


def test_predictor_follows_the_scikit_learn_estimator_protocol():
    """get_params / set_params / sklearn.base.clone: hyperparameters live in __init__ only."""
    from sklearn.base import clone

    from litepose_nas.space import SearchSpace, resolve_space_path

    space = SearchSpace.from_yaml(resolve_space_path("litepose"))
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(40)]
    y = np.array([a.img_size / 512 for a in archs]) + rng.normal(0, 0.01, 40)
    fitted = Predictor(space, "ridge", alphas=(0.1, 1.0)).fit(archs, y)
    copy = clone(fitted)
    assert copy.model is None and copy.get_params() == fitted.get_params()
    np.testing.assert_allclose(copy.fit(archs, y).predict(archs), fitted.predict(archs))
    assert copy.set_params(seed=3).get_params()["alphas"] == (0.1, 1.0) and copy.model is None
    switched = copy.set_params(model="gbdt")
    assert switched.kind == "gbdt" and "alphas" not in switched.get_params()
    assert switched.fit(archs, y).predict(archs).shape == (40,)
