"""``litepose-nas train-supernet`` and ``litepose-nas train``.

Both run alone or under ``torchrun --nproc_per_node N`` (DistributedDataParallel); the batch size
is per process.
"""
from __future__ import annotations

from typing import Any, Callable

import click

from .common import cpu_threads, output_path, quiet_option, space_option

# CLI option name -> TrainConfig field (the options that are hyper-parameters of the run)
_FIELDS = {
    "dataset": "dataset", "train_split": "train_split", "val_split": "val_split", "resolutions": "resolutions",
    "steps": "steps", "batch_size": "batch_size", "micro_batches": "micro_batches", "optimizer": "optimizer",
    "lr": "lr", "weight_decay": "weight_decay", "schedule": "schedule", "warmup_steps": "warmup_steps",
    "grad_clip": "grad_clip", "num_random": "num_random", "distill_weight": "distill_weight", "seed": "seed",
    "workers": "num_workers", "memory_format": "memory_format", "amp": "amp", "checkpoint_every": "checkpoint_every",
    "log_every": "log_every", "val_every": "val_every", "val_images": "val_images", "val_resolution": "val_resolution",
    "init_from": "init_from", "recipe": "recipe", "sigma": "sigma", "push_weight": "push_weight",
    "pull_weight": "pull_weight", "push_loss": "push_loss", "push_margin": "push_margin", "tag_cost": "tag_cost",
    "compile": "compile", "pin_memory": "pin_memory", "persistent_workers": "persistent_workers",
    "gpu_resize": "gpu_resize",
}
# may differ on --resume: the length of the run (the schedule is defined over it)
_RESUME_FREE = {"steps"}


