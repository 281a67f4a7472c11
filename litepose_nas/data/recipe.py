"""Training recipes: every choice of how training samples are made and scored, in one place.

``RECIPES["original"]`` is the recipe of the published Lite Pose models (HigherHRNet's data
pipeline), exactly; ``RECIPES["default"]`` is ours, which differs where an ablation
(``benchmarks/recipe_ablation.py``, docs/training.md) kept a deviation. Both use the same pixel
convention as the test pipeline (pixel ``i`` covers ``[i, i + 1)``, see ``transforms.py``), so a
recipe changes what is learnt, never where a prediction lands.

A recipe is named in ``TrainConfig.recipe`` and ``--recipe``; a variant (as in the ablation) is
``Recipe.to_dict()`` with some fields changed, which a ``TrainConfig`` also accepts.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..tag_cost import DEFAULT_TAG_COST, TAG_COSTS
from .targets import TARGET_KINDS
from .transforms import AugmentConfig

IMAGE_FILTERS = ("people", "any")
PUSH_LOSSES = ("exp", "max")  # associative-embedding push (litepose_nas.losses)
# the TrainConfig fields a recipe supplies when the config leaves them unset (None)
LOSS_FIELDS = ("push_loss", "push_weight", "pull_weight", "push_margin", "tag_cost")


@dataclass(frozen=True)
class Recipe:
    """How a training sample is made from an annotated image.

    * ``augment``: the random affine (:class:`~.transforms.AugmentConfig`).
    * ``targets``: heatmap and tag-joint kind (``"subpixel"`` or ``"integer"``, see ``targets.py``).
    * ``mask_padding``: exclude from the loss what the warp takes from outside the image (the
      original) instead of training it as background.
    * ``mask_unlabelled_crowdpose``: on CrowdPose, exclude the boxes of people without labelled
      joints (COCO always excludes crowd regions and people without keypoints; the original
      excludes nothing on CrowdPose).
    * ``image_filter``: training images kept: ``"people"`` (at least one non-crowd person with
      keypoints) or ``"any"`` (any annotation at all, the original).
    * ``push_loss`` / ``push_weight`` / ``pull_weight`` / ``push_margin``: the associative-embedding
      loss (``exp`` push at 0.001 in the original; the hinge ``max`` at 0.01 in ours, because the
      ``exp`` push has no gradient when tags coincide, docs/training.md).
    * ``tag_cost``: how validation groups joints (:mod:`litepose_nas.tag_cost`).
    """

    name: str = "default"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    targets: str = "subpixel"
    mask_padding: bool = False
    mask_unlabelled_crowdpose: bool = True
    image_filter: str = "people"
    push_loss: str = "max"
    push_weight: float = 0.01
    pull_weight: float = 0.01
    push_margin: float = 1.0
    tag_cost: str = DEFAULT_TAG_COST

    def __post_init__(self) -> None:
        for name, value, allowed in (("push_loss", self.push_loss, PUSH_LOSSES), ("tag_cost", self.tag_cost, TAG_COSTS)):
            if value not in allowed:
                raise InputError(f"recipe {self.name!r}: {name} {value!r} not allowed (allowed: {', '.join(allowed)})")
        if self.targets not in TARGET_KINDS:
            raise InputError(f"recipe {self.name!r}: targets {self.targets!r} not allowed "
                             f"(allowed: {', '.join(TARGET_KINDS)})")
        if self.image_filter not in IMAGE_FILTERS:
            raise InputError(f"recipe {self.name!r}: image_filter {self.image_filter!r} not allowed "
                             f"(allowed: {', '.join(IMAGE_FILTERS)})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "recipe") -> "Recipe":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"{source}: unknown recipe field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(names))})")
        values = dict(data)
        if isinstance(values.get("augment"), dict):
            aug_names = {f.name for f in dataclasses.fields(AugmentConfig)}
            bad = sorted(set(values["augment"]) - aug_names)
            if bad:
                raise InputError(f"{source}: unknown augment field(s) {', '.join(bad)} "
                                 f"(allowed: {', '.join(sorted(aug_names))})")
            try:
                values["augment"] = AugmentConfig(**values["augment"])
            except ValueError as exc:
                raise InputError(f"{source}: {exc}") from None
        return cls(**values)

    def replace(self, **changes: Any) -> "Recipe":
        """A variant; ``augment`` may be given as a dict of the fields to change."""
        if isinstance(changes.get("augment"), dict):
            changes["augment"] = dataclasses.replace(self.augment, **changes["augment"])
        return dataclasses.replace(self, **changes)


# HigherHRNet's RandomAffineTransform + RandomHorizontalFlip with the Lite Pose configs:
# window = short side x U[0.75, 1.5) (a larger factor zooms out), rotation U[-30, 30) deg, window
# centre moved by randint(-40 L / 200, 40 L / 200) image px per axis, flip p 0.5.
ORIGINAL = Recipe(
    name="original",
    augment=AugmentConfig(max_rotation=30.0, min_scale=0.75, max_scale=1.5, max_translate=40.0 / 200.0,
                          flip_prob=0.5, scale_type="short", scale_mode="window", translate_mode="window"),
    targets="integer",
    mask_padding=True,
    mask_unlabelled_crowdpose=False,
    image_filter="any",
    push_loss="exp",
    push_weight=0.001,
    pull_weight=0.001,
    tag_cost="original",
)

DEFAULT = Recipe(name="default")

RECIPES: dict[str, Recipe] = {r.name: r for r in (DEFAULT, ORIGINAL)}


def get_recipe(spec: "str | dict[str, Any] | Recipe | None") -> Recipe:
    """A recipe by name (``RECIPES``), from its ``to_dict()``, or as given; None is the default."""
    if spec is None:
        return DEFAULT
    if isinstance(spec, Recipe):
        return spec
    if isinstance(spec, dict):
        return Recipe.from_dict(spec)
    if spec not in RECIPES:
        raise InputError(f"recipe {spec!r} not allowed (allowed: {', '.join(RECIPES)})")
    return RECIPES[spec]
