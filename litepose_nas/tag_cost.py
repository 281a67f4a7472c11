"""The grouping cost choice shared by evaluation, validation, the demo and predictor collection.

- ``original``: the published parser's ``round(tag distance) * 100 - heatmap value``. Rounding makes
  every distance under 0.5 cost the same, so among close tags the strongest heatmap peak wins,
  not the closest tag: with tags a fraction of a unit apart (a network trained on little compute)
  joints are handed to the wrong person.
- ``distance``: the raw tag distance, the closest tag wins (``docs/training.md`` measures both).

Kept free of numpy / torch so CLI option lists and :class:`~litepose_nas.train.TrainConfig` stay light.
"""
from __future__ import annotations

from typing import Any

TAG_COSTS = ("original", "distance")
DEFAULT_TAG_COST = "distance"


def tag_cost_kwargs(tag_cost: str) -> dict[str, Any]:
    """The :func:`litepose_nas.decode.group` keyword arguments of ``tag_cost``."""
    if tag_cost not in TAG_COSTS:
        raise ValueError(f"tag cost {tag_cost!r} not allowed (allowed: {', '.join(TAG_COSTS)})")
    return {"use_detection_val": tag_cost == "original"}