def _resolutions(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    from ..errors import InputError

    try:
        sizes = tuple(int(v) for v in value.replace(" ", "").split(",") if v)
    except ValueError:
        raise InputError(f"--resolutions {value!r}: expected comma-separated integers, e.g. 128,160") from None
    # multiples of the network's total stride: checked with the space or arch (TrainConfig.validate)
    if not sizes or any(s <= 0 for s in sizes):
        raise InputError(f"--resolutions {value!r}: every size must be a positive integer (e.g. 128,160,192,256)")
    return sizes


def _common_options(f: Callable) -> Callable:
    from ..data.recipe import RECIPES
    from ..tag_cost import TAG_COSTS
    from ..train.config import (
        AMP_MODES, MEMORY_FORMATS, OPTIMIZERS, PIN_MEMORY_MODES, PUSH_LOSSES, SCHEDULES, TrainConfig,
    )

    d = TrainConfig()
    options = [
        click.option("--data", "data", required=True, type=click.Path(file_okay=False),
                     help="Dataset folder in the COCO or CrowdPose layout (e.g. from `litepose-nas data synth`)."),
        click.option("--dataset", type=click.Choice(["coco", "crowdpose"]), default="coco", show_default=True),
        click.option("--train-split", default=d.train_split, show_default=True),
        click.option("--val-split", default=d.val_split, show_default=True),
        click.option("--resolutions", callback=_resolutions, default=None,
                     help="Input sizes sampled per step, e.g. 128,160 on a CPU [default: the space's / the arch's]."),
        click.option("--steps", type=click.IntRange(min=1), default=d.steps, show_default=True),
        click.option("--batch-size", type=click.IntRange(min=1), default=d.batch_size, show_default=True,
                     help="Images per process and step (global batch = this x processes)."),
        click.option("--micro-batches", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Split each batch into chunks with accumulated gradients (less memory, same result)."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=d.optimizer, show_default=True),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Learning rate [default: 4e-3; `train` from a supernet: 1e-3]."),
        click.option("--weight-decay", type=click.FloatRange(min=0), default=d.weight_decay, show_default=True),
        click.option("--schedule", type=click.Choice(SCHEDULES), default=d.schedule, show_default=True,
                     help="step: x0.1 at 70% and 96% of the steps (the original's epochs 350 / 480 of 500)."),
        click.option("--warmup-steps", type=click.IntRange(min=0), default=d.warmup_steps, show_default=True),
        click.option("--grad-clip", type=click.FloatRange(min=0), default=d.grad_clip, show_default=True,
                     help="Max gradient norm (0: off)."),
        click.option("--recipe", type=click.Choice(list(RECIPES)), default=d.recipe, show_default=True,
                     help="How training samples are made and scored: 'original' = the published models' recipe "
                          "exactly (augmentation, targets, masks, image filter, AE loss, grouping); 'default' = "
                          "ours (docs/training.md)."),
        click.option("--sigma", type=click.FloatRange(min=0, min_open=True), default=d.sigma, show_default=True),
        click.option("--push-weight", type=click.FloatRange(min=0), default=None,
                     help="Associative-embedding push factor [default: the recipe's, 0.01; original 0.001]."),
        click.option("--pull-weight", type=click.FloatRange(min=0), default=None,
                     help="Associative-embedding pull factor [default: the recipe's, 0.01; original 0.001]."),
        click.option("--push-loss", type=click.Choice(PUSH_LOSSES), default=None,
                     help="Push term: max = hinge at --push-margin; exp = the original's, whose gradient vanishes "
                          "when tags coincide (docs/training.md) [default: the recipe's, max; original exp]."),
        click.option("--push-margin", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Tag distance beyond which 'max' stops pushing two people apart [default: the recipe's, 1]."),
        click.option("--tag-cost", type=click.Choice(TAG_COSTS), default=None,
                     help="Grouping cost in validation: distance, or original (round(distance) * 100 - heatmap) "
                          "[default: the recipe's, distance; original original]."),
        click.option("--seed", type=int, default=d.seed, show_default=True),
        click.option("--workers", type=click.IntRange(min=0), default=d.num_workers, show_default=True,
                     help="Data-loader worker processes."),
        click.option("--memory-format", type=click.Choice(MEMORY_FORMATS), default=d.memory_format, show_default=True),
        click.option("--amp", type=click.Choice(AMP_MODES), default=d.amp, show_default=True,
                     help="Mixed precision. auto: bf16 on GPUs that support it, fp16 with loss scaling on older "
                          "GPUs, off on CPU; on: auto, but fail without CUDA."),
        click.option("--compile/--no-compile", "compile", default=d.compile, show_default=True,
                     help="torch.compile the network (`train` only; the first steps compile for minutes)."),
        click.option("--pin-memory", type=click.Choice(PIN_MEMORY_MODES), default=d.pin_memory, show_default=True,
                     help="Page-locked batches for asynchronous copies to the GPU (auto: on CUDA only)."),
        click.option("--persistent-workers/--no-persistent-workers", default=d.persistent_workers,
                     show_default=True, help="Keep data-loader workers alive between loader iterations."),
        click.option("--gpu-resize/--no-gpu-resize", default=d.gpu_resize, show_default=True,
                     help="Workers prepare the largest training size; the device resizes to the step's size and "
                          "renders its heatmaps and tag targets."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--threads", type=cpu_threads(), default=None, help="CPU threads per process."),
        click.option("--checkpoint-every", type=click.IntRange(min=1), default=d.checkpoint_every, show_default=True),
        click.option("--log-every", type=click.IntRange(min=1), default=d.log_every, show_default=True),
        click.option("--val-every", type=int, default=d.val_every, show_default=True,
                     help="Validate every N steps (0: at the end only; -1: never)."),
        click.option("--val-images", type=click.IntRange(min=0), default=d.val_images, show_default=True,
                     help="Validation images (the first N of the split; 0: all)."),
        click.option("--val-resolution", type=click.IntRange(min=0), default=0,
                     help="Validation input size [default: the largest training size]."),
        click.option("--time-limit", type=click.FloatRange(min=0), default=0.0,
                     help="Stop after this many minutes (checkpoint, validation and weights are written; resumable)."),
        click.option("--out", "out", type=click.Path(file_okay=False), default=None, callback=output_path(folder=True), help="Run folder."),
        click.option("--resume", is_flag=True, help="Continue the run in --out exactly where its checkpoint stopped."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object."),
        quiet_option,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _build_config(ctx: click.Context, kind: str, params: dict[str, Any], extra: dict[str, Any]):
    from ..train.config import default_config

    values = {field: params[name] for name, field in _FIELDS.items() if name in params and params[name] is not None}
    values["resolutions"] = params["resolutions"] or ()
    values["data"] = params["data"]
    values.update(extra)
    return default_config(kind, **values)


def _check_resume(ctx: click.Context, config, params: dict[str, Any], out: str) -> None:
    """On --resume the checkpoint's hyper-parameters rule: refuse explicit options that differ."""
    from pathlib import Path

    from ..checkpoints import read_checkpoint
    from ..errors import InputError
    from ..train.config import TrainConfig
    from ..train.trainer import CHECKPOINT_NAME

    path = Path(out) / CHECKPOINT_NAME
    if not path.is_file():
        raise InputError(f"--resume: {path} not found (no run to continue in {out})")
    saved = read_checkpoint(path)
    if not isinstance(saved, dict) or "config" not in saved:
        return  # the trainer reports the malformed checkpoint
    cfg = TrainConfig.from_dict(saved["config"], source=f"{path} config")
    # the network itself: a changed --arch (or --space) would silently train the checkpoint's
    for option, field, param in (("--arch", "arch", "arch_path"), ("--space", "space", "space_path")):
        given, have = getattr(config, field), getattr(cfg, field)
        source = ctx.get_parameter_source(param)
        if given is None or have is None or given == have or source is None or source.name != "COMMANDLINE":
            continue
        raise InputError(f"--resume: {option} differs from the run's {field} ({path}); a resumed run keeps "
                         f"its {field} (start a new run in another --out to train another)")
    for name, field in _FIELDS.items():
        if name in _RESUME_FREE or name not in params:
            continue
        source = ctx.get_parameter_source(name)
        if source is None or source.name != "COMMANDLINE":
            continue
        given = params[name]
        have = getattr(cfg, field)
        if isinstance(have, tuple):
            given = tuple(given or ())
        if given != have:
            raise InputError(
                f"--resume: --{name.replace('_', '-')} {given!r} differs from the run's {have!r} "
                f"({path}); a resumed run keeps its settings (only --steps, --data and run options may change)"
            )


def _run(ctx: click.Context, config, params: dict[str, Any], out: str, arch_source: str | None = None) -> None:
    import torch

    from ..train.trainer import Trainer

    if params["threads"]:
        torch.set_num_threads(params["threads"])
    if params["resume"]:
        _check_resume(ctx, config, params, out)
    steps_given = ctx.get_parameter_source("steps").name == "COMMANDLINE"
    trainer = Trainer(config, out, resume=params["resume"], quiet=params["quiet"], device=params["device"],
                      data=params["data"], steps=params["steps"] if steps_given or not params["resume"] else None,
                      time_limit_s=params["time_limit"] * 60.0, arch_source=arch_source)
    result = trainer.run()
    if not trainer.info.is_main:
        return
    from ..train.distributed import shutdown

    shutdown(trainer.info)
    summary = {
        "out": str(result.out_dir),
        "steps": result.step,
        "stopped_early": result.stopped_early,
        "weights": str(result.weights) if result.weights else None,
        "validation": result.validation,
    }
    if params["as_json"]:
        from .common import echo_json

        echo_json(summary)
        return
    if params["quiet"]:
        return
    click.echo(f"trained {result.step} steps{' (time limit reached)' if result.stopped_early else ''}; "
               f"weights: {summary['weights']}")
    if result.validation:
        from .common import format_table

        rows = [[name, f"{m.get('AP', float('nan')):.3f}", f"{m.get('AP50', float('nan')):.3f}", m.get("images", "")]
                for name, m in result.validation.items() if isinstance(m, dict)]
        click.echo(format_table(rows, ["subnet", "AP", "AP50", "images"]))


@click.command("train-supernet")
@space_option
@click.option("--num-random", type=click.IntRange(min=0), default=2, show_default=True,
              help="Random subnets per step besides the largest and the smallest (sandwich rule).")
@click.option("--distill-weight", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of in-place distillation (smaller subnets fit the largest subnet's heatmaps).")
@click.option("--init-from", type=click.Path(dir_okay=False), default=None,
              help="Initial weights: a supernet checkpoint (ours or the original's) or a static net of the largest arch.")
@_common_options
@click.pass_context
def train_supernet(ctx: click.Context, space_path: str, **params: Any) -> None:
    """Train a weight-sharing supernet with the sandwich rule and in-place distillation."""
    from .common import load_space

    out = params["out"] or "runs/supernet"
    # on --resume the checkpoint's config (space included) replaces this one
    config = _build_config(ctx, "supernet", params, {"space": load_space(space_path).to_dict()})
    _run(ctx, config, params, out)


@click.command("train")
@click.option("--arch", "arch_path", required=True, type=click.Path(dir_okay=False),
              help="Architecture JSON (the original repo's format) or a published name (search-XS).")
@click.option("--init-from", type=click.Path(dir_okay=False), default=None,
              help="Initial weights: a supernet (the subnet is extracted) or a static checkpoint of this arch.")
@_common_options
@click.pass_context
def train_subnet(ctx: click.Context, arch_path: str, **params: Any) -> None:
    """Train (or fine-tune from a supernet) one static subnet."""
    from ..space.published import load_arch

    out = params["out"] or "runs/subnet"
    arch = load_arch(arch_path)
    config = _build_config(ctx, "subnet", params, {"arch": arch.to_dict()})
    _run(ctx, config, params, out, arch_source=arch_path)
