"""Arch JSON round trips and clear errors for malformed architectures."""
from __future__ import annotations

import json

import pytest

from litepose_nas import Arch, ArchError, SearchSpace


def test_seed_configs_round_trip_byte_for_byte(seed_configs):
    space = SearchSpace.from_yaml("litepose")
    for name, path in seed_configs.items():
        text = path.read_text()
        arch = Arch.from_json(path)
        space.validate(arch)
        assert arch.to_json() == text, name
        assert json.loads(arch.to_json()) == json.loads(text)
        assert Arch.from_json(text) == arch


def test_to_json_writes_file_atomically(seed_configs, tmp_path):
    arch = Arch.from_json(seed_configs["search-M"])
    out = tmp_path / "sub" / "m.json"
    arch.to_json(out)
    assert out.read_text() == seed_configs["search-M"].read_text()
    assert [p.name for p in out.parent.iterdir()] == ["m.json"]


def _xs(seed_configs) -> dict:
    return json.loads(seed_configs["search-XS"].read_text())


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["backbone_setting"][2]["block_setting"][3].__setitem__(1, 9), "stage 2 block 3 kernel 9"),
        (lambda d: d["backbone_setting"][1].__setitem__("channel", 30), "not divisible by 8"),
        (lambda d: d["backbone_setting"].append(dict(d["backbone_setting"][3])), "5 stages"),
        (lambda d: d.pop("deconv_setting"), "missing key 'deconv_setting'"),
        (lambda d: d.__setitem__("img_size", 300), "img_size 300"),
        (lambda d: d.__setitem__("input_channel", 40), "input_channel 40"),
        (lambda d: d["backbone_setting"][0].__setitem__("num_blocks", 5), "num_blocks is 5"),
        (lambda d: d["backbone_setting"][3].__setitem__("stride", 2), "stage 3 stride 2"),
        (lambda d: d.__setitem__("deconv_setting", [16, 24]), "deconv_setting"),
        (lambda d: d["backbone_setting"][0]["block_setting"][0].__setitem__(0, "6"), "expansion"),
        (lambda d: d.__setitem__("img_size", True), "img_size"),
        (lambda d: d.__setitem__("extra", 1), "unknown key 'extra'"),
    ],
)
def test_malformed_arch_names_the_field(seed_configs, tmp_path, mutate, expected):
    data = _xs(seed_configs)
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    space = SearchSpace.from_yaml("litepose")
    with pytest.raises(ArchError) as info:
        space.validate(Arch.from_json(path))
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_kernel_error_lists_allowed_values(seed_configs):
    data = _xs(seed_configs)
    data["backbone_setting"][2]["block_setting"][3][1] = 9
    space = SearchSpace.from_yaml("litepose-elastic")
    with pytest.raises(ArchError, match=r"stage 2 block 3 kernel 9 .*allowed: 3, 5, 7"):
        space.validate(Arch.from_dict(data))


@pytest.mark.parametrize(
    "content, expected",
    [("", "empty"), ("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object"), ("42", "not found")],
)
def test_unreadable_files(tmp_path, content, expected):
    path = tmp_path / "a.json"
    path.write_text(content)
    source = path if content != "42" else tmp_path / "missing.json"
    with pytest.raises(ArchError, match=expected):
        Arch.from_json(source)


def test_binary_file_is_rejected(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"\x80\x81\xff\x00")
    with pytest.raises(ArchError, match="not a text file"):
        Arch.from_json(path)
