"""Predictor features: a one-hot of each encoded dimension of a search space.

Dimensions with a single choice carry no information and get no column; an inactive block slot
(``-1`` past a stage's depth) gets all zeros, so "block absent" differs from every real choice.
Everything is vectorized: one ``np.put`` fills a whole batch.

A predictor stores the space it was fitted on. It can score a *subspace* (every dimension of
the target space exists in the fitted one with a subset of its choices, e.g. the original Lite
Pose space inside ``litepose-elastic``): encodings are translated through per-dimension index
tables. Any other space is rejected with :class:`~litepose_nas.errors.PredictorError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import PredictorError
from ..space import Arch, SearchSpace
from ..space.search_space import INACTIVE


def space_fingerprint(space: SearchSpace) -> str:
    """A short hash of everything that defines a space's encoding (not its description)."""
    return space.fingerprint


@dataclass
class Featurizer:
    """Maps encoded architectures of ``space`` to one-hot feature rows."""

    space: SearchSpace
    columns: np.ndarray = field(init=False, repr=False)  # [D] first column of each dim, -1 if constant
    num_features: int = field(init=False)

    def __post_init__(self) -> None:
        cols = np.full(self.space.num_dimensions, -1, dtype=np.int64)
        offset = 0
        for d, dim in enumerate(self.space.dimensions):
            if len(dim.choices) > 1:
                cols[d] = offset
                offset += len(dim.choices)
        self.columns = cols
        self.num_features = offset

    def feature_names(self) -> list[str]:
        names = []
        for dim, col in zip(self.space.dimensions, self.columns):
            if col >= 0:
                names.extend(f"{dim.name}={c}" for c in dim.choices)
        return names

    def transform(self, encoded: np.ndarray) -> np.ndarray:
        """``[N, D]`` choice indices of :attr:`space` -> ``[N, F]`` float32 one-hot."""
        enc = np.atleast_2d(np.asarray(encoded, dtype=np.int64))
        if enc.shape[1] != self.space.num_dimensions:
            raise PredictorError(
                f"encoded architectures have {enc.shape[1]} dimensions, space '{self.space.name}' has "
                f"{self.space.num_dimensions}"
            )
        keep = self.columns >= 0
        sub = enc[:, keep]
        cols = self.columns[keep][None, :] + sub
        rows = np.broadcast_to(np.arange(enc.shape[0])[:, None], sub.shape)
        on = sub >= 0
        out = np.zeros((enc.shape[0], self.num_features), dtype=np.float32)
        out[rows[on], cols[on]] = 1.0
        return out


class SpaceTranslator:
    """Re-encodes rows of a subspace ``source`` as rows of the predictor's space ``target``."""

    def __init__(self, source: SearchSpace, target: SearchSpace, where: str = "predictor") -> None:
        self.source, self.target = source, target
        by_name = {dim.name: (d, dim) for d, dim in enumerate(source.dimensions)}
        self.src_index = np.full(target.num_dimensions, -1, dtype=np.int64)
        self.tables: list[np.ndarray | None] = []
        for t, tdim in enumerate(target.dimensions):
            if tdim.name not in by_name:
                if tdim.block < 0:
                    raise PredictorError(
                        f"{where}: fitted for space '{target.name}', which has dimension {tdim.name} that "
                        f"space '{source.name}' lacks; refit the predictor for '{source.name}'"
                    )
                self.tables.append(None)  # a block slot the subspace never reaches: always inactive
                continue
            s, sdim = by_name[tdim.name]
            missing = [c for c in sdim.choices if c not in tdim.choices]
            if missing:
                raise PredictorError(
                    f"{where}: fitted for space '{target.name}', where {tdim.name} allows "
                    f"{', '.join(map(str, tdim.choices))}; space '{source.name}' also uses {missing[0]}; "
                    f"refit the predictor for '{source.name}'"
                )
            self.src_index[t] = s
            # index -1 (inactive) stays -1: table[0] handles the shifted lookup
            self.tables.append(np.array([INACTIVE] + [tdim.choices.index(c) for c in sdim.choices], dtype=np.int64))
        unmapped = set(by_name) - {d.name for d in target.dimensions}
        if unmapped:
            raise PredictorError(
                f"{where}: fitted for space '{target.name}', which lacks dimension {sorted(unmapped)[0]} of "
                f"space '{source.name}'; refit the predictor for '{source.name}'"
            )

    def __call__(self, encoded: np.ndarray) -> np.ndarray:
        enc = np.atleast_2d(np.asarray(encoded, dtype=np.int64))
        out = np.full((enc.shape[0], self.target.num_dimensions), INACTIVE, dtype=np.int64)
        for t, table in enumerate(self.tables):
            if table is not None:
                out[:, t] = table[enc[:, self.src_index[t]] + 1]
        return out


def as_encoded(space: SearchSpace, archs: Arch | Sequence[Arch] | np.ndarray) -> np.ndarray:
    """Encoded rows from an Arch, a list of Arch, or already encoded rows (checked)."""
    if isinstance(archs, Arch):
        return space.encode([archs])
    if isinstance(archs, np.ndarray):
        enc = np.atleast_2d(archs).astype(np.int64, copy=False)
        return enc
    archs = list(archs)
    if archs and all(isinstance(a, Arch) for a in archs):
        return space.encode(archs)
    return np.atleast_2d(np.asarray(archs, dtype=np.int64))
