"""Fast per-slot lookups from encodings: a value per layer slot read from small dense arrays.

Many per-architecture quantities are a sum over layer slots of a value that depends on only a few
encoded dimensions (a block's latency-table key depends on the resolution, the widths around it
and its own kernel and expansion; its MACs on the same). :func:`build_slot_lookup` finds those
dependencies by probing (vary one dimension at a time around random architectures), tabulates
each slot's value over the combinations of its dimensions, and checks the whole lookup against
the slow path before it is used. A batch then costs one matmul and one gather
(:meth:`SlotLookup.values`) instead of building :class:`ArchArrays`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .search_space import SearchSpace

SlotValues = Callable[[np.ndarray], np.ndarray]  # encodings [N, D] -> int64 values [N, L]


@dataclass(frozen=True)
class SlotLookup:
    num_dims: int
    supports: tuple[np.ndarray, ...]  # encoded dimensions each slot depends on
    strides: tuple[np.ndarray, ...]  # mixed-radix strides over (choice index + 1)
    tables: tuple[np.ndarray, ...]  # each slot's value per combination of its dimensions
    _flat: tuple[np.ndarray, np.ndarray, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stride_matrix = np.zeros((self.num_dims, len(self.tables)), dtype=np.int64)
        for j, (sup, st) in enumerate(zip(self.supports, self.strides)):
            stride_matrix[sup, j] = st
        offsets = np.cumsum([0] + [len(t) for t in self.tables[:-1]]).astype(np.int64)
        # only the dimensions some slot depends on enter the product (in the original space 9 of 81:
        # the others hold one choice); the +1 that maps -1 (inactive) to 0 goes into the base
        used = np.flatnonzero(stride_matrix.any(axis=1))
        strides = stride_matrix[used].astype(np.float64)
        base = (stride_matrix[used].sum(axis=0) + offsets).astype(np.float64)
        object.__setattr__(self, "_flat", (used, strides, base, np.concatenate(self.tables)))

    def positions(self, encoded: np.ndarray) -> np.ndarray:
        """``[N, L]`` indices into :meth:`concatenated`: one BLAS product over the dimensions the
        slots depend on (float64: exact below 2**53; numpy's integer matmul is ~3x slower)."""
        used, strides, base, _ = self._flat
        return (encoded[:, used].astype(np.float64) @ strides + base).astype(np.int64)

    def concatenated(self) -> np.ndarray:
        """Every slot's table, one after the other."""
        return self._flat[3]

    def values(self, encoded: np.ndarray) -> np.ndarray:
        """``[N, L]`` slot values of a batch of canonical encodings."""
        return self.concatenated()[self.positions(encoded)]


def build_slot_lookup(space: SearchSpace, values_of: SlotValues, probes: int = 12, check: int = 3000,
                      seed: int = 0) -> SlotLookup | None:
    """The :class:`SlotLookup` of ``values_of`` over ``space``, or None when the check against
    ``values_of`` on ``check`` random architectures fails."""
    rng = np.random.default_rng(seed)
    dims = space.dimensions
    base = space.sample_encoded(rng, probes)
    # half the probes at maximum depth, so every block slot is active in some probe
    for s, st in enumerate(space.stages):
        d = [i for i, dim in enumerate(dims) if dim.kind == "depth" and dim.stage == s][0]
        base[: probes // 2, d] = int(np.argmax(st.depths))
    base = space.canonicalize(base, rng)
    base_values = values_of(base)
    variants, owners = [], []
    for d, dim in enumerate(dims):
        for c in range(len(dim.choices)):
            v = base.copy()
            v[:, d] = c
            variants.append(space.canonicalize(v, rng))
            owners.append(d)
    var_values = values_of(np.concatenate(variants)).reshape(len(variants), probes, -1)
    changed = (var_values != base_values[None]).any(axis=1)  # [variants, slots]
    num_slots = base_values.shape[1]
    depends = np.zeros((len(dims), num_slots), dtype=bool)
    np.logical_or.at(depends, np.array(owners), changed)
    sizes = space.choice_counts() + 1
    supports, strides, tables = [], [], []
    for j in range(num_slots):
        sup = np.nonzero(depends[:, j])[0]
        radix = sizes[sup]
        st = np.ones(len(sup), dtype=np.int64)
        for i in range(len(sup) - 2, -1, -1):
            st[i] = st[i + 1] * radix[i + 1]
        total = int(np.prod(radix)) if len(sup) else 1
        combos = np.stack(np.unravel_index(np.arange(total), tuple(radix)), axis=1) - 1 if len(sup) else np.zeros((1, 0), int)
        enc = np.repeat(base[:1], total, axis=0)
        enc[:, sup] = combos
        table = np.zeros(total, dtype=np.int64)
        # combinations that no canonical encoding has (a choice past the depth) are never read
        valid = np.ones(total, dtype=bool)
        for i, d in enumerate(sup):
            if dims[d].block < 0:
                valid &= combos[:, i] >= 0
        if valid.any():
            table[valid] = values_of(enc[valid])[:, j]
        supports.append(sup)
        strides.append(st)
        tables.append(table)
    lookup = SlotLookup(len(dims), tuple(supports), tuple(strides), tuple(tables))
    sample = space.sample_encoded(rng, check)
    return lookup if np.array_equal(lookup.values(sample), values_of(sample)) else None
