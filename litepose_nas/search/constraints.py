"""Constraints and objectives of a search, as vectorized functions of encoded architectures.

A :class:`Constraint` maps ``[N, D]`` encoded rows to a cost ``[N]`` (latency in ms on a device,
MACs in G, ...) with a limit; a row is feasible when ``cost <= limit``. An :class:`Objective`
maps rows to a score ``[N]`` to maximize (predicted AP, or an explicitly labelled proxy).
Searchers call both on whole batches, so one generation costs a few numpy operations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from ..errors import InputError
from ..space import SearchSpace

Vectorized = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Constraint:
    """``fn(encoded) -> cost [N]``, feasible when ``cost <= limit``."""

    name: str
    fn: Vectorized = field(repr=False, compare=False)
    limit: float
    unit: str = ""
    label: str = ""
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # a NaN budget makes every row infeasible (NaN comparisons are false), an infinite one none
        if not math.isfinite(self.limit):
            raise InputError(f"budget {self.name} = {self.limit} (allowed: a finite number)")

    def values(self, encoded: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(np.atleast_2d(encoded)), dtype=np.float64)

    def feasible(self, encoded: np.ndarray) -> np.ndarray:
        return self.values(encoded) <= self.limit

    def with_limit(self, limit: float) -> "Constraint":
        return replace(self, limit=float(limit))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "limit": self.limit, "unit": self.unit, "label": self.label or self.name, **self.info}

    @classmethod
    def from_function(cls, name: str, fn: Vectorized, limit: float, unit: str = "", label: str = "") -> "Constraint":
        return cls(name, fn, float(limit), unit, label or name)


@dataclass(frozen=True)
class Objective:
    """``fn(encoded) -> score [N]`` to maximize. ``kind`` says what the score is."""

    name: str
    fn: Vectorized = field(repr=False, compare=False)
    label: str = ""
    kind: str = "predictor"  # predictor | exact | proxy | custom
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __call__(self, encoded: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(np.atleast_2d(encoded)), dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label or self.name, "kind": self.kind, **self.info}


def _check_args(call: str, space: Any, scorer: Any = None, scorer_name: str = "", scorer_kind: str = "") -> None:
    """A TypeError naming the call and the argument given in the wrong place (the arguments of these
    constructors are easy to swap, and numpy would fail later far from the cause)."""
    if scorer_name and not callable(getattr(scorer, "predict", None)):
        raise TypeError(f"{call}: {scorer_name} must be a {scorer_kind} (with .predict(encoded, space=...)), "
                        f"got {type(scorer).__name__}")
    if not isinstance(space, SearchSpace):
        raise TypeError(f"{call}: space must be a SearchSpace, got {type(space).__name__}")


# ---------------------------------------------------------------------- constraints
def macs_constraint(space: SearchSpace, max_gmacs: float, convention: str = "paper", num_joints: int = 17) -> Constraint:
    """MACs in G (the paper's convention by default, as the original search budgets are)."""
    from ..cost import macs

    _check_args("macs_constraint(space, max_gmacs)", space)

    def fn(enc: np.ndarray) -> np.ndarray:
        return macs(enc, num_joints=num_joints, convention=convention, space=space) / 1e9

    return Constraint("macs", fn, float(max_gmacs), "GMACs", f"MACs ({convention} convention, G)",
                      {"convention": convention, "num_joints": num_joints})


def latency_constraint(table: Any, space: SearchSpace, max_ms: float) -> Constraint:
    """Latency in ms predicted by a latency table (``table.predict(encoded, space=space)``)."""
    _check_args("latency_constraint(table, space, max_ms)", space, table, "table", "LatencyTable")
    device = str(getattr(table, "device", "device"))

    def fn(enc: np.ndarray) -> np.ndarray:
        return np.asarray(table.predict(enc, space=space), dtype=np.float64)

    info = {"device": device}
    if getattr(table, "space_name", None):
        info["table_space"] = table.space_name
    return Constraint(f"latency:{device}", fn, float(max_ms), "ms", f"latency on {device} (ms)", info)


def device_latency_constraint(device: str, space: SearchSpace, max_ms: float) -> Constraint:
    """Latency constraint from a shipped or local latency table named ``device``."""
    from ..latency import load_table  # built by the latency-table issue

    table = load_table(device)
    constraint = latency_constraint(table, space, max_ms)
    constraint.fn(space.encode([space.smallest()]))  # fail now (TableError) if the table lacks this space
    return constraint


# ---------------------------------------------------------------------- objectives
def predictor_objective(predictor: Any, space: SearchSpace) -> Objective:
    """Predicted AP of a fitted :class:`~litepose_nas.predictors.Predictor` (or ExactPredictor)."""
    _check_args("predictor_objective(predictor, space)", space, predictor, "predictor", "Predictor")
    check = getattr(predictor, "check_space", None)
    if check is not None:
        check(space)

    def fn(enc: np.ndarray) -> np.ndarray:
        return predictor.predict(enc, space=space)

    kind = "exact" if type(predictor).__name__ == "ExactPredictor" else "predictor"
    describe = getattr(predictor, "describe", lambda: type(predictor).__name__)
    info = {"predictor": describe(), "source": str(getattr(predictor, "source", ""))}
    return Objective(f"predicted AP ({getattr(predictor, 'name', kind)})", fn, "predicted AP", kind, info)


def macs_proxy_objective(space: SearchSpace, num_joints: int = 17) -> Objective:
    """MACs (G) as an accuracy *proxy*: bigger subnets of one family are usually more accurate.

    Used only when no accuracy predictor is available; results are labelled as such.
    """
    from ..cost import macs

    def fn(enc: np.ndarray) -> np.ndarray:
        return macs(enc, num_joints=num_joints, convention="paper", space=space) / 1e9

    return Objective("macs-proxy", fn, "MACs proxy (G) - not an accuracy prediction", "proxy",
                     {"note": "no accuracy predictor given or shipped: the search maximizes MACs under the budget"})


def as_constraints(constraints: Constraint | list[Constraint] | tuple[Constraint, ...]) -> list[Constraint]:
    out = [constraints] if isinstance(constraints, Constraint) else list(constraints)
    if not out:
        raise InputError("a search needs at least one constraint (a latency or MACs budget)")
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise InputError(f"constraint names repeat: {names}")
    return out
