"""The embedded default (``litepose-nas demo``), inference with a trained model, and the examples."""
from __future__ import annotations

import dataclasses
import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- proxy resolution
class _FakeSupernet:
    def __init__(self):
        from litepose_nas import SearchSpace

        self.space = SearchSpace.from_yaml("litepose")

    def to(self, device):
        return self

    def eval(self):
        return self


def test_exact_predictor_proxy_resolution():
    from litepose_nas.errors import PredictorError
    from litepose_nas.predictors import ExactPredictor

    net = _FakeSupernet()
    arch = net.space.smallest()
    assert ExactPredictor(net, None, None).input_size(arch) == arch.img_size
    ex = ExactPredictor(net, None, None, resolution_scale=0.25)
    sizes = [ex.input_size(dataclasses.replace(arch, img_size=s)) for s in (256, 320, 384, 448, 512)]
    assert sizes == [64, 80, 96, 112, 128]
    ex.val_source = type("Val", (), {"dataset": "coco"})()
    assert "proxy input img_size x 0.25" in ex.describe()
    with pytest.raises(PredictorError, match="resolution_scale"):
        ExactPredictor(net, None, None, resolution_scale=0.0)


# ---------------------------------------------------------------------- demo --fast end to end
@pytest.mark.slow
def test_demo_fast_end_to_end(tmp_path):
    out = tmp_path / "demo"
    # one thread: the suite runs two workers on two cores, and oversubscribed torch threads crawl
    res = run_cli("demo", "--out", out, "--fast", "--threads", "1", "--quiet", "--json", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    printed = json.loads(res.stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert printed["report"] == str(out / "report.md")
    # every artefact exists
    for name, path in summary["artefacts"].items():
        assert path and Path(path).exists(), (name, path)
    stages = ("data", "supernet", "collect", "fit", "latency", "search", "check", "finetune", "evaluate", "export",
              "infer")
    assert set(summary["stage_seconds"]) == set(stages)
    assert summary["deployed"]["export"]["parity"] <= 1e-4
    assert len(summary["search"]["limits_ms"]) == 3 and summary["search"]["limits_ms"] == sorted(summary["search"]["limits_ms"])
    assert all(c["arch"] is None or c["latency_ms"] <= c["limit_ms"] for c in summary["search"]["chosen"])
    # the predictor records its provenance, proxy included, and loads for the search CLI
    pred_meta = json.loads((out / "predictor" / "predictor.json").read_text())
    prov = pred_meta["provenance"]
    assert prov["dataset"]["kind"] == "synthetic" and prov["archs"] == 6 and prov["proxy"]["resolution_scale"] == 0.25
    assert prov["cv"]["rows"] == 6
    # the report links the Pareto plot and the inference drawing, both written
    report = (out / "report.md").read_text()
    for key in ("pareto_png", "inference_image"):
        rel = Path(summary["artefacts"][key]).relative_to(out)
        assert f"]({rel})" in report
    assert "synthetic" in report and "Proxy resolution" in report
    assert "plumbing check" in report.splitlines()[0]
    # the exported model runs with the infer command
    inf = run_cli("infer", "--model", summary["artefacts"]["export_onnx"], summary["deployed"]["inference"]["image"],
                  "--out", tmp_path / "inf", "--json")
    assert inf.returncode == 0, inf.stderr
    # a rerun resumes: every stage is skipped, the report is rewritten
    before = (out / "state.json").read_text()
    again = run_cli("demo", "--out", out, "--fast", "--threads", "1", timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("skipped") == len(stages)
    assert (out / "state.json").read_text() == before
    # another seed into the same folder is refused, nothing changed
    other = run_cli("demo", "--out", out, "--fast", "--threads", "1", "--seed", "3")
    assert_one_line_error(other, 2, "other settings")


def test_demo_bad_input(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert_one_line_error(run_cli("demo", "--out", f, "--fast"), 2, "not a folder")
    assert_one_line_error(run_cli("demo", "--out", tmp_path / "d", "--fast", "--ship", "../x"), 2, "--ship")
    assert not (tmp_path / "d").exists()


# ---------------------------------------------------------------------- infer with a trained model
@pytest.mark.slow
def test_infer_counts_people_with_trained_model(tmp_path):
    """A small static net trained briefly on the easy preset finds exactly the annotated people."""
    import torch

    from litepose_nas.data import generate_synthetic, open_dataset
    from litepose_nas.export import export_model, model_from_weights
    from litepose_nas.space import SearchSpace
    from litepose_nas.train import Trainer, default_config

    torch.set_num_threads(1)
    data = generate_synthetic(tmp_path / "data", 60, layout="coco", preset="easy", seed=1, image_size=64)
    arch = SearchSpace.from_yaml("litepose").smallest()
    cfg = default_config("subnet", dataset="coco", data=str(data), arch=arch.to_dict(), resolutions=(64,), steps=300,
                         batch_size=8, num_workers=0, val_every=-1, seed=0, checkpoint_every=300, schedule="constant")
    weights = Trainer(cfg, tmp_path / "train", quiet=True).run().weights
    # deployed at the size it was trained at (a bottom-up net is not scale invariant)
    model = model_from_weights(dataclasses.replace(arch, img_size=64), weights)
    onnx_path = export_model(model, tmp_path / "export").files["onnx"]

    val = open_dataset(data, "coco", "val")  # held out: never trained on
    images = [val.image_path(i) for i in val.image_ids]
    truth = [len(val.people(i)) for i in val.image_ids]
    assert len(images) == 6 and len(set(truth)) > 1  # 1-3 people: a count is not a constant
    res = run_cli("infer", "--model", onnx_path, *images, "--out", tmp_path / "inf", "--threshold", "0.4", "--json")
    assert res.returncode == 0, res.stderr
    people = json.loads((tmp_path / "inf" / "people.json").read_text())
    found = [sum(1 for a in people["annotations"] if a["image_id"] == k) for k in range(1, len(images) + 1)]
    right = sum(f == t for f, t in zip(found, truth))
    assert right >= len(images) - 1, (found, truth)


# ---------------------------------------------------------------------- examples
def _run_example(name: str, argv: list[str]) -> dict:
    mod = runpy.run_path(str(REPO / "examples" / name))
    return mod["main"](argv)


def test_example_quickstart_search(tmp_path):
    out = _run_example("quickstart_search.py", ["--out", str(tmp_path / "qs"), "--fast"])
    assert (tmp_path / "qs" / "pareto.png").is_file() and (tmp_path / "qs" / "best.json").is_file()
    result = out["result"]
    assert [c.limit for c in result.best] == out["budgets"]
    for choice in result.best:
        assert choice.arch is not None and choice.cost <= choice.limit


@pytest.mark.slow
def test_example_profile_and_search(tmp_path):
    out = _run_example("profile_and_search.py", ["--out", str(tmp_path / "p"), "--fast", "--device", "test-dev"])
    assert (tmp_path / "p" / "test-dev.csv").is_file() and (tmp_path / "p" / "test-dev.json").is_file()
    header = json.loads((tmp_path / "p" / "test-dev.json").read_text())
    assert header["device"] == "test-dev" and header["complete"]
    table, result = out["table"], out["result"]
    assert np.all(table.median_ms >= 0)
    for choice in result.best:
        if choice.arch is not None:
            assert choice.cost <= choice.limit
            assert abs(float(table.predict_archs([choice.arch])[0]) - choice.cost) < 1e-9
