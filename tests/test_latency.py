"""Latency tables: layer enumeration, ONNX graphs, profiler (resume, torch-free), prediction, errors."""
from __future__ import annotations

import json
from dataclasses import replace
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from litepose_nas import Arch, SearchSpace, TableError
from litepose_nas.latency import LatencyTable, list_tables, load_table
from litepose_nas.latency.layers import arch_layers, enumerate_layers
from litepose_nas.latency.profiler import ProfileSettings, fit_correction, profile_space
from litepose_nas.latency.runners import OrtRunner, TimingPolicy

REPO = Path(__file__).resolve().parents[1]
FAST = TimingPolicy(warmup=1, min_repeats=2, max_repeats=3, budget_s=0.005)

TINY = {
    "name": "tiny",
    "resolutions": [64, 96],
    "stem": {"mid_channels": 8, "widths": [8]},
    "stages": [
        {"stride": 2, "widths": [16, 8], "depths": [1, 2], "kernels": [3, 5], "expansions": [2]},
        {"stride": 2, "widths": [16], "depths": [1], "kernels": [3], "expansions": [2]},
        {"stride": 2, "widths": [16], "depths": [1], "kernels": [3], "expansions": [2]},
        {"stride": 1, "widths": [24, 16], "depths": [1], "kernels": [3], "expansions": [2]},
    ],
    "head": {"widths": [[8], [8], [8]]},
}


@pytest.fixture
def tiny_space() -> SearchSpace:
    return SearchSpace.from_dict(TINY)


@pytest.fixture
def tiny_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _settings(**kw) -> ProfileSettings:
    kw.setdefault("speed_guard", False)  # its own tests below; elsewhere it only slows the tests down
    kw.setdefault("passes", 1)
    s = ProfileSettings(device_name="test-cpu", threads=1, calibration_nets=3, **kw)
    s.policy, s.net_policy = FAST, FAST
    return s


@pytest.fixture
def tiny_table(tiny_space, tmp_path) -> LatencyTable:
    return profile_space(tiny_space, tmp_path / "tiny-cpu.csv", _settings(), progress=False, detect_contention=False)


# ---------------------------------------------------------------------- layers
def test_enumerated_layers_are_exactly_those_of_all_archs(tiny_space):
    listed = set(enumerate_layers(tiny_space, 17))
    enc = tiny_space.enumerate_encoded()
    a = tiny_space.arrays(enc)
    used = {cfg for i in range(len(enc)) for _, cfg in arch_layers(a, 17, 8, i)}
    assert listed == used
    kinds = {c.kind for c in listed}
    assert kinds == {"stem", "block", "deconv", "fuse", "final", "add"}
    # final convs carry the joint counts: 2J at 1/4, J at 1/2
    assert {c.cout for c in listed if c.kind == "final"} == {34, 17}


def test_original_space_layer_count_and_published_archs_covered(published_dir):
    space = SearchSpace.from_yaml("litepose")
    layers = set(enumerate_layers(space, 17))
    assert len(layers) == 852
    archs = [Arch.from_json(published_dir / f"search-{n}.json") for n in ("XS", "S", "M", "L")]
    a = space.arrays(space.encode(archs))
    for i in range(len(archs)):
        cfgs = arch_layers(a, 17, 32, i)
        assert len(cfgs) == 34 + 16 and {c for _, c in cfgs} <= layers


