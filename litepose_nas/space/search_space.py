"""The search space: the one source of truth for what architectures exist.

A space is data (``search_spaces/*.yaml``) or built in code. It drives sampling, the integer
encoding used by searchers and predictors, the supernet's largest network, MACs counting, latency
lookup and validation.

Encoding: an architecture is a vector of choice *indices*, one per :class:`Dimension` in
:attr:`SearchSpace.dimensions` order: resolution, stem width, per stage (width, depth), per stage
and block slot (kernel, expansion), then the head widths. Block slots past a stage's depth hold
``-1`` (inactive), so the encoding is one-to-one.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ArchError, SpaceError
from ..keypoints import KeypointSpec, keypoint_set
from ..io import read_text_bounded
from .arch import CHANNEL_DIVISOR, DEFAULT_STEM_MID_CHANNELS, Arch, Block
from .plan import MAX_HEAD_LEVELS, MIN_HEAD_LEVELS, SPACE_FIELDS, Wiring, wiring

INACTIVE = -1


@dataclass(frozen=True)
class StageSpace:
    """Choices of one backbone stage. Kernel and expansion choices apply to each of its blocks."""

    stride: int
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    kernels: tuple[int, ...]
    expansions: tuple[int, ...]

    @property
    def max_depth(self) -> int:
        return max(self.depths)


@dataclass(frozen=True)
class Dimension:
    """One encoded coordinate: its name, its choices, and what it describes."""

    name: str
    choices: tuple[int, ...]
    kind: str  # resolution | stem | width | depth | kernel | expansion | head
    stage: int = -1
    block: int = -1
    layer: int = -1


@dataclass(frozen=True)
class ArchArrays:
    """A batch of N architectures as numeric arrays (the vectorized form of :class:`Arch`).

    ``kernel`` and ``expansion`` are ``[N, stages, max_depth]`` with 0 where a block is inactive.
    """

    resolution: np.ndarray  # [N]
    stem: np.ndarray  # [N]
    width: np.ndarray  # [N, S]
    depth: np.ndarray  # [N, S]
    kernel: np.ndarray  # [N, S, D]
    expansion: np.ndarray  # [N, S, D]
    head: np.ndarray  # [N, head levels]
    strides: tuple[int, ...]
    stem_mid: np.ndarray  # [N] width of the stem's first convs

    def __len__(self) -> int:
        return int(self.resolution.shape[0])

    @classmethod
    def from_archs(cls, archs: Sequence[Arch]) -> "ArchArrays":
        """Arrays of architectures given directly (no space needed); depths are zero-padded."""
        archs = list(archs)
        if not archs:
            raise ArchError("no architectures given")
        shape = (archs[0].strides, len(archs[0].deconv_setting))
        if any((a.strides, len(a.deconv_setting)) != shape for a in archs):
            raise ArchError("architectures with different stage strides or head levels cannot be batched")
        num_stages = len(archs[0].stages)
        max_depth = max(max(a.depths) for a in archs)
        kernel = np.zeros((len(archs), num_stages, max_depth), dtype=np.int64)
        expansion = np.zeros_like(kernel)
        for n, arch in enumerate(archs):
            for s, stage in enumerate(arch.stages):
                kernel[n, s, : stage.num_blocks] = [b.kernel for b in stage.blocks]
                expansion[n, s, : stage.num_blocks] = [b.expansion for b in stage.blocks]
        return cls(
            resolution=np.array([a.img_size for a in archs], dtype=np.int64),
            stem=np.array([a.input_channel for a in archs], dtype=np.int64),
            width=np.array([a.widths for a in archs], dtype=np.int64),
            depth=np.array([a.depths for a in archs], dtype=np.int64),
            kernel=kernel,
            expansion=expansion,
            head=np.array([a.deconv_setting for a in archs], dtype=np.int64),
            strides=archs[0].strides,
            stem_mid=np.array([a.stem_mid_channels for a in archs], dtype=np.int64),
        )

    def with_stem_mid(self, stem_mid: int | None) -> "ArchArrays":
        """These architectures with another stem width (None: unchanged)."""
        if stem_mid is None:
            return self
        return replace(self, stem_mid=np.full(len(self), stem_mid, dtype=np.int64))

    @property
    def active(self) -> np.ndarray:
        """``[N, S, D]`` mask of the blocks each architecture runs."""
        slots = np.arange(self.kernel.shape[2])
        return slots[None, None, :] < self.depth[:, :, None]


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class SearchSpace:
    """Elastic resolution, stem width, per-stage width and depth, per-block kernel and expansion,
    and head widths of the LitePose family."""

    name: str
    resolutions: tuple[int, ...]
    stem_widths: tuple[int, ...]
    stages: tuple[StageSpace, ...]
    head_widths: tuple[tuple[int, ...], ...]
    stem_mid_channels: int = DEFAULT_STEM_MID_CHANNELS
    description: str = ""
    # the keypoint set the space's networks predict (None: the dataset's, COCO 17 or CrowdPose 14);
    # it sets the output channels, not the architecture encoding
    keypoints: KeypointSpec | None = None
    dimensions: tuple[Dimension, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate_space(self)
        object.__setattr__(self, "dimensions", tuple(_build_dimensions(self)))

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        name: str,
        resolutions: Sequence[int],
        stem_widths: Sequence[int],
        stages: Sequence[dict[str, Any] | StageSpace],
        head_widths: Sequence[Sequence[int]],
        stem_mid_channels: int = DEFAULT_STEM_MID_CHANNELS,
        description: str = "",
        keypoints: KeypointSpec | dict[str, Any] | str | None = None,
    ) -> "SearchSpace":
        """Build a space in code; ``stages`` items are :class:`StageSpace` or dicts with keys
        ``stride, widths, depths, kernels, expansions``; ``keypoints`` is a keypoint set (a
        :class:`~litepose_nas.keypoints.KeypointSpec`, ``'coco'`` / ``'crowdpose'`` or a dict with
        ``num_joints`` / ``joints``, ``flip_pairs`` and optional ``sigmas``, ``skeleton``, ``name``)."""
        if isinstance(keypoints, KeypointSpec):
            keypoints = keypoints.to_dict()
        return cls.from_dict(
            {
                "name": name,
                "description": description,
                "resolutions": list(resolutions),
                "stem": {"mid_channels": stem_mid_channels, "widths": list(stem_widths)},
                "stages": [
                    s if isinstance(s, dict) else {
                        "stride": s.stride, "widths": s.widths, "depths": s.depths,
                        "kernels": s.kernels, "expansions": s.expansions,
                    }
                    for s in stages
                ],
                "head": {"widths": [list(w) for w in head_widths]},
                **({"keypoints": keypoints} if keypoints is not None else {}),
            }
        )

    @classmethod
    def from_dict(cls, data: Any, source: str = "search space") -> "SearchSpace":
        return _parse_space(data, source)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "SearchSpace":
        """Read a space from a YAML file (a path, or the name of a shipped space)."""
        import yaml

        resolved = resolve_space_path(path)
        text = read_text_bounded(resolved, "search space", SpaceError)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpaceError(f"{resolved}: not valid YAML ({str(exc).splitlines()[0]})") from None
        except RecursionError:
            raise SpaceError(f"{resolved}: YAML nested too deeply") from None
        return _parse_space(data, str(resolved))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "resolutions": list(self.resolutions),
            "stem": {"mid_channels": self.stem_mid_channels, "widths": list(self.stem_widths)},
            "stages": [
                {
                    "stride": s.stride, "widths": list(s.widths), "depths": list(s.depths),
                    "kernels": list(s.kernels), "expansions": list(s.expansions),
                }
                for s in self.stages
            ],
            "head": {"widths": [list(w) for w in self.head_widths]},
            **({"keypoints": self.keypoints.to_dict()} if self.keypoints is not None else {}),
        }

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    # ------------------------------------------------------------------ size and extremes
    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def wiring(self) -> Wiring:
        """The topology every architecture of this space shares (see :mod:`litepose_nas.space.plan`)."""
        return wiring([s.stride for s in self.stages], len(self.head_widths), where=f"search space '{self.name}'",
                      fields=SPACE_FIELDS, error=SpaceError)

    @property
    def total_stride(self) -> int:
        """Resolutions must be a multiple of this (the network's total stride)."""
        return self.wiring.total_stride

    @property
    def max_depth(self) -> int:
        return max(s.max_depth for s in self.stages)

    @property
    def num_dimensions(self) -> int:
        return len(self.dimensions)

    def size(self) -> int:
        """The exact number of distinct architectures."""
        total = len(self.resolutions) * len(self.stem_widths)
        for stage in self.stages:
            per_block = len(stage.kernels) * len(stage.expansions)
            total *= len(stage.widths) * sum(per_block**d for d in stage.depths)
        for widths in self.head_widths:
            total *= len(widths)
        return total

    def largest(self) -> Arch:
        return self._extreme(max)

    def smallest(self) -> Arch:
        return self._extreme(min)

    def _extreme(self, pick) -> Arch:
        return Arch.create(
            pick(self.resolutions),
            pick(self.stem_widths),
            [pick(w) for w in self.head_widths],
            [
                (pick(s.widths), s.stride, [(pick(s.expansions), pick(s.kernels))] * pick(s.depths))
                for s in self.stages
            ],
            stem_mid_channels=self.stem_mid_channels,
        )

    # ------------------------------------------------------------------ validation
    def validate(self, arch: Arch, source: str = "architecture") -> Arch:
        """Raise :class:`ArchError` naming the first field of ``arch`` outside this space."""
        where = f"{source}"

        def check(value: int, allowed: Sequence[int], field_name: str) -> None:
            if value not in allowed:
                raise ArchError(
                    f"{where}: {field_name} {value} not in space '{self.name}' "
                    f"(allowed: {', '.join(map(str, allowed))})"
                )

        check(arch.img_size, self.resolutions, "img_size")
        check(arch.input_channel, self.stem_widths, "input_channel")
        check(arch.stem_mid_channels, (self.stem_mid_channels,), "stem_mid_channels")
        if len(arch.deconv_setting) != len(self.head_widths):
            raise ArchError(f"{where}: deconv_setting has {len(arch.deconv_setting)} widths, space '{self.name}' "
                            f"has {len(self.head_widths)} head levels")
        if len(arch.stages) != self.num_stages:
            raise ArchError(
                f"{where}: backbone_setting has {len(arch.stages)} stages, space '{self.name}' has {self.num_stages}"
            )
        for s, (stage, sspace) in enumerate(zip(arch.stages, self.stages)):
            if stage.stride != sspace.stride:
                raise ArchError(f"{where}: stage {s} stride {stage.stride} not allowed (allowed: {sspace.stride})")
            check(stage.channel, sspace.widths, f"stage {s} channel")
            check(stage.num_blocks, sspace.depths, f"stage {s} num_blocks")
            for b, block in enumerate(stage.blocks):
                check(block.kernel, sspace.kernels, f"stage {s} block {b} kernel")
                check(block.expansion, sspace.expansions, f"stage {s} block {b} expansion")
        for i, (w, allowed) in enumerate(zip(arch.deconv_setting, self.head_widths)):
            check(w, allowed, f"deconv_setting[{i}]")
        return arch

    def contains(self, arch: Arch) -> bool:
        try:
            self.validate(arch)
        except ArchError:
            return False
        return True

    # ------------------------------------------------------------------ encoding
    def encode(self, archs: Arch | Sequence[Arch]) -> np.ndarray:
        """Choice indices, ``[N, num_dimensions]`` int64 (``[num_dimensions]`` for one arch)."""
        single = isinstance(archs, Arch)
        batch = [archs] if single else list(archs)
        out = np.full((len(batch), self.num_dimensions), INACTIVE, dtype=np.int64)
        for n, arch in enumerate(batch):
            self.validate(arch)
            for d, dim in enumerate(self.dimensions):
                value = _dimension_value(arch, dim)
                if value is not None:
                    out[n, d] = dim.choices.index(value)
        return out[0] if single else out

    def decode(self, encoded: np.ndarray) -> Arch | list[Arch]:
        """Inverse of :meth:`encode`."""
        enc = np.asarray(encoded)
        if enc.ndim == 1:
            return self._decode_one(enc)
        return [self._decode_one(row) for row in enc]

    def _decode_one(self, row: np.ndarray) -> Arch:
        self.check_encoded(row[None, :])
        values = {dim.name: (dim.choices[int(i)] if i >= 0 else None) for dim, i in zip(self.dimensions, row)}
        stages = []
        for s, sspace in enumerate(self.stages):
            depth = values[f"stage{s}.depth"]
            blocks = [(values[f"stage{s}.block{b}.expansion"], values[f"stage{s}.block{b}.kernel"]) for b in range(depth)]
            stages.append((values[f"stage{s}.width"], sspace.stride, blocks))
        return Arch.create(
            values["resolution"], values["stem.width"],
            [values[f"head{i}.width"] for i in range(len(self.head_widths))], stages,
            stem_mid_channels=self.stem_mid_channels,
        )

    def check_encoded(self, encoded: np.ndarray) -> None:
        """Raise :class:`ArchError` unless every row is a canonical encoding of this space."""
        enc = np.asarray(encoded)
        if enc.ndim != 2 or enc.shape[1] != self.num_dimensions:
            raise ArchError(
                f"encoded architectures: expected shape [N, {self.num_dimensions}] for space '{self.name}', got {list(enc.shape)}"
            )
        unsigned_max = self._all_active_max
        if unsigned_max is not None and enc.dtype == np.int64 and (enc.view(np.uint64) <= unsigned_max).all():
            return  # every slot active: one unsigned comparison (a negative index wraps around to a huge one)
        active = self._active_dims(enc)
        bad = (active & ((enc < 0) | (enc >= self._choice_counts))) | (~active & (enc != INACTIVE))
        if not bad.any():
            return
        sizes = self.choice_counts()
        n, d = np.argwhere(bad)[0]
        raise ArchError(
            f"encoded architecture {n}: dimension {self.dimensions[d].name} holds {enc[n, d]} "
            f"(allowed: 0..{sizes[d] - 1}{', or -1 past the stage depth' if self.dimensions[d].block >= 0 else ''})"
        )

    @cached_property
    def _all_active_max(self) -> np.ndarray | None:
        """Each dimension's largest index as uint64 when every slot of every row is active (no
        depth varies, none below a stage's largest depth), else None."""
        active = self._fixed_active
        if active is None or not active.all():
            return None
        return (self._choice_counts - 1).astype(np.uint64)

    def choice_counts(self) -> np.ndarray:
        return self._choice_counts.copy()

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of everything that defines the encoding (not the description): equal for
        spaces that encode alike, so lookups built from one serve the other (computed once)."""
        data = self.to_dict()
        data.pop("description", None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @cached_property
    def variable_dims(self) -> np.ndarray:
        """Indices of the dimensions with more than one choice (read-only)."""
        return _read_only(np.flatnonzero(self._choice_counts > 1))

    @cached_property
    def depth_mask(self) -> np.ndarray:
        """True for the dimensions that are stage depths (read-only)."""
        return _read_only(np.array([d.kind == "depth" for d in self.dimensions], dtype=bool))

    @cached_property
    def _choice_counts(self) -> np.ndarray:
        return np.array([len(d.choices) for d in self.dimensions], dtype=np.int64)

    @cached_property
    def _activity(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per dimension its block (-1: not a block choice) and stage; per stage its depth
        dimension, its largest depth index and its depths (padded into one table)."""
        block = np.array([d.block for d in self.dimensions], dtype=np.int64)
        stage = np.array([max(d.stage, 0) for d in self.dimensions], dtype=np.int64)
        depth_dims = np.array(self._depth_dims, dtype=np.int64)
        last = np.array([len(st.depths) - 1 for st in self.stages], dtype=np.int64)
        table = np.zeros((len(self.stages), int(last.max()) + 1), dtype=np.int64)
        for s, st in enumerate(self.stages):
            table[s, : len(st.depths)] = st.depths
        return block, stage, depth_dims, last, table

    def _active_dims(self, enc: np.ndarray) -> np.ndarray:
        """A block's choices are active when the block lies within its stage's depth (searchers
        call this on every candidate batch: a few vectorized operations, no loop)."""
        fixed = self._fixed_active
        if fixed is not None:
            return np.broadcast_to(fixed, enc.shape)
        block, stage, depth_dims, last, table = self._activity
        index = np.minimum(np.maximum(enc[:, depth_dims], 0), last)
        depth = table[np.arange(len(last)), index]
        return (block < 0)[None, :] | (block[None, :] < depth[:, stage])

    @cached_property
    def _fixed_active(self) -> np.ndarray | None:
        """The active mask shared by every row when no stage depth varies (the original space's
        case: then the searchers' hot paths skip recomputing it), else None."""
        if any(len(st.depths) > 1 for st in self.stages):
            return None
        block, stage, _, _, table = self._activity
        return (block < 0) | (block < table[stage, 0])

    @property
    def _depth_dims(self) -> list[int]:
        return [i for i, d in enumerate(self.dimensions) if d.kind == "depth"]

    @property
    def _block_dims(self) -> list[list[list[int]]]:
        slots: list[list[list[int]]] = [[[] for _ in range(s.max_depth)] for s in self.stages]
        for i, d in enumerate(self.dimensions):
            if d.block >= 0:
                slots[d.stage][d.block].append(i)
        return slots

    def arrays(self, encoded: np.ndarray) -> ArchArrays:
        """Numeric values of a batch of encoded architectures (vectorized; no Python loop over N)."""
        enc = np.atleast_2d(np.asarray(encoded, dtype=np.int64))
        n = enc.shape[0]
        values = np.zeros(enc.shape, dtype=np.int64)
        for d, dim in enumerate(self.dimensions):
            table = np.asarray((0,) + dim.choices, dtype=np.int64)  # index -1 -> 0
            values[:, d] = table[enc[:, d] + 1]
        kinds = [d.kind for d in self.dimensions]
        S, D = self.num_stages, self.max_depth
        kernel = np.zeros((n, S, D), dtype=np.int64)
        expansion = np.zeros((n, S, D), dtype=np.int64)
        for i, dim in enumerate(self.dimensions):
            if dim.kind == "kernel":
                kernel[:, dim.stage, dim.block] = values[:, i]
            elif dim.kind == "expansion":
                expansion[:, dim.stage, dim.block] = values[:, i]
        return ArchArrays(
            resolution=values[:, kinds.index("resolution")],
            stem=values[:, kinds.index("stem")],
            width=values[:, [i for i, k in enumerate(kinds) if k == "width"]],
            depth=values[:, self._depth_dims],
            kernel=kernel,
            expansion=expansion,
            head=values[:, [i for i, k in enumerate(kinds) if k == "head"]],
            strides=tuple(st.stride for st in self.stages),
            stem_mid=np.full(n, self.stem_mid_channels, dtype=np.int64),
        )

    # ------------------------------------------------------------------ sampling and variation
    def sample(self, rng: np.random.Generator | int | None = None) -> Arch:
        """One architecture, each choice uniform (depth first, then each active block)."""
        return self._decode_one(self.sample_encoded(rng, 1)[0])

    def sample_encoded(self, rng: np.random.Generator | int | None, n: int) -> np.ndarray:
        """``n`` random canonical encodings, vectorized."""
        rng = np.random.default_rng(rng)
        counts = self.choice_counts()
        enc = (rng.random((n, self.num_dimensions)) * counts).astype(np.int64)
        return self._mask_inactive(enc)

    def _mask_inactive(self, enc: np.ndarray) -> np.ndarray:
        active = self._active_dims(enc)
        return np.where(active, enc, INACTIVE)

    def canonicalize(self, encoded: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Make rows canonical after editing depths: newly active blocks get random choices,
        blocks past the depth become ``-1``."""
        rng = np.random.default_rng(rng)
        enc = np.atleast_2d(np.array(encoded, dtype=np.int64))
        fill = (rng.random(enc.shape) * self.choice_counts()).astype(np.int64)
        enc = np.where(enc < 0, fill, enc)
        return self._mask_inactive(enc)

    def mutate_encoded(self, encoded: np.ndarray, rng: np.random.Generator | int | None, prob: float) -> np.ndarray:
        """Resample each coordinate with probability ``prob`` (vectorized over rows)."""
        rng = np.random.default_rng(rng)
        enc = np.atleast_2d(np.array(encoded, dtype=np.int64))
        counts = self.choice_counts()
        fresh = (rng.random(enc.shape) * counts).astype(np.int64)
        flip = rng.random(enc.shape) < prob
        # Inactive slots take their fresh value too, so a depth that grows gets random blocks.
        mutated = np.where(flip | (enc < 0), fresh, enc)
        return self._mask_inactive(mutated)

    def crossover_encoded(self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator | int | None) -> np.ndarray:
        """Uniform crossover of row pairs; slots a shorter parent lacks come from the other or are sampled."""
        rng = np.random.default_rng(rng)
        a = np.atleast_2d(np.asarray(a, dtype=np.int64))
        b = np.atleast_2d(np.asarray(b, dtype=np.int64))
        take_a = rng.random(a.shape) < 0.5
        child = np.where(take_a, a, b)
        child = np.where(child < 0, np.maximum(a, b), child)
        return self.canonicalize(child, rng)

    def mutate(self, arch: Arch, rng: np.random.Generator | int | None = None, prob: float = 0.1) -> Arch:
        return self._decode_one(self.mutate_encoded(self.encode(arch), rng, prob)[0])

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator | int | None = None) -> Arch:
        return self._decode_one(self.crossover_encoded(self.encode(a), self.encode(b), rng)[0])

    def enumerate_encoded(self, limit: int = 5_000_000) -> np.ndarray:
        """Every architecture of a small space as encodings (refuses spaces above ``limit``)."""
        total = self.size()
        if total > limit:
            raise ArchError(f"space '{self.name}' has {total:,} architectures, too many to enumerate (limit {limit:,})")
        out = np.zeros((1, 0), dtype=np.int64)
        for dim in self.dimensions:
            if dim.block >= 0:
                continue
            k = len(dim.choices)
            out = np.concatenate([np.repeat(out, k, axis=0), np.tile(np.arange(k), out.shape[0])[:, None]], axis=1)
        fixed_dims = [i for i, d in enumerate(self.dimensions) if d.block < 0]
        # Block slots are expanded stage by stage, over the depths each row selects.
        full = np.full((out.shape[0], self.num_dimensions), INACTIVE, dtype=np.int64)
        full[:, fixed_dims] = out
        for s, slot_dims in enumerate(self._block_dims):
            depths = np.asarray(self.stages[s].depths)[full[:, self._depth_dims[s]]]
            expanded = []
            for depth in np.unique(depths):
                part = full[depths == depth]
                for slot in range(depth):
                    for d in slot_dims[slot]:
                        k = len(self.dimensions[d].choices)
                        part = np.repeat(part, k, axis=0)
                        part[:, d] = np.tile(np.arange(k), part.shape[0] // k)
                expanded.append(part)
            full = np.concatenate(expanded, axis=0)
        return full

    # ------------------------------------------------------------------ description
    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size(),
            "num_dimensions": self.num_dimensions,
            "resolutions": list(self.resolutions),
            "stem_widths": list(self.stem_widths),
            "stages": [
                {"stride": s.stride, "widths": list(s.widths), "depths": list(s.depths),
                 "kernels": list(s.kernels), "expansions": list(s.expansions)}
                for s in self.stages
            ],
            "head_widths": [list(w) for w in self.head_widths],
        }


# ---------------------------------------------------------------------- helpers
def resolve_space_path(path: str | os.PathLike) -> Path:
    """A path as given, or the name of a shipped space (``litepose``, ``litepose-elastic``)."""
    candidate = Path(path)
    if candidate.exists() and not candidate.is_dir():
        return candidate      # a special file is refused by the bounded reader, naming it
    from ..resources import shipped_dir

    shipped = shipped_dir("search_spaces")
    for name in (str(path), f"{path}.yaml"):
        if (shipped / name).is_file() and os.sep not in str(path):
            return shipped / name
    if candidate.is_dir():
        raise SpaceError(f"{candidate}: is a folder, expected a search-space YAML file")
    available = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml")))
    raise SpaceError(f"{path}: search space file not found (shipped spaces: {available})")


def _dimension_value(arch: Arch, dim: Dimension) -> int | None:
    if dim.kind == "resolution":
        return arch.img_size
    if dim.kind == "stem":
        return arch.input_channel
    if dim.kind == "head":
        return arch.deconv_setting[dim.layer]
    stage = arch.stages[dim.stage]
    if dim.kind == "width":
        return stage.channel
    if dim.kind == "depth":
        return stage.num_blocks
    if dim.block >= stage.num_blocks:
        return None
    block: Block = stage.blocks[dim.block]
    return block.kernel if dim.kind == "kernel" else block.expansion


def _build_dimensions(space: SearchSpace) -> list[Dimension]:
    dims = [Dimension("resolution", space.resolutions, "resolution"), Dimension("stem.width", space.stem_widths, "stem")]
    for s, stage in enumerate(space.stages):
        dims.append(Dimension(f"stage{s}.width", stage.widths, "width", stage=s))
        dims.append(Dimension(f"stage{s}.depth", stage.depths, "depth", stage=s))
    for s, stage in enumerate(space.stages):
        for b in range(stage.max_depth):
            dims.append(Dimension(f"stage{s}.block{b}.kernel", stage.kernels, "kernel", stage=s, block=b))
            dims.append(Dimension(f"stage{s}.block{b}.expansion", stage.expansions, "expansion", stage=s, block=b))
    for i, widths in enumerate(space.head_widths):
        dims.append(Dimension(f"head{i}.width", widths, "head", layer=i))
    return dims


def _int_list(value: Any, where: str, *, channels: bool = False, odd: bool = False) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise SpaceError(f"{where}: expected a non-empty list of integers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise SpaceError(f"{where}: expected positive integers, got {v!r}")
        if channels and v % CHANNEL_DIVISOR:
            raise SpaceError(f"{where}: {v} channels is not divisible by {CHANNEL_DIVISOR}")
        if odd and v % 2 == 0:
            raise SpaceError(f"{where}: kernel {v} is even (kernels must be odd)")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise SpaceError(f"{where}: repeated choice in {out}")
    return tuple(out)


def _parse_space(data: Any, source: str) -> SearchSpace:
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: expected a mapping with keys name, resolutions, stem, stages, head")
    for key in ("name", "resolutions", "stem", "stages", "head"):
        if key not in data:
            raise SpaceError(f"{source}: missing key {key!r} (required: name, resolutions, stem, stages, head)")
    stem = data["stem"]
    if not isinstance(stem, dict) or "widths" not in stem:
        raise SpaceError(f"{source}: stem must be a mapping with 'widths' (and optional 'mid_channels')")
    stages_data = data["stages"]
    if not isinstance(stages_data, list) or not stages_data:
        raise SpaceError(f"{source}: stages must be a non-empty list")
    stages = []
    for s, st in enumerate(stages_data):
        where = f"{source}: stages[{s}]"
        if not isinstance(st, dict):
            raise SpaceError(f"{where}: expected a mapping with stride, widths, depths, kernels, expansions")
        for key in ("stride", "widths", "depths", "kernels", "expansions"):
            if key not in st:
                raise SpaceError(f"{where}: missing key {key!r}")
        stride = st["stride"]
        if stride not in (1, 2):
            raise SpaceError(f"{where}.stride: {stride!r} not allowed (allowed: 1, 2)")
        stages.append(
            StageSpace(
                stride=int(stride),
                widths=_int_list(st["widths"], f"{where}.widths", channels=True),
                depths=_int_list(st["depths"], f"{where}.depths"),
                kernels=_int_list(st["kernels"], f"{where}.kernels", odd=True),
                expansions=_int_list(st["expansions"], f"{where}.expansions"),
            )
        )
    head = data["head"]
    if not isinstance(head, dict) or not isinstance(head.get("widths"), list) or \
            not MIN_HEAD_LEVELS <= len(head["widths"]) <= MAX_HEAD_LEVELS:
        raise SpaceError(f"{source}: head.widths must list the width choices of each deconv level "
                         f"({MIN_HEAD_LEVELS} to {MAX_HEAD_LEVELS} levels)")
    mid = stem.get("mid_channels", 32)
    if isinstance(mid, bool) or not isinstance(mid, int) or mid <= 0:
        raise SpaceError(f"{source}: stem.mid_channels must be a positive integer, got {mid!r}")
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise SpaceError(f"{source}: name must be a non-empty string")
    resolutions = _int_list(data["resolutions"], f"{source}: resolutions")
    stem_widths = _int_list(stem["widths"], f"{source}: stem.widths", channels=True)
    head_widths = tuple(_int_list(w, f"{source}: head.widths[{i}]", channels=True) for i, w in enumerate(head["widths"]))
    keypoints = data.get("keypoints")
    if keypoints is not None:
        keypoints = keypoint_set(keypoints, f"{source}: keypoints", SpaceError)
    try:
        return SearchSpace(name=name, description=str(data.get("description", "")), resolutions=resolutions,
                           stem_widths=stem_widths, stem_mid_channels=mid, stages=tuple(stages), head_widths=head_widths,
                           keypoints=keypoints)
    except SpaceError as exc:
        # the whole-space checks (strides, total stride) run without the file name: add it
        raise SpaceError(f"{source}: {exc}") from None


def _validate_space(space: SearchSpace) -> None:
    downsample = space.wiring.total_stride  # also checks the stage count, strides and head levels
    for r in space.resolutions:
        if r % downsample:
            raise SpaceError(
                f"search space '{space.name}': resolution {r} is not divisible by the network's total stride {downsample}"
            )
    if math.prod(len(w) for w in space.head_widths) == 0:
        raise SpaceError(f"search space '{space.name}': empty head choices")
