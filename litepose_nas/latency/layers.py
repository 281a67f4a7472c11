"""The distinct layer configurations of a search space, and where each architecture uses them.

A *layer* here is the unit a latency table times: the stem, one inverted-residual block, one
transposed conv of the head, the add + BN + ReLU that fuses two deconvs, one final separable conv,
and the add of the two final convs of an output. Everything is derived from
:func:`litepose_nas.space.plan.plan_layers` (the network plan), so the table follows the model
without restating its numbers.

A configuration is 7 integers ``(kind, h, cin, cout, mid, kernel, stride)`` packed into one int64
key, so a batch of architectures maps to table rows with one ``np.searchsorted``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..space.plan import plan_layers
from ..space.search_space import INACTIVE, ArchArrays, SearchSpace
from ..space.slot_lookup import SlotLookup, build_slot_lookup

KINDS = ("stem", "block", "deconv", "fuse", "final", "add")
FIELDS = ("h", "cin", "cout", "mid", "kernel", "stride")
# bit widths of kind, h, cin, cout, mid, kernel, stride in the packed key (59 bits in all)
_BITS = (3, 12, 12, 12, 13, 5, 2)
_SHIFTS = tuple(int(sum(_BITS[i + 1:])) for i in range(len(_BITS)))


@dataclass(frozen=True, order=True)
class LayerConfig:
    """One timed layer. ``h`` is the input side (output side for ``fuse`` and ``add``)."""

    kind: str
    h: int
    cin: int
    cout: int
    mid: int = 0
    kernel: int = 0
    stride: int = 1

    @property
    def key(self) -> str:
        """Readable key, unique per configuration (the CSV's ``key`` column)."""
        return f"{self.kind}:h{self.h}:c{self.cin}-{self.cout}:m{self.mid}:k{self.kernel}:s{self.stride}"

    def as_ints(self) -> tuple[int, ...]:
        return (KINDS.index(self.kind), self.h, self.cin, self.cout, self.mid, self.kernel, self.stride)

    @classmethod
    def from_ints(cls, values) -> "LayerConfig":
        kind, *rest = (int(v) for v in values)
        return cls(KINDS[kind], *rest)

    @property
    def residual(self) -> bool:
        return self.kind == "block" and self.stride == 1 and self.cin == self.cout


def pack(fields: np.ndarray) -> np.ndarray:
    """``[..., 7]`` int fields -> ``[...]`` int64 keys."""
    f = np.asarray(fields, dtype=np.int64)
    key = np.zeros(f.shape[:-1], dtype=np.int64)
    for i, shift in enumerate(_SHIFTS):
        key |= f[..., i] << shift
    return key


def unpack(keys: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack`."""
    k = np.asarray(keys, dtype=np.int64)
    return np.stack([(k >> s) & ((1 << b) - 1) for s, b in zip(_SHIFTS, _BITS)], axis=-1)


def check_fits(config: LayerConfig) -> None:
    for value, bits, name in zip(config.as_ints(), _BITS, ("kind",) + FIELDS):
        if not 0 <= value < (1 << bits):
            raise ValueError(f"layer field {name}={value} out of range for the table key (< {1 << bits})")


@dataclass(frozen=True)
class LayerSlot:
    """One layer position across a batch: packed keys ``[N]`` and the active mask ``[N]``."""

    name: str
    kind: str
    keys: np.ndarray
    active: np.ndarray


def _fields(kind: str, n: int, *values) -> np.ndarray:
    cols = [np.full(n, KINDS.index(kind), dtype=np.int64)]
    cols += [np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for v in values]
    return np.stack(cols, axis=1)


# the table field that holds each kind's spatial side: the input's, or the output's for the adds
_SIDE = {"stem": "h_in", "block": "h_in", "deconv": "h_in", "fuse": "h_out", "final": "h_in", "add": "h_out"}
# slot names as the tables have always called them (state_dict prefixes otherwise)
_SLOT_NAMES = {"first": "stem", "output": "output_add"}


def layer_slots(a: ArchArrays, num_joints: int, stem_mid: int | None = None) -> Iterator[LayerSlot]:
    """Every timed layer of the network in forward order: the layers of the network plan."""
    n = len(a)
    a = a.with_stem_mid(stem_mid)
    _, layers, _ = plan_layers(a, num_joints)
    for layer in layers:
        active = np.broadcast_to(np.asarray(layer.active), (n,)).copy()
        f = _fields(layer.kind, n, getattr(layer, _SIDE[layer.kind]), layer.cin, layer.cout, layer.mid,
                    layer.kernel, np.where(active, layer.stride, 0))
        head, _, rest = layer.name.partition(".")
        name = _SLOT_NAMES.get(head, head) + (f".{rest}" if rest else "")
        yield LayerSlot(name, layer.kind, np.where(active, pack(f), 0), active)


def slot_keys(a: ArchArrays, num_joints: int, stem_mid: int | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(slot names, keys [N, L], active [N, L])`` of a batch."""
    slots = list(layer_slots(a, num_joints, stem_mid))
    names = [s.name for s in slots]
    keys = np.stack([s.keys for s in slots], axis=1)
    active = np.stack([s.active for s in slots], axis=1)
    return names, keys, active


def covering_encodings(space: SearchSpace) -> Iterator[np.ndarray]:
    """Batches of encodings that together contain every layer configuration of ``space``.

    A layer's configuration depends on the resolution, the widths around it and its own block's
    (kernel, expansion), never on the depth or on other blocks' choices. So the full product of
    the non-block dimensions at maximum depth, with every block of a stage set to the same
    (kernel, expansion) pair, repeated for each pair, covers the space without enumerating it.
    """
    dims = space.dimensions
    fixed = [i for i, d in enumerate(dims) if d.block < 0 and d.kind != "depth"]
    depth_dims = [i for i, d in enumerate(dims) if d.kind == "depth"]
    grids = np.meshgrid(*[np.arange(len(dims[i].choices)) for i in fixed], indexing="ij")
    base = np.full((grids[0].size, len(dims)), INACTIVE, dtype=np.int64)
    for i, g in zip(fixed, grids):
        base[:, i] = g.ravel()
    for s, i in enumerate(depth_dims):
        base[:, i] = int(np.argmax(space.stages[s].depths))
    pairs = [[(k, e) for k in range(len(st.kernels)) for e in range(len(st.expansions))] for st in space.stages]
    for p in range(max(len(x) for x in pairs)):
        enc = base.copy()
        for i, d in enumerate(dims):
            if d.block >= 0:
                k, e = pairs[d.stage][p % len(pairs[d.stage])]
                enc[:, i] = k if d.kind == "kernel" else e
        for start in range(0, len(enc), 65536):
            yield enc[start:start + 65536]


def enumerate_layers(space: SearchSpace, num_joints: int) -> list[LayerConfig]:
    """Every distinct layer configuration any architecture of ``space`` can contain, sorted."""
    found: set[int] = set()
    for enc in covering_encodings(space):
        for slot in layer_slots(space.arrays(enc), num_joints):
            found.update(np.unique(slot.keys[slot.active]).tolist())
    return [LayerConfig.from_ints(row) for row in unpack(np.array(sorted(found), dtype=np.int64))]


def arch_layers(a: ArchArrays, num_joints: int, stem_mid: int | None = None, index: int = 0) -> list[tuple[str, LayerConfig]]:
    """The (slot name, configuration) list of architecture ``index`` of a batch, in forward order."""
    out = []
    for slot in layer_slots(a, num_joints, stem_mid):
        if slot.active[index]:
            out.append((slot.name, LayerConfig.from_ints(unpack(slot.keys[index]))))
    return out


def _keys_of(space: SearchSpace, enc: np.ndarray, num_joints: int) -> np.ndarray:
    _, keys, active = slot_keys(space.arrays(enc), num_joints)
    return np.where(active, keys, 0)


_LAYER_LOOKUPS: dict[tuple[str, int], SlotLookup | None] = {}


def build_layer_lookup(space: SearchSpace, num_joints: int) -> SlotLookup | None:
    """Encodings -> each layer slot's packed key (0 where inactive), checked against :func:`slot_keys`.

    Built once per space encoding and joint count in a process (~0.4 s for the original space):
    every latency table of a space shares it (``search`` prices its result on each shipped table)."""
    key = (space.fingerprint, num_joints)
    if key not in _LAYER_LOOKUPS:
        _LAYER_LOOKUPS[key] = build_slot_lookup(space, lambda enc: _keys_of(space, enc, num_joints))
    return _LAYER_LOOKUPS[key]