def test_onnx_network_matches_torch_model(tiny_space):
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from litepose_nas.latency.onnx_graphs import network_model
    from litepose_nas.models.litepose import LitePose

    arch = tiny_space.largest()
    model = LitePose(replace(arch, stem_mid_channels=8), 17).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    proto = network_model(arch, 17, stem_mid=8, weights=weights)
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    outs = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"image": x})
    with torch.no_grad():
        ref = model(torch.from_numpy(x))
    for o, r in zip(outs, ref):
        assert o.shape == tuple(r.shape)
        np.testing.assert_allclose(o, r.numpy(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- profiler + prediction
def test_profile_writes_valid_table_and_predicts_hand_sum(tiny_table, tiny_space, tmp_path):
    loaded = load_table(tmp_path / "tiny-cpu.csv")
    assert len(loaded) == len(enumerate_layers(tiny_space, 17))
    assert loaded.space_name == "tiny" and loaded.num_joints == 17 and loaded.provenance == "measured"
    assert not (tmp_path / "tiny-cpu.partial.jsonl").exists()
    h = json.loads((tmp_path / "tiny-cpu.json").read_text())
    for key in ("device", "runtime", "runtime_version", "threads", "precision", "date", "space", "provenance"):
        assert key in h
    enc = tiny_space.sample_encoded(3, 5)
    pred = loaded.predict(enc, space=tiny_space)
    rows = dict(zip([c.key for c in loaded.configs], loaded.median_ms))
    for i, arch in enumerate(tiny_space.decode(enc)):
        a = tiny_space.arrays(tiny_space.encode([arch]))
        hand = sum(rows[cfg.key] for _, cfg in arch_layers(a, 17, 8))
        assert pred[i] == pytest.approx(loaded.scale * hand + loaded.offset_ms, rel=1e-9)
    # same result through Arch objects and for a single row
    np.testing.assert_allclose(loaded.predict_archs(tiny_space.decode(enc)), pred)
    assert loaded.predict(enc[0], space=tiny_space).shape == (1,)


def test_profile_resumes_after_interruption(tiny_space, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = OrtRunner.time_layer

    def counting(self, cfg, policy):
        calls["n"] += 1
        return original(self, cfg, policy)

    monkeypatch.setattr(OrtRunner, "time_layer", counting)

    class Killed(Exception):
        pass

    def kill_at_5(done, total):
        if done == 5:
            raise Killed

    out = tmp_path / "t.csv"
    with pytest.raises(Killed):
        profile_space(tiny_space, out, _settings(), progress=False, callback=kill_at_5, detect_contention=False)
    partial = tmp_path / "t.partial.jsonl"
    assert partial.exists() and not out.exists()
    # a kill in the middle of a write leaves a cut line: it must be dropped, not crash the resume
    with partial.open("a") as fh:
        fh.write('{"type": "layer", "key": "blo')
    first = calls["n"]
    total = len(enumerate_layers(tiny_space, 17))
    table = profile_space(tiny_space, out, _settings(), progress=False, detect_contention=False)
    assert len(table) == total
    assert calls["n"] - first == total - 5  # only the layers not yet written were timed again
    assert not partial.exists()
    # other settings refuse to resume someone else's progress file
    partial.write_text(json.dumps({"type": "settings", "identity": {"threads": 99}}) + "\n")
    with pytest.raises(TableError, match="other settings"):
        profile_space(tiny_space, out, _settings(), progress=False, detect_contention=False)


def test_table_for_another_space_is_rejected(tiny_table):
    space = SearchSpace.from_yaml("litepose")
    with pytest.raises(TableError, match="is for search space 'tiny', not 'litepose'"):
        tiny_table.predict(space.sample_encoded(0, 2), space=space)


def test_unknown_configuration_is_named(tiny_table, tiny_space):
    other = dict(TINY, stages=[dict(TINY["stages"][0], kernels=[7])] + TINY["stages"][1:])
    space = SearchSpace.from_dict(other)  # same name, a kernel the table never timed
    with pytest.raises(TableError, match=r"no row for layer block:.*:k7"):
        tiny_table.predict(space.sample_encoded(0, 3), space=space)


def _hand_edit(csv_path: Path, json_path: Path, text: str) -> None:
    """Rewrite the CSV and accept the edit the documented way (drop the header's digest)."""
    csv_path.write_text(text)
    header = json.loads(json_path.read_text())
    del header["csv_sha256"]
    json_path.write_text(json.dumps(header))


@pytest.mark.parametrize("damage, message", [
    (lambda c, j: c.write_text(c.read_text().replace("1", "2", 1)), "does not match its header tiny-cpu.json"),
    (lambda c, j: _hand_edit(c, j, c.read_text().replace("median_ms", "median")), "first line must be the columns"),
    (lambda c, j: _hand_edit(c, j, c.read_text() + "block:x,block,1,2\n"), "fields, expected"),
    (lambda c, j: _hand_edit(c, j, "\n".join(c.read_text().splitlines()[:-2]) + "\n"), "truncated"),
    (lambda c, j: _hand_edit(c, j, c.read_text().replace(",stem,", ",stam,", 1)), "kind 'stam' not allowed"),
    (lambda c, j: (j.write_bytes(j.read_bytes().replace(b'"csv_sha256"', b'"x"')), c.write_bytes(b"\xff\n")),
     "byte 0 is not UTF-8"),
    (lambda c, j: j.write_text("{not json"), "not valid JSON"),
    (lambda c, j: j.write_text(json.dumps({k: v for k, v in json.loads(j.read_text()).items() if k != "space"})),
     "'space' missing"),
    (lambda c, j: j.unlink(), "header not found"),
])
def test_corrupt_table_gives_clear_error(tiny_table, tmp_path, damage, message):
    csv_path, json_path = tmp_path / "tiny-cpu.csv", tmp_path / "tiny-cpu.json"
    damage(csv_path, json_path)
    with pytest.raises(TableError, match=message):
        load_table(csv_path)


def test_a_save_killed_between_its_two_files_never_reads_as_a_whole_table(tiny_table, tmp_path, monkeypatch):
    import litepose_nas.latency.table as table_module

    def killed(path, data):
        raise KeyboardInterrupt  # the header has landed, the CSV has not

    monkeypatch.setattr(table_module, "write_bytes_atomic", killed)
    changed = LatencyTable(dict(tiny_table.header), tiny_table.configs, tiny_table.median_ms * 2,
                           tiny_table.p90_ms * 2, tiny_table.samples)
    # over an existing table: the old CSV under the new header is refused
    with pytest.raises(KeyboardInterrupt):
        changed.save(tmp_path / "tiny-cpu.csv")
    with pytest.raises(TableError, match="tiny-cpu.csv: does not match its header tiny-cpu.json .*profile it again"):
        load_table(tmp_path / "tiny-cpu.csv")
    # a first save: only the header exists, and no table of that name is listed
    monkeypatch.setenv("LITEPOSE_NAS_HOME", str(tmp_path / "home"))
    with pytest.raises(KeyboardInterrupt):
        changed.save(tmp_path / "home" / "latency_tables" / "dev.csv")
    assert (tmp_path / "home" / "latency_tables" / "dev.json").exists()
    assert "dev" not in {t["name"] for t in list_tables()}
    monkeypatch.undo()
    changed.save(tmp_path / "tiny-cpu.csv")
    np.testing.assert_allclose(load_table(tmp_path / "tiny-cpu.csv").median_ms, tiny_table.median_ms * 2, rtol=1e-5)


def test_samples_without_cpu_are_not_clean():
    import time

    from litepose_nas.latency.runners import _time_calls

    # a call that sleeps gets no CPU: exactly what a preempted call looks like
    strict = _time_calls(lambda: time.sleep(0.001), TimingPolicy(warmup=0, min_repeats=3, max_repeats=5,
                                                                 budget_s=0.0, min_cpu_share=0.8, max_wait_s=0.05))
    assert strict.clean == 0 and strict.total >= 3 and len(strict.samples) == 3
    lax = _time_calls(lambda: time.sleep(0.001), TimingPolicy(warmup=0, min_repeats=3, max_repeats=5, budget_s=0.0))
    assert lax.clean == lax.total == len(lax.samples) == 3


def test_fit_correction_recovers_linear_model():
    sums = np.array([10.0, 40.0, 80.0, 160.0])
    fit = fit_correction(sums, 1.3 * sums + 4.0)
    assert fit["scale"] == pytest.approx(1.3) and fit["offset_ms"] == pytest.approx(4.0)
    assert fit["fit_mape_pct"] < 1e-6


def test_predict_is_vectorized_over_a_large_batch(tiny_table, tiny_space):
    enc = tiny_space.sample_encoded(0, 20_000)
    out = tiny_table.predict(enc, space=tiny_space)
    assert out.shape == (20_000,) and out.dtype == np.float64 and np.all(out > 0)


# ---------------------------------------------------------------------- derived tables
def test_derive_table_fits_known_device_and_reports_held_out_error(tiny_table, tiny_space):
    from litepose_nas.latency.calibrate import CalibrationPoint, derive_table
    from litepose_nas.latency.fidelity import validate_derived

    archs = tiny_space.decode(tiny_space.sample_encoded(5, 4))
    n_layers = np.array([len(arch_layers(tiny_space.arrays(tiny_space.encode([a])), 17, 8)) for a in archs])
    truth = 3.0 * tiny_table.layer_sums(archs) + 0.05 * n_layers  # a device 3x slower, 0.05 ms per launch
    pts = [CalibrationPoint(f"a{i}", a, float(t)) for i, (a, t) in enumerate(zip(archs, truth))]
    dev = derive_table(tiny_table, "board", pts, "tvm", "a test board")
    assert dev.provenance == "derived" and "rescaled" in dev.provenance_details
    np.testing.assert_allclose(dev.predict_archs(archs), truth, rtol=1e-6)
    rep = validate_derived(dev)
    assert rep.n == 4 and rep.mape < 1e-3 and rep.mode == "calibration-leave-one-out"


# ---------------------------------------------------------------------- CLI
def _cli(args: list[str], env_extra: dict | None = None, block_torch: bool = False) -> subprocess.CompletedProcess:
    code = ("import sys\n" + ("sys.modules['torch'] = None\n" if block_torch else "")
            + "from litepose_nas.cli import main\nmain(sys.argv[1:], prog_name='litepose-nas')\n")
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


def test_profile_command_runs_without_torch(tiny_yaml, tmp_path):
    out = tmp_path / "home" / "latency_tables" / "notorch.csv"
    r = _cli(["profile", "--space", str(tiny_yaml), "--device-name", "pi", "--threads", "1", "--quick",
              "--no-contention-check", "--calibration-nets", "2", "--quiet", "--out", str(out)], block_torch=True)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    t = load_table(out)
    assert t.device == "pi" and t.header["complete"] is True and len(t) > 0
    # the user folder is listed (torch still blocked)
    r = _cli(["latency", "list", "--json"], {"LITEPOSE_NAS_HOME": str(tmp_path / "home")}, block_torch=True)
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)
    mine = [i for i in items if i["name"] == "notorch"]
    assert mine and mine[0]["device"] == "pi" and mine[0]["space"] == "tiny" and mine[0]["provenance"] == "measured"
    assert {"name", "device", "runtime", "provenance", "space", "path"} <= set(mine[0])


def test_cli_errors_are_one_line(tiny_table, tmp_path):
    (tmp_path / "tiny-cpu.json").write_text("{broken")
    r = _cli(["latency", "validate", "--table", str(tmp_path / "tiny-cpu.csv"), "--archs", "2"])
    assert r.returncode == 2 and r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    r = _cli(["latency", "validate", "--table", "no-such-table"])
    assert r.returncode == 2 and "not found" in r.stderr


def test_validate_command_json_contract(tiny_table, tiny_yaml, tmp_path):
    plot = tmp_path / "fid.png"
    r = _cli(["latency", "validate", "--table", str(tmp_path / "tiny-cpu.csv"), "--space", str(tiny_yaml),
              "--archs", "4", "--no-published", "--json", "--quiet", "--plot", str(plot), "--no-contention-check",
              "--no-speed-guard"])
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert {"mape", "within_10pct", "spearman", "n"} <= set(rep) and rep["n"] == 4
    assert rep["mape"] >= 0 and 0 <= rep["within_10pct"] <= 1
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_shipped_tables_load_and_cover_the_original_space():
    items = {t["name"]: t for t in list_tables() if t["source"] == "shipped"}
    assert items, "no shipped latency tables found"
    space = SearchSpace.from_yaml("litepose")
    enc = space.sample_encoded(0, 200)
    for name in ("jetson-nano", "mobile", "raspberry-pi-4"):
        t = load_table(name)
        assert t.provenance == "derived" and t.header["calibration"]["points"]
        ms = t.predict(enc, space=space)
        assert np.all(ms > 0)
    measured = [t for t in items.values() if t["provenance"] == "measured" and t["space"] == "litepose"]
    assert measured


# ---------------------------------------------------------------------- speed guard
class _FakeMachine:
    """A scripted reference probe and a clock that only moves when the guard sleeps."""

    def __init__(self, readings):
        self.readings = list(readings)
        self.now = 0.0
        self.probes = 0

    def probe(self) -> float:
        self.probes += 1
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]

    def sleep(self, s: float) -> None:
        self.now += s

    def guard(self, **kw):
        from litepose_nas.latency.speed import SpeedGuard

        return SpeedGuard(self.probe, sleep=self.sleep, clock=lambda: self.now, **kw)


def test_speed_guard_waits_out_a_slow_stretch_and_retimes_an_item_it_slowed():
    m = _FakeMachine([1.0, 1.0, 1.6, 1.5, 1.0, 1.0])
    g = m.guard(tolerance=1.2, pause_s=0.5, max_wait_s=60)
    calls = []
    assert g.run(lambda: calls.append("a") or 7)[0] == 7  # before 1.0, after 1.0: timed once
    result, check = g.run(lambda: calls.append("b"))  # before 1.6, 1.5 (waits twice), then 1.0 / 1.0
    assert calls == ["a", "b"] and check.attempts == 1 and check.waited_s == pytest.approx(1.0)
    m2 = _FakeMachine([1.0, 1.7, 1.0, 1.0])  # the machine slows down while the item is timed
    g2 = m2.guard(tolerance=1.2)
    calls = []
    _, check = g2.run(lambda: calls.append(1))
    assert len(calls) == 2 and check.attempts == 2 and g2.retimed == 1 and check.reference_ms == 1.0
    assert g2.summary([1.0, 1.3], 1.0)["off_nominal_items"] == 1


def test_speed_guard_rebases_when_the_machine_stays_slow():
    m = _FakeMachine([1.0, 1.0, 2.0])  # fast once, then slow for good
    g = m.guard(tolerance=1.2, pause_s=1.0, max_wait_s=5.0)
    g.run(lambda: None)
    _, check = g.run(lambda: None)
    assert check.waited_s == pytest.approx(5.0) and g.rebased == 1 and g.nominal_ms == 2.0
    _, check = g.run(lambda: None)  # the new speed is nominal now: no more waiting
    assert check.waited_s == 0.0 and check.attempts == 1


def test_profile_retimes_layers_timed_before_the_nominal_speed_was_seen(tiny_space, tmp_path, monkeypatch):
    readings = iter([2.0] * 8 + [1.0] * 10_000)  # the first 4 layers (a reading before and after each) run slow
    monkeypatch.setattr(OrtRunner, "reference_probe", lambda self: lambda: next(readings))
    calls = []
    original = OrtRunner.time_layer
    monkeypatch.setattr(OrtRunner, "time_layer", lambda self, cfg, policy: calls.append(cfg.key) or original(self, cfg, policy))
    table = profile_space(tiny_space, tmp_path / "g.csv", _settings(speed_guard=True), progress=False, detect_contention=False)
    total = len(enumerate_layers(tiny_space, 17))
    calls = calls[1:]  # the first call times the runtime's call overhead, unguarded
    assert len(calls) == total + 4 and calls[total:] == calls[:4]  # exactly the slow ones, once more
    guard = table.header["speed_guard"]
    assert guard["nominal_reference_ms"] == 1.0 and guard["off_nominal_items"] == 0 and guard["items"] == total + 3


def test_profile_scales_times_to_the_nominal_reference_speed(tiny_space, tmp_path, monkeypatch):
    from litepose_nas.latency.runners import Timing

    readings = iter([1.0] + [1.1] * 10_000)  # nominal once, then 10 % slower: within tolerance
    monkeypatch.setattr(OrtRunner, "reference_probe", lambda self: lambda: next(readings))
    monkeypatch.setattr(OrtRunner, "call_overhead", lambda self, policy: Timing([0.0] * 3, 3, 3))
    monkeypatch.setattr(OrtRunner, "time_layer", lambda self, cfg, policy: Timing([2.0] * 3, 3, 3))
    monkeypatch.setattr(OrtRunner, "time_network", lambda self, *a: Timing([50.0] * 3, 3, 3))
    table = profile_space(tiny_space, tmp_path / "n.csv", _settings(speed_guard=True), progress=False, detect_contention=False)
    np.testing.assert_allclose(table.median_ms[0], 2.0 / 1.05)  # its reference read 1.0 before, 1.1 after
    np.testing.assert_allclose(table.median_ms[1:], 2.0 / 1.1)
    assert [n["measured_ms"] for n in table.header["correction"]["networks"]] == pytest.approx([50.0 / 1.1] * 3)
    assert table.header["speed_guard"]["factor_range"] == [round(1 / 1.1, 4), round(1 / 1.05, 4)]


def test_profile_keeps_the_fastest_of_its_passes(tiny_space, tmp_path, monkeypatch):
    from litepose_nas.latency.runners import Timing

    seen: dict[str, int] = {}
    order: dict[str, int] = {}

    def timed(self, cfg, policy):  # odd layers are slow in the first pass, even ones in the second
        order.setdefault(cfg.key, len(order))
        seen[cfg.key] = seen.get(cfg.key, 0) + 1
        slow = (order[cfg.key] % 2 == 1) == (seen[cfg.key] == 1)
        return Timing([3.0 if slow else 2.0] * 3, 3, 3)

    monkeypatch.setattr(OrtRunner, "call_overhead", lambda self, policy: Timing([0.0] * 3, 3, 3))
    monkeypatch.setattr(OrtRunner, "time_layer", timed)
    table = profile_space(tiny_space, tmp_path / "p.csv", _settings(passes=2), progress=False, detect_contention=False)
    assert set(seen.values()) == {2} and len(seen) == len(table)
    np.testing.assert_array_equal(table.median_ms, 2.0)
    assert table.header["timing"]["passes"] == 2


def test_tables_of_one_space_share_its_layer_lookup_and_agree_with_the_slow_path():
    """The layer-key lookup is built once per space encoding (not per table), and the fast path
    (one product over the varying dimensions, one gather) equals the per-layer slow path."""
    space = SearchSpace.from_yaml("litepose")
    twin = SearchSpace.from_yaml("litepose")  # another object, the same encoding
    pi, phone = load_table("raspberry-pi-4"), load_table("mobile")
    assert pi._fast_positions(space)[0] is phone._fast_positions(twin)[0]
    enc = space.sample_encoded(3, 200)
    slow = pi._values[pi.row_indices(*pi._arrays(enc, space))].sum(axis=1)
    np.testing.assert_allclose(pi.layer_sums(enc, space=space), slow, rtol=0, atol=1e-9)
