"""Search spaces: YAML and code definitions, exact size, encoding, sampling and variation."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litepose_nas import Arch, ArchError, SearchSpace, SpaceError

ORIGINAL = SearchSpace.from_yaml("litepose")
ELASTIC = SearchSpace.from_yaml("litepose-elastic")


def test_original_space_size_and_extremes():
    assert ORIGINAL.size() == 245_760
    largest = ORIGINAL.largest()
    assert largest.widths == (32, 64, 96, 160) and largest.input_channel == 24
    assert largest.depths == (6, 8, 10, 10) and largest.deconv_setting == (64, 48, 32)
    assert ORIGINAL.smallest().widths == (8, 16, 24, 40)
    assert ELASTIC.largest() == largest.__class__.create(
        512, 24, (64, 48, 32), [(c, s, [(6, 7)] * d) for c, s, d in zip((32, 64, 96, 160), (2, 2, 2, 1), (6, 8, 10, 10))]
    )
    assert ELASTIC.smallest().depths == (2, 2, 2, 2)


def test_elastic_size_is_exact_integer():
    per_block = 9
    expected = 5 * 3 * 4**3
    for depths in ((2, 3, 4, 5, 6), (2, 3, 4, 5, 6, 7, 8), (2, 4, 6, 8, 10), (2, 4, 6, 8, 10)):
        expected *= 4 * sum(per_block**d for d in depths)
    assert ELASTIC.size() == expected
    assert isinstance(ELASTIC.size(), int) and ELASTIC.size() > 2**64


def tiny_space() -> SearchSpace:
    """A space small enough to enumerate, with elastic depth, kernel and expansion."""
    return SearchSpace.create(
        name="tiny",
        resolutions=[64, 128],
        stem_widths=[8, 16],
        stages=[
            {"stride": 2, "widths": [8], "depths": [1, 2], "kernels": [3, 5], "expansions": [2]},
            {"stride": 2, "widths": [16, 8], "depths": [1], "kernels": [3], "expansions": [2, 3]},
            {"stride": 2, "widths": [16], "depths": [1], "kernels": [3], "expansions": [2]},
            {"stride": 1, "widths": [24], "depths": [1, 2], "kernels": [3], "expansions": [2]},
        ],
        head_widths=[[16], [8], [8, 16]],
    )


def test_code_space_size_matches_enumeration_and_sampling():
    space = tiny_space()
    every = space.enumerate_encoded()
    assert len(every) == space.size() == 2 * 2 * (1 * (2 + 4)) * (2 * 2) * 1 * (1 + 1) * 2
    assert len(np.unique(every, axis=0)) == len(every)
    decoded = space.decode(every)
    assert all(space.contains(a) for a in decoded)
    assert (space.encode(decoded) == every).all()
    samples = {tuple(r) for r in space.sample_encoded(0, 3000)}
    assert samples <= {tuple(r) for r in every}
    assert len(samples) == len(every)  # 3000 draws cover all 192 architectures


def test_code_space_round_trips_through_yaml(tmp_path):
    space = tiny_space()
    path = tmp_path / "tiny.yaml"
    path.write_text(space.to_yaml())
    assert SearchSpace.from_yaml(path) == space


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), elastic=st.booleans())
def test_encode_decode_round_trip(seed, elastic):
    space = ELASTIC if elastic else ORIGINAL
    rng = np.random.default_rng(seed)
    arch = space.sample(rng)
    assert space.contains(arch)
    enc = space.encode(arch)
    assert enc.shape == (space.num_dimensions,)
    assert space.decode(enc) == arch
    assert Arch.from_json(arch.to_json()) == arch


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), prob=st.floats(0.0, 1.0))
def test_mutation_and_crossover_stay_in_space(seed, prob):
    rng = np.random.default_rng(seed)
    parents = ELASTIC.sample_encoded(rng, 16)
    children = ELASTIC.mutate_encoded(parents, rng, prob)
    ELASTIC.check_encoded(children)
    mixed = ELASTIC.crossover_encoded(parents, children, rng)
    ELASTIC.check_encoded(mixed)
    # every coordinate of a child comes from one of its parents where both are active
    both = (parents >= 0) & (children >= 0) & (mixed >= 0)
    assert ((mixed == parents) | (mixed == children) | ~both).all()
    if prob == 0.0:
        assert (children == parents).all()


def test_single_arch_helpers_are_deterministic():
    a, b = ELASTIC.sample(1), ELASTIC.sample(2)
    assert ELASTIC.sample(1) == a
    assert ELASTIC.mutate(a, 3, 0.5) == ELASTIC.mutate(a, 3, 0.5)
    child = ELASTIC.crossover(a, b, 4)
    assert ELASTIC.contains(child)


def test_arrays_match_architectures():
    enc = ELASTIC.sample_encoded(5, 50)
    arrays = ELASTIC.arrays(enc)
    for n, arch in enumerate(ELASTIC.decode(enc)):
        assert arrays.resolution[n] == arch.img_size and arrays.stem[n] == arch.input_channel
        assert tuple(arrays.width[n]) == arch.widths and tuple(arrays.depth[n]) == arch.depths
        assert tuple(arrays.head[n]) == arch.deconv_setting
        for s, ks in enumerate(arch.kernels()):
            assert tuple(arrays.kernel[n, s, : len(ks)]) == ks and not arrays.kernel[n, s, len(ks):].any()


def test_non_canonical_encodings_are_rejected():
    enc = ORIGINAL.sample_encoded(0, 3)
    enc[1, 0] = 7
    with pytest.raises(ArchError, match="dimension resolution holds 7"):
        ORIGINAL.check_encoded(enc)
    short = ELASTIC.encode(ELASTIC.smallest())
    short[ELASTIC.num_dimensions - 4] = 0  # a block slot past the depth
    with pytest.raises(ArchError, match="past the stage depth"):
        ELASTIC.decode(short)
    with pytest.raises(ArchError, match=r"expected shape \[N, 81\]"):
        ORIGINAL.check_encoded(np.zeros((2, 5), dtype=int))


def test_fixed_depth_fast_path_agrees_with_the_general_rule():
    """Where no depth varies (the original space) the active mask and bounds are precomputed; they
    must equal what the per-row rule gives, and an inactive-slot error must still be caught."""
    assert ORIGINAL._fixed_active is not None and ELASTIC._fixed_active is None
    assert ORIGINAL._all_active_max is not None  # the one-comparison check applies
    enc = ORIGINAL.sample_encoded(0, 50)
    block, stage, depth_dims, last, table = ORIGINAL._activity
    depth = table[np.arange(len(last)), np.minimum(np.maximum(enc[:, depth_dims], 0), last)]
    general = (block < 0)[None, :] | (block[None, :] < depth[:, stage])
    assert np.array_equal(ORIGINAL._active_dims(enc), general)
    bad = enc.copy()
    bad[3, ORIGINAL.variable_dims[-1]] = -1  # an active choice marked inactive
    with pytest.raises(ArchError, match="encoded architecture 3"):
        ORIGINAL.check_encoded(bad)
    bad = enc.copy()
    bad[4, ORIGINAL.variable_dims[0]] = ORIGINAL.choice_counts()[ORIGINAL.variable_dims[0]]  # one past the last
    with pytest.raises(ArchError, match="encoded architecture 4"):
        ORIGINAL.check_encoded(bad)
    ORIGINAL.check_encoded(enc.astype(np.int32))  # other integer types take the general path
    assert list(ORIGINAL.variable_dims) == [d for d, n in enumerate(ORIGINAL.choice_counts()) if n > 1]
    assert [ELASTIC.dimensions[d].kind for d in np.flatnonzero(ELASTIC.depth_mask)] == ["depth"] * ELASTIC.num_stages
    with pytest.raises(ValueError):
        ORIGINAL.variable_dims[0] = 5  # shared, read-only


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda d: d["stages"][0].__setitem__("kernels", [4]), "kernel 4 is even"),
        (lambda d: d["stages"][1].__setitem__("widths", [60]), "not divisible by 8"),
        (lambda d: d.pop("head"), "missing key 'head'"),
        (lambda d: d["stages"].pop(), r"stages\[2\]\.stride 2 not allowed"),
        (lambda d: d["stages"].extend([d["stages"][-1]] * 3), "allowed: 2 to 6"),
        (lambda d: d["head"]["widths"].append([8]), "need at least 4 stride-2 stages"),
        (lambda d: d.__setitem__("resolutions", [250]), "not divisible"),
        (lambda d: d["stages"][2].__setitem__("depths", [2, 2]), "repeated choice"),
        (lambda d: d["stages"][3].__setitem__("stride", 3), "stride"),
    ],
)
def test_malformed_space_yaml(tmp_path, edit, expected):
    data = ORIGINAL.to_dict()
    edit(data)
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpaceError, match=expected):
        SearchSpace.from_yaml(path)


def test_missing_and_invalid_space_files(tmp_path):
    with pytest.raises(SpaceError, match="not found .*shipped spaces: litepose, litepose-elastic"):
        SearchSpace.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SpaceError, match="not valid YAML"):
        SearchSpace.from_yaml(bad)
