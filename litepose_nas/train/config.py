"""Hyper-parameters of a training run, with the original Lite Pose recipe as defaults.

The original (mit-han-lab/litepose, ``experiments/crowd_pose/mobilenet/{supermobile,mobile}.yaml``)
trains with Adam at lr 4e-3, 16 images per GPU, sigma 2, heatmap loss weight 1.0 at both scales
and push / pull factors 0.001, and steps the lr down by 10x at 70% and 96% of training (epochs
350 and 480 of 500). Its weight decay of 1e-4 is configured but never reaches the optimiser; here
it is applied, as an L2 term on conv / linear weights only (not on BN affine parameters or biases).

How training samples are made (augmentation, targets, masks, image filter) is the ``recipe``:
``"original"`` reproduces the published models' exactly, ``"default"`` is ours (``data/recipe.py``).
The recipe also sets the associative-embedding loss and validation grouping unless the config gives
them: ours is the hinge (``max``) push at push / pull 0.01 and grouping by tag distance, because the
original ``exp`` push has no gradient when two people's tags coincide, so the tags of a fresh network
never separate and grouping swaps joints between people (measured in docs/training.md).

A :class:`TrainConfig` is saved in every checkpoint and is the authority when a run resumes.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..data.recipe import LOSS_FIELDS, PUSH_LOSSES
from ..tag_cost import TAG_COSTS

KINDS = ("supernet", "subnet")
DATASETS = ("coco", "crowdpose")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("step", "cosine", "constant")
MEMORY_FORMATS = ("channels_last", "channels_first")
# mixed precision and loader memory: see litepose_nas/train/accel.py ('on' = 'auto', CUDA required)
AMP_MODES = ("auto", "bf16", "fp16", "off", "on")
PIN_MEMORY_MODES = ("auto", "on", "off")

SUPERNET_LR = 4e-3
# The original trains subnets from scratch at 4e-3 as well; starting from supernet weights is a
# fine-tuning, where a 4x smaller step keeps what the supernet learnt.
SUBNET_FINETUNE_LR = 1e-3

# Chosen by measurement (benchmarks/bench_train.py, docs/training.md): on CPU channels-last was faster
# in every case measured (the 7x7 depthwise backward is up to 20x faster). Not measured on CUDA here;
# channels-last is also the layout tensor-core convolutions prefer under AMP.
DEFAULT_MEMORY_FORMAT = "channels_last"


@dataclass
class TrainConfig:
    """Everything that determines a run (paths excepted: ``data`` may move between machines)."""

    kind: str = "supernet"
    dataset: str = "coco"
    data: str = ""
    space: dict[str, Any] | None = None  # the search space (SearchSpace.to_dict) of a supernet run
    arch: dict[str, Any] | None = None  # the architecture (Arch.to_dict) of a subnet run
    # the keypoint set (KeypointSpec.to_dict); None: the space's, else the annotation file's (set when the run starts)
    keypoints: dict[str, Any] | None = None
    train_split: str = "train"
    val_split: str = "val"
    # input sizes sampled per step; empty: the space's resolutions (supernet) or the arch's img_size
    resolutions: tuple[int, ...] = ()
    steps: int = 1000
    batch_size: int = 16  # per process (global batch = batch_size x world size)
    micro_batches: int = 1  # split each process's batch into chunks, gradients accumulated
    optimizer: str = "adam"
    lr: float = SUPERNET_LR
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4
    schedule: str = "step"
    milestones: tuple[float, ...] = (0.7, 0.96)  # fractions of ``steps`` (original: 350 and 480 of 500)
    gamma: float = 0.1
    warmup_steps: int = 0
    grad_clip: float = 0.0  # max gradient norm; 0 = off
    # how samples are made (augmentation, targets, masks, image filter): a name of
    # data.recipe.RECIPES ('default', 'original') or a Recipe.to_dict() variant
    recipe: str | dict[str, Any] = "default"
    # loss: the original's heatmap weights; the AE loss fields left None come from the recipe
    sigma: float = 2.0
    max_people: int = 30
    heatmap_weights: tuple[float, float] = (1.0, 1.0)
    push_weight: float | None = None
    pull_weight: float | None = None
    push_loss: str | None = None
    push_margin: float | None = None
    tag_cost: str | None = None  # grouping cost of validation (litepose_nas.tag_cost)
    # sandwich rule and in-place distillation (supernet only)
    num_random: int = 2
    distill_weight: float = 1.0
    # mechanics
    seed: int = 0
    num_workers: int = 2
    memory_format: str = DEFAULT_MEMORY_FORMAT
    amp: str = "auto"  # mixed precision: bf16 (fp16 + scaler on older GPUs) on CUDA, off on CPU
    # speed settings (train/accel.py, train/device_targets.py; measured defaults in docs/training.md)
    compile: bool = False
    pin_memory: str = "auto"
    persistent_workers: bool = True
    gpu_resize: bool = False
    checkpoint_every: int = 200
    log_every: int = 10
    val_every: int = 0  # 0: validate at the end only; negative: never
    val_images: int = 50
    val_resolution: int = 0  # 0: the largest training resolution
    recal_batches: int = 8  # BN recalibration batches before each subnet validation
    init_from: str = ""

    def __post_init__(self) -> None:
        # the loss fields left unset come from the recipe (an unknown recipe is reported by validate())
        from ..data.recipe import DEFAULT, get_recipe

        try:
            recipe = get_recipe(self.recipe)
        except (InputError, TypeError):
            recipe = DEFAULT
        for name in LOSS_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, getattr(recipe, name))

    # ------------------------------------------------------------------ checks
    def validate(self) -> "TrainConfig":
        """Raise :class:`InputError` naming the first bad field and its allowed values."""

        def choice(name: str, allowed: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise InputError(f"training config: {name} {value!r} not allowed (allowed: {', '.join(allowed)})")

        def positive(name: str, allow_zero: bool = False) -> None:
            value = getattr(self, name)
            if value < 0 or (value == 0 and not allow_zero):
                raise InputError(f"training config: {name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")

        choice("kind", KINDS)
        choice("dataset", DATASETS)
        choice("optimizer", OPTIMIZERS)
        choice("schedule", SCHEDULES)
        choice("memory_format", MEMORY_FORMATS)
        choice("amp", AMP_MODES)
        choice("pin_memory", PIN_MEMORY_MODES)
        choice("push_loss", PUSH_LOSSES)
        choice("tag_cost", TAG_COSTS)
        for name in ("steps", "batch_size", "micro_batches", "lr", "sigma", "max_people", "checkpoint_every", "log_every",
                     "push_margin"):
            positive(name)
        for name in ("weight_decay", "warmup_steps", "grad_clip", "num_random", "distill_weight", "num_workers",
                     "val_images", "val_resolution", "recal_batches", "push_weight", "pull_weight"):
            positive(name, allow_zero=True)
        if self.compile:
            from .accel import check_compile

            check_compile(self.kind)
        if self.batch_size % self.micro_batches:
            raise InputError(
                f"training config: batch_size {self.batch_size} is not divisible by micro_batches {self.micro_batches}"
            )
        stride = self.total_stride()
        for r in self.resolutions:
            if r <= 0 or r % stride:
                raise InputError(f"training config: resolution {r} must be a positive multiple of {stride} "
                                 "(the network's total stride)")
        if self.val_resolution % stride:
            raise InputError(f"training config: val_resolution {self.val_resolution} must be a multiple of {stride} "
                             "(the network's total stride)")
        if any(not 0.0 < m <= 1.0 for m in self.milestones):
            raise InputError(f"training config: milestones {list(self.milestones)} must be fractions in (0, 1]")
        recipe = self.training_recipe()
        if self.gpu_resize:
            # the device side renders sub-pixel targets at 1/4 and 1/2 and resizes masks
            if recipe.targets != "subpixel" or recipe.mask_padding:
                raise InputError(f"training config: gpu_resize needs sub-pixel targets without padding masks; "
                                 f"recipe {recipe.name!r} has targets {recipe.targets!r}, "
                                 f"mask_padding {recipe.mask_padding}")
            output_strides = list(self.network().wiring.output_strides)
            if output_strides != [4, 2]:
                raise InputError(f"training config: gpu_resize renders targets at 1/4 and 1/2 of the input; "
                                 f"this network's outputs are at strides {output_strides}")
        if self.keypoints is not None:
            self.keypoint_spec()
        if self.kind == "supernet" and self.space is None:
            raise InputError("training config: a supernet run needs a search space")
        if self.kind == "subnet" and self.arch is None:
            raise InputError("training config: a subnet run needs an architecture")
        return self

    # ------------------------------------------------------------------ derived values
    @property
    def num_joints(self) -> int:
        return self.keypoint_spec().num_joints

    def declared_keypoints(self):
        """The keypoint set the config or the space names (None: take the annotation file's)."""
        from ..keypoints import keypoint_set

        if self.keypoints is not None:
            return keypoint_set(self.keypoints, "training config: keypoints", InputError)
        if self.kind == "supernet" and self.space is not None:
            return self.search_space().keypoints
        return None

    def keypoint_spec(self):
        """The run's :class:`~litepose_nas.keypoints.KeypointSpec`: declared, else the dataset's default."""
        from ..keypoints import keypoint_spec

        return self.declared_keypoints() or keypoint_spec(self.dataset)

    def training_recipe(self):
        """The :class:`~litepose_nas.data.recipe.Recipe` of the run (InputError naming the field if bad)."""
        from ..data.recipe import get_recipe

        try:
            return get_recipe(self.recipe)
        except InputError as exc:
            raise InputError(f"training config: {exc}") from None
        except TypeError as exc:
            raise InputError(f"training config: recipe {self.recipe!r}: {exc}") from None

    def search_space(self):
        from ..space import SearchSpace

        return SearchSpace.from_dict(self.space, source="training config space") if self.space is not None else None

    def architecture(self):
        from ..space import Arch

        return Arch.from_dict(self.arch, source="training config arch") if self.arch is not None else None

    def network(self):
        """What is trained: the search space of a supernet run, the architecture of a subnet run."""
        network = self.search_space() if self.kind == "supernet" else self.architecture()
        if network is None:
            raise InputError(f"training config: a {self.kind} run needs "
                             f"{'a search space' if self.kind == 'supernet' else 'an architecture'}")
        return network

    def total_stride(self) -> int:
        """Input sizes must be a multiple of this: the network plan's total stride."""
        return self.network().total_stride

    def train_resolutions(self) -> tuple[int, ...]:
        if self.resolutions:
            return tuple(self.resolutions)
        if self.kind == "supernet":
            return tuple(self.search_space().resolutions)
        return (self.architecture().img_size,)

    def validation_resolution(self) -> int:
        return self.val_resolution or max(self.train_resolutions())

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "training config") -> "TrainConfig":
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InputError(f"{source}: unknown field(s) {', '.join(unknown)}")
        values = {}
        if "push_loss" not in data and data.get("push_weight") is not None:
            # saved before the loss became selectable: such runs trained the original recipe
            values.update(push_loss="exp", tag_cost="original")
        for key, value in data.items():
            # JSON / torch.save turn tuples into lists; the dataclass keeps tuples (hashable, comparable)
            if isinstance(value, list) and _is_tuple_field(names[key]):
                value = tuple(value)
            values[key] = value
        return cls(**values).validate()

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes).validate()


def _is_tuple_field(f: dataclasses.Field) -> bool:
    return str(f.type).startswith("tuple")


def default_config(kind: str, **overrides: Any) -> TrainConfig:
    """Recipe defaults of ``kind`` ('supernet' or 'subnet'); a subnet initialised from a supernet
    fine-tunes at :data:`SUBNET_FINETUNE_LR` unless ``lr`` is given."""
    if kind not in KINDS:
        raise InputError(f"training kind {kind!r} not allowed (allowed: {', '.join(KINDS)})")
    if kind == "subnet" and "lr" not in overrides and overrides.get("init_from"):
        overrides["lr"] = SUBNET_FINETUNE_LR
    return TrainConfig(kind=kind, **overrides).validate()


