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
from .space.structure import DECONV_KERNEL, FINAL_KERNEL, STEM_KERNEL, conv_out_size, expanded_channels_array

CONVENTIONS = ("exact", "paper")
DEFAULT_STEM_MID_CHANNELS = 32


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


def conv_slots(a: ArchArrays, num_joints: int, stem_mid: int = DEFAULT_STEM_MID_CHANNELS) -> Iterator[ConvSlot]:
    """Every conv of the LitePose network, in forward order, vectorized over the batch."""
    n = len(a)
    mid = np.full(n, stem_mid, dtype=np.int64)
    s = a.resolution
    h_stem = conv_out_size(s, STEM_KERNEL, 2)
    yield ConvSlot("first.0", np.full(n, 3), mid, STEM_KERNEL, False, s, h_stem)
    yield ConvSlot("first.1", mid, mid, STEM_KERNEL, True, h_stem, h_stem)
    yield ConvSlot("first.2", mid, a.stem, 1, False, h_stem, h_stem, act=False)

    features = [(a.stem, h_stem)]
    cin, h = a.stem, h_stem
    strides = a.strides
    for st in range(a.width.shape[1]):
        cout = a.width[:, st]
        for b in range(a.kernel.shape[2]):
            active = b < a.depth[:, st]
            stride = strides[st] if b == 0 else 1
            k = a.kernel[:, st, b]
            m = expanded_channels_array(cin, a.expansion[:, st, b])
            h_out = conv_out_size(h, np.maximum(k, 1), stride)
            yield ConvSlot(f"stage.{st}.{b}.inv", cin, m, 1, False, h, h, active=active)
            yield ConvSlot(f"stage.{st}.{b}.depth_conv", m, m, k, True, h, h_out, active=active)
            yield ConvSlot(f"stage.{st}.{b}.point_conv", m, cout, 1, False, h_out, h_out, act=False, active=active)
            if b == 0:
                cin, h = cout, h_out
        features.append((cout, h))

    head_c, head_h = features[-1]
    for i in range(a.head.shape[1]):
        out = a.head[:, i]
        raw_c, raw_h = features[-i - 2]
        yield ConvSlot(f"deconv_refined.{i}", head_c, out, DECONV_KERNEL, False, head_h, 2 * head_h,
                       transposed=True, bn=False, act=False)
        yield ConvSlot(f"deconv_raw.{i}", raw_c, out, DECONV_KERNEL, False, raw_h, 2 * raw_h,
                       transposed=True, bn=False, act=False)
        head_c, head_h = out, 2 * head_h
        # the sum of both deconvs goes through one BN + ReLU: counted once, on the refined slot
        yield ConvSlot(f"deconv_bnrelu.{i}", out, out, 0, False, head_h, head_h)
        if i > 0:
            j = i - 1
            outputs = np.full(n, 2 * num_joints if j == 0 else num_joints, dtype=np.int64)
            skip_c, skip_h = features[-i - 3]
            for prefix, c, h_ in ((f"final_refined.{j}", head_c, head_h), (f"final_raw.{j}", skip_c, skip_h)):
                yield ConvSlot(f"{prefix}.conv.0", c, c, FINAL_KERNEL, True, h_, h_)
                yield ConvSlot(f"{prefix}.conv.3", c, outputs, 1, False, h_, h_, bn=False, act=False)


def slot_cost_arrays(a: ArchArrays, num_joints: int = 17,
                     stem_mid: int = DEFAULT_STEM_MID_CHANNELS) -> dict[str, np.ndarray]:
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


def cost_arrays(a: ArchArrays, num_joints: int = 17, stem_mid: int = DEFAULT_STEM_MID_CHANNELS) -> dict[str, np.ndarray]:
    """``{'macs': exact MACs, 'macs_paper': paper-convention MACs, 'params': parameters}``, each ``[N]``."""
    return {k: v.sum(axis=1) for k, v in slot_cost_arrays(a, num_joints, stem_mid).items()}


def _encoded_lookup(space: SearchSpace, num_joints: int, key: str):
    """The per-slot lookup of ``key`` over ``space`` (built once per space; None if it fails its check)."""
    from .space.slot_lookup import build_slot_lookup

    cache = space.__dict__.setdefault("_cost_lookups", {})  # a frozen dataclass: cache beside its fields
    if (num_joints, key) not in cache:
        cache[(num_joints, key)] = build_slot_lookup(
            space, lambda enc: slot_cost_arrays(space.arrays(enc), num_joints, space.stem_mid_channels)[key])
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


def _stem_mid(space: SearchSpace | None) -> int:
    return space.stem_mid_channels if space is not None else DEFAULT_STEM_MID_CHANNELS


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
    values = cost_arrays(arrays, num_joints, _stem_mid(space))[key]
    return int(values[0]) if single else values


def params(archs, num_joints: int = 17, space: SearchSpace | None = None):
    """Trainable parameters of one architecture (an int) or of a batch (``[N]`` array)."""
    arrays, single = _as_arrays(archs, space)
    values = cost_arrays(arrays, num_joints, _stem_mid(space))["params"]
    return int(values[0]) if single else values
