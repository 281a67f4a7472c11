"""Analytical cost model: MACs (two conventions) and parameters, from the architecture alone.

Everything is computed on :class:`~litepose_nas.space.ArchArrays`, so a batch of thousands of
encoded architectures costs a few numpy operations per layer slot.

Conventions:
- ``exact``: multiply-accumulates of every conv and transposed conv (a transposed conv costs
  ``in * out * k * k`` per *input* pixel). Equal to a forward-hook count on the built model.
- ``paper``: the ptflops (< 0.7.5) convention of the Lite Pose paper: convs exact, a transposed conv
  counted per *output* pixel, 2 per output element for every BatchNorm, 1 for every ReLU/ReLU6,
  additions free.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from .errors import ArchError
from .space.arch import Arch
from .space.search_space import ArchArrays, SearchSpace
from .space.plan import plan_layers

CONVENTIONS = ("exact", "paper")


@dataclass(frozen=True)
class ConvSlot:
    """One conv layer position across a batch of architectures (arrays are ``[N]``)."""

    name: str
    cin: np.ndarray
    cout: np.ndarray
    kernel: np.ndarray | int
    groups_depthwise: bool
    h_in: np.ndarray
    h_out: np.ndarray
    transposed: bool = False
    bn: bool = True
    act: bool = True
    active: np.ndarray | bool = True


def conv_slots(a: ArchArrays, num_joints: int, stem_mid: int | None = None) -> Iterator[ConvSlot]:
    """Every conv of the network, in forward order, vectorized over the batch: the convs of
    each layer of the network plan (:func:`litepose_nas.space.plan.plan_layers`)."""
    n = len(a)
    _, layers, _ = plan_layers(a.with_stem_mid(stem_mid), num_joints)
    for layer in layers:
        name, cin, cout, h_in, h_out = layer.name, layer.cin, layer.cout, layer.h_in, layer.h_out
        if layer.kind == "stem":
            mid = layer.mid
            yield ConvSlot(f"{name}.0", np.broadcast_to(cin, (n,)), mid, layer.kernel, False, h_in, h_out)
            yield ConvSlot(f"{name}.1", mid, mid, layer.kernel, True, h_out, h_out)
            yield ConvSlot(f"{name}.2", mid, cout, 1, False, h_out, h_out, act=False)
        elif layer.kind == "block":
            m, active = layer.mid, layer.active
            yield ConvSlot(f"{name}.inv", cin, m, 1, False, h_in, h_in, active=active)
            yield ConvSlot(f"{name}.depth_conv", m, m, layer.kernel, True, h_in, h_out, active=active)
            yield ConvSlot(f"{name}.point_conv", m, cout, 1, False, h_out, h_out, act=False, active=active)
        elif layer.kind == "deconv":
            yield ConvSlot(name, cin, cout, layer.kernel, False, h_in, h_out, transposed=True, bn=False, act=False)
        elif layer.kind == "fuse":
            # the sum of both deconvs goes through one BN + ReLU
            yield ConvSlot(name, cout, cout, 0, False, h_out, h_out)
        elif layer.kind == "final":
            yield ConvSlot(f"{name}.conv.0", cin, cin, layer.kernel, True, h_in, h_in)
            yield ConvSlot(f"{name}.conv.3", cin, cout, 1, False, h_in, h_in, bn=False, act=False)
        # 'add' layers: additions are free in both conventions


def slot_cost_arrays(a: ArchArrays, num_joints: int = 17, stem_mid: int | None = None) -> dict[str, np.ndarray]:
    """Per conv slot: ``{'macs', 'macs_paper', 'params'}``, each ``[N, slots]`` (0 where inactive)."""
    n = len(a)
    exact, paper, params = [], [], []
    for slot in conv_slots(a, num_joints, stem_mid):
        active = np.broadcast_to(np.asarray(slot.active), (n,))
        k2 = np.asarray(slot.kernel, dtype=np.int64) ** 2
        out_elems = slot.cout * slot.h_out**2
        if slot.name.startswith("deconv_bnrelu"):
            # BN + ReLU only (no conv weights)
            exact.append(np.zeros(n, dtype=np.int64))
            paper.append(np.where(active, 3 * out_elems, 0))
            params.append(np.where(active, 2 * slot.cout, 0))
            continue
        per_pixel = slot.cout * k2 * (1 if slot.groups_depthwise else slot.cin)
        if slot.transposed:
            conv_exact = slot.cin * slot.cout * k2 * slot.h_in**2
            conv_paper = slot.cin * slot.cout * k2 * slot.h_out**2
        else:
            conv_exact = conv_paper = per_pixel * slot.h_out**2
        weights = per_pixel if not slot.transposed else slot.cin * slot.cout * k2
        extra = (2 * out_elems if slot.bn else 0) + (out_elems if slot.act else 0)
        exact.append(np.where(active, conv_exact, 0))
        paper.append(np.where(active, conv_paper + extra, 0))
        params.append(np.where(active, weights + (2 * slot.cout if slot.bn else 0), 0))
    def stack(cols: list) -> np.ndarray:
        return np.stack([np.broadcast_to(np.asarray(c, dtype=np.int64), (n,)) for c in cols], axis=1)

    return {"macs": stack(exact), "macs_paper": stack(paper), "params": stack(params)}


def cost_arrays(a: ArchArrays, num_joints: int = 17, stem_mid: int | None = None) -> dict[str, np.ndarray]:
    """``{'macs': exact MACs, 'macs_paper': paper-convention MACs, 'params': parameters}``, each ``[N]``."""
    return {k: v.sum(axis=1) for k, v in slot_cost_arrays(a, num_joints, stem_mid).items()}


def _encoded_lookup(space: SearchSpace, num_joints: int, key: str):
    """The per-slot lookup of ``key`` over ``space`` (built once per space; None if it fails its check)."""
    from .space.slot_lookup import build_slot_lookup

    cache = space.__dict__.setdefault("_cost_lookups", {})  # a frozen dataclass: cache beside its fields
    if (num_joints, key) not in cache:
        cache[(num_joints, key)] = build_slot_lookup(
            space, lambda enc: slot_cost_arrays(space.arrays(enc), num_joints)[key])
    return cache[(num_joints, key)]


def _as_arrays(archs, space: SearchSpace | None) -> tuple[ArchArrays, bool]:
    if isinstance(archs, Arch):
        return ArchArrays.from_archs([archs]), True
    if isinstance(archs, ArchArrays):
        return archs, False
    if isinstance(archs, np.ndarray):
        if space is None:
            raise ArchError("encoded architectures need their search space: pass space=...")
        enc = np.atleast_2d(archs)
        space.check_encoded(enc)
        return space.arrays(enc), archs.ndim == 1
    if isinstance(archs, Sequence) and all(isinstance(x, Arch) for x in archs):
        return ArchArrays.from_archs(archs), False
    raise ArchError(f"expected an Arch, a list of Arch, ArchArrays or encoded array, got {type(archs).__name__}")


def macs(archs, num_joints: int = 17, convention: str = "exact", space: SearchSpace | None = None):
    """MACs of one architecture (an int) or of a batch (``[N]`` int64 array).

    ``archs``: an :class:`Arch`, a list of them, :class:`ArchArrays`, or encoded rows of ``space``.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention {convention!r} not allowed (allowed: {', '.join(CONVENTIONS)})")
    key = "macs" if convention == "exact" else "macs_paper"
    if isinstance(archs, np.ndarray) and space is not None and archs.dtype.kind in "iu":
        # searchers call this on every candidate batch: the per-slot lookup skips ArchArrays
        enc = np.atleast_2d(archs)
        space.check_encoded(enc)
        lookup = _encoded_lookup(space, num_joints, key)
        if lookup is not None:
            values = lookup.values(enc).sum(axis=1)
            return int(values[0]) if archs.ndim == 1 else values
    arrays, single = _as_arrays(archs, space)
    values = cost_arrays(arrays, num_joints)[key]
    return int(values[0]) if single else values


def params(archs, num_joints: int = 17, space: SearchSpace | None = None):
    """Trainable parameters of one architecture (an int) or of a batch (``[N]`` array)."""
    arrays, single = _as_arrays(archs, space)
    values = cost_arrays(arrays, num_joints)["params"]
    return int(values[0]) if single else values
