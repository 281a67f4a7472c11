"""What a search uses when it is not told: the latency table, the budget constraints and the
accuracy predictor. ``litepose-nas search`` and :func:`litepose_nas.search` call the same functions,
so a Python call with the same arguments searches exactly what the command does.

* device: :data:`DEFAULT_DEVICE` when a latency budget is given without a table;
* constraints: latency on the device under the budgets (largest first, the others as extra limits),
  plus a MACs cap with ``max_macs``; MACs alone (G, paper convention) when no latency budget is given;
* objective: the given predictor (a folder, a shipped name or a fitted object), else the shipped
  predictor that can score the space (:func:`~litepose_nas.predictors.default_predictor`), else MACs
  as a proxy (``objective.kind == "proxy"``).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from ..errors import InputError
from ..space import SearchSpace
from .constraints import (
    Constraint, Objective, device_latency_constraint, macs_constraint, macs_proxy_objective, predictor_objective,
)

DEFAULT_DEVICE = "raspberry-pi-4"
NO_BUDGET = ("no budget: give --max-latency-ms (with --device), --budgets, or --max-macs "
             "(Python: max_latency_ms, limits, max_macs)")


def default_constraints(space: SearchSpace, *, device: str | None = None, max_latency_ms: float | None = None,
                        limits: Sequence[float] | None = None,
                        max_macs: float | None = None) -> tuple[list[Constraint], list[float]]:
    """``(constraints, limits)`` of a search: a latency budget when a device, a latency budget or
    ``limits`` without ``max_macs`` is given (``device`` defaulting to :data:`DEFAULT_DEVICE`), else
    a MACs budget. ``limits`` are the budgets searched one by one (the CLI's ``--budgets``)."""
    limits = sorted(set(float(x) for x in limits)) if limits is not None else None
    use_latency = device is not None or max_latency_ms is not None or (limits is not None and max_macs is None)
    if not use_latency and max_macs is None and limits is None:
        raise InputError(NO_BUDGET)
    constraints = []
    if use_latency:
        device = device or DEFAULT_DEVICE
        if limits is None:
            if max_latency_ms is None:
                raise InputError(f"--device {device}: give the budget with --max-latency-ms or --budgets "
                                 "(Python: max_latency_ms or limits)")
            limits = [float(max_latency_ms)]
        elif max_latency_ms is not None:
            limits = sorted(set(limits) | {float(max_latency_ms)})
        constraints.append(device_latency_constraint(device, space, limits[-1]))
        if max_macs is not None:
            constraints.append(macs_constraint(space, max_macs))
    else:
        if limits is None:
            limits = [float(max_macs)]
        constraints.append(macs_constraint(space, max(limits)))
    return constraints, limits


def default_objective(space: SearchSpace, predictor: Any = None) -> Objective:
    """Predicted AP of ``predictor`` (a folder or shipped name, or a fitted predictor object), else
    of the shipped predictor for ``space``, else MACs as a proxy."""
    from ..predictors import default_predictor, load_predictor

    if isinstance(predictor, (str, os.PathLike)):
        predictor = load_predictor(predictor, space)
    elif predictor is None:
        predictor = default_predictor(space)
        if predictor is None:
            return macs_proxy_objective(space)
    return predictor_objective(predictor, space)


def as_space(space: SearchSpace | str | os.PathLike) -> SearchSpace:
    """A :class:`SearchSpace`, or the shipped name / YAML file of one."""
    return space if isinstance(space, SearchSpace) else SearchSpace.from_yaml(space)
